//! [`NodeCells`]: values computed from each node of a snapshot alone (a fixed number
//! of cells per node), kept with marks of the node list they were computed on, so that
//! a later snapshot recomputes only the nodes it may not share.
//!
//! The cluster-wide plugins count, for the pod being placed, the pods its selectors
//! match on every node (PodTopologySpread's domains, InterPodAffinity's own terms).
//! Replicas of an app ask the same question, and a placement changes one node: kept
//! by a memo, the counts are brought to the next snapshot by recounting the nodes that
//! are not the very same `NodeInfo` (node lists share untouched chunks, so finding them
//! costs a pointer compare per chunk, then per node of a copied chunk). What was
//! counted is held weakly: counts kept for long keep a replaced node's allocation
//! alive, not its pods. [`Kept`] holds such counts for a memo.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use rayon::prelude::*;

use super::cow_list::ChunkMarks;
use super::snapshot::{NodeInfo, Snapshot};
use super::{NODES_PER_TASK, task_len};

/// `width` cells per node of the node list they were computed on.
pub struct NodeCells<C> {
    width: usize,
    /// The chunks of the node list the cells were computed on (none before the first
    /// refresh), and per node the very `NodeInfo`, both held weakly: a node replaced
    /// since keeps only its allocation (about 500 bytes) alive, not its pods.
    counted: ChunkMarks<Arc<NodeInfo>>,
    counted_nodes: Vec<Weak<NodeInfo>>,
    /// Whether it marks what it counted. Cells counted for one decision only (no memo
    /// keeps them) do not: marking takes a weak reference per node, an atomic
    /// operation on every node's counts, and letting it go another.
    marks: bool,
    /// Per node, `width` cells (row-major).
    cells: Vec<C>,
}

impl<C: Copy + Default + Send + Sync> NodeCells<C> {
    /// No cells yet, `width` per node once refreshed; `kept` when a memo keeps them for
    /// later snapshots (see `marks`): otherwise each refresh computes every node.
    pub fn new(width: usize, kept: bool) -> NodeCells<C> {
        NodeCells {
            width,
            counted: ChunkMarks::default(),
            counted_nodes: Vec::new(),
            marks: kept,
            cells: Vec::new(),
        }
    }

    /// Forgets every node's cells: the next refresh computes them all.
    pub fn forget(&mut self) {
        self.counted = ChunkMarks::default();
        self.counted_nodes.clear();
        self.cells.clear();
    }

    /// Node `at`'s cells (its index in the snapshot last refreshed to).
    pub fn of(&self, at: usize) -> &[C] {
        &self.cells[at * self.width..(at + 1) * self.width]
    }

    /// Every node's cells, in snapshot order.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, C> {
        self.cells.chunks_exact(self.width.max(1))
    }

    /// Brings the cells to `snapshot`: `compute` (made by `make_compute`, only when
    /// some node changed: a kept count on an unchanged snapshot prepares nothing) fills
    /// the cells of each node not computed as it is now (they start at their default;
    /// in parallel when there are many), then `changed` sees each such node's place,
    /// old cells (default for a node never computed) and new ones, in snapshot order.
    pub fn refresh<F: Fn(usize, &NodeInfo, &mut [C]) + Sync>(
        &mut self,
        snapshot: &Snapshot,
        make_compute: impl FnOnce() -> F,
        mut changed: impl FnMut(usize, &[C], &[C]),
    ) {
        let width = self.width;
        let num_nodes = snapshot.nodes.len();
        if self.cells.len() != num_nodes * width
            || (self.marks && self.counted_nodes.len() != num_nodes)
        {
            self.cells = vec![C::default(); num_nodes * width];
            self.counted = ChunkMarks::default();
            self.counted_nodes = match self.marks {
                true => std::iter::repeat_with(Weak::new).take(num_nodes).collect(),
                false => Vec::new(),
            };
        }
        // The nodes of the chunks copied since that are not the very nodes counted.
        let at: Vec<usize> = if self.marks {
            let counted_nodes = &self.counted_nodes;
            let at = (snapshot.nodes.unmarked(&self.counted).into_iter())
                .filter(|&i| {
                    !std::ptr::eq(counted_nodes[i].as_ptr(), Arc::as_ptr(&snapshot.nodes[i]))
                })
                .collect();
            snapshot.nodes.mark(&mut self.counted);
            at
        } else {
            (0..num_nodes).collect()
        };
        if at.is_empty() {
            return;
        }
        let compute = make_compute();
        let mut fresh = vec![C::default(); at.len() * width];
        if width > 0 {
            fresh
                .par_chunks_mut(width)
                .zip(at.par_iter())
                .with_min_len(task_len(NODES_PER_TASK))
                .for_each(|(cells, &i)| compute(i, &snapshot.nodes[i], cells));
        }
        for (&i, new) in at.iter().zip(fresh.chunks_exact(width.max(1))) {
            let old = &mut self.cells[i * width..(i + 1) * width];
            changed(i, old, new);
            old.copy_from_slice(new);
            if self.marks {
                self.counted_nodes[i] = Arc::downgrade(&snapshot.nodes[i]);
            }
        }
    }
}

