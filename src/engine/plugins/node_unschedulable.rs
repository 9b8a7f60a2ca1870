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

    fn filter(&self, state: &CycleState, node: &NodeInfo, _at: usize) -> Option<Status> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::status::Code;
    use crate::engine::test_support::*;

    fn cordoned(name: &str) -> serde_json::Value {
        merge(
            node(name, "4", "8Gi", 110),
            json!({"spec": {"unschedulable": true}}),
        )
    }

    #[test]
    fn cordoned_node_is_unresolvable() {
        let s = snapshot(vec![cordoned("a"), node("b", "4", "8Gi", 110)], vec![]);
        let d = decide_json(&s, &pod("p", "1", "1Gi"));
        assert_rejected(&d, "a", Code::UnschedulableAndUnresolvable, NAME, &[REASON]);
        assert_feasible(&d, "b");
        assert_eq!(d.feasible_nodes, strings(&["b"]));
    }

    #[test]
    fn tolerating_the_unschedulable_taint_passes() {
        let s = snapshot(vec![cordoned("a")], vec![]);
        let cases = [
            // Exact key, Exists, NoSchedule.
            (
                json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]),
                true,
            ),
            // Exact key, any effect.
            (
                json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]),
                true,
            ),
            // Wildcard key.
            (json!([{"operator": "Exists"}]), true),
            // Equal with the taint's empty value.
            (
                json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Equal", "value": ""}]),
                true,
            ),
            // Wrong effect.
            (
                json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"}]),
                false,
            ),
            // Wrong value.
            (
                json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Equal", "value": "true"}]),
                false,
            ),
            // Another key.
            (
                json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]),
                false,
            ),
        ];
        for (tolerations, passes) in cases {
            let p = merge(
                pod("p", "1", ""),
                json!({"spec": {"tolerations": tolerations}}),
            );
            let status = run_filter(&s, &p, &NodeUnschedulable, "a");
            if passes {
                assert_eq!(status, None, "{tolerations}");
            } else {
                let status = status.unwrap_or_else(|| panic!("{tolerations} should not pass"));
                assert_eq!(status.code, Code::UnschedulableAndUnresolvable);
                assert_eq!(status.reason_strings(), strings(&[REASON]));
            }
        }
    }

    #[test]
    fn is_the_first_filter_and_preemption_skips_the_node() {
        // The cordoned node is also tainted and full; NodeUnschedulable reports first.
        let a = tainted(
            cordoned("a"),
            json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
        );
        let s = snapshot(
            vec![a, node("b", "1", "8Gi", 110)],
            vec![
                prio(bound(pod("low-a", "4", ""), "a"), 0),
                prio(bound(pod("high-b", "1", ""), "b"), 5000),
            ],
        );
        let d = decide_json(&s, &prio(pod("p", "1", ""), 1000));
        assert_rejected(&d, "a", Code::UnschedulableAndUnresolvable, NAME, &[REASON]);
        assert_rejected(
            &d,
            "b",
            Code::Unschedulable,
            "NodeResourcesFit",
            &["Insufficient cpu"],
        );
        let pre = d.preemption.as_ref().unwrap();
        assert_eq!(pre.potential_nodes, strings(&["b"]));
        assert!(pre.candidates.is_empty());
        assert_eq!(
            d.fit_error.as_deref(),
            Some(
                "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable. \
                 no new claims to deallocate, preemption: 0/2 nodes are available: \
                 1 No preemption victims found for incoming pod, \
                 1 Preemption is not helpful for scheduling."
            )
        );
    }
}
