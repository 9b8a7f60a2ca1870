//! A run of pod changes applied to a snapshot being edited, the nodes they change
//! changed in parallel.
//!
//! A SyncState batch of watch events spread over a cluster changes about one node per
//! event: the node is copied for the new snapshot and one pod comes, goes or is
//! replaced on it. Those copies and changes are most of what the batch costs, and
//! each is independent of the others. So each change of a run is split:
//!
//! - what it does to a node the snapshot already has (and still has) is a step on
//!   that node; a node's steps keep the order of the changes, and each node is copied
//!   once and taken through its steps, the nodes in parallel on the pool;
//! - what it does elsewhere (pending and nominated pods, pods of a node that is gone
//!   or was added in this edit) is applied at once, in order, on the calling thread.
//!   None of it reads or writes a node the steps change.
//!
//! The snapshot's affinity index is counted after the steps, in the order of the
//! changes, as applying them one by one would have counted it. The steps read the
//! snapshot's PDBs, which a run of pod changes does not change. What a run leaves
//! is exactly what [`SnapshotEdit::add_pod`], [`SnapshotEdit::replace_pod`] and
//! [`SnapshotEdit::remove_pod`] one by one would leave.

use std::sync::Arc;

use rayon::prelude::*;

use super::{AffinityCounts, NodeInfo, NodeMut, PodInfo, SnapshotEdit, budgets_covering};
use crate::model::Pod;

/// A change of a pod, as the store's index saw it.
#[derive(Debug, Clone)]
pub enum PodChange {
    /// A pod not held before.
    Added(Arc<Pod>),
    /// A new version of a pod held before (`old`).
    Replaced { old: Arc<Pod>, new: Arc<Pod> },
    /// A pod held before, deleted.
    Removed(Arc<Pod>),
}

/// Runs with this many steps on nodes or more change their nodes in parallel; below,
/// handing them to the pool costs about what it saves.
const PARALLEL_FROM: usize = 64;

/// What a change does to a node the snapshot has.
enum Step {
    Add(Arc<Pod>),
    /// A new version of a pod bound to the node, bound to it still.
    Renew {
        old: Arc<Pod>,
        new: Arc<Pod>,
    },
    Remove(Arc<Pod>),
}

/// A step on the node at place `node`, for the run's change number `change`.
struct NodeStep {
    node: usize,
    change: usize,
    step: Step,
}

/// A pod counted into (`delta` 1) or out of (-1) the affinity index on the node at
/// place `node`, by the run's change number `change`.
pub(super) struct AffinityNote {
    change: usize,
    node: usize,
    pod: Arc<PodInfo>,
    delta: i32,
}

/// Where a step notes the counts it makes ([`AffinityCounts::Noted`]).
pub(super) struct AffinityNotes<'a> {
    node: usize,
    change: usize,
    notes: &'a mut Vec<AffinityNote>,
}

impl AffinityNotes<'_> {
    pub(super) fn note(&mut self, pod: &Arc<PodInfo>, delta: i32) {
        self.notes.push(AffinityNote {
            change: self.change,
            node: self.node,
            pod: Arc::clone(pod),
            delta,
        });
    }
}

impl SnapshotEdit {
    /// Applies `changes` in order, as [`SnapshotEdit::add_pod`],
    /// [`SnapshotEdit::replace_pod`] and [`SnapshotEdit::remove_pod`] one by one would;
    /// the nodes they change are changed in parallel (see the module's doc).
    pub fn apply_pod_changes(&mut self, changes: impl IntoIterator<Item = PodChange>) {
        let mut steps = Vec::new();
        for (change, pod_change) in changes.into_iter().enumerate() {
            match pod_change {
                PodChange::Added(new) => self.add_or_step(new, change, &mut steps),
                PodChange::Removed(old) => self.remove_or_step(old, change, &mut steps),
                PodChange::Replaced { old, new } => {
                    match (self.existing_node_of(&old), self.existing_node_of(&new)) {
                        (Some(from), Some(to)) if from == to => steps.push(NodeStep {
                            node: from,
                            change,
                            step: Step::Renew { old, new },
                        }),
                        (None, None) => self.replace_pod(&old, new),
                        // Out of one place and into another, one of them a node the
                        // snapshot has: removed and added, as `replace_pod` does.
                        _ => {
                            self.remove_or_step(old, change, &mut steps);
                            self.add_or_step(new, change, &mut steps);
                        }
                    }
                }
            }
        }
        if !steps.is_empty() {
            self.take_steps(steps);
        }
    }

    /// The place of the node `pod` is bound to, when the snapshot has it and still has
    /// it.
    fn existing_node_of(&self, pod: &Pod) -> Option<usize> {
        self.existing_node(pod.node_name.as_deref()?)
    }

