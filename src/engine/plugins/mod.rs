//! The default profile's plugins, one module per upstream plugin, named as upstream
//! names them. Each exposes its PreFilter (when it has one), its Filter and/or its
//! Score; [`crate::engine::framework`] runs them in profile order.

pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_balanced_allocation;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

use std::sync::Arc;

use super::cycle_state::CycleState;
use super::snapshot::NodeInfo;
use super::status::Status;

/// `framework.MaxNodeScore`.
pub const MAX_NODE_SCORE: i64 = 100;

/// A Filter plugin: `None` when the node passes. `at` is the node's place in the
/// snapshot (what the cluster-wide plugins' per-node verdicts are read by); `node` may
/// be a changed copy of the node there (preemption's, or with nominated pods added).
pub trait FilterPlugin: Sync {
    fn name(&self) -> &'static str;
    fn filter(&self, state: &CycleState, node: &NodeInfo, at: usize) -> Option<Status>;
}

/// A cluster-wide Filter's verdict on every node by place, worked out in the fast path's
/// PreFilter from the snapshot's node label index (a byte per node where reading each
/// node's labels costs a few lookups): `0` passes, another value is the plugin's reason.
/// Good until preemption adds or removes a pod; the plugin then reads the labels.
#[derive(Debug, Clone)]
pub struct NodeVerdicts(Arc<[u8]>);

impl NodeVerdicts {
    /// The code that passes.
    pub const PASSES: u8 = 0;

    /// Every node's verdict, in snapshot order.
    pub fn new(verdicts: impl IntoIterator<Item = u8>) -> NodeVerdicts {
        NodeVerdicts(verdicts.into_iter().collect())
    }

    /// The verdict on the node at `at`.
    pub fn at(&self, at: usize) -> Option<u8> {
        self.0.get(at).copied()
    }
}

/// Per-query scoring data a Score plugin prepared in PreScore.
pub trait NodeScorer: Sync {
    /// The raw score of one feasible node; `index` is its place among the feasible
    /// nodes PreScore was given.
    fn score(&self, index: usize, node: &NodeInfo) -> i64;
    /// Whether the plugin has a NormalizeScore: without one its raw scores stand, and
    /// [`NodeScorer::normalize`] is not called.
    fn normalizes(&self) -> bool {
        false
    }
    /// NormalizeScore over every feasible node's raw score (in the order of `nodes`).
    fn normalize(&self, _nodes: &[&NodeInfo], _scores: &mut [i64]) {}
}

/// `helper.DefaultNormalizeScore`: scale to `[0, MAX_NODE_SCORE]` by the maximum,
/// optionally reversed.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0).max(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}
