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

    fn filter(&self, state: &CycleState, node: &NodeInfo, _at: usize) -> Option<Status> {
        match &state.pod.pod.node_name {
            Some(wanted) if wanted != node.name() => Some(Status::unresolvable(REASON)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::decision::Outcome;
    use crate::engine::status::Code;
    use crate::engine::test_support::*;

    fn nodes() -> Vec<serde_json::Value> {
        vec![node("a", "4", "8Gi", 110), node("b", "4", "8Gi", 110)]
    }

    #[test]
    fn only_the_named_node_fits() {
        let s = snapshot(nodes(), vec![]);
        let p = merge(
            pod("p", "1", ""),
            serde_json::json!({"spec": {"nodeName": "b"}}),
        );
        assert_eq!(
            run_filter(&s, &p, &NodeName, "a"),
            Some(Status::unresolvable(REASON))
        );
        assert_eq!(run_filter(&s, &p, &NodeName, "b"), None);
        let d = decide_json(&s, &p);
        assert_rejected(&d, "a", Code::UnschedulableAndUnresolvable, NAME, &[REASON]);
        assert_feasible(&d, "b");
        assert_eq!(d.placement.tie_set, strings(&["b"]));
        assert_eq!(d.outcome, Outcome::Scheduled);
    }

    #[test]
    fn unnamed_pod_passes_everywhere() {
        let s = snapshot(nodes(), vec![]);
        let p = pod("p", "1", "");
        assert_eq!(run_filter(&s, &p, &NodeName, "a"), None);
        assert_eq!(run_filter(&s, &p, &NodeName, "b"), None);
    }

    #[test]
    fn unknown_node_name_is_unschedulable_and_preemption_does_not_help() {
        let s = snapshot(nodes(), vec![prio(bound(pod("low", "1", ""), "a"), 0)]);
        let p = prio(
            merge(
                pod("p", "1", ""),
                serde_json::json!({"spec": {"nodeName": "gone"}}),
            ),
            100,
        );
        let d = decide_json(&s, &p);
        assert_eq!(d.outcome, Outcome::Unschedulable);
        assert!(d.preemption.as_ref().unwrap().potential_nodes.is_empty());
        assert_eq!(
            d.fit_error.as_deref(),
            Some(
                "0/2 nodes are available: 2 node(s) didn't match the requested node name. \
                 no new claims to deallocate, preemption: 0/2 nodes are available: \
                 2 Preemption is not helpful for scheduling."
            )
        );
    }
}
