//! Helper threads for calls too short to wait for rayon's: after each call they stay awake
//! for a moment, ready for the next one, and then sleep.
//!
//! rayon's idle threads sleep within microseconds, and waking one can take longer than a whole
//! single-image pass of the compact network (docs/performance.md). The team's
//! helpers spin for [`STAY_AWAKE`] after a call instead, as ONNX Runtime's and OpenMP's threads
//! do, so that back-to-back calls find them running. The caller always works too, and helpers
//! join a call only while it is open: one that wakes late, or never, delays nothing.

#![allow(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long a helper keeps looking for the next call before it sleeps.
pub(crate) const STAY_AWAKE: Duration = Duration::from_micros(500);

/// Runs `work` on the calling thread and, at the same time, on up to `threads − 1` helper
/// threads, and returns once every one that started it has finished. `work` must share its
/// work out itself (each caller takes what is left) and be complete when the calling thread's
/// own run of it returns, whether or not any helper joined.
///
/// With one thread, or while another call holds the team, `work` runs on the calling thread
/// alone.
///
/// # Panics
///
/// If `work` panics on a helper thread (as it would have on the calling one).
pub(crate) fn run(threads: usize, work: &(dyn Fn() + Sync)) {
    let team = match threads.checked_sub(1) {
        Some(helpers) if helpers > 0 => Team::get(helpers),
        _ => None,
    };
    let Some((team, _held)) = team.and_then(|team| team.claim().map(|held| (team, held))) else {
        work();
        return;
    };
    team.open(work, threads - 1);
    let own = catch_unwind(AssertUnwindSafe(work));
    let helper_panicked = team.close();
    if let Err(panic) = own {
        std::panic::resume_unwind(panic);
    }
    assert!(
        !helper_panicked,
        "a helper thread panicked while running a kernel"
    );
}

struct Team {
    /// Held by the one call the team serves at a time.
    serving: Mutex<()>,
    call: Mutex<Call>,
    /// Bumped for every call; helpers spin on it before they sleep on `wake`.
    generation: AtomicU64,
    wake: Condvar,
    /// Helpers running the work now; the caller spins on it before it sleeps on `finished`.
    running: AtomicUsize,
    panicked: AtomicBool,
    finished: Condvar,
}

/// The call being served.
struct Call {
    generation: u64,
    /// The work, while the call is open to helpers.
    work: Option<WorkPtr>,
    /// Helpers that may still join.
    places: usize,
}

/// `work` of [`run`], its lifetime erased: helpers call it only between `open` and the end of
/// `close`, which waits for them, while the borrow it came from is alive.
#[derive(Clone, Copy)]
struct WorkPtr(*const (dyn Fn() + Sync));

