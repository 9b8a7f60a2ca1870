//! Property tests of the decision engine on small random resource-only clusters.
//!
//! Every cluster is written as Kubernetes JSON (nodes, pods bound to them, PDBs and
//! PriorityClasses), decoded through `preemption_oracle::kube` and decided with the
//! public API. The properties check preemption's victims against rebuilt clusters and
//! NodeResourcesFit against an independent resource count.

use std::collections::BTreeSet;

use preemption_oracle::engine::{Decision, Outcome, Snapshot, decide};
use preemption_oracle::kube::{decode_cluster, decode_pod};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Priorities of running pods, each with a PriorityClass `prio-<value>`.
const PRIORITIES: [i32; 5] = [0, 10, 50, 100, 500];
/// Priorities the pending pod may have.
const PENDING_PRIORITIES: [i32; 3] = [100, 500, 1000];
const APPS: [&str; 3] = ["web", "db", "cache"];
const NAMESPACES: [&str; 2] = ["default", "team"];
const MI: i64 = 1024 * 1024;

#[derive(Debug, Clone)]
struct NodeSpec {
    milli_cpu: i64,
    memory_mi: i64,
    max_pods: i64,
}

#[derive(Debug, Clone)]
struct PodSpec {
    name: String,
    namespace: &'static str,
    node: usize,
    milli_cpu: i64,
    memory_mi: i64,
    priority: i32,
    app: &'static str,
    /// Seconds after 10:00, unique per pod.
    start: u32,
}

impl PodSpec {
    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[derive(Debug, Clone)]
struct PdbSpec {
    namespace: &'static str,
    app: &'static str,
    allowed: i32,
}

#[derive(Debug, Clone)]
struct Cluster {
    nodes: Vec<NodeSpec>,
    /// Pods bound to nodes; every node's pods fit its allocatable.
    pods: Vec<PodSpec>,
    pdbs: Vec<PdbSpec>,
    pending_cpu: i64,
    pending_memory_mi: i64,
    pending_priority: i32,
}

fn node_name(i: usize) -> String {
    format!("node-{i}")
}

fn node_json(i: usize, n: &NodeSpec) -> Value {
    let alloc = json!({
        "cpu": format!("{}m", n.milli_cpu),
        "memory": format!("{}Mi", n.memory_mi),
        "pods": n.max_pods.to_string(),
    });
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node_name(i), "labels": {"kubernetes.io/hostname": node_name(i)}},
        "status": {"allocatable": alloc.clone(), "capacity": alloc},
    })
}

fn container(milli_cpu: i64, memory_mi: i64) -> Value {
    json!([{
        "name": "app",
        "image": "registry.example/app:1.0",
        "resources": {"requests": {
            "cpu": format!("{milli_cpu}m"),
            "memory": format!("{memory_mi}Mi"),
        }},
    }])
}

fn pod_json(p: &PodSpec) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": p.name,
            "namespace": p.namespace,
            "uid": format!("uid-{}-{}", p.namespace, p.name),
            "labels": {"app": p.app},
        },
        "spec": {
            "nodeName": node_name(p.node),
            "priorityClassName": format!("prio-{}", p.priority),
            "containers": container(p.milli_cpu, p.memory_mi),
        },
        "status": {
            "phase": "Running",
            "startTime": format!("2024-05-01T10:{:02}:{:02}Z", p.start / 60, p.start % 60),
        },
    })
}

fn pdb_json(i: usize, b: &PdbSpec) -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": format!("pdb-{i}"), "namespace": b.namespace},
        "spec": {"selector": {"matchLabels": {"app": b.app}}},
        "status": {"disruptionsAllowed": b.allowed},
    })
}

fn classes_json() -> Vec<Value> {
    PRIORITIES
        .iter()
        .chain(PENDING_PRIORITIES.iter())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|v| {
            json!({
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": format!("prio-{v}")},
                "value": v,
            })
        })
        .collect()
}

