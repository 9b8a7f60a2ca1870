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

/// `balancedResourceScorer`, in the same floating-point steps as upstream.
fn balanced(requested: &[i64], allocatable: &[i64]) -> i64 {
    let mut fractions = Vec::with_capacity(requested.len());
    let mut total = 0.0f64;
    for (r, a) in requested.iter().zip(allocatable) {
        if *a == 0 {
            continue;
        }
        let f = (*r as f64 / *a as f64).min(1.0);
        total += f;
        fractions.push(f);
    }
    let std = match fractions.len() {
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
    fn score(&self, node: &NodeInfo) -> i64 {
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
    use super::balanced;

    #[test]
    fn equal_utilisation_is_perfect() {
        assert_eq!(balanced(&[500, 1024], &[1000, 2048]), 100);
        // 0.9 vs 0.1: std 0.4 → 60 (allowing for float truncation as upstream).
        assert_eq!(balanced(&[900, 100], &[1000, 1000]), 60);
        assert_eq!(balanced(&[0, 0], &[0, 0]), 100);
    }
}
