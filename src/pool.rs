//! Where CPU-bound work runs: rayon's global pool, entered once per piece of work.
//!
//! A parallel iterator started from a thread outside the pool hands its work to the
//! pool and puts the calling thread to sleep until the pass is done: a wake-up pair
//! per pass. A decision makes several passes (filter, spread counts, scores), and a
//! sequence makes them for every pod, so the engine's entry points and the service
//! enter the pool once and let the passes fork and join among its workers.
//!
//! Work made of many like items that the caller must not sleep through (decoding a
//! batch) is shared out instead ([`share_out`]): the caller takes items itself, and the
//! pool's workers join in as they are free.
//!
//! All three carry the caller's tracing subscriber and span onto the workers, so the
//! engine's phase spans stay children of the call that asked.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::oneshot;
use tracing::{Dispatch, Span, dispatcher};

/// Runs `work` on a worker of the pool (in place when already on one) and waits for
/// it. For callers that may block: the engine's entry points, big batch decodes.
pub fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return work();
    }
    let callers = CallersSpan::here();
    rayon::scope(|_| callers.run(work))
}

/// `f` applied to each of `items`, the answers in the items' order, worked out by the
/// calling thread together with every worker of the pool that is free or frees up
/// before the items run out: each takes the next `SHARE` items not taken yet. Unlike a
/// parallel iterator, which hands all of the work to the pool and puts the caller to
/// sleep, the caller never waits for a pool that is busy elsewhere (a SyncState stream
/// decodes its next batch while the pool applies the previous one), and an idle pool
/// joins in at once. Returns once the workers that joined are done, and those that had
/// not started when the items ran out have found none left: a busy pool's next free
/// moment.
pub fn share_out<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    // Runs of answers by the place of their first item.
    let answered: Mutex<Vec<(usize, Vec<R>)>> = Mutex::default();
    let take_items = || {
        let mut mine = Vec::new();
        loop {
            let start = next.fetch_add(SHARE, Ordering::Relaxed);
            if start >= items.len() {
                break;
            }
            let run = &items[start..(start + SHARE).min(items.len())];
            let answers = run.iter().enumerate().map(|(k, item)| f(start + k, item));
            mine.push((start, answers.collect()));
        }
        answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(&mut mine);
    };
    let callers = CallersSpan::here();
    // No more helpers than runs beyond the caller's first: each wakes a worker.
    let helpers = rayon::current_num_threads().min(items.len().div_ceil(SHARE).saturating_sub(1));
    rayon::in_place_scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|_| callers.run(take_items));
        }
        take_items();
    });
    let mut runs = answered.into_inner().unwrap_or_else(|e| e.into_inner());
    runs.sort_unstable_by_key(|&(start, _)| start);
    let mut answers = Vec::with_capacity(items.len());
    for (_, run) in runs {
        answers.extend(run);
    }
    answers
}

/// How many items [`share_out`] hands out at a time: few enough that the last run's
/// wait is short, enough that taking them costs next to nothing.
const SHARE: usize = 16;

/// Runs `work` as a job on the pool and awaits its answer without blocking the async
/// runtime. A panic in `work` comes back as `Err` with its payload (left to rayon, it
/// would abort the process).
pub async fn spawn<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Box<dyn Any + Send>> {
    let callers = CallersSpan::here();
    let (done, answer) = oneshot::channel();
    rayon::spawn(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(|| callers.run(work)));
        // The caller may have gone (a cancelled call): nobody wants the answer then.
        let _ = done.send(result);
    });
    answer
        .await
        .unwrap_or_else(|_| Err(Box::new("the pool dropped the job")))
}

/// The calling thread's tracing subscriber and span, to run work under on another
/// thread.
struct CallersSpan {
    dispatch: Dispatch,
    span: Span,
}

impl CallersSpan {
    fn here() -> CallersSpan {
        CallersSpan {
            dispatch: dispatcher::get_default(Dispatch::clone),
            span: Span::current(),
        }
    }

    fn run<R>(&self, work: impl FnOnce() -> R) -> R {
        dispatcher::with_default(&self.dispatch, || self.span.in_scope(work))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_pool_runs_the_work_on_a_worker_under_the_callers_span() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("caller");
            let _entered = span.enter();
            assert!(rayon::current_thread_index().is_none());
            let (worker, inside) =
                on_pool(|| (rayon::current_thread_index(), Span::current().id()));
            assert!(worker.is_some(), "the work ran on the calling thread");
            assert_eq!(inside, span.id(), "the work lost the caller's span");
            // Already on a worker: the work runs in place, on that worker.
            let nested = on_pool(|| {
                let here = rayon::current_thread_index();
                (here, on_pool(rayon::current_thread_index))
            });
            assert_eq!(nested.0, nested.1);
        });
    }

    #[test]
    fn share_out_answers_in_order_without_waiting_for_a_busy_pool() {
        // Every worker of the pool held until the caller has answered every item.
        let workers = rayon::current_num_threads();
        let (started, released) = (
            AtomicUsize::new(0),
            std::sync::atomic::AtomicBool::new(false),
        );
        let items: Vec<usize> = (0..100).collect();
        let answered = AtomicUsize::new(0);
        let caller = std::thread::current().id();
        rayon::in_place_scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|_| {
                    started.fetch_add(1, Ordering::SeqCst);
                    while !released.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                });
            }
            while started.load(Ordering::SeqCst) < workers {
                std::thread::yield_now();
            }
            let answers = share_out(&items, |i, item| {
                if answered.fetch_add(1, Ordering::SeqCst) + 1 == items.len() {
                    released.store(true, Ordering::SeqCst);
                }
                (i, item * 2, std::thread::current().id())
            });
            let expected: Vec<_> = (0..100).map(|i| (i, i * 2, caller)).collect();
            assert_eq!(answers, expected, "in order, all by the caller");
        });
        // A pool that is free (or frees up) joins in: the caller's items wait for it.
        let joined = std::sync::atomic::AtomicBool::new(false);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        share_out(&items[..4 * SHARE], |_, _| {
            if rayon::current_thread_index().is_some() {
                joined.store(true, Ordering::SeqCst);
            }
            while !joined.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
        assert!(joined.load(Ordering::SeqCst), "no worker joined in");
    }

    #[tokio::test]
    async fn spawn_answers_from_a_worker_and_returns_a_panic_as_an_error() {
        let worker = spawn(rayon::current_thread_index).await.expect("no panic");
        assert!(worker.is_some(), "the job ran off the pool");
        let panicked = spawn(|| -> u32 { panic!("engine bug") }).await;
        let payload = panicked.expect_err("the panic must come back as an error");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"engine bug"));
        // The pool survived the panic.
        assert_eq!(spawn(|| 7).await.expect("no panic"), 7);
    }
}