impl Cluster {
    fn pending_json(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "pending", "namespace": "default", "labels": {"app": "new"}},
            "spec": {
                "priorityClassName": format!("prio-{}", self.pending_priority),
                "containers": container(self.pending_cpu, self.pending_memory_mi),
            },
        })
    }

    /// Decides the pending pod on the nodes with only `pods` running.
    fn decide_with<'a>(&self, pods: impl IntoIterator<Item = &'a PodSpec>) -> Decision {
        let doc = json!({
            "nodes": self.nodes.iter().enumerate().map(|(i, n)| node_json(i, n)).collect::<Vec<_>>(),
            "pods": pods.into_iter().map(pod_json).collect::<Vec<_>>(),
            "pdbs": self.pdbs.iter().enumerate().map(|(i, b)| pdb_json(i, b)).collect::<Vec<_>>(),
            "priorityClasses": classes_json(),
        });
        let objects = decode_cluster(&doc).expect("cluster decodes");
        let snapshot = Snapshot::build(objects).expect("snapshot builds");
        let pod =
            decode_pod(&self.pending_json(), &snapshot.priority_classes()).expect("pod decodes");
        decide(&snapshot, &pod)
    }

    fn decide(&self) -> Decision {
        self.decide_with(&self.pods)
    }

    fn pod(&self, key: &str) -> &PodSpec {
        self.pods
            .iter()
            .find(|p| p.key() == key)
            .unwrap_or_else(|| panic!("unknown pod {key}"))
    }

    fn node_index(name: &str) -> usize {
        name.trim_start_matches("node-").parse().expect("node name")
    }

    /// The independent NodeResourcesFit check: the reasons upstream's `fitsRequest`
    /// gives for `pods` on node `i`, and whether any request exceeds the allocatable.
    fn expected_fit(&self, i: usize, pods: &[&PodSpec]) -> (Vec<&'static str>, bool) {
        let n = &self.nodes[i];
        let on: Vec<&&PodSpec> = pods.iter().filter(|p| p.node == i).collect();
        let cpu: i64 = on.iter().map(|p| p.milli_cpu).sum();
        let mem: i64 = on.iter().map(|p| p.memory_mi).sum();
        let mut reasons = Vec::new();
        if on.len() as i64 + 1 > n.max_pods {
            reasons.push("Too many pods");
        }
        if self.pending_cpu > n.milli_cpu - cpu {
            reasons.push("Insufficient cpu");
        }
        if self.pending_memory_mi * MI > (n.memory_mi - mem) * MI {
            reasons.push("Insufficient memory");
        }
        let unresolvable = self.pending_cpu > n.milli_cpu || self.pending_memory_mi > n.memory_mi;
        (reasons, unresolvable)
    }
}

#[derive(Debug, Clone)]
struct RawPod {
    node: prop::sample::Index,
    milli_cpu: i64,
    memory_mi: i64,
    priority: i32,
    app: &'static str,
    namespace: &'static str,
}

fn raw_pod() -> impl Strategy<Value = RawPod> {
    (
        any::<prop::sample::Index>(),
        1i64..=30,
        1i64..=32,
        prop::sample::select(PRIORITIES.to_vec()),
        prop::sample::select(APPS.to_vec()),
        prop::sample::select(NAMESPACES.to_vec()),
    )
        .prop_map(|(node, cpu, mem, priority, app, namespace)| RawPod {
            node,
            milli_cpu: cpu * 100,
            memory_mi: mem * 128,
            priority,
            app,
            namespace,
        })
}

