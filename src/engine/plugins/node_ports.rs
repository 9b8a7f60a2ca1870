//! NodePorts: rejects nodes where a host port the pod wants is already bound.

use super::FilterPlugin;
use crate::engine::cycle_state::CycleState;
use crate::engine::snapshot::NodeInfo;
use crate::engine::status::Status;

pub const NAME: &str = "NodePorts";
pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Option<Status> {
        // With no host ports PreFilter skips the plugin; the loop is then empty.
        state
            .pod
            .pod
            .host_ports
            .iter()
            .any(|p| node.used_ports.conflicts(p))
            .then(|| Status::unschedulable(REASON))
    }
}