    /// Adds `new`: a step of change `change` when its node is one the snapshot has,
    /// at once otherwise.
    fn add_or_step(&mut self, new: Arc<Pod>, change: usize, steps: &mut Vec<NodeStep>) {
        match self.existing_node_of(&new) {
            Some(node) => steps.push(NodeStep {
                node,
                change,
                step: Step::Add(new),
            }),
            None => {
                self.add_pod(new);
            }
        }
    }

    /// Removes `old`: a step of change `change` when its node is one the snapshot
    /// has, at once otherwise.
    fn remove_or_step(&mut self, old: Arc<Pod>, change: usize, steps: &mut Vec<NodeStep>) {
        match self.existing_node_of(&old) {
            Some(node) => steps.push(NodeStep {
                node,
                change,
                step: Step::Remove(old),
            }),
            None => {
                self.remove_pod(&old);
            }
        }
    }

    /// Takes each node through its steps, the nodes in parallel when there are enough
    /// steps, then counts the affinity index in the order of the changes.
    fn take_steps(&mut self, mut steps: Vec<NodeStep>) {
        // A stable sort: each node's steps stay in the order of the changes.
        steps.sort_by_key(|s| s.node);
        let runs: Vec<&[NodeStep]> = steps.chunk_by(|a, b| a.node == b.node).collect();
        let places: Vec<usize> = runs.iter().map(|run| run[0].node).collect();
        let pdbs = &self.snapshot.pdbs;
        let nodes = self.snapshot.nodes.make_mut_each(&places);
        let take_run = |(node, run): (&mut Arc<NodeInfo>, &[NodeStep])| {
            // The copy raises every count; asked for at once, their misses overlap.
            node.prefetch_counts();
            let info = Arc::make_mut(node);
            let mut notes = Vec::new();
            for s in run {
                let node = NodeMut {
                    info: &mut *info,
                    affinity: AffinityCounts::Noted(AffinityNotes {
                        node: s.node,
                        change: s.change,
                        notes: &mut notes,
                    }),
                    pdbs,
                };
                match &s.step {
                    Step::Add(new) => {
                        let covering = budgets_covering(pdbs, new);
                        node.add_pod(Arc::new(PodInfo::new(Arc::clone(new), covering)));
                    }
                    Step::Renew { old, new } => node.renew_pod(old, Arc::clone(new)),
                    Step::Remove(old) => {
                        node.remove_pod(old);
                    }
                }
            }
            notes
        };
        let mut notes: Vec<AffinityNote> = if steps.len() >= PARALLEL_FROM && runs.len() > 1 {
            crate::pool::on_pool(|| {
                nodes
                    .into_par_iter()
                    .zip(runs)
                    .flat_map_iter(take_run)
                    .collect()
            })
        } else {
            nodes.into_iter().zip(runs).flat_map(take_run).collect()
        };
        // A stable sort: a replaced pod is counted out before its new version is in.
        notes.sort_by_key(|n| n.change);
        for n in notes {
            Arc::make_mut(&mut self.snapshot.affinity).count(&n.pod, n.node, n.delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::engine::Snapshot;
    use crate::engine::snapshot::node_contents;
    use crate::generate::{GeneratorConfig, generate_objects};

    /// A small deterministic source of choices (SplitMix64).
    struct Dice(u64);

    impl Dice {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) % n as u64) as usize
        }
    }

    /// Everything an edit leaves, comparable across snapshots: every node's pods in
    /// order and what they add up to, the unbound and orphaned pods, and the affinity
    /// index (each group's nodes and representative).
    fn contents(s: &Snapshot) -> impl PartialEq + std::fmt::Debug + use<> {
        let names = |pods: &[Arc<PodInfo>]| -> Vec<String> {
            pods.iter().map(|p| p.pod.name.clone()).collect()
        };
        let nodes: Vec<_> = s.nodes.iter().map(|n| node_contents(n)).collect();
        let pending: Vec<String> = s.pending.values().map(|p| p.pod.name.clone()).collect();
        let by_node = |m: &imbl::HashMap<String, Vec<Arc<PodInfo>>>| {
            m.iter()
                .map(|(node, pods)| (node.clone(), names(pods)))
                .collect::<BTreeMap<_, _>>()
        };
        let affinity: BTreeMap<u128, (String, Vec<(u32, u32)>)> = s
            .affinity_index()
            .groups()
            .map(|g| {
                let f = g.representative.affinity_fingerprint;
                (f, (g.representative.pod.name.clone(), g.nodes.clone()))
            })
            .collect();
        (
            nodes,
            pending,
            by_node(&s.nominated),
            by_node(&s.orphans),
            affinity,
        )
    }

