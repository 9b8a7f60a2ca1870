//! NodeUnschedulable: rejects cordoned nodes unless the pod tolerates the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use super::FilterPlugin;
use crate::engine::cycle_state::CycleState;
use crate::engine::snapshot::NodeInfo;
use crate::engine::status::Status;
use crate::model::taints::{Taint, TaintEffect, tolerated};

pub const NAME: &str = "NodeUnschedulable";
pub const REASON: &str = "node(s) were unschedulable";

pub struct NodeUnschedulable;

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Option<Status> {
        if !node.node.unschedulable {
            return None;
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            value: String::new(),
            effect: TaintEffect::NoSchedule,
        };
        (!tolerated(&state.pod.pod.tolerations, &taint)).then(|| Status::unresolvable(REASON))
    }
}
