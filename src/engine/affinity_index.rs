//! The snapshot-wide index of pods that declare pod affinity or anti-affinity, grouped
//! by their terms: the fast path's way to InterPodAffinity's "existing pods' terms".
//!
//! Upstream walks every node's `PodsWithAffinity` (Score) and
//! `PodsWithRequiredAntiAffinity` (PreFilter) and matches each pod's terms against the
//! incoming pod. Replicas of one workload share their terms, so an [`AffinityIndex`]
//! keeps one [`TermGroup`] per distinct set of terms (by `PodInfo`'s affinity
//! fingerprint): one pod that has them, and the nodes where pods with them run, with
//! how many there. A query matches each group's terms once and visits only the nodes
//! of the groups whose terms select the incoming pod, instead of every node.
//!
//! [`super::snapshot::SnapshotEdit`] keeps the index in step: each pod with affinity an
//! edit adds to or removes from an existing node is counted in or out
//! ([`AffinityIndex::count`]), and the whole index is rebuilt when the set of nodes
//! changes (node indices shift).

use std::collections::HashMap;
use std::sync::Arc;

use super::snapshot::{NodeInfo, NodeList, PodInfo};

/// Pods with equal pod (anti-)affinity terms, and where they run.
#[derive(Debug, Clone)]
pub struct TermGroup {
    /// One pod with these terms (every pod of the group has equal terms).
    pub representative: Arc<PodInfo>,
    /// `(node index in the snapshot, how many of the group's pods it holds)`, by node
    /// index, every count positive.
    pub nodes: Vec<(u32, u32)>,
}

/// Every distinct set of pod (anti-)affinity terms among bound pods, by fingerprint.
///
/// The map is persistent (`imbl`): a snapshot edit's copy of the index shares it, and
/// updating a group copies that group and a few map nodes, not every group.
#[derive(Debug, Clone, Default)]
pub struct AffinityIndex {
    groups: imbl::HashMap<u128, Arc<TermGroup>>,
}

/// A node's pods with affinity, counted by fingerprint (a node holds few).
fn counted(info: &NodeInfo) -> Vec<(u128, u32, &Arc<PodInfo>)> {
    let mut counts: Vec<(u128, u32, &Arc<PodInfo>)> = Vec::new();
    for p in &info.pods_with_affinity {
        match counts
            .iter_mut()
            .find(|(f, _, _)| *f == p.affinity_fingerprint)
        {
            Some((_, n, _)) => *n += 1,
            None => counts.push((p.affinity_fingerprint, 1, p)),
        }
    }
    counts
}

fn node_index(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 2^32 nodes")
}

impl AffinityIndex {
    /// The index of `nodes` (in snapshot order).
    pub fn build(nodes: &NodeList) -> AffinityIndex {
        let mut groups: HashMap<u128, TermGroup> = HashMap::new();
        for (i, info) in nodes.iter().enumerate() {
            for (fingerprint, count, pod) in counted(info) {
                groups
                    .entry(fingerprint)
                    .or_insert_with(|| TermGroup {
                        representative: Arc::clone(pod),
                        nodes: Vec::new(),
                    })
                    .nodes
                    .push((node_index(i), count));
            }
        }
        AffinityIndex {
            groups: groups.into_iter().map(|(f, g)| (f, Arc::new(g))).collect(),
        }
    }

    /// Counts `pod` (which declares pod affinity) into (`delta` 1) or out of (-1) its
    /// group on node `i`. A group made here has `pod` for its representative; a group
    /// left on no node is dropped.
    pub fn count(&mut self, pod: &Arc<PodInfo>, i: usize, delta: i32) {
        let fingerprint = pod.affinity_fingerprint;
        let i = node_index(i);
        let group = Arc::make_mut(self.groups.entry(fingerprint).or_insert_with(|| {
            Arc::new(TermGroup {
                representative: Arc::clone(pod),
                nodes: Vec::new(),
            })
        }));
        match group.nodes.binary_search_by_key(&i, |(n, _)| *n) {
            Ok(at) => match group.nodes[at].1.checked_add_signed(delta) {
                Some(count) if count > 0 => group.nodes[at].1 = count,
                _ => {
                    group.nodes.remove(at);
                }
            },
            Err(at) => {
                if let Ok(count @ 1..) = u32::try_from(delta) {
                    group.nodes.insert(at, (i, count));
                }
            }
        }
        if group.nodes.is_empty() {
            self.groups.remove(&fingerprint);
        }
    }