    /// A new version of `pod`: some of its fields taken from `other` (labels, requests,
    /// pod affinity, priority and start, host ports) or its affinity's terms given a
    /// topology key the cluster's pods' terms do not have (groups new to the affinity
    /// index), and bound to `node` (`None`: pending).
    fn version(pod: &Pod, other: &Pod, node: Option<&str>, dice: &mut Dice) -> Pod {
        let mut new = pod.clone();
        match dice.below(6) {
            0 => new.labels = other.labels.clone(),
            1 => new.resources = other.resources.clone(),
            2 => new.pod_affinity = other.pod_affinity.clone(),
            3 => (new.priority, new.start_time) = (other.priority, other.start_time),
            4 => {
                let key = "test/zone".to_string();
                let affinity = &mut new.pod_affinity;
                let terms = (affinity.required_affinity.iter_mut())
                    .chain(affinity.required_anti_affinity.iter_mut())
                    .chain(affinity.preferred_affinity.iter_mut().map(|w| &mut w.term))
                    .chain(
                        affinity
                            .preferred_anti_affinity
                            .iter_mut()
                            .map(|w| &mut w.term),
                    );
                for term in terms {
                    term.topology_key.clone_from(&key);
                }
            }
            _ => new.host_ports = other.host_ports.clone(),
        }
        new.node_name = node.map(str::to_string);
        new.nominated_node_name = None;
        new
    }

    /// Random runs of pod changes (pods added, replaced on their node, moved between
    /// nodes, to and from the queue and to nodes that are gone or new, and deleted)
    /// leave what the same changes made one by one leave, whether the run is applied
    /// whole (its nodes changed in parallel) or a few changes at a time.
    #[test]
    fn a_run_of_pod_changes_leaves_what_the_changes_one_by_one_leave() {
        for seed in 1..=4u64 {
            let scenario = generate_objects(&GeneratorConfig {
                nodes: 40,
                pods_per_node: 12,
                seed,
                pending_pods: 20,
            });
            let pool: Vec<Pod> = scenario.cluster.pods.clone();
            let base = Snapshot::build(scenario.cluster).expect("builds");
            let mut nodes: Vec<String> = base.nodes.iter().map(|n| n.name().to_string()).collect();
            // Pods may be bound to a node never seen; with odd seeds, to a node removed
            // in the edit or added in it (then the edit's end rebuilds the affinity
            // index: even seeds check the one the changes kept).
            let nodes_move = seed % 2 == 1;
            nodes.push("no-such-node".to_string());
            if nodes_move {
                nodes.push("added-node".to_string());
            }
            let begin = |base: &Snapshot| {
                let mut edit = base.edit();
                if nodes_move {
                    assert!(edit.remove_node(&nodes[3]));
                    let mut added = (*base.nodes[0].node).clone();
                    added.name = "added-node".into();
                    edit.upsert_node(added);
                }
                edit
            };
            let mut dice = Dice(seed);
            let mut held: Vec<Arc<Pod>> = pool.iter().cloned().map(Arc::new).collect();
            let mut changes = Vec::new();
            for k in 0..400 {
                let other = &pool[dice.below(pool.len())];
                let node = match dice.below(8) {
                    0 => None,
                    _ => Some(nodes[dice.below(nodes.len())].as_str()),
                };
                match dice.below(4) {
                    0 => {
                        let mut new = version(other, other, node, &mut dice);
                        (new.name, new.uid) = (format!("added-{k}"), format!("uid-added-{k}"));
                        let new = Arc::new(new);
                        held.push(Arc::clone(&new));
                        changes.push(PodChange::Added(new));
                    }
                    1 => {
                        let old = held.swap_remove(dice.below(held.len()));
                        changes.push(PodChange::Removed(old));
                    }
                    _ => {
                        let at = dice.below(held.len());
                        let old = Arc::clone(&held[at]);
                        // Mostly a new version on the same node, as watch events are.
                        let node = if dice.below(3) > 0 {
                            old.node_name.as_deref()
                        } else {
                            node
                        };
                        let new = Arc::new(version(&old, other, node, &mut dice));
                        held[at] = Arc::clone(&new);
                        changes.push(PodChange::Replaced { old, new });
                    }
                }
            }
            assert!(
                changes.len() >= 4 * PARALLEL_FROM,
                "the whole run goes parallel"
            );

            let mut one_by_one = begin(&base);
            for change in changes.clone() {
                match change {
                    PodChange::Added(new) => {
                        one_by_one.add_pod(new);
                    }
                    PodChange::Replaced { old, new } => one_by_one.replace_pod(&old, new),
                    PodChange::Removed(old) => {
                        one_by_one.remove_pod(&old);
                    }
                }
            }
            let expected = contents(&one_by_one.finish());

            let mut whole = begin(&base);
            whole.apply_pod_changes(changes.clone());
            assert_eq!(contents(&whole.finish()), expected, "seed {seed}, whole");

            let mut in_parts = begin(&base);
            for part in changes.chunks(7) {
                in_parts.apply_pod_changes(part.to_vec());
            }
            assert_eq!(
                contents(&in_parts.finish()),
                expected,
                "seed {seed}, in parts"
            );
        }
    }
}