fn cluster() -> impl Strategy<Value = Cluster> {
    let nodes = prop::collection::vec(
        (1i64..=8, 1i64..=16, 2i64..=8).prop_map(|(cpu, mem, pods)| NodeSpec {
            milli_cpu: cpu * 1000,
            memory_mi: mem * 1024,
            max_pods: pods,
        }),
        2..=6,
    );
    let pdbs = prop::collection::vec(
        (
            prop::sample::select(NAMESPACES.to_vec()),
            prop::sample::select(APPS.to_vec()),
            0i32..=2,
        )
            .prop_map(|(namespace, app, allowed)| PdbSpec {
                namespace,
                app,
                allowed,
            }),
        0..=4,
    );
    (
        nodes,
        prop::collection::vec(raw_pod(), 0..=28),
        pdbs,
        1i64..=60,
        1i64..=64,
        prop::sample::select(PENDING_PRIORITIES.to_vec()),
    )
        .prop_map(|(nodes, raw, pdbs, cpu, mem, priority)| {
            // Bind each pod only where it fits, as a real scheduler would have.
            let mut used: Vec<(i64, i64, i64)> = vec![(0, 0, 0); nodes.len()];
            let mut pods = Vec::new();
            for (i, r) in raw.into_iter().enumerate() {
                let node = r.node.index(nodes.len());
                let (cpu_used, mem_used, count) = &mut used[node];
                let n = &nodes[node];
                if *cpu_used + r.milli_cpu > n.milli_cpu
                    || *mem_used + r.memory_mi > n.memory_mi
                    || *count + 1 > n.max_pods
                {
                    continue;
                }
                *cpu_used += r.milli_cpu;
                *mem_used += r.memory_mi;
                *count += 1;
                pods.push(PodSpec {
                    name: format!("pod-{i}"),
                    namespace: r.namespace,
                    node,
                    milli_cpu: r.milli_cpu,
                    memory_mi: r.memory_mi,
                    priority: r.priority,
                    app: r.app,
                    start: i as u32 * 7,
                });
            }
            Cluster {
                nodes,
                pods,
                pdbs,
                pending_cpu: cpu * 100,
                pending_memory_mi: mem * 128,
                pending_priority: priority,
            }
        })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// (a) Evicting exactly a candidate's victims makes the pod fit on that node; the
    /// victims are lower-priority pods of that node, most important first.
    #[test]
    fn evicting_the_victims_makes_the_pod_fit(c in cluster()) {
        let d = c.decide();
        let Some(pre) = d.preemption.as_ref() else { return Ok(()) };
        for cand in &pre.candidates {
            let node = Cluster::node_index(&cand.node);
            prop_assert!(!cand.victims.is_empty());
            let victims: Vec<&PodSpec> = cand.victims.iter().map(|k| c.pod(k)).collect();
            for v in &victims {
                prop_assert_eq!(v.node, node);
                prop_assert!(v.priority < c.pending_priority);
            }
            for w in victims.windows(2) {
                prop_assert!(
                    (w[0].priority, std::cmp::Reverse(w[0].start))
                        > (w[1].priority, std::cmp::Reverse(w[1].start)),
                    "victims out of order: {:?}", cand.victims
                );
            }
            let keys: BTreeSet<&String> = cand.victims.iter().collect();
            let rest = c.pods.iter().filter(|p| !keys.contains(&p.key()));
            let after = c.decide_with(rest);
            prop_assert!(
                after.filter[&cand.node].feasible,
                "{} still rejected after evicting {:?}: {:?}",
                cand.node, cand.victims, after.filter[&cand.node]
            );
        }
        for n in &pre.selected_tie_set {
            prop_assert!(pre.candidates.iter().any(|cand| &cand.node == n));
        }
        prop_assert_eq!(pre.candidates.is_empty(), d.outcome != Outcome::Preempts);
    }

    /// (b) With every lower-priority pod removed from a candidate node, putting back any
    /// single reprieved pod still leaves room for the pod.
    #[test]
    fn any_single_reprieved_pod_fits_back(c in cluster()) {
        let d = c.decide();
        let Some(pre) = d.preemption.as_ref() else { return Ok(()) };
        for cand in &pre.candidates {
            let node = Cluster::node_index(&cand.node);
            let is_lower = |p: &PodSpec| p.node == node && p.priority < c.pending_priority;
            let kept: Vec<&PodSpec> = c.pods.iter().filter(|p| !is_lower(p)).collect();
            let reprieved = c
                .pods
                .iter()
                .filter(|p| is_lower(p) && !cand.victims.contains(&p.key()));
            for r in reprieved {
                let after = c.decide_with(kept.iter().copied().chain([r]));
                prop_assert!(
                    after.filter[&cand.node].feasible,
                    "reprieved {} alone does not fit back on {}", r.key(), cand.node
                );
            }
        }
    }

    /// (c) NodeResourcesFit agrees with an independent count of requests, pod slots and
    /// allocatable on every node, reasons and code included.
    #[test]
    fn resource_fit_matches_an_independent_check(c in cluster()) {
        let d = c.decide();
        let all: Vec<&PodSpec> = c.pods.iter().collect();
        let mut any_fits = false;
        for i in 0..c.nodes.len() {
            let (reasons, unresolvable) = c.expected_fit(i, &all);
            let v = &d.filter[&node_name(i)];
            if reasons.is_empty() {
                any_fits = true;
                prop_assert!(v.feasible, "{} should fit: {:?}", node_name(i), v);
            } else {
                prop_assert!(!v.feasible, "{} should not fit ({:?})", node_name(i), reasons);
                prop_assert_eq!(v.plugin.as_deref(), Some("NodeResourcesFit"));
                let want: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                prop_assert_eq!(v.reasons.as_ref(), Some(&want));
                let code = if unresolvable { "UnschedulableAndUnresolvable" } else { "Unschedulable" };
                prop_assert_eq!(v.code.as_deref(), Some(code));
            }
        }
        prop_assert_eq!(any_fits, d.outcome == Outcome::Scheduled);
        // Preemption looks exactly at the resolvable nodes.
        if let Some(pre) = d.preemption.as_ref().filter(|p| p.eligible) {
            let want: Vec<String> = (0..c.nodes.len())
                .filter(|&i| !c.expected_fit(i, &all).1)
                .map(node_name)
                .collect();
            prop_assert_eq!(&pre.potential_nodes, &want);
        }
    }

    /// (d) Resources only: with every non-victim in place, putting back any single victim
    /// leaves the pod unable to fit on that node.
    #[test]
    fn any_single_victim_put_back_blocks_the_pod(c in cluster()) {
        let d = c.decide();
        let Some(pre) = d.preemption.as_ref() else { return Ok(()) };
        for cand in &pre.candidates {
            let keys: BTreeSet<&String> = cand.victims.iter().collect();
            let rest: Vec<&PodSpec> = c.pods.iter().filter(|p| !keys.contains(&p.key())).collect();
            for v in &cand.victims {
                let back = c.pod(v);
                let after = c.decide_with(rest.iter().copied().chain([back]));
                let verdict = &after.filter[&cand.node];
                prop_assert!(!verdict.feasible, "{} fits with victim {} back", cand.node, v);
                prop_assert_eq!(verdict.plugin.as_deref(), Some("NodeResourcesFit"));
            }
        }
    }
}

