//! Decisions that build on each other: place pods in order, each seeing the effects of
//! the ones before (placed pods take space, their victims are gone), and what-if
//! overlays on a snapshot. Nothing here changes stored state: every step produces a
//! new snapshot value.

use std::sync::Arc;

use super::decision::{Decision, Outcome};
use super::node_local_memo::NodeLocalMemo;
use super::snapshot::Snapshot;
use super::{Options, decide_remembering};
use crate::model::{Node, Pod};
use crate::pool::on_pool;

/// Hypothetical changes to evaluate a query against.
#[derive(Debug, Clone, Default)]
pub struct WhatIf {
    /// Nodes to add (what an autoscaler would add).
    pub extra_nodes: Vec<Node>,
    /// Names of nodes treated as gone.
    pub removed_nodes: Vec<String>,
    /// `namespace/name` of pods treated as gone.
    pub removed_pods: Vec<String>,
}

/// A what-if overlay names something the snapshot does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhatIfError {
    #[error("node {0:?} not found")]
    UnknownNode(String),
    #[error("pod {0:?} not found")]
    UnknownPod(String),
    #[error("extra node {0:?} already exists")]
    DuplicateNode(String),
}

impl WhatIf {
    /// True when the overlay changes nothing.
    pub fn is_empty(&self) -> bool {
        self.extra_nodes.is_empty() && self.removed_nodes.is_empty() && self.removed_pods.is_empty()
    }

    /// The snapshot with the overlay applied.
    pub fn apply(&self, snapshot: &Snapshot) -> Result<Snapshot, WhatIfError> {
        let mut edit = snapshot.edit();
        for key in &self.removed_pods {
            let pod = snapshot
                .find_pod(key)
                .ok_or_else(|| WhatIfError::UnknownPod(key.clone()))?;
            edit.remove_pod(&pod.pod);
        }
        for name in &self.removed_nodes {
            if snapshot.node(name).is_none() {
                return Err(WhatIfError::UnknownNode(name.clone()));
            }
            edit.remove_node(name);
        }
        for node in &self.extra_nodes {
            if snapshot.node(&node.name).is_some() {
                return Err(WhatIfError::DuplicateNode(node.name.clone()));
            }
            edit.upsert_node(node.clone());
        }
        Ok(edit.finish())
    }
}

/// `snapshot` after `decision` for `pod` took effect: victims gone, the pod bound to
/// the chosen node. Unchanged when the pod was not placed. The snapshot is consumed, so
/// a sequence pays for the nodes it changes, not for a copy of the cluster.
pub fn commit(snapshot: Snapshot, pod: &Pod, decision: &Decision) -> Snapshot {
    let Some(node) = decision
        .node
        .as_deref()
        .filter(|_| matches!(decision.outcome, Outcome::Scheduled | Outcome::Preempts))
    else {
        return snapshot;
    };
    let victims: Vec<Arc<Pod>> = match (decision.chosen_candidate(), snapshot.node(node)) {
        (Some(candidate), Some(info)) => candidate
            .victim_details
            .iter()
            .filter_map(|victim| info.pods.iter().find(|p| p.pod.uid == victim.uid))
            .map(|p| Arc::clone(&p.pod))
            .collect(),
        _ => Vec::new(),
    };
    // The pod may already be in the state (pending or nominated); it moves to its node.
    let existing = snapshot.find_unbound_pod(pod).map(|p| Arc::clone(&p.pod));
    let mut edit = snapshot.into_edit();
    for victim in &victims {
        edit.remove_pod(victim);
    }
    if let Some(existing) = &existing {
        edit.remove_pod(existing);
    }
    let mut bound = pod.clone();
    bound.node_name = Some(node.to_string());
    bound.nominated_node_name = None;
    edit.add_pod(bound);
    edit.finish()
}

/// Places `pods` in order, each on the snapshot left by the ones before. With
/// `all_or_nothing`, stops at the first pod that cannot be placed.
pub fn place_in_order(
    snapshot: &Snapshot,
    pods: &[Pod],
    all_or_nothing: bool,
    options: Options,
) -> Vec<Decision> {
    // One hand-over to the pool for the whole sequence, not one per decision.
    on_pool(|| place_here(snapshot, pods, all_or_nothing, options))
}

/// [`place_in_order`] on the calling thread.
fn place_here(
    snapshot: &Snapshot,
    pods: &[Pod],
    all_or_nothing: bool,
    options: Options,
) -> Vec<Decision> {
    let mut current = snapshot.clone();
    let mut decisions = Vec::with_capacity(pods.len());
    // Replicas see the same node-local verdicts on every node a placement left alone.
    let mut memo = NodeLocalMemo::default();
    for pod in pods {
        let decision = decide_remembering(&current, pod, options, Some(&mut memo));
        let placed = matches!(decision.outcome, Outcome::Scheduled | Outcome::Preempts);
        current = commit(current, pod, &decision);
        decisions.push(decision);
        if all_or_nothing && !placed {
            break;
        }
    }
    decisions
}

/// The pending pods of `snapshot` (not bound: waiting or nominated) in scheduling-queue
/// order: priority descending, then creation time, then name.
pub fn pending_in_queue_order(snapshot: &Snapshot) -> Vec<Pod> {
    let mut pods: Vec<Pod> = snapshot
        .pending_pods()
        .chain(
            snapshot
                .nodes
                .iter()
                .flat_map(|n| snapshot.nominated_pods(n.name())),
        )
        .map(|p| Pod::clone(&p.pod))
        .collect();
    pods.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| {
                a.creation_time
                    .unwrap_or(i64::MAX)
                    .cmp(&b.creation_time.unwrap_or(i64::MAX))
            })
            .then_with(|| a.key().cmp(&b.key()))
    });
    pods
}
