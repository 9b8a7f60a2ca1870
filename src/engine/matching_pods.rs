//! How many of a node's pods a label selector matches in a namespace (what
//! PodTopologySpread counts per domain), remembered across the decisions of one
//! sequence (`PlaceBatch`, `PendingPods`).
//!
//! Replicas of an app share their spread selector, and a placement changes one node,
//! so a sequence counts each node's matching pods once per selector and reuses the
//! count while the node is the very same `NodeInfo` (pointer identity, as in
//! [`super::node_local_memo`], which holds this memo and forgets it when nodes move).
//! Counting fills the memo in parallel: readers share it during a pass over the nodes,
//! and the counts made afresh are written once the pass is over.

use std::sync::{Arc, RwLock, RwLockReadGuard};

use super::snapshot::NodeInfo;
use crate::model::selector::Selector;

/// One node's remembered count: the node it was made on (kept alive, so its address
/// is not reused) and the count.
type Entry = Option<(Arc<NodeInfo>, u32)>;

/// A selector in a namespace, and its counts by node index.
struct Table {
    namespace: String,
    selector: Selector,
    counts: Vec<Entry>,
}

/// Matching pods per (namespace, selector) and node, for one sequence.
#[derive(Default)]
pub struct MatchingPods {
    tables: RwLock<Vec<Table>>,
}

/// Read access to the remembered counts while a pass over the nodes runs.
pub struct Reader<'m> {
    tables: RwLockReadGuard<'m, Vec<Table>>,
}

impl MatchingPods {
    /// Read access for the duration of one pass.
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            tables: self.tables.read().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Remembers counts made afresh: `(namespace, selector, node index, node, count)`.
    pub fn remember<'a>(
        &self,
        fresh: impl IntoIterator<Item = (&'a str, &'a Selector, usize, &'a Arc<NodeInfo>, u32)>,
    ) {
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        for (namespace, selector, at, node, count) in fresh {
            let table = match tables
                .iter()
                .position(|t| t.namespace == namespace && t.selector == *selector)
            {
                Some(i) => &mut tables[i],
                None => {
                    tables.push(Table {
                        namespace: namespace.to_string(),
                        selector: selector.clone(),
                        counts: Vec::new(),
                    });
                    tables.last_mut().expect("just pushed")
                }
            };
            if table.counts.len() <= at {
                table.counts.resize_with(at + 1, || None);
            }
            table.counts[at] = Some((Arc::clone(node), count));
        }
    }

    /// How many (namespace, selector) tables it holds.
    pub fn selectors(&mut self) -> usize {
        self.tables
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Forgets every count (the nodes they are indexed by moved, or there are too many).
    pub fn clear(&mut self) {
        self.tables
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Reader<'_> {
    /// The remembered counts of `selector` in `namespace` (`None`: nothing yet).
    pub fn table(&self, namespace: &str, selector: &Selector) -> Option<Counts<'_>> {
        self.tables
            .iter()
            .find(|t| t.namespace == namespace && t.selector == *selector)
            .map(|t| Counts(&t.counts))
    }
}

/// One selector's remembered counts.
#[derive(Clone, Copy)]
pub struct Counts<'r>(&'r [Entry]);

impl Counts<'_> {
    /// The count on node `at`, if remembered for this very node.
    pub fn get(&self, at: usize, node: &NodeInfo) -> Option<u32> {
        self.0
            .get(at)?
            .as_ref()
            .filter(|(n, _)| std::ptr::eq(Arc::as_ptr(n), node))
            .map(|(_, count)| *count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::{node, snapshot};

    #[test]
    fn a_count_is_reused_only_for_the_same_node_and_selector() {
        let memo = MatchingPods::default();
        let nodes = snapshot(
            vec![node("a", "1", "1Gi", 10), node("b", "1", "1Gi", 10)],
            vec![],
        );
        let (node, other) = (&nodes.nodes[0], &nodes.nodes[1]);
        let selector = Selector::All(Vec::new());
        assert!(memo.reader().table("ns", &selector).is_none());
        memo.remember([("ns", &selector, 3, node, 7)]);
        let reader = memo.reader();
        let counts = reader.table("ns", &selector).expect("remembered");
        assert_eq!(counts.get(3, node), Some(7));
        assert_eq!(counts.get(3, other), None, "another node at that place");
        assert_eq!(counts.get(2, node), None, "another place");
        assert!(reader.table("other", &selector).is_none());
    }
}
