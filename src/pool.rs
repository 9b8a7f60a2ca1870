//! Where CPU-bound work runs: rayon's global pool, entered once per piece of work.
//!
//! A parallel iterator started from a thread outside the pool hands its work to the
//! pool and puts the calling thread to sleep until the pass is done: a wake-up pair
//! per pass. A decision makes several passes (filter, spread counts, scores), and a
//! sequence makes them for every pod, so the engine's entry points and the service
//! enter the pool once and let the passes fork and join among its workers.
//!
//! Both carry the caller's tracing subscriber and span onto the worker, so the
//! engine's phase spans stay children of the call that asked.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use tokio::sync::oneshot;
use tracing::{Dispatch, Span, dispatcher};

/// Runs `work` on a worker of the pool (in place when already on one) and waits for
/// it. For callers that may block: the engine's entry points, big batch decodes.
pub fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return work();
    }
    let work = under_callers_span(work);
    rayon::scope(|_| work())
}

/// Runs `work` as a job on the pool and awaits its answer without blocking the async
/// runtime. A panic in `work` comes back as `Err` with its payload (left to rayon, it
/// would abort the process).
pub async fn spawn<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Box<dyn Any + Send>> {
    let work = under_callers_span(work);
    let (done, answer) = oneshot::channel();
    rayon::spawn(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(work));
        // The caller may have gone (a cancelled call): nobody wants the answer then.
        let _ = done.send(result);
    });
    answer
        .await
        .unwrap_or_else(|_| Err(Box::new("the pool dropped the job")))
}

/// `work`, to run on another thread under the calling thread's tracing subscriber and
/// span.
fn under_callers_span<R>(work: impl FnOnce() -> R) -> impl FnOnce() -> R {
    let dispatch = dispatcher::get_default(Dispatch::clone);
    let span = Span::current();
    move || dispatcher::with_default(&dispatch, || span.in_scope(work))
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
