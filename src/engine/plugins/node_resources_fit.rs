//! NodeResourcesFit: Filter checks the pod's requests against the node's free
//! allocatable (and the pod count); Score is LeastAllocated over cpu and memory with
//! weight 1 each, on requests with the scheduler's non-zero defaults.

use super::{FilterPlugin, MAX_NODE_SCORE, NodeScorer};
use crate::engine::cycle_state::CycleState;
use crate::engine::snapshot::NodeInfo;
use crate::engine::status::{Code, Status};
use crate::model::resources::Resources;

pub const NAME: &str = "NodeResourcesFit";

/// One resource the node lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insufficient {
    pub reason: String,
    /// The request exceeds the node's whole allocatable: preemption cannot help.
    pub unresolvable: bool,
}

/// `fitsRequest`: every resource the node cannot give `request`, in upstream's order
/// (pods, cpu, memory, ephemeral-storage, then scalar resources by name).
pub fn insufficient_resources(request: &Resources, node: &NodeInfo) -> Vec<Insufficient> {
    let mut out = Vec::new();
    let alloc = &node.node.allocatable;
    let used = &node.requested;
    if node.pods.len() as i64 + 1 > node.node.allowed_pods {
        out.push(Insufficient {
            reason: "Too many pods".into(),
            unresolvable: false,
        });
    }
    if request.is_empty() {
        return out;
    }
    let mut check = |name: &str, want: i64, have: i64, in_use: i64| {
        if want > 0 && want > have - in_use {
            out.push(Insufficient {
                reason: format!("Insufficient {name}"),
                unresolvable: want > have,
            });
        }
    };
    check("cpu", request.milli_cpu, alloc.milli_cpu, used.milli_cpu);
    check("memory", request.memory, alloc.memory, used.memory);
    check(
        "ephemeral-storage",
        request.ephemeral_storage,
        alloc.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (name, want) in &request.scalars {
        if *want == 0 {
            continue;
        }
        check(name, *want, alloc.scalar(name), used.scalar(name));
    }
    out
}

pub struct NodeResourcesFit;

impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Option<Status> {
        let missing = insufficient_resources(&state.pod.requests, node);
        if missing.is_empty() {
            return None;
        }
        let code = if missing.iter().any(|m| m.unresolvable) {
            Code::UnschedulableAndUnresolvable
        } else {
            Code::Unschedulable
        };
        Some(Status {
            code,
            plugin: None,
            reasons: missing.into_iter().map(|m| m.reason).collect(),
        })
    }
}

/// `leastRequestedScore`.
fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// LeastAllocated score state: the pod's cpu and memory with non-zero defaults.
pub struct Scorer {
    cpu: i64,
    memory: i64,
}

/// PreScore (never skips).
pub fn pre_score(state: &CycleState) -> Scorer {
    let (cpu, memory) = state.pod.pod.resources.scoring_requests();
    Scorer { cpu, memory }
}

impl NodeScorer for Scorer {
    fn score(&self, node: &NodeInfo) -> i64 {
        let alloc = &node.node.allocatable;
        let mut total = 0;
        let mut weights = 0;
        for (capacity, requested) in [
            (alloc.milli_cpu, node.non_zero_cpu + self.cpu),
            (alloc.memory, node.non_zero_memory + self.memory),
        ] {
            if capacity == 0 {
                continue;
            }
            total += least_requested(requested, capacity);
            weights += 1;
        }
        if weights == 0 { 0 } else { total / weights }
    }
}
