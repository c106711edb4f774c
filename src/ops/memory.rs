//! Keeping freed memory in the process, so that the next training step reuses it instead of
//! asking the kernel for fresh zeroed pages.
//!
//! Design notes: `docs/design.md`, "ops::memory".

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
#[cfg(any(feature = "flex", feature = "train"))]
pub(crate) fn retain_freed_memory_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let declined = std::env::var("NIN_RETAIN_FREED_MEMORY").is_ok_and(|v| v.trim() == "0");
        if !declined {
            retain_freed_memory();
        }
    });
}
