//! Where replaced state is freed: a thread of its own, so that a writer's next batch
//! does not wait for the previous snapshot to be taken apart.
//!
//! Publishing a batch replaces the cluster's snapshot. When no query holds the old one,
//! its last reference goes in the writer's hands, and dropping it frees every node the
//! batch copied and gives back a reference to each of their pods: in a batch spread
//! over the cluster, a third of the writer's time. [`later`] hands such a value to the
//! reclaimer thread instead, which drops it while the writer goes on. The queue is
//! bounded ([`BACKLOG`]): a writer that outruns the reclaimer waits for it, so the
//! frees are never left behind and memory stays bounded.
//!
//! A query that happens to hold the old snapshot last still frees it itself, as it
//! would without this module.

use std::sync::OnceLock;
use std::sync::mpsc::{self, SyncSender};

/// How many values may wait for the reclaimer before [`later`] blocks.
pub const BACKLOG: usize = 4;

/// A value waiting to be dropped, or a request to say when all before it are.
enum Work {
    Drop(Box<dyn Send>),
    Settled(mpsc::Sender<()>),
}

/// The reclaimer's queue (`None` if its thread could not be started: values are then
/// dropped where they are given up).
fn queue() -> Option<&'static SyncSender<Work>> {
    static QUEUE: OnceLock<Option<SyncSender<Work>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (sender, receiver) = mpsc::sync_channel::<Work>(BACKLOG);
            std::thread::Builder::new()
                .name("reclaimer".into())
                .spawn(move || {
                    ON_RECLAIMER.set(true);
                    for work in receiver {
                        match work {
                            Work::Drop(value) => drop(value),
                            Work::Settled(done) => {
                                let _ = done.send(());
                            }
                        }
                    }
                })
                .ok()
                .map(|_| sender)
        })
        .as_ref()
}

thread_local! {
    /// Set on the reclaimer thread.
    static ON_RECLAIMER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread is the reclaimer: what it drops is replaced state, whose
/// frees a type may prepare for ([`crate::prefetch`]) where a query's would not gain.
pub fn on_reclaimer() -> bool {
    ON_RECLAIMER.get()
}

/// Drops `value` on the reclaimer thread (here, if it has none). Blocks while the
/// reclaimer is [`BACKLOG`] values behind.
pub fn later<T: Send + 'static>(value: T) {
    let Some(queue) = queue() else {
        return drop(value);
    };
    if let Err(mpsc::SendError(Work::Drop(value))) = queue.send(Work::Drop(Box::new(value))) {
        drop(value);
    }
}

/// Waits until everything given to [`later`] before this call is dropped.
pub fn settle() {
    let Some(queue) = queue() else {
        return;
    };
    let (done, settled) = mpsc::channel();
    if queue.send(Work::Settled(done)).is_ok() {
        let _ = settled.recv();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Says on which thread it was dropped.
    struct Noted(mpsc::Sender<String>);

    impl Drop for Noted {
        fn drop(&mut self) {
            let name = std::thread::current().name().unwrap_or("").to_string();
            let _ = self.0.send(name);
        }
    }

    #[test]
    fn a_value_given_up_is_dropped_on_the_reclaimer_thread_by_the_time_it_settles() {
        let (tell, told) = mpsc::channel();
        let weak = {
            let kept = Arc::new(Noted(tell));
            let weak = Arc::downgrade(&kept);
            later(kept);
            weak
        };
        settle();
        assert!(weak.upgrade().is_none(), "dropped once settled");
        assert_eq!(told.try_recv().as_deref(), Ok("reclaimer"));
    }

    #[test]
    fn the_reclaimer_knows_it_is_one_and_no_other_thread_thinks_it_is() {
        struct Asks(mpsc::Sender<bool>);
        impl Drop for Asks {
            fn drop(&mut self) {
                let _ = self.0.send(on_reclaimer());
            }
        }
        let (tell, told) = mpsc::channel();
        later(Asks(tell.clone()));
        settle();
        assert_eq!(told.try_recv(), Ok(true), "dropped on the reclaimer");
        drop(Asks(tell));
        assert_eq!(told.try_recv(), Ok(false), "dropped here");
    }

    #[test]
    fn more_values_than_the_backlog_are_all_dropped() {
        let (tell, told) = mpsc::channel();
        for _ in 0..BACKLOG * 3 {
            later(Noted(tell.clone()));
        }
        settle();
        assert_eq!(told.try_iter().count(), BACKLOG * 3);
    }
}
