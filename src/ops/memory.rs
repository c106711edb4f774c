//! Keeping freed memory in the process, so that the next training step reuses it instead of
//! asking the kernel for fresh zeroed pages.
//!
//! Design notes: `docs/design.md`, "ops::memory".

/// Tells the C allocator to keep freed blocks up to 32 MiB in the process heap (glibc's largest
/// `mmap` threshold), never to trim the heap top, and to share two arenas among all threads,
/// for the rest of the process's life. The peak memory is unchanged: what is kept is what the
/// next step allocates again.
///
/// It is process-wide, so the crate never calls it by itself: a program calls it once at its
/// start if it wants it, as the examples do (a training loop gets faster steps). Idempotent;
/// does nothing where the C library is not glibc.
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
