//! Capping a measurement's whole process at AVX2, not only this crate's kernels: `gemm` under
//! the training path, and ONNX Runtime's MLAS, pick their instructions from `cpuid` and have no
//! setting to lower them. `cpuid_cap.c`, compiled here with the C compiler and loaded with
//! `LD_PRELOAD`, hides AVX-512 from every library of the process it is loaded into (Linux on
//! x86-64 with CPUID faulting) that reads `cpuid` after start-up. Where it cannot be built or
//! does not take, the capped rows say so and run as before: this crate's kernels and PyTorch
//! capped, the rest at the CPU's widest.

use super::*;

use std::sync::OnceLock;

/// The compiled library, in a temporary directory that [`RemoveCpuidCap`] removes.
pub(super) struct CpuidCap {
    library: PathBuf,
    directory: PathBuf,
}

/// The library once built (or why not: `None`), for the whole run.
static CAP: OnceLock<Option<CpuidCap>> = OnceLock::new();

/// Removes the library's directory, if one was made, when dropped: held by `run` for the
/// whole run, since the static above is never dropped.
pub(super) struct RemoveCpuidCap;

impl Drop for RemoveCpuidCap {
    fn drop(&mut self) {
        if let Some(Some(cap)) = CAP.get() {
            // Nothing to do about a leftover temporary directory but leave it.
            let _ = std::fs::remove_dir_all(&cap.directory);
        }
    }
}

/// The source, compiled on first use.
const SOURCE: &str = include_str!("cpuid_cap.c");

impl CpuidCap {
    /// Runs `command` with AVX-512 hidden from its `cpuid`.
    pub(super) fn apply(&self, command: &mut Command) {
        let mut preload = self.library.clone().into_os_string();
        if let Some(others) = std::env::var_os("LD_PRELOAD") {
            preload.push(":");
            preload.push(others);
        }
        command.env("LD_PRELOAD", preload);
    }

    /// Compiles the library with `$CC` (else `cc`) in a new temporary directory and checks in
    /// a child process, this program again, that the CPU then reads as AVX2 to the crate's own
    /// detection; the directory is removed again where either fails.
    fn build() -> Result<Self, String> {
        if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            return Err("it needs Linux on x86-64".into());
        }
        let directory = tempfile::Builder::new()
            .prefix("nin-cpuid-cap")
            .tempdir()
            .map_err(|err| format!("no temporary folder: {err}"))?
            .keep();
        let cap = CpuidCap {
            library: directory.join("libcpuid_cap.so"),
            directory,
        };
        match cap.compile_and_check() {
            Ok(()) => Ok(cap),
            Err(why) => {
                let _ = std::fs::remove_dir_all(&cap.directory);
                Err(why)
            }
        }
    }

    fn compile_and_check(&self) -> Result<(), String> {
        // LD_PRELOAD splits its list at spaces and colons.
        if self.library.to_string_lossy().contains([' ', ':']) {
            return Err(format!(
                "{:?} has a space or a colon, which LD_PRELOAD cannot take; set TMPDIR",
                self.library
            ));
        }
        let source = self.directory.join("cpuid_cap.c");
        std::fs::write(&source, SOURCE).map_err(|err| format!("writing {source:?}: {err}"))?;
        let compiler = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
        let compiled = Command::new(&compiler)
            .args(["-O2", "-shared", "-fPIC", "-o"])
            .arg(&self.library)
            .arg(&source)
            .output()
            .map_err(|err| format!("no C compiler ({compiler:?}: {err}); set CC"))?;
        if !compiled.status.success() {
            return Err(format!(
                "{compiler:?} failed: {}",
                String::from_utf8_lossy(&compiled.stderr).trim()
            ));
        }
        let mut probe = Command::new(std::env::current_exe().map_err(|err| err.to_string())?);
        probe.arg("--detected-simd").env_remove("NIN_SIMD");
        self.apply(&mut probe);
        let probed = probe.output().map_err(|err| err.to_string())?;
        let detected = String::from_utf8_lossy(&probed.stdout).trim().to_string();
        if !probed.status.success() || detected != SimdLevel::Avx2.name() {
            return Err(format!(
                "the CPU read as {detected:?} through it, not avx2 ({})",
                String::from_utf8_lossy(&probed.stderr).trim()
            ));
        }
        Ok(())
    }
}

/// The library when the active level is AVX2 under a cap on an AVX-512 CPU, built on first
/// use; `None` otherwise, or where it could not be built (the reason is printed once).
pub(super) fn cpuid_cap() -> Option<&'static CpuidCap> {
    if SimdLevel::active() != SimdLevel::Avx2 || SimdLevel::detected() != SimdLevel::Avx512 {
        return None;
    }
    CAP.get_or_init(|| {
        CpuidCap::build()
            .map_err(|why| {
                eprintln!(
                    "AVX-512 stays visible to `gemm` and ONNX Runtime in the capped rows: \
                     examples/perf/cpuid_cap.c could not be used ({why})"
                )
            })
            .ok()
    })
    .as_ref()
}
