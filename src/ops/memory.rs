//! Keeping freed memory in the process, so that the next training step reuses it instead of
//! asking the kernel for fresh zeroed pages.
//!
//! A training step allocates every activation and gradient anew and frees them at the end of
//! the step. glibc's `malloc` hands blocks above its `mmap` threshold straight back to the
//! kernel and trims the heap top once more than 128 KiB of it is free, so each step faults in
//! the same hundreds of megabytes again, page by page. Raising both thresholds took a compact
//! training step on flex from 610–634 to 770–823 images/s with the same peak resident memory
//! (`perf --worker train --preset compact`, two runs each, before this function existed, the
//! thresholds set through
//! `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295`).

/// Tells the C allocator to keep freed blocks up to 32 MiB in the process heap (glibc's largest
/// `mmap` threshold), never to trim the heap top, and to share two arenas among all threads,
/// for the rest of the process's life. The peak memory is unchanged: what is kept is what the
/// next step allocates again.
///
/// The crate's flex kernels call it on their first use, so a training loop of your own gets it
/// without calling anything; set `NIN_RETAIN_FREED_MEMORY=0` in the environment to keep the
/// allocator's defaults. It is process-wide and idempotent, and does nothing where the C
/// library is not glibc.
///
/// ```
/// nin::ops::retain_freed_memory();
/// ```
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD_MAX: libc::c_int = 32 << 20;
        // SAFETY: `mallopt` only changes allocator parameters; glibc applies it under its own
        // lock and it is sound to call at any time, from any thread.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// [`retain_freed_memory`], once per process, unless `NIN_RETAIN_FREED_MEMORY=0` says not to:
/// what the flex kernels call on their first use.
pub(crate) fn retain_freed_memory_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let declined = std::env::var("NIN_RETAIN_FREED_MEMORY").is_ok_and(|v| v.trim() == "0");
        if !declined {
            retain_freed_memory();
        }
    });
}