/// Guards against vacuous properties: the generator must produce clusters where
/// preemption finds candidates, reprieves pods and violates budgets.
#[test]
fn generator_exercises_preemption() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = cluster();
    let (mut scheduled, mut preempts, mut reprieves, mut violations, mut ties) = (0, 0, 0, 0, 0);
    for _ in 0..200 {
        let c = strategy.new_tree(&mut runner).expect("tree").current();
        let d = c.decide();
        match d.outcome {
            Outcome::Scheduled => scheduled += 1,
            Outcome::Preempts => preempts += 1,
            _ => {}
        }
        let Some(pre) = &d.preemption else { continue };
        ties += usize::from(pre.selected_tie_set.len() > 1);
        for cand in &pre.candidates {
            violations += usize::from(cand.num_pdb_violations > 0);
            let node = Cluster::node_index(&cand.node);
            let lower = c
                .pods
                .iter()
                .filter(|p| p.node == node && p.priority < c.pending_priority)
                .count();
            reprieves += usize::from(lower > cand.victims.len());
        }
    }
    eprintln!(
        "scheduled {scheduled}, preempts {preempts}, candidates with reprieves {reprieves}, \
         with PDB violations {violations}, tie sets {ties}"
    );
    assert!(scheduled >= 20, "too few schedulable clusters: {scheduled}");
    assert!(preempts >= 20, "too few preemptions: {preempts}");
    assert!(reprieves >= 20, "too few reprieves: {reprieves}");
    assert!(violations >= 5, "too few PDB violations: {violations}");
}
