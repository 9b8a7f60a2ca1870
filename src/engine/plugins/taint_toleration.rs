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

    fn filter(&self, state: &CycleState, node: &NodeInfo, _at: usize) -> Option<Status> {
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
    fn score(&self, _index: usize, node: &NodeInfo) -> i64 {
        node.node
            .taints
            .iter()
            .filter(|t| {
                t.effect == TaintEffect::PreferNoSchedule && !tolerated(&self.tolerations, t)
            })
            .count() as i64
    }

    fn normalizes(&self) -> bool {
        true
    }

    fn normalize(&self, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::engine::status::Code;
    use crate::engine::test_support::*;

    fn tolerating(tolerations: Value) -> Value {
        merge(
            pod("p", "1", "1Gi"),
            json!({"spec": {"tolerations": tolerations}}),
        )
    }

    fn taint(key: &str, value: &str, effect: &str) -> Value {
        json!({"key": key, "value": value, "effect": effect})
    }

    #[test]
    fn hard_effects_reject_prefer_no_schedule_does_not() {
        let s = snapshot(
            vec![
                tainted(
                    node("no-schedule", "4", "8Gi", 110),
                    json!([taint("gpu", "true", "NoSchedule")]),
                ),
                tainted(
                    node("no-execute", "4", "8Gi", 110),
                    json!([taint("gpu", "true", "NoExecute")]),
                ),
                tainted(
                    node("prefer", "4", "8Gi", 110),
                    json!([taint("gpu", "true", "PreferNoSchedule")]),
                ),
            ],
            vec![],
        );
        let d = decide_json(&s, &pod("p", "1", "1Gi"));
        for n in ["no-schedule", "no-execute"] {
            assert_rejected(&d, n, Code::UnschedulableAndUnresolvable, NAME, &[REASON]);
        }
        assert_feasible(&d, "prefer");
        // Unresolvable everywhere else: preemption has nowhere to look.
        assert_eq!(d.feasible_nodes, strings(&["prefer"]));
    }

    #[test]
    fn toleration_operators() {
        let s = snapshot(
            vec![tainted(
                node("n", "4", "8Gi", 110),
                json!([taint("dedicated", "db", "NoSchedule")]),
            )],
            vec![],
        );
        let cases = [
            (
                json!([{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]),
                true,
            ),
            // Operator defaults to Equal.
            (
                json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
                true,
            ),
            // No effect tolerates every effect.
            (json!([{"key": "dedicated", "value": "db"}]), true),
            (json!([{"key": "dedicated", "operator": "Exists"}]), true),
            // Empty key with Exists tolerates every taint.
            (json!([{"operator": "Exists"}]), true),
            (
                json!([{"key": "dedicated", "operator": "Equal", "value": "web"}]),
                false,
            ),
            (
                json!([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]),
                false,
            ),
            (
                json!([{"key": "dedicated", "operator": "Exists", "effect": "PreferNoSchedule"}]),
                false,
            ),
            (json!([{"key": "other", "operator": "Exists"}]), false),
            // Lt/Gt belong to a feature that is off by default: they tolerate nothing.
            (
                json!([{"key": "dedicated", "operator": "Gt", "value": "1"}]),
                false,
            ),
            (json!([]), false),
        ];
        for (tolerations, passes) in cases {
            let status = run_filter(&s, &tolerating(tolerations.clone()), &TaintToleration, "n");
            if passes {
                assert_eq!(status, None, "{tolerations}");
            } else {
                assert_eq!(status, Some(Status::unresolvable(REASON)), "{tolerations}");
            }
        }
    }

    #[test]
    fn every_hard_taint_must_be_tolerated() {
        let s = snapshot(
            vec![tainted(
                node("n", "4", "8Gi", 110),
                json!([taint("a", "1", "NoSchedule"), taint("b", "1", "NoExecute")]),
            )],
            vec![],
        );
        let one = tolerating(json!([{"key": "a", "operator": "Exists"}]));
        assert!(run_filter(&s, &one, &TaintToleration, "n").is_some());
        let both = tolerating(json!([
            {"key": "a", "operator": "Exists"},
            {"key": "b", "operator": "Equal", "value": "1", "effect": "NoExecute"}
        ]));
        assert_eq!(run_filter(&s, &both, &TaintToleration, "n"), None);
    }

    #[test]
    fn score_counts_untolerated_prefer_no_schedule_reversed() {
        let prefer = |k: &str| taint(k, "", "PreferNoSchedule");
        let s = snapshot(
            vec![
                node("zero", "4", "8Gi", 110),
                tainted(node("one", "4", "8Gi", 110), json!([prefer("x")])),
                tainted(
                    node("two", "4", "8Gi", 110),
                    json!([prefer("x"), prefer("y")]),
                ),
                // A NoSchedule taint the pod tolerates does not count; nor does a
                // tolerated PreferNoSchedule one.
                tainted(
                    node("tolerated", "4", "8Gi", 110),
                    json!([taint("z", "", "NoSchedule"), prefer("z")]),
                ),
            ],
            vec![],
        );
        let p = tolerating(json!([{"key": "z", "operator": "Exists"}]));
        let d = decide_json(&s, &p);
        // Raw counts 0, 1, 2, 0; max 2; reversed: 100 - 100*c/2; weight 3.
        assert_eq!(plugin_score(&d, "zero", NAME), Some(300));
        assert_eq!(plugin_score(&d, "one", NAME), Some(150));
        assert_eq!(plugin_score(&d, "two", NAME), Some(0));
        assert_eq!(plugin_score(&d, "tolerated", NAME), Some(300));
    }

    #[test]
    fn score_ignores_tolerations_for_other_effects() {
        // A toleration with effect NoSchedule does not apply to PreferNoSchedule taints.
        let s = snapshot(
            vec![
                node("clean", "4", "8Gi", 110),
                tainted(
                    node("t", "4", "8Gi", 110),
                    json!([taint("x", "", "PreferNoSchedule")]),
                ),
                tainted(
                    node("t3", "4", "8Gi", 110),
                    json!([
                        taint("x", "", "PreferNoSchedule"),
                        taint("y", "", "PreferNoSchedule"),
                        taint("w", "", "PreferNoSchedule")
                    ]),
                ),
            ],
            vec![],
        );
        let p = tolerating(json!([{"key": "x", "operator": "Exists", "effect": "NoSchedule"}]));
        let d = decide_json(&s, &p);
        // Raw 0, 1, 3: 100, 100 - 100/3 = 67, 0; weight 3.
        assert_eq!(plugin_score(&d, "clean", NAME), Some(300));
        assert_eq!(plugin_score(&d, "t", NAME), Some(201));
        assert_eq!(plugin_score(&d, "t3", NAME), Some(0));
    }

    #[test]
    fn score_is_max_everywhere_without_prefer_taints() {
        let s = snapshot(
            vec![node("a", "4", "8Gi", 110), node("b", "2", "8Gi", 110)],
            vec![],
        );
        let d = decide_json(&s, &pod("p", "1", "1Gi"));
        assert_eq!(plugin_score(&d, "a", NAME), Some(300));
        assert_eq!(plugin_score(&d, "b", NAME), Some(300));
        // Raw scores straight from the scorer.
        with_pre_filter(&s, &pod("p", "1", "1Gi"), |pre| {
            let scorer = pre_score(&pre.state);
            assert_eq!(scorer.score(0, &s.nodes[0]), 0);
        });
    }
}
