//! NodeName: a pod that names its node (`spec.nodeName`) fits only there.

use super::FilterPlugin;
use crate::engine::cycle_state::CycleState;
use crate::engine::snapshot::NodeInfo;
use crate::engine::status::Status;

pub const NAME: &str = "NodeName";
pub const REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Option<Status> {
        match &state.pod.pod.node_name {
            Some(wanted) if wanted != node.name() => Some(Status::unresolvable(REASON)),
            _ => None,
        }
    }
}