    /// Every group, in no particular order.
    pub fn groups(&self) -> impl Iterator<Item = &TermGroup> {
        self.groups.values().map(|g| &**g)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Group → node → count, comparable across indexes.
    fn contents(index: &AffinityIndex) -> BTreeMap<u128, Vec<(u32, u32)>> {
        index
            .groups
            .iter()
            .map(|(f, g)| {
                assert!(
                    g.nodes.windows(2).all(|w| w[0].0 < w[1].0),
                    "sorted by node"
                );
                assert!(g.nodes.iter().all(|(_, n)| *n > 0), "positive counts");
                assert_eq!(g.representative.affinity_fingerprint, *f);
                (*f, g.nodes.clone())
            })
            .collect()
    }

    /// The index kept by snapshot edits equals one built afresh, edit after edit
    /// (pods added, removed and replaced on existing nodes, then nodes added and
    /// removed).
    #[test]
    fn edits_keep_the_index_equal_to_a_rebuild() {
        use crate::engine::Snapshot;
        use crate::generate::{GeneratorConfig, generate_objects};

        let scenario = generate_objects(&GeneratorConfig {
            nodes: 40,
            pods_per_node: 30,
            seed: 7,
            pending_pods: 0,
        });
        let mut pods = scenario.cluster.pods.clone();
        let mut snapshot = Snapshot::build(scenario.cluster).expect("builds");
        assert!(
            snapshot.affinity_index().groups().count() > 1,
            "the generator's apps have terms"
        );
        let nodes: Vec<String> = snapshot
            .nodes
            .iter()
            .map(|n| n.name().to_string())
            .collect();
        for round in 0..12usize {
            let mut edit = snapshot.edit();
            // Move a few pods with affinity to other nodes, and drop some.
            for (k, pod) in pods
                .iter_mut()
                .filter(|p| p.pod_affinity.declared)
                .skip(round * 5)
                .take(5)
                .enumerate()
            {
                edit.remove_pod(pod);
                if k % 2 == 0 {
                    let mut moved = pod.clone();
                    moved.node_name = Some(nodes[(round * 7 + k) % nodes.len()].clone());
                    edit.add_pod(moved.clone());
                    *pod = moved;
                } else {
                    pod.node_name = None;
                    pod.nominated_node_name = None;
                    edit.add_pod(pod.clone());
                }
            }
            // Replace a bound pod with affinity by a version without it, and another
            // by an equal version (counted out and in, or left as it was).
            let bound_with_affinity =
                |p: &&mut crate::model::Pod| p.pod_affinity.declared && p.node_name.is_some();
            if let Some(pod) = pods.iter_mut().filter(bound_with_affinity).nth(round) {
                let mut plain = pod.clone();
                plain.pod_affinity = Default::default();
                edit.replace_pod(pod, plain.clone());
                *pod = plain;
            }
            if let Some(pod) = pods.iter_mut().filter(bound_with_affinity).nth(round + 1) {
                edit.replace_pod(pod, pod.clone());
            }
            if round == 6 {
                assert!(edit.remove_node(&nodes[3]));
            }
            if round == 9 {
                let mut added = (*snapshot.nodes[0].node).clone();
                added.name = "added-node".into();
                edit.upsert_node(added);
            }
            snapshot = edit.finish();
            assert_eq!(
                contents(snapshot.affinity_index()),
                contents(&AffinityIndex::build(&snapshot.nodes)),
                "round {round}"
            );
        }
    }
}
