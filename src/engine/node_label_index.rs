//! Node labels by key, interned: for every label key some node carries, each node's
//! value as a small integer, in snapshot order. The fast path reads topology domains
//! here (one contiguous `u32` per node) instead of searching every node's labels and
//! hashing their values.
//!
//! A [`NodeLabelIndex`] belongs to one snapshot: [`super::snapshot::SnapshotEdit`]
//! rebuilds it when the set of nodes or some node's labels change, and otherwise shares
//! it with the snapshot the edit started from (pod changes never touch it).

use std::collections::HashMap;

use super::snapshot::NodeList;
use crate::model::selector::Requirement;

/// One label key: every node's value id, and the values by id.
#[derive(Debug, Clone, Default)]
pub struct LabelColumn {
    of_node: Vec<u32>,
    values: Vec<String>,
    /// The ids in the order of their values (to find a value's id).
    by_value: Vec<u32>,
}

impl LabelColumn {
    const ABSENT: u32 = u32::MAX;

    /// The id of node `node`'s value (`node`: its index in the snapshot), `None` when
    /// the node lacks the key.
    pub fn id(&self, node: usize) -> Option<u32> {
        Some(self.of_node[node]).filter(|id| *id != Self::ABSENT)
    }

    /// The value with id `id`.
    pub fn value(&self, id: u32) -> &str {
        &self.values[id as usize]
    }

    /// The id of value `value`, `None` when no node has it.
    pub fn id_of(&self, value: &str) -> Option<u32> {
        let at = self
            .by_value
            .binary_search_by(|id| self.values[*id as usize].as_str().cmp(value))
            .ok()?;
        Some(self.by_value[at])
    }

    /// How many distinct values the nodes have (ids are `0..distinct()`).
    pub fn distinct(&self) -> usize {
        self.values.len()
    }
}

/// Every node label key's [`LabelColumn`].
#[derive(Debug, Clone, Default)]
pub struct NodeLabelIndex {
    columns: HashMap<String, LabelColumn>,
}

impl NodeLabelIndex {
    /// The index of `nodes` (in snapshot order).
    pub fn build(nodes: &NodeList) -> NodeLabelIndex {
        let mut building: HashMap<&str, (LabelColumn, HashMap<&str, u32>)> = HashMap::new();
        for (i, info) in nodes.iter().enumerate() {
            for (key, value) in &info.node.labels {
                let (column, ids) = building.entry(key).or_default();
                let id = *ids.entry(value).or_insert_with(|| {
                    column.values.push(value.to_string());
                    u32::try_from(column.values.len() - 1).expect("fewer than 2^32 values")
                });
                column.of_node.resize(i, LabelColumn::ABSENT);
                column.of_node.push(id);
            }
        }
        let columns = building
            .into_iter()
            .map(|(key, (mut column, _))| {
                column.of_node.resize(nodes.len(), LabelColumn::ABSENT);
                let mut by_value: Vec<u32> = (0..column.values.len() as u32).collect();
                by_value.sort_unstable_by(|a, b| {
                    column.values[*a as usize].cmp(&column.values[*b as usize])
                });
                column.by_value = by_value;
                (key.to_string(), column)
            })
            .collect();
        NodeLabelIndex { columns }
    }

    /// The column of label `key`; `None` when no node carries it.
    pub fn column(&self, key: &str) -> Option<&LabelColumn> {
        self.columns.get(key)
    }

    /// `requirement` decided once per distinct value of its key, so that each node's
    /// verdict is a lookup.
    pub fn requirement(&self, requirement: &Requirement) -> IndexedRequirement<'_> {
        let column = self.column(&requirement.key);
        IndexedRequirement {
            column,
            by_id: column.map_or_else(Vec::new, |c| {
                c.values
                    .iter()
                    .map(|v| requirement.matches_value(Some(v)))
                    .collect()
            }),
            without_key: requirement.matches_value(None),
        }
    }
}

/// A label requirement decided for every value of its key ([`NodeLabelIndex::requirement`]).
pub struct IndexedRequirement<'a> {
    column: Option<&'a LabelColumn>,
    /// Per value id: whether that value satisfies the requirement.
    by_id: Vec<bool>,
    /// Whether a node without the key satisfies it.
    without_key: bool,
}

