//! What the node-local plugins concluded about each node for a pod template, kept across
//! the decisions of one sequence (`PlaceBatch`, `PendingPods`).
//!
//! Six filters (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
//! NodeResourcesFit) and six scores (TaintToleration, NodeAffinity, NodeResourcesFit,
//! DynamicResources, NodeResourcesBalancedAllocation, ImageLocality) read only the node
//! (and the image summary) and a few fields of the pod (`same_template`). Replicas share
//! those fields, and a placement changes one node; so a sequence remembers, per template and node, the first
//! rejecting node-local filter's status and the node-local raw scores, and reuses them
//! while the node is the very same `NodeInfo` (snapshots share untouched nodes, so
//! pointer identity is exact). PodTopologySpread and InterPodAffinity, which read other
//! nodes' pods, always run. A node with nominated pods that count is evaluated in full.
//!
//! A memo is only valid for snapshots with the same nodes in the same places and the
//! same image summary; [`NodeLocalMemo::for_pod`] starts over when they differ. It also
//! holds the sequence's [`MatchingPods`] (PodTopologySpread's counts per node).

use std::sync::Arc;

use super::framework::MAX_SCORERS;
use super::matching_pods::MatchingPods;
use super::snapshot::{NodeInfo, NodeSet, Snapshot};
use super::status::Status;
use crate::model::Pod;

/// Whether `a` and `b` look the same to the node-local plugins: every pod field they
/// read is equal (requests come from `resources`).
fn same_template(a: &Pod, b: &Pod) -> bool {
    a.node_name == b.node_name
        && a.resources == b.resources
        && a.host_ports == b.host_ports
        && a.tolerations == b.tolerations
        && a.node_selector == b.node_selector
        && a.node_affinity == b.node_affinity
        && a.images == b.images
}

/// One node's remembered results for one template.
struct Row {
    /// The node they were computed on (kept alive, so its address is not reused).
    node: Arc<NodeInfo>,
    /// The first rejecting node-local filter's status, `None` when all passed.
    filter: Option<Status>,
    /// The node-local scorers' raw scores, by active scorer slot, once scored.
    scores: Option<[i64; MAX_SCORERS]>,
}

/// What is remembered of one node (by its place in the snapshot) for one template.
#[derive(Default)]
pub struct NodeMemo(Option<Row>);

impl NodeMemo {
    fn row(&self, node: &NodeInfo) -> Option<&Row> {
        self.0
            .as_ref()
            .filter(|r| std::ptr::eq(Arc::as_ptr(&r.node), node))
    }

    /// The node-local filters' verdict, if remembered for this very node.
    pub fn filter(&self, node: &NodeInfo) -> Option<&Option<Status>> {
        self.row(node).map(|r| &r.filter)
    }

    /// The node-local raw scores, if remembered for this very node.
    pub fn scores(&self, node: &NodeInfo) -> Option<&[i64; MAX_SCORERS]> {
        self.row(node).and_then(|r| r.scores.as_ref())
    }

    /// Remembers the node-local filters' verdict on `node` (forgetting its scores).
    pub fn remember_filter(&mut self, node: &Arc<NodeInfo>, filter: Option<Status>) {
        self.0 = Some(Row {
            node: Arc::clone(node),
            filter,
            scores: None,
        });
    }

    /// Remembers the node-local raw scores of `node`, whose filter verdict is
    /// remembered.
    fn remember_scores(&mut self, node: &NodeInfo, scores: [i64; MAX_SCORERS]) {
        if let Some(row) = self.0.as_mut()
            && std::ptr::eq(Arc::as_ptr(&row.node), node)
        {
            row.scores = Some(scores);
        }
    }
}

/// The remembered results of one template, by node index.
#[derive(Default)]
pub struct TemplateRows {
    rows: Vec<NodeMemo>,
}

impl TemplateRows {
    /// What is remembered of node `at`.
    pub fn node(&self, at: usize) -> Option<&NodeMemo> {
        self.rows.get(at)
    }

    /// One entry per node of a snapshot of `nodes` nodes, to be filled in place (in
    /// parallel: each node's entry is its own).
    pub fn nodes_mut(&mut self, nodes: usize) -> &mut [NodeMemo] {
        self.rows.resize_with(nodes, NodeMemo::default);
        &mut self.rows
    }

    /// Remembers the node-local raw scores of `node` (at `at`), whose filter verdict
    /// is remembered.
    pub fn remember_scores(&mut self, at: usize, node: &NodeInfo, scores: [i64; MAX_SCORERS]) {
        if let Some(memo) = self.rows.get_mut(at) {
            memo.remember_scores(node, scores);
        }
    }
}

/// Every template's rows, and the node counts of spread selectors, for one sequence of
/// decisions.
#[derive(Default)]
pub struct NodeLocalMemo {
    /// The nodes the rows are indexed by.
    nodes: Option<NodeSet>,
    templates: Vec<(Pod, TemplateRows)>,
    matching: MatchingPods,
}

impl NodeLocalMemo {
    /// The rows for `pod`'s template on `snapshot` (empty for a template not seen
    /// before), and the remembered spread counts; all forgotten when the snapshot's
    /// nodes moved.
    pub fn for_pod(
        &mut self,
        snapshot: &Snapshot,
        pod: &Pod,
    ) -> (&mut TemplateRows, &MatchingPods) {
        let nodes = snapshot.node_set();
        if self.nodes.as_ref() != Some(&nodes) {
            self.templates.clear();
            self.matching.clear();
            self.nodes = Some(nodes);
        }
        let i = match self
            .templates
            .iter()
            .position(|(t, _)| same_template(t, pod))
        {
            Some(i) => i,
            None => {
                self.templates.push((pod.clone(), TemplateRows::default()));
                self.templates.len() - 1
            }
        };
        (&mut self.templates[i].1, &self.matching)
    }
}