/// Counts a memo keeps across decisions (each holds [`NodeCells`]): at most `max`, the
/// least recently used forgotten first.
pub struct Kept<T> {
    /// Least recently used first.
    items: Mutex<Vec<T>>,
    max: usize,
}

impl<T> Kept<T> {
    /// Keeps at most `max`.
    pub fn new(max: usize) -> Kept<T> {
        Kept {
            items: Mutex::new(Vec::new()),
            max: max.max(1),
        }
    }

    /// Runs `read` on the kept item that `answers` the question (a new one made by
    /// `make` when none does), which then becomes the most recently used.
    pub fn with<R>(
        &self,
        answers: impl Fn(&T) -> bool,
        make: impl FnOnce() -> T,
        read: impl FnOnce(&mut T) -> R,
    ) -> R {
        // One decision reads a memo at a time: the lock is never contended. A panic
        // while an item was being brought up to date leaves it half-counted, so a
        // poisoned list starts over.
        let mut items = self.items.lock().unwrap_or_else(|poisoned| {
            let mut items = poisoned.into_inner();
            items.clear();
            items
        });
        self.items.clear_poison();
        let mut item = match items.iter().position(answers) {
            Some(i) => items.remove(i),
            None => make(),
        };
        let answer = read(&mut item);
        if items.len() == self.max {
            items.remove(0);
        }
        items.push(item);
        answer
    }

    /// How many it keeps.
    #[cfg(test)]
    pub fn kept(&self) -> usize {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Forgets every item, and keeps at most `max` from now on.
    pub fn reset(&mut self, max: usize) {
        self.items
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.max = max.max(1);
    }
}

/// [`Kept::with`] when there is a `kept` list; otherwise `read` runs on a new item.
pub fn with_kept<T, R>(
    kept: Option<&Kept<T>>,
    answers: impl Fn(&T) -> bool,
    make: impl FnOnce() -> T,
    read: impl FnOnce(&mut T) -> R,
) -> R {
    match kept {
        Some(kept) => kept.with(answers, make, read),
        None => read(&mut make()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::{bound, node, pending, pod, snapshot};

    /// One cell per node: how many pods it holds.
    fn pods_per_node(cells: &mut NodeCells<u32>, s: &Snapshot) -> Vec<usize> {
        let mut recounted = Vec::new();
        cells.refresh(
            s,
            || |_, info: &NodeInfo, cells: &mut [u32]| cells[0] = info.pods.len() as u32,
            |at, _, _| recounted.push(at),
        );
        recounted
    }

    #[test]
    fn a_refresh_recomputes_the_nodes_the_snapshot_changed() {
        let nodes = (0..200)
            .map(|i| node(&format!("n{i:03}"), "4", "8Gi", 110))
            .collect();
        let s = snapshot(nodes, vec![]);
        let mut cells = NodeCells::new(1, true);
        assert_eq!(
            pods_per_node(&mut cells, &s).len(),
            200,
            "first: every node"
        );
        assert_eq!(pods_per_node(&mut cells, &s), Vec::<usize>::new(), "same");
        let replaced = Arc::downgrade(&s.nodes[70]);
        let mut edit = s.edit();
        for (name, at) in [("a", 70), ("b", 195), ("c", 195)] {
            let placed = bound(pod(name, "100m", ""), &format!("n{at:03}"));
            edit.add_pod(pending(&s, &placed));
        }
        let later = edit.finish();
        drop(s);
        assert!(
            replaced.upgrade().is_none(),
            "the cells keep no node of the snapshot they counted alive"
        );
        assert_eq!(pods_per_node(&mut cells, &later), vec![70, 195]);
        assert_eq!(
            (cells.of(70), cells.of(195), cells.of(71)),
            (&[1][..], &[2][..], &[0][..])
        );
        cells.forget();
        assert_eq!(pods_per_node(&mut cells, &later).len(), 200, "forgotten");
    }

    #[test]
    fn cells_no_memo_keeps_recount_every_node_and_mark_none() {
        let s = snapshot(vec![node("a", "4", "8Gi", 110)], vec![]);
        let placed = pending(&s, &bound(pod("p", "100m", ""), "a"));
        let mut edit = s.edit();
        edit.add_pod(placed);
        let s = edit.finish();
        let mut cells = NodeCells::new(1, false);
        for _ in 0..2 {
            assert_eq!(pods_per_node(&mut cells, &s), vec![0]);
            assert_eq!(cells.of(0), &[1][..]);
        }
        assert_eq!(Arc::weak_count(&s.nodes[0]), 0, "no node marked");
    }
}
