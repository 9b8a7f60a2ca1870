//! Memos of the node-local plugins' results ([`NodeLocalMemo`]) kept for the calls on
//! one cluster, lent to one decision at a time.
//!
//! A memo is filled and read by a single decision, so concurrent calls each borrow
//! their own: [`MemoPool::with_memo`] takes an idle one (or starts a bounded one),
//! runs the decision with it and puts it back. The pool keeps at most as many idle
//! memos as it was told, one per thread that decides at once; a decision that panics
//! drops its memo instead of returning it half-filled.

use std::sync::{Mutex, PoisonError};

use super::node_local_memo::{NodeLocalMemo, TemplateBudget};

/// How many templates (a cluster's recurring pod shapes) each memo keeps: 32 up to
/// 2,048 nodes, then fewer as rows for 65,536 nodes allow, 8 at least (15,000 nodes:
/// 8). At most 65,536 × 8 rows of 56 bytes, each keeping at most a replaced node's
/// allocation (about 500 bytes) alive.
pub const MEMO_BUDGET: TemplateBudget = TemplateBudget {
    rows: 65_536,
    fewest: 8,
    most: 32,
};

/// Idle memos of one cluster's calls.
pub struct MemoPool {
    idle: Mutex<Vec<NodeLocalMemo>>,
    keep: usize,
}

impl MemoPool {
    /// A pool that keeps at most `keep` idle memos.
    pub fn new(keep: usize) -> MemoPool {
        MemoPool {
            idle: Mutex::new(Vec::new()),
            keep,
        }
    }

    /// Runs `decide` with a memo of this pool, and keeps the memo for the next call.
    pub fn with_memo<T>(&self, decide: impl FnOnce(&mut NodeLocalMemo) -> T) -> T {
        let taken = self.lock().pop();
        let mut memo = taken.unwrap_or_else(|| NodeLocalMemo::bounded(MEMO_BUDGET));
        let answer = decide(&mut memo);
        let mut idle = self.lock();
        if idle.len() < self.keep {
            idle.push(memo);
        }
        answer
    }

    /// How many memos wait for a call.
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<NodeLocalMemo>> {
        // A memo in the list is whole: it went back only after its decision finished.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoPool")
            .field("idle", &self.idle())
            .field("keep", &self.keep)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::{node, pending, pod, snapshot};
    use crate::engine::{Options, decide_on_this_thread};

    #[test]
    fn a_memo_goes_back_and_is_lent_again_with_what_it_learnt() {
        let pool = MemoPool::new(2);
        let s = snapshot(vec![node("a", "4", "8Gi", 110)], vec![]);
        let p = pending(&s, &pod("p", "1", "1Gi"));
        // A template is remembered from its second call.
        for _ in 0..2 {
            pool.with_memo(|memo| decide_on_this_thread(&s, &p, Options::ANSWER, Some(memo)));
        }
        assert_eq!(pool.idle(), 1);
        assert_eq!(pool.with_memo(|memo| memo.templates()), 1);
    }

    #[test]
    fn it_keeps_at_most_as_many_idle_memos_as_asked() {
        let pool = MemoPool::new(1);
        pool.with_memo(|_| pool.with_memo(|_| pool.with_memo(|_| ())));
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn a_decision_that_panics_drops_its_memo() {
        let pool = MemoPool::new(2);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.with_memo(|_| panic!("the engine failed"))
        }));
        assert!(panicked.is_err());
        assert_eq!(pool.idle(), 0);
    }
}
