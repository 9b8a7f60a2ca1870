//! Per-query state (`framework.CycleState`): the incoming pod and what PreFilter
//! computed for it. Cloned for each node that preemption or nominated pods modify, and
//! updated pod by pod through the PreFilter extensions (AddPod / RemovePod).

use super::Evaluation;
use super::plugins::{inter_pod_affinity, pod_topology_spread};
use super::snapshot::PodInfo;
use crate::model::Node;

/// What one scheduling cycle knows about the pod being placed.
#[derive(Debug, Clone)]
pub struct CycleState<'a> {
    /// The pod being placed.
    pub pod: &'a PodInfo,
    /// How the query is evaluated: the fast path may consult the snapshot's indexes.
    pub evaluation: Evaluation,
    /// NodeAffinity's PreFilter skipped it (no node selector, no required affinity).
    pub skip_node_affinity: bool,
    /// PodTopologySpread's PreFilter state; `None` when the plugin is skipped.
    pub spread: Option<pod_topology_spread::FilterState>,
    /// InterPodAffinity's PreFilter state; `None` when the plugin is skipped.
    pub inter_pod: Option<inter_pod_affinity::FilterState>,
}

impl CycleState<'_> {
    /// Whether a cluster-wide filter (PodTopologySpread, InterPodAffinity) runs at all:
    /// when PreFilter skipped both (no state), Filter skips them on every node, as
    /// upstream's framework skips the plugins PreFilter answered `Skip`.
    pub fn runs_cluster_filters(&self) -> bool {
        self.spread.is_some() || self.inter_pod.is_some()
    }

    /// `RunPreFilterExtensionAddPod`: `added` now runs on `node`.
    pub fn add_pod(&mut self, added: &PodInfo, node: &Node) {
        self.update(added, node, 1);
    }

    /// `RunPreFilterExtensionRemovePod`: `removed` no longer runs on `node`.
    pub fn remove_pod(&mut self, removed: &PodInfo, node: &Node) {
        self.update(removed, node, -1);
    }

    fn update(&mut self, changed: &PodInfo, node: &Node, delta: i64) {
        let incoming = &self.pod.pod;
        if let Some(s) = self.spread.as_mut() {
            s.update(incoming, &changed.pod, node, delta);
        }
        if let Some(s) = self.inter_pod.as_mut() {
            s.update(incoming, &changed.pod, node, delta);
        }
    }
}
