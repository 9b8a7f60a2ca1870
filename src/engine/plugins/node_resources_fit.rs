//! NodeResourcesFit: Filter checks the pod's requests against the node's free
//! allocatable (and the pod count); Score is LeastAllocated over cpu and memory with
//! weight 1 each, on requests with the scheduler's non-zero defaults.

use std::borrow::Cow;

use super::{FilterPlugin, MAX_NODE_SCORE, NodeScorer};
use crate::engine::cycle_state::CycleState;
use crate::engine::snapshot::NodeInfo;
use crate::engine::status::{Code, Reasons, Status};
use crate::model::resources::Resources;

pub const NAME: &str = "NodeResourcesFit";

/// One resource the node lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insufficient {
    pub reason: Cow<'static, str>,
    /// The request exceeds the node's whole allocatable: preemption cannot help.
    pub unresolvable: bool,
}

/// `fitsRequest`: every resource the node cannot give `request`, handed to `lacking` in
/// upstream's order (pods, cpu, memory, ephemeral-storage, then scalar resources by
/// name). Nothing is collected here: a preemption's Filter pass rejects every node.
pub fn insufficient_resources(
    request: &Resources,
    node: &NodeInfo,
    mut lacking: impl FnMut(Insufficient),
) {
    let alloc = &node.node.allocatable;
    let used = &node.requested;
    if node.pods.len() as i64 + 1 > node.node.allowed_pods {
        lacking(Insufficient {
            reason: "Too many pods".into(),
            unresolvable: false,
        });
    }
    if request.is_empty() {
        return;
    }
    let mut check = |reason: &dyn Fn() -> Cow<'static, str>, want: i64, have: i64, in_use: i64| {
        if want > 0 && want > have - in_use {
            lacking(Insufficient {
                reason: reason(),
                unresolvable: want > have,
            });
        }
    };
    let cpu = || Cow::Borrowed("Insufficient cpu");
    check(&cpu, request.milli_cpu, alloc.milli_cpu, used.milli_cpu);
    let memory = || Cow::Borrowed("Insufficient memory");
    check(&memory, request.memory, alloc.memory, used.memory);
    let storage = || Cow::Borrowed("Insufficient ephemeral-storage");
    check(
        &storage,
        request.ephemeral_storage,
        alloc.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (name, want) in &request.scalars {
        if *want == 0 {
            continue;
        }
        let scalar = || Cow::Owned(format!("Insufficient {name}"));
        check(&scalar, *want, alloc.scalar(name), used.scalar(name));
    }
}

/// Whether `request` fits a node with `allocatable` and `allowed_pods` on which pods
/// already request `used` and number `pods`: the same test as
/// [`insufficient_resources`], without building reasons.
pub fn fits(
    request: &Resources,
    allocatable: &Resources,
    allowed_pods: i64,
    used: &Resources,
    pods: usize,
) -> bool {
    if pods as i64 + 1 > allowed_pods {
        return false;
    }
    let ok = |want: i64, have: i64, in_use: i64| want <= 0 || want <= have - in_use;
    ok(request.milli_cpu, allocatable.milli_cpu, used.milli_cpu)
        && ok(request.memory, allocatable.memory, used.memory)
        && ok(
            request.ephemeral_storage,
            allocatable.ephemeral_storage,
            used.ephemeral_storage,
        )
        && request.scalars.iter().all(|(name, want)| {
            *want == 0 || ok(*want, allocatable.scalar(name), used.scalar(name))
        })
}

pub struct NodeResourcesFit;

impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo, _at: usize) -> Option<Status> {
        let request = &state.pod.requests;
        // Most nodes fit: answer those without gathering reasons.
        let (alloc, allowed) = (&node.node.allocatable, node.node.allowed_pods);
        if fits(request, alloc, allowed, &node.requested, node.pods.len()) {
            return None;
        }
        let mut unresolvable = false;
        let mut reasons = Reasons::default();
        insufficient_resources(request, node, |m| {
            unresolvable |= m.unresolvable;
            reasons.push(m.reason);
        });
        let code = if unresolvable {
            Code::UnschedulableAndUnresolvable
        } else {
            Code::Unschedulable
        };
        Some(Status {
            code,
            plugin: None,
            reasons,
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
    fn score(&self, _index: usize, node: &NodeInfo) -> i64 {
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::engine::decision::Outcome;
    use crate::engine::test_support::*;

    fn with_requests(name: &str, requests: Value) -> Value {
        merge(
            pod(name, "", ""),
            json!({"spec": {"containers": [{
                "name": "app", "image": APP_IMAGE, "resources": {"requests": requests}
            }]}}),
        )
    }

    fn status(s: &crate::engine::Snapshot, p: &Value, node: &str) -> Option<Status> {
        run_filter(s, p, &NodeResourcesFit, node)
    }

    fn rejected(code: Code, reasons: &[&str]) -> Option<Status> {
        Some(Status {
            code,
            plugin: None,
            reasons: strings(reasons).into_iter().map(Cow::Owned).collect(),
        })
    }

    #[test]
    fn fits_agrees_with_the_reasons_on_every_combination() {
        // The filter answers with `fits` and gathers reasons only when it is false.
        let gpu = |n: Value, count: &str| {
            merge(
                n,
                json!({"status": {"allocatable": {"nvidia.com/gpu": count}}}),
            )
        };
        let wants_gpu = |mut p: Value, count: &str| {
            p["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = json!(count);
            p
        };
        let (mut compared, mut fitting) = (0, 0);
        for (max_pods, gpus) in [(1, "0"), (2, "1"), (110, "2")] {
            let n = gpu(node("n", "2", "4Gi", max_pods), gpus);
            for used in [("", ""), ("1", "1Gi"), ("2", "4Gi")] {
                let s = snapshot(vec![n.clone()], vec![bound(pod("a", used.0, used.1), "n")]);
                let info = s.node("n").expect("node n");
                for (cpu, memory) in [("", ""), ("500m", ""), ("1", "3Gi"), ("3", "1Gi")] {
                    for want_gpu in [None, Some("1"), Some("2")] {
                        let mut p = pod("p", cpu, memory);
                        if let Some(count) = want_gpu {
                            p = wants_gpu(p, count);
                        }
                        let request = pending(&s, &p).requests();
                        let alloc = &info.node.allocatable;
                        let quick = fits(
                            &request,
                            alloc,
                            info.node.allowed_pods,
                            &info.requested,
                            info.pods.len(),
                        );
                        let mut lacking = 0;
                        insufficient_resources(&request, info, |_| lacking += 1);
                        assert_eq!(
                            quick,
                            lacking == 0,
                            "{max_pods} pods, {gpus} gpus, used {used:?}, pod {cpu} {memory} {want_gpu:?}"
                        );
                        compared += 1;
                        fitting += usize::from(quick);
                    }
                }
            }
        }
        assert_eq!(compared, 108);
        assert!(
            0 < fitting && fitting < compared,
            "{fitting} of {compared} fit"
        );
    }

    #[test]
    fn too_many_pods_even_for_a_best_effort_pod() {
        let s = snapshot(
            vec![node("n", "4", "8Gi", 2)],
            vec![bound(pod("a", "", ""), "n"), bound(pod("b", "", ""), "n")],
        );
        assert_eq!(
            status(&s, &pod("p", "", ""), "n"),
            rejected(Code::Unschedulable, &["Too many pods"])
        );
        // Pods and cpu are reported together, pods first.
        assert_eq!(
            status(&s, &pod("p", "5", ""), "n"),
            rejected(
                Code::UnschedulableAndUnresolvable,
                &["Too many pods", "Insufficient cpu"]
            )
        );
        // A node that reports no pod capacity admits nothing.
        let s = snapshot(
            vec![merge(
                node("n", "4", "8Gi", 0),
                json!({"status": {"allocatable": {"pods": null}}}),
            )],
            vec![],
        );
        assert_eq!(
            status(&s, &pod("p", "", ""), "n"),
            rejected(Code::Unschedulable, &["Too many pods"])
        );
    }

    #[test]
    fn insufficient_cpu_and_memory_in_order() {
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![bound(pod("a", "3", "6Gi"), "n")],
        );
        assert_eq!(status(&s, &pod("p", "1", "2Gi"), "n"), None);
        assert_eq!(
            status(&s, &pod("p", "1500m", "2Gi"), "n"),
            rejected(Code::Unschedulable, &["Insufficient cpu"])
        );
        assert_eq!(
            status(&s, &pod("p", "1", "3Gi"), "n"),
            rejected(Code::Unschedulable, &["Insufficient memory"])
        );
        assert_eq!(
            status(&s, &pod("p", "2", "3Gi"), "n"),
            rejected(
                Code::Unschedulable,
                &["Insufficient cpu", "Insufficient memory"]
            )
        );
    }

    #[test]
    fn request_above_allocatable_is_unresolvable() {
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![bound(pod("a", "3", "1Gi"), "n")],
        );
        assert_eq!(
            status(&s, &pod("p", "4001m", ""), "n"),
            rejected(Code::UnschedulableAndUnresolvable, &["Insufficient cpu"])
        );
        // Exactly the allocatable is resolvable (preemption can free it).
        assert_eq!(
            status(&s, &pod("p", "4", ""), "n"),
            rejected(Code::Unschedulable, &["Insufficient cpu"])
        );
        // One unresolvable resource makes the whole status unresolvable.
        assert_eq!(
            status(&s, &pod("p", "2", "9Gi"), "n"),
            rejected(
                Code::UnschedulableAndUnresolvable,
                &["Insufficient cpu", "Insufficient memory"]
            )
        );
    }

    #[test]
    fn ephemeral_storage_and_extended_resources() {
        let gpu_node = merge(
            node("gpu", "8", "32Gi", 110),
            json!({"status": {"allocatable": {"ephemeral-storage": "100Gi", "nvidia.com/gpu": "2"}}}),
        );
        let plain = merge(
            node("plain", "8", "32Gi", 110),
            json!({"status": {"allocatable": {"ephemeral-storage": "10Gi"}}}),
        );
        let s = snapshot(
            vec![gpu_node, plain],
            vec![bound(
                with_requests(
                    "user",
                    json!({"nvidia.com/gpu": "1", "ephemeral-storage": "60Gi"}),
                ),
                "gpu",
            )],
        );
        let p = with_requests(
            "p",
            json!({"cpu": "1", "nvidia.com/gpu": "2", "ephemeral-storage": "50Gi"}),
        );
        assert_eq!(
            status(&s, &p, "gpu"),
            rejected(
                Code::Unschedulable,
                &[
                    "Insufficient ephemeral-storage",
                    "Insufficient nvidia.com/gpu"
                ]
            )
        );
        assert_eq!(
            status(&s, &p, "plain"),
            rejected(
                Code::UnschedulableAndUnresolvable,
                &[
                    "Insufficient ephemeral-storage",
                    "Insufficient nvidia.com/gpu"
                ]
            )
        );
        // Extended resources in limits only default the request.
        let limits_only = merge(
            pod("q", "", ""),
            json!({"spec": {"containers": [{
                "name": "app", "image": APP_IMAGE,
                "resources": {"limits": {"nvidia.com/gpu": "1"}}
            }]}}),
        );
        assert_eq!(status(&s, &limits_only, "gpu"), None);
        assert_eq!(
            status(&s, &limits_only, "plain"),
            rejected(
                Code::UnschedulableAndUnresolvable,
                &["Insufficient nvidia.com/gpu"]
            )
        );
    }

    #[test]
    fn scalar_resources_are_reported_by_name() {
        let n = merge(
            node("n", "8", "32Gi", 110),
            json!({"status": {"allocatable": {"example.com/b": "1", "example.com/a": "1"}}}),
        );
        let s = snapshot(vec![n], vec![]);
        let p = with_requests(
            "p",
            json!({"example.com/b": "2", "example.com/a": "2", "example.com/zero": "0"}),
        );
        assert_eq!(
            status(&s, &p, "n"),
            rejected(
                Code::UnschedulableAndUnresolvable,
                &["Insufficient example.com/a", "Insufficient example.com/b"]
            )
        );
    }

    /// app 1 cpu; sidecar 500m runs alongside; the plain init container needs 2 cpu
    /// plus the sidecar started before it (2.5); overhead 100m on top: 2600m.
    fn sidecar_pod() -> Value {
        merge(
            pod("p", "1", "1Gi"),
            json!({"spec": {
                "initContainers": [
                    {"name": "proxy", "image": "registry.example/proxy:1", "restartPolicy": "Always",
                     "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}},
                    {"name": "migrate", "image": "registry.example/migrate:1",
                     "resources": {"requests": {"cpu": "2", "memory": "512Mi"}}}
                ],
                "overhead": {"cpu": "100m", "memory": "64Mi"}
            }}),
        )
    }

    #[test]
    fn sidecar_init_and_overhead_requests() {
        let s = snapshot(
            vec![
                node("fits", "2600m", "2Gi", 110),
                node("short", "2599m", "2Gi", 110),
            ],
            vec![],
        );
        with_pre_filter(&s, &sidecar_pod(), |pre| {
            let r = &pre.state.pod.requests;
            assert_eq!(r.milli_cpu, 2600);
            // Memory: app 1Gi + sidecar 256Mi vs init 512Mi + 256Mi: 1280Mi + 64Mi.
            assert_eq!(r.memory, (1280 + 64) << 20);
        });
        let d = decide_json(&s, &sidecar_pod());
        assert_feasible(&d, "fits");
        assert_rejected(
            &d,
            "short",
            Code::UnschedulableAndUnresolvable,
            NAME,
            &["Insufficient cpu"],
        );
        // A bound sidecar pod is accounted the same way on its node.
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![bound(sidecar_pod(), "n")],
        );
        assert_eq!(s.nodes[0].requested.milli_cpu, 2600);
        assert_eq!(
            status(&s, &pod("q", "1401m", ""), "n"),
            rejected(Code::Unschedulable, &["Insufficient cpu"])
        );
        assert_eq!(status(&s, &pod("q", "1400m", ""), "n"), None);
    }

    #[test]
    fn least_allocated_score() {
        let s = snapshot(
            vec![
                node("empty", "4", "8Gi", 110),
                node("busy", "4", "8Gi", 110),
            ],
            vec![bound(pod("a", "2", "2Gi"), "busy")],
        );
        let d = decide_json(&s, &pod("p", "1", "2Gi"));
        // empty: cpu (4000-1000)*100/4000 = 75, memory (8-2)*100/8 = 75 -> 75.
        assert_eq!(plugin_score(&d, "empty", NAME), Some(75));
        // busy: cpu (4000-3000)*100/4000 = 25, memory (8-4)*100/8 = 50 -> 37.
        assert_eq!(plugin_score(&d, "busy", NAME), Some(37));
    }

    #[test]
    fn least_allocated_uses_non_zero_defaults() {
        // Best-effort pods count as 100m / 200Mi each when scoring.
        let s = snapshot(
            vec![node("a", "1", "1000Mi", 110), node("b", "1", "1000Mi", 110)],
            vec![bound(pod("be", "", ""), "b")],
        );
        let d = decide_json(&s, &pod("p", "", ""));
        // a: cpu (1000-100)*100/1000 = 90, memory (1000-200)*100/1000 = 80 -> 85.
        assert_eq!(plugin_score(&d, "a", NAME), Some(85));
        // b: cpu (1000-200)*100/1000 = 80, memory (1000-400)*100/1000 = 60 -> 70.
        assert_eq!(plugin_score(&d, "b", NAME), Some(70));
        // A request above capacity scores 0 for that resource.
        assert_eq!(least_requested(1001, 1000), 0);
        assert_eq!(least_requested(5, 0), 0);
    }

    #[test]
    fn preemption_frees_enough_cpu() {
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![
                started(
                    prio(bound(pod("old", "2", ""), "n"), 10),
                    "2024-05-01T10:00:00Z",
                ),
                started(
                    prio(bound(pod("new", "2", ""), "n"), 10),
                    "2024-05-01T11:00:00Z",
                ),
            ],
        );
        let d = decide_json(&s, &prio(pod("p", "2", ""), 100));
        assert_rejected(&d, "n", Code::Unschedulable, NAME, &["Insufficient cpu"]);
        assert_eq!(d.outcome, Outcome::Preempts);
        // The older pod is more important and is reprieved first.
        assert_eq!(victims(&d, "n"), Some(strings(&["default/new"])));
    }
}