// SAFETY: the pointee is `Sync`, and it is only called while `run` keeps it alive.
unsafe impl Send for WorkPtr {}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Team {
    /// The team, with at least `helpers` helpers where the process can start them (fewer, or
    /// none, where it cannot).
    fn get(helpers: usize) -> Option<&'static Team> {
        static TEAM: OnceLock<Option<&'static Team>> = OnceLock::new();
        *TEAM.get_or_init(|| {
            let team: &'static Team = Box::leak(Box::new(Team {
                serving: Mutex::new(()),
                call: Mutex::new(Call {
                    generation: 0,
                    work: None,
                    places: 0,
                }),
                generation: AtomicU64::new(0),
                wake: Condvar::new(),
                running: AtomicUsize::new(0),
                panicked: AtomicBool::new(false),
                finished: Condvar::new(),
            }));
            // As many helpers as the machine has cores beside the caller's; `run` uses as
            // many as each call asks for.
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let started = (0..helpers.max(cores.saturating_sub(1)))
                .filter(|index| {
                    std::thread::Builder::new()
                        .name(format!("nin-helper-{index}"))
                        .spawn(move || team.help())
                        .is_ok()
                })
                .count();
            (started > 0).then_some(team)
        })
    }

    /// The team for one call, or `None` while another call holds it.
    fn claim(&self) -> Option<MutexGuard<'_, ()>> {
        match self.serving.try_lock() {
            Ok(held) => Some(held),
            Err(std::sync::TryLockError::Poisoned(held)) => Some(held.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    fn open(&self, work: &(dyn Fn() + Sync), places: usize) {
        let mut call = lock(&self.call);
        // SAFETY (of the erased lifetime): `close` waits until no helper runs the work, and
        // no helper starts it after `close` has taken it back.
        let work: *const (dyn Fn() + Sync + '_) = work;
        #[allow(clippy::unnecessary_cast)]
        let work = unsafe {
            std::mem::transmute::<*const (dyn Fn() + Sync + '_), *const (dyn Fn() + Sync + 'static)>(
                work,
            )
        };
        call.generation += 1;
        call.work = Some(WorkPtr(work));
        call.places = places;
        self.panicked.store(false, Ordering::Relaxed);
        self.generation.store(call.generation, Ordering::Release);
        drop(call);
        self.wake.notify_all();
    }

    /// Closes the call to helpers and waits for those running it, spinning for a while before
    /// it sleeps (a helper usually ends within microseconds of the caller); returns whether one
    /// of them panicked.
    fn close(&self) -> bool {
        let mut call = lock(&self.call);
        call.work = None;
        drop(call);
        let spin_since = Instant::now();
        while self.running.load(Ordering::Acquire) > 0 && spin_since.elapsed() < STAY_AWAKE {
            std::hint::spin_loop();
        }
        let mut call = lock(&self.call);
        while self.running.load(Ordering::Acquire) > 0 {
            call = self
                .finished
                .wait(call)
                .unwrap_or_else(PoisonError::into_inner);
        }
        self.panicked.load(Ordering::Relaxed)
    }

    /// A helper's life: wait for a call, spinning for a while and then sleeping; join it if
    /// there is a place; repeat.
    fn help(&self) {
        let mut seen = 0;
        loop {
            let spin_since = Instant::now();
            while self.generation.load(Ordering::Acquire) == seen
                && spin_since.elapsed() < STAY_AWAKE
            {
                std::hint::spin_loop();
            }
            let mut call = lock(&self.call);
            while call.generation == seen {
                call = self.wake.wait(call).unwrap_or_else(PoisonError::into_inner);
            }
            seen = call.generation;
            let Some(work) = call.work.filter(|_| call.places > 0) else {
                continue;
            };
            call.places -= 1;
            self.running.fetch_add(1, Ordering::Relaxed);
            drop(call);
            // SAFETY: the call is open, so `run` is still inside `work`'s borrow, and `close`
            // waits for this helper before that borrow ends.
            let outcome = catch_unwind(AssertUnwindSafe(|| unsafe { (*work.0)() }));
            if outcome.is_err() {
                self.panicked.store(true, Ordering::Relaxed);
            }
            // Taken under the lock, so that a caller about to sleep on `finished` cannot miss
            // the notification.
            let call = lock(&self.call);
            if self.running.fetch_sub(1, Ordering::Release) == 1 {
                self.finished.notify_all();
            }
            drop(call);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Units claimed from a counter by whoever runs the work: every unit is done once, by the
    /// caller alone if need be, and nobody runs the work after `run` returns.
    #[test]
    fn every_unit_is_done_once_and_nothing_runs_after_the_call() {
        for threads in [1, 2, 4] {
            for _ in 0..200 {
                let next = AtomicUsize::new(0);
                let done: Vec<AtomicUsize> = (0..64).map(|_| AtomicUsize::new(0)).collect();
                let runs = AtomicUsize::new(0);
                run(threads, &|| {
                    runs.fetch_add(1, Ordering::Relaxed);
                    loop {
                        let unit = next.fetch_add(1, Ordering::Relaxed);
                        if unit >= done.len() {
                            break;
                        }
                        done[unit].fetch_add(1, Ordering::Relaxed);
                    }
                });
                assert!(done.iter().all(|d| d.load(Ordering::Relaxed) == 1));
                let runs_at_return = runs.load(Ordering::Relaxed);
                assert!((1..=threads).contains(&runs_at_return));
                std::thread::sleep(Duration::from_micros(50));
                assert_eq!(runs.load(Ordering::Relaxed), runs_at_return);
            }
        }
    }

    #[test]
    fn a_call_while_the_team_is_busy_runs_alone() {
        let inner_runs = AtomicUsize::new(0);
        run(2, &|| {
            run(2, &|| {
                inner_runs.fetch_add(1, Ordering::Relaxed);
            });
        });
        // The outer call holds the team: each inner call ran on its own thread only, once
        // per run of the outer work (one or two).
        assert!((1..=2).contains(&inner_runs.load(Ordering::Relaxed)));
    }

    #[test]
    #[should_panic(expected = "boom")]
    fn a_panic_in_the_work_reaches_the_caller() {
        run(2, &|| panic!("boom"));
    }
}