impl IndexedRequirement<'_> {
    /// Whether node `node` (its index in the snapshot) satisfies the requirement.
    pub fn matches(&self, node: usize) -> bool {
        match self.column.and_then(|c| c.id(node)) {
            Some(id) => self.by_id[id as usize],
            None => self.without_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::test_support::{labeled, node, snapshot};

    #[test]
    fn columns_intern_each_nodes_value() {
        let nodes = vec![
            labeled(
                node("a", "1", "1Gi", 10),
                json!({"zone": "z1", "pool": "gpu"}),
            ),
            labeled(node("b", "1", "1Gi", 10), json!({"zone": "z2"})),
            labeled(
                node("c", "1", "1Gi", 10),
                json!({"zone": "z1", "pool": "general"}),
            ),
        ];
        let index = NodeLabelIndex::build(&snapshot(nodes, vec![]).nodes);
        let zone = index.column("zone").expect("zone");
        assert_eq!(zone.distinct(), 2);
        let zones: Vec<&str> = (0..3).map(|i| zone.value(zone.id(i).unwrap())).collect();
        assert_eq!(zones, ["z1", "z2", "z1"]);
        let pool = index.column("pool").expect("pool");
        assert_eq!(pool.id(1), None, "b has no pool");
        assert_eq!(pool.value(pool.id(2).unwrap()), "general");
        assert!(index.column("missing").is_none());
        for value in ["z1", "z2"] {
            assert_eq!(zone.value(zone.id_of(value).expect("a zone")), value);
        }
        assert_eq!(zone.id_of("z3"), None);
        assert_eq!(pool.id_of("gpu"), pool.id(0));
    }

    #[test]
    fn indexed_requirements_agree_with_the_labels() {
        use crate::model::selector::Operator;

        let nodes = vec![
            labeled(node("a", "1", "1Gi", 10), json!({"zone": "z1", "gen": "3"})),
            labeled(node("b", "1", "1Gi", 10), json!({"zone": "z2", "gen": "x"})),
            labeled(node("c", "1", "1Gi", 10), json!({"zone": "z1"})),
        ];
        let s = snapshot(nodes, vec![]);
        let index = NodeLabelIndex::build(&s.nodes);
        let operators = [
            (Operator::In, vec!["z1"]),
            (Operator::NotIn, vec!["z1"]),
            (Operator::Exists, vec![]),
            (Operator::DoesNotExist, vec![]),
            (Operator::Gt, vec!["2"]),
            (Operator::Lt, vec!["4"]),
        ];
        for key in ["zone", "gen", "missing"] {
            for (operator, values) in &operators {
                let r = Requirement {
                    key: key.into(),
                    operator: *operator,
                    values: values.iter().map(|v| v.to_string()).collect(),
                };
                let indexed = index.requirement(&r);
                for (i, n) in s.nodes.iter().enumerate() {
                    assert_eq!(
                        indexed.matches(i),
                        r.matches(&n.node.labels),
                        "{r:?} on {i}"
                    );
                }
            }
        }
    }

    /// Edits keep the snapshot's index true: a relabelled node is seen, and a pod
    /// change leaves the index shared.
    #[test]
    fn snapshot_edits_keep_the_index() {
        use crate::engine::test_support::{bound, pod};
        use crate::kube;

        let nodes = vec![
            labeled(node("a", "1", "1Gi", 10), json!({"zone": "z1"})),
            labeled(node("b", "1", "1Gi", 10), json!({"zone": "z2"})),
        ];
        let before = snapshot(nodes, vec![]);
        let zone_of = |s: &crate::engine::Snapshot, i: usize| {
            let column = s.node_label_index().column("zone").expect("zone");
            column.value(column.id(i).expect("has a zone")).to_string()
        };
        let mut edit = before.edit();
        let relabelled = labeled(node("b", "1", "1Gi", 10), json!({"zone": "z1"}));
        edit.upsert_node(kube::decode_node(&relabelled).expect("decodes"));
        let after = edit.finish();
        assert_eq!(zone_of(&before, 1), "z2");
        assert_eq!(zone_of(&after, 1), "z1");

        let mut edit = after.edit();
        let p = bound(pod("p", "100m", "1Mi"), "a");
        edit.add_pod(kube::decode_pod(&p, &[]).expect("decodes"));
        let with_pod = edit.finish();
        assert!(std::ptr::eq(
            with_pod.node_label_index(),
            after.node_label_index()
        ));
    }
}
