//! TaintToleration: Filter rejects nodes with an untolerated `NoSchedule`/`NoExecute`
//! taint; Score counts untolerated `PreferNoSchedule` taints (fewer is better).

use super::{FilterPlugin, NodeScorer, default_normalize};
use crate::engine::cycle_state::CycleState;
use crate::engine::snapshot::NodeInfo;
use crate::engine::status::Status;
use crate::model::taints::{TaintEffect, Toleration, first_untolerated_hard_taint, tolerated};

pub const NAME: &str = "TaintToleration";
pub const REASON: &str = "node(s) had untolerated taint(s)";

pub struct TaintToleration;

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Option<Status> {
        first_untolerated_hard_taint(&node.node.taints, &state.pod.pod.tolerations)
            .map(|_| Status::unresolvable(REASON))
    }
}

/// Score state: the pod's tolerations that can apply to `PreferNoSchedule` taints.
pub struct Scorer {
    tolerations: Vec<Toleration>,
}

/// PreScore (never skips).
pub fn pre_score(state: &CycleState) -> Scorer {
    Scorer {
        tolerations: state
            .pod
            .pod
            .tolerations
            .iter()
            .filter(|t| t.effect.is_none() || t.effect == Some(TaintEffect::PreferNoSchedule))
            .cloned()
            .collect(),
    }
}

impl NodeScorer for Scorer {
    fn score(&self, node: &NodeInfo) -> i64 {
        node.node
            .taints
            .iter()
            .filter(|t| {
                t.effect == TaintEffect::PreferNoSchedule && !tolerated(&self.tolerations, t)
            })
            .count() as i64
    }

    fn normalize(&self, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}
