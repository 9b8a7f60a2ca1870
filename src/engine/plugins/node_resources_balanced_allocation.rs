//! NodeResourcesBalancedAllocation: favours nodes whose cpu and memory utilisation
//! (with the pod) are close to each other. Uses plain requests, not non-zero defaults.

use super::{MAX_NODE_SCORE, NodeScorer};
use crate::engine::cycle_state::CycleState;
use crate::engine::snapshot::NodeInfo;

pub const NAME: &str = "NodeResourcesBalancedAllocation";

pub struct Scorer {
    cpu: i64,
    memory: i64,
}

/// PreScore: skipped for a pod that requests neither cpu nor memory.
pub fn pre_score(state: &CycleState) -> Option<Scorer> {
    let r = &state.pod.requests;
    (r.milli_cpu != 0 || r.memory != 0).then_some(Scorer {
        cpu: r.milli_cpu,
        memory: r.memory,
    })
}

/// `balancedResourceScorer`, in the same floating-point steps as upstream. The
/// fractions live on the stack: this runs for every feasible node of every decision.
fn balanced<const N: usize>(requested: &[i64; N], allocatable: &[i64; N]) -> i64 {
    let mut fractions = [0.0f64; N];
    let mut n = 0;
    let mut total = 0.0f64;
    for (r, a) in requested.iter().zip(allocatable) {
        if *a == 0 {
            continue;
        }
        let f = (*r as f64 / *a as f64).min(1.0);
        total += f;
        fractions[n] = f;
        n += 1;
    }
    let fractions = &fractions[..n];
    let std = match n {
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n if n > 2 => {
            let mean = total / n as f64;
            let sum: f64 = fractions.iter().map(|f| (f - mean) * (f - mean)).sum();
            (sum / n as f64).sqrt()
        }
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl NodeScorer for Scorer {
    fn score(&self, _index: usize, node: &NodeInfo) -> i64 {
        let alloc = &node.node.allocatable;
        let requested = [
            node.requested.milli_cpu + self.cpu,
            node.requested.memory + self.memory,
        ];
        let allocatable = [alloc.milli_cpu, alloc.memory];
        balanced(&requested, &allocatable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::*;

    #[test]
    fn equal_utilisation_is_perfect() {
        assert_eq!(balanced(&[500, 1024], &[1000, 2048]), 100);
        // 0.9 vs 0.1: std 0.4 → 60 (allowing for float truncation as upstream).
        assert_eq!(balanced(&[900, 100], &[1000, 1000]), 60);
        assert_eq!(balanced(&[0, 0], &[0, 0]), 100);
    }

    #[test]
    fn fractions_are_capped_and_zero_allocatable_is_skipped() {
        // 1.5 caps at 1.0; 0.5 -> std 0.25 -> 75.
        assert_eq!(balanced(&[1500, 500], &[1000, 1000]), 75);
        // One resource with zero allocatable is skipped: a single fraction has std 0.
        assert_eq!(balanced(&[900, 100], &[1000, 0]), 100);
        // Three resources: 0.2, 0.5, 0.8 -> mean 0.5, std sqrt(0.06) = 0.2449 -> 75.
        assert_eq!(balanced(&[200, 500, 800], &[1000, 1000, 1000]), 75);
    }

    #[test]
    fn score_through_the_decision() {
        let s = snapshot(
            vec![
                node("empty", "4", "8Gi", 110),
                node("matched", "4", "8Gi", 110),
                node("skewed", "4", "8Gi", 110),
            ],
            vec![
                bound(pod("m", "1", "3Gi"), "matched"),
                bound(pod("k", "3", ""), "skewed"),
            ],
        );
        let d = decide_json(&s, &pod("p", "1", "1Gi"));
        // empty: 0.25 vs 0.125 -> std 0.0625 -> 93.75 -> 93.
        assert_eq!(plugin_score(&d, "empty", NAME), Some(93));
        // matched: 2/4 vs 4Gi/8Gi -> 100.
        assert_eq!(plugin_score(&d, "matched", NAME), Some(100));
        // skewed: 4/4 vs 1/8 -> std 0.4375 -> 56.25 -> 56.
        assert_eq!(plugin_score(&d, "skewed", NAME), Some(56));
    }

    #[test]
    fn uses_plain_requests_not_non_zero_defaults() {
        // A best-effort pod on the node changes nothing.
        let s = snapshot(
            vec![node("a", "4", "8Gi", 110), node("b", "4", "8Gi", 110)],
            vec![bound(pod("be", "", ""), "b")],
        );
        let d = decide_json(&s, &pod("p", "2", "1Gi"));
        // 0.5 vs 0.125 -> std 0.1875 -> 81.25 -> 81, on both nodes.
        assert_eq!(plugin_score(&d, "a", NAME), Some(81));
        assert_eq!(plugin_score(&d, "b", NAME), Some(81));
    }

    #[test]
    fn best_effort_pod_skips_the_plugin() {
        let s = snapshot(
            vec![node("a", "4", "8Gi", 110), node("b", "4", "8Gi", 110)],
            vec![],
        );
        let d = decide_json(&s, &pod("p", "", ""));
        assert_eq!(plugin_score(&d, "a", NAME), None);
        with_pre_filter(&s, &pod("p", "", ""), |pre| {
            assert!(pre_score(&pre.state).is_none())
        });
        // Requesting only memory is enough to score (cpu fraction 0).
        let d = decide_json(&s, &pod("p", "", "2Gi"));
        // 0 vs 0.25 -> std 0.125 -> 87.5 -> 87.
        assert_eq!(plugin_score(&d, "a", NAME), Some(87));
    }
}
