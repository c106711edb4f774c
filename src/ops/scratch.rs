//! Scratch buffers kept per thread from one call to the next.
//!
//! A kernel's patch matrices and partial products are rebuilt on every call, for every layer
//! of every step. Allocating them fresh costs a page-zeroing `memset` each time (the allocator
//! keeps freed memory, see [`retain_freed_memory`](super::retain_freed_memory), so it cannot
//! hand out pages the kernel zeroed), for values the kernel overwrites before it reads them.
//! A [`Scratch`] borrows a buffer from the current thread's pool instead and gives it back when
//! dropped; once a step has run, buffers are only reused, never allocated or cleared.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

thread_local! {
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// `len` values borrowed from the current thread's pool, returned to it on drop.
///
/// The values are whatever the buffer's last user left there (zeros when it is new): users
/// write every value they read.
pub(crate) struct Scratch {
    buffer: Vec<f32>,
    len: usize,
}

impl Scratch {
    pub(crate) fn new(len: usize) -> Self {
        let mut buffer = POOL
            .with(|pool| pool.borrow_mut().pop())
            .unwrap_or_default();
        if buffer.len() < len {
            // Grown to its full length once, so that a later, shorter use and a longer one
            // after it never fill it again.
            buffer.resize(len, 0.0);
        }
        Self { buffer, len }
    }
}

impl Deref for Scratch {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.buffer[..self.len]
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buffer[..self.len]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        // `try_with`: a buffer dropped while the thread's locals are torn down is just freed.
        let _ = POOL.try_with(|pool| pool.borrow_mut().push(buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_reused_at_any_length_without_being_cleared() {
        let address = {
            let mut first = Scratch::new(1000);
            first.fill(7.0);
            first.as_ptr() as usize
        };
        let shorter = Scratch::new(10);
        assert_eq!(shorter.len(), 10);
        assert_eq!(shorter.as_ptr() as usize, address);
        assert!(shorter.iter().all(|&v| v == 7.0));
        drop(shorter);
        // Longer again, within what it once held: still the same memory, not refilled.
        let longer = Scratch::new(1000);
        assert_eq!(longer.as_ptr() as usize, address);
        assert_eq!(longer[999], 7.0);
    }

    #[test]
    fn buffers_in_use_at_once_are_distinct() {
        let mut a = Scratch::new(4);
        let mut b = Scratch::new(4);
        a.fill(1.0);
        b.fill(2.0);
        assert!(a.iter().all(|&v| v == 1.0) && b.iter().all(|&v| v == 2.0));
    }
}
