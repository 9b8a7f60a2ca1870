//! Speed never buys a different answer: the fast evaluation (parallel, with per-node
//! shortcuts) and the straightforward one (every filter on every node, one thread) must
//! decide identically, explained or not, on the public vectors and on generated
//! clusters of many shapes.

use std::path::Path;
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use preemption_oracle::engine::node_local_memo::{NodeLocalMemo, TemplateBudget};
use preemption_oracle::engine::sequence::{pending_in_queue_order, place_in_order};
use preemption_oracle::engine::{
    Decision, Evaluation, Options, Snapshot, decide_on_this_thread, decide_with,
};
use preemption_oracle::generate::{GeneratorConfig, generate_scenario};
use preemption_oracle::kube;
use preemption_oracle::model::taints::{Taint, TaintEffect};
use preemption_oracle::model::{Node, Pod};
use serde_json::{Value, json};

const STRAIGHTFORWARD: Options = Options {
    explain: true,
    evaluation: Evaluation::Straightforward,
};
const STRAIGHTFORWARD_ANSWER: Options = Options {
    explain: false,
    evaluation: Evaluation::Straightforward,
};

fn as_json(d: &Decision) -> Value {
    serde_json::to_value(d).unwrap()
}

fn assert_same(snapshot: &Snapshot, pod: &Pod, what: &str) {
    let fast = as_json(&decide_with(snapshot, pod, Options::EXPLAINED));
    let reference = as_json(&decide_with(snapshot, pod, STRAIGHTFORWARD));
    assert_eq!(fast, reference, "{what}: explained decisions differ");
    // The test's thread is not one of the pool's: every pass runs whole on it.
    let unsplit = as_json(&decide_on_this_thread(
        snapshot,
        pod,
        Options::EXPLAINED,
        None,
    ));
    assert_eq!(
        unsplit, reference,
        "{what}: decided off the pool, decisions differ"
    );
    let fast = as_json(&decide_with(snapshot, pod, Options::ANSWER));
    let reference = as_json(&decide_with(snapshot, pod, STRAIGHTFORWARD_ANSWER));
    assert_eq!(fast, reference, "{what}: answers differ");
}

#[test]
fn public_vectors_decide_the_same_both_ways() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/public.jsonl");
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        let scenario = kube::decode_scenario(&case["scenario"]).unwrap();
        let snapshot = Snapshot::build(scenario.cluster).unwrap();
        assert_same(
            &snapshot,
            &scenario.pod.unwrap(),
            case["name"].as_str().unwrap(),
        );
    }
}

/// The generated pending pod with its requests replaced.
fn with_requests(pod: &Value, requests: Value) -> Value {
    let mut p = pod.clone();
    p["spec"]["containers"][0]["resources"] = json!({"requests": requests});
    p
}

/// `pending` moved into `existing`'s namespace with spread constraints that select
/// `existing`'s app: by labels, by expressions, and by exclusion only; each also with
/// a node selector and with required node affinity, which decide (the default
/// `nodeAffinityPolicy: Honor`) which nodes' pods count.
fn spreading_against(pending: &Value, existing: &Value) -> Vec<Value> {
    const ZONE: &str = "topology.kubernetes.io/zone";
    const HOST: &str = "kubernetes.io/hostname";
    let app = existing["metadata"]["labels"]["app"].clone();
    let by_labels = json!({"matchLabels": {"app": app}});
    let by_expressions = json!({"matchExpressions": [
        {"key": "app", "operator": "In", "values": [app, "absent"]},
        {"key": "app", "operator": "Exists"},
    ]});
    let by_exclusion = json!({"matchExpressions": [
        {"key": "app", "operator": "NotIn", "values": ["absent"]},
    ]});
    let constraint = |key: &str, skew: i32, action: &str, selector: &Value| {
        json!({"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": action,
               "labelSelector": selector})
    };
    [
        json!([constraint(ZONE, 1, "DoNotSchedule", &by_labels)]),
        json!([
            constraint(HOST, 1, "ScheduleAnyway", &by_labels),
            constraint(ZONE, 2, "ScheduleAnyway", &by_expressions),
        ]),
        json!([
            constraint(HOST, 3, "DoNotSchedule", &by_expressions),
            constraint(HOST, 1, "ScheduleAnyway", &by_exclusion),
        ]),
    ]
    .into_iter()
    .flat_map(|constraints| {
        let mut p = pending.clone();
        p["metadata"]["namespace"] = existing["metadata"]["namespace"].clone();
        p["spec"]["topologySpreadConstraints"] = constraints;
        let mut selecting = p.clone();
        selecting["spec"]["nodeSelector"] = json!({"node-pool": "general"});
        let mut affine = p.clone();
        affine["spec"]["affinity"] = json!({"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "node-pool", "operator": "NotIn", "values": ["general"]}]}
        ]}}});
        [p, selecting, affine]
    })
    .collect()
}

/// `pending` with pod (anti-)affinity terms of its own that select `existing`'s app:
/// required and preferred, in `existing`'s namespace, in another one only, and in
/// every namespace (an empty namespace selector).
fn affine_to(pending: &Value, existing: &Value) -> Vec<Value> {
    const ZONE: &str = "topology.kubernetes.io/zone";
    const HOST: &str = "kubernetes.io/hostname";
    let app = existing["metadata"]["labels"]["app"].clone();
    let namespace = existing["metadata"]["namespace"].clone();
    let term = |key: &str, scope: Value| {
        let mut t = json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key});
        for (field, value) in scope.as_object().unwrap() {
            t[field] = value.clone();
        }
        t
    };
    let own = json!({});
    let elsewhere = json!({"namespaces": ["absent-namespace"]});
    let everywhere = json!({"namespaceSelector": {}});
    let weighted = |t: Value, weight: i32| json!({"weight": weight, "podAffinityTerm": t});
    [
        json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term(HOST, own.clone())]}}),
        json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            term(ZONE, own.clone()), term(HOST, everywhere.clone())]}}),
        json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term(ZONE, elsewhere.clone())]}}),
        json!({
            "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                weighted(term(ZONE, own.clone()), 40), weighted(term(HOST, elsewhere), 5)]},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                weighted(term(HOST, everywhere), 70)]},
        }),
    ]
    .into_iter()
    .map(|affinity| {
        let mut p = pending.clone();
        p["metadata"]["namespace"] = namespace.clone();
        p["spec"]["affinity"] = affinity;
        p
    })
    .collect()
}

/// A generated cluster and pods of many shapes to decide on it: the generator's pending
/// pod, variants of its requests (with and without its spread and affinity terms),
/// pods spreading against and affine to apps the cluster runs, and the queued pods.
fn generated(config: GeneratorConfig) -> (Snapshot, Vec<Pod>) {
    let doc = generate_scenario(&config);
    let scenario = kube::decode_scenario(&doc).unwrap();
    let classes = scenario.cluster.priority_classes.clone();
    let snapshot = Snapshot::build(scenario.cluster).unwrap();
    let pending = &doc["pod"];
    let mut pods = vec![scenario.pod.unwrap()];
    for (i, requests) in [
        json!({"cpu": "100m", "memory": "128Mi"}),
        json!({"cpu": "3", "memory": "6Gi"}),
        json!({"cpu": "12", "memory": "40Gi"}),
        json!({"cpu": "500", "memory": "1Ti"}),
        json!({"nvidia.com/gpu": "1", "cpu": "2"}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut p = with_requests(pending, requests);
        p["metadata"]["name"] = json!(format!("variant-{i}"));
        pods.push(kube::decode_pod(&p, &classes).unwrap());
        // The same pod without its spread and affinity terms takes the arithmetic
        // reprieve; with them, the full filters.
        let mut plain = p.clone();
        plain["metadata"]["name"] = json!(format!("plain-{i}"));
        plain["spec"]["topologySpreadConstraints"] = json!([]);
        plain["spec"]["affinity"] = Value::Null;
        pods.push(kube::decode_pod(&plain, &classes).unwrap());
    }
    // Spreading against, and affine to, an app the cluster runs (a DaemonSet's and
    // a workload's), so that the fast path's label-count prefilter meets nodes that
    // hold matching pods as well as nodes that hold none.
    let bound = doc["pods"].as_array().unwrap();
    for (i, existing) in [&bound[0], &bound[bound.len() / 2]].into_iter().enumerate() {
        let variants = spreading_against(pending, existing)
            .into_iter()
            .map(|p| ("spread", p))
            .chain(
                affine_to(pending, existing)
                    .into_iter()
                    .map(|p| ("affine", p)),
            );
        for (j, (kind, p)) in variants.enumerate() {
            let mut p = with_requests(&p, json!({"cpu": "100m", "memory": "128Mi"}));
            p["metadata"]["name"] = json!(format!("{kind}-{i}-{j}"));
            pods.push(kube::decode_pod(&p, &classes).unwrap());
        }
    }
    // The queued pods, each with its own workload's terms.
    for p in bound.iter().filter(|p| p["spec"]["nodeName"].is_null()) {
        pods.push(kube::decode_pod(p, &classes).unwrap());
    }
    (snapshot, pods)
}

#[test]
fn generated_clusters_decide_the_same_both_ways() {
    for seed in 1..=12u64 {
        let nodes = 20 + (seed as usize * 7) % 40;
        let pods_per_node = 8 + (seed as usize * 5) % 25;
        let (snapshot, pods) = generated(GeneratorConfig {
            nodes,
            pods_per_node,
            seed,
            pending_pods: 5,
        });
        for pod in &pods {
            assert_same(
                &snapshot,
                pod,
                &format!("seed {seed}, {} nodes, pod {}", nodes, pod.name),
            );
        }
    }
}

/// `decide_on_this_thread` off the pool runs every pass on the calling thread: with
/// every worker of the pool held busy, decisions on a cluster big enough for the pool
/// to split its passes (filters, scores, spread counts, inter-pod affinity, preemption
/// dry runs) still finish, and agree with `decide_with`'s on the pool.
#[test]
fn a_decision_off_the_pool_leaves_the_pool_alone() {
    let (snapshot, pods) = generated(GeneratorConfig {
        nodes: 600,
        pods_per_node: 20,
        seed: 5,
        pending_pods: 5,
    });
    let snapshot = Arc::new(snapshot);
    let workers = rayon::current_num_threads();
    let (started_tx, started) = mpsc::channel();
    let release = Arc::new(Barrier::new(workers + 1));
    for _ in 0..workers {
        let (started_tx, release) = (started_tx.clone(), Arc::clone(&release));
        rayon::spawn(move || {
            started_tx.send(()).unwrap();
            release.wait();
        });
    }
    for _ in 0..workers {
        started.recv().unwrap();
    }
    let (decided_tx, decided) = mpsc::channel();
    let off_pool = {
        let (snapshot, pods) = (Arc::clone(&snapshot), pods.clone());
        std::thread::spawn(move || {
            for pod in &pods {
                for options in [Options::ANSWER, Options::EXPLAINED] {
                    let d = decide_on_this_thread(&snapshot, pod, options, None);
                    decided_tx.send(as_json(&d)).unwrap();
                }
            }
        })
    };
    let mut off = Vec::new();
    let mut stuck = false;
    for _ in 0..pods.len() * 2 {
        match decided.recv_timeout(Duration::from_secs(60)) {
            Ok(d) => off.push(d),
            Err(_) => {
                stuck = true;
                break;
            }
        }
    }
    release.wait();
    assert!(
        !stuck,
        "a decision off the pool waited for the pool's workers"
    );
    off_pool.join().unwrap();
    let mut on_pool = Vec::new();
    for pod in &pods {
        for options in [Options::ANSWER, Options::EXPLAINED] {
            on_pool.push(as_json(&decide_with(&snapshot, pod, options)));
        }
    }
    assert_eq!(off.len(), on_pool.len());
    for (i, (off, on)) in off.iter().zip(&on_pool).enumerate() {
        assert_eq!(
            off,
            on,
            "pod {}: off the pool and on it, decisions differ",
            pods[i / 2].name
        );
    }
}

/// Decisions in sequence (PlaceBatch, PendingPods): the fast path reuses the node-local
/// plugins' results across pods of one template on every node a placement left alone,
/// and must still decide every pod as the straightforward evaluation does.
/// The cluster after the writer's round `round` of changes: bound pods leave and
/// arrive, a node is cordoned, one tainted, one relabelled, one heartbeats unchanged,
/// and every third round a node joins (the memo starts over) or leaves again.
fn changed(snapshot: &Snapshot, pods: &[Pod], round: usize) -> Snapshot {
    let n = snapshot.nodes.len();
    let at = |k: usize| &snapshot.nodes[(round * 7 + k) % n];
    let mut edit = snapshot.edit();
    for k in 0..3 {
        if let Some(p) = at(k).pods.first() {
            edit.remove_pod(&p.pod);
        }
        let mut arriving = pods[(round + k) % pods.len()].clone();
        arriving.name = format!("arrived-{round}-{k}");
        arriving.uid = format!("arrived-{round}-{k}");
        arriving.node_name = Some(at(k + 3).name().to_string());
        edit.add_pod(arriving);
    }
    let mut cordoned = Node::clone(&at(6).node);
    cordoned.unschedulable = !cordoned.unschedulable;
    edit.upsert_node(cordoned);
    let mut tainted = Node::clone(&at(7).node);
    tainted.taints.push(Taint {
        key: format!("memo-{round}"),
        value: String::new(),
        effect: [TaintEffect::NoSchedule, TaintEffect::PreferNoSchedule][round % 2],
    });
    edit.upsert_node(tainted);
    let mut relabelled = Node::clone(&at(8).node);
    relabelled.labels = relabelled
        .labels
        .iter()
        .filter(|(k, _)| !k.contains("zone"))
        .collect();
    edit.upsert_node(relabelled);
    edit.upsert_node(Node::clone(&at(9).node));
    match round % 3 {
        1 => {
            let mut joining = Node::clone(&at(10).node);
            joining.name = "memo-joined".to_string();
            edit.upsert_node(joining);
        }
        2 => {
            edit.remove_node("memo-joined");
        }
        _ => {}
    }
    edit.finish()
}

/// A memo kept from call to call (as the service keeps one per cluster and thread),
/// bounded below the number of pod shapes (templates come and go) or above it, decides
/// as the straightforward evaluation does while the cluster changes under it.
#[test]
fn a_memo_kept_across_calls_decides_the_same_as_the_cluster_changes() {
    let budgets = [
        (5u64, TemplateBudget::templates(3)),
        (9, TemplateBudget::templates(64)),
        // 5 templates on 40 nodes, 4 once a node joins.
        (
            13,
            TemplateBudget {
                rows: 200,
                fewest: 2,
                most: 64,
            },
        ),
    ];
    for (seed, budget) in budgets {
        let (mut snapshot, pods) = generated(GeneratorConfig {
            nodes: 40,
            pods_per_node: 12,
            seed,
            pending_pods: 5,
        });
        let mut memo = NodeLocalMemo::bounded(budget);
        for round in 0..6 {
            for pod in &pods {
                for (options, reference) in [
                    (Options::EXPLAINED, STRAIGHTFORWARD),
                    (Options::ANSWER, STRAIGHTFORWARD_ANSWER),
                ] {
                    let remembered =
                        decide_on_this_thread(&snapshot, pod, options, Some(&mut memo));
                    assert_eq!(
                        as_json(&remembered),
                        as_json(&decide_with(&snapshot, pod, reference)),
                        "seed {seed}, round {round}, pod {}, explained: {}",
                        pod.name,
                        options.explain
                    );
                }
            }
            snapshot = changed(&snapshot, &pods, round);
        }
    }
}

#[test]
fn sequences_decide_the_same_both_ways() {
    for seed in [3u64, 8, 11] {
        let doc = generate_scenario(&GeneratorConfig {
            nodes: 30 + seed as usize * 4,
            pods_per_node: 25,
            seed,
            pending_pods: 40,
        });
        let scenario = kube::decode_scenario(&doc).unwrap();
        let classes = scenario.cluster.priority_classes.clone();
        let snapshot = Snapshot::build(scenario.cluster).unwrap();
        let mut pods = pending_in_queue_order(&snapshot);
        // A gang of the pending pod's replicas: they fit a while, then must preempt.
        for i in 0..16 {
            let mut p = with_requests(&doc["pod"], json!({"cpu": "1500m", "memory": "3Gi"}));
            p["metadata"]["name"] = json!(format!("gang-{i}"));
            p["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{i:012}"));
            pods.push(kube::decode_pod(&p, &classes).unwrap());
        }
        for (fast, reference) in [
            (Options::EXPLAINED, STRAIGHTFORWARD),
            (Options::ANSWER, STRAIGHTFORWARD_ANSWER),
        ] {
            let fast = place_in_order(&snapshot, &pods, false, fast);
            let reference = place_in_order(&snapshot, &pods, false, reference);
            assert_eq!(fast.len(), reference.len());
            for (i, (f, r)) in fast.iter().zip(&reference).enumerate() {
                assert_eq!(
                    as_json(f),
                    as_json(r),
                    "seed {seed}, pod {i} ({}) of the sequence",
                    pods[i].name
                );
            }
        }
    }
}

/// Nominated pods count on their nodes for the pods placed after them, also when those
/// pods are replicas decided from their template's memo rows (every plugin node-local,
/// asked about again): a third of the nodes hold a nominated pod too big to leave room.
#[test]
fn sequences_with_nominated_pods_decide_the_same_both_ways() {
    let mut doc = generate_scenario(&GeneratorConfig {
        nodes: 36,
        pods_per_node: 12,
        seed: 5,
        pending_pods: 0,
    });
    let pending = doc["pod"].clone();
    let plain = |name: &str, requests: Value| {
        let mut p = with_requests(&pending, requests);
        p["metadata"]["name"] = json!(name);
        p["metadata"]["uid"] = json!(format!("uid-{name}"));
        p["spec"]["topologySpreadConstraints"] = json!([]);
        p["spec"]["affinity"] = Value::Null;
        p
    };
    let nodes: Vec<String> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let nominated: Vec<Value> = nodes
        .iter()
        .step_by(3)
        .map(|node| {
            let mut p = plain(&format!("nominated-{node}"), json!({"cpu": "200"}));
            p["status"] = json!({"nominatedNodeName": node});
            p
        })
        .collect();
    doc["pods"].as_array_mut().unwrap().extend(nominated);
    let scenario = kube::decode_scenario(&doc).unwrap();
    let classes = scenario.cluster.priority_classes.clone();
    let snapshot = Snapshot::build(scenario.cluster).unwrap();
    assert!(!snapshot.nominated_pods(&nodes[0]).is_empty());
    let replicas: Vec<Pod> = (0..30)
        .map(|i| {
            let p = plain(
                &format!("replica-{i}"),
                json!({"cpu": "500m", "memory": "1Gi"}),
            );
            kube::decode_pod(&p, &classes).unwrap()
        })
        .collect();
    for (fast, reference) in [
        (Options::ANSWER, STRAIGHTFORWARD_ANSWER),
        (Options::EXPLAINED, STRAIGHTFORWARD),
    ] {
        let fast = place_in_order(&snapshot, &replicas, false, fast);
        let reference = place_in_order(&snapshot, &replicas, false, reference);
        for (i, (f, r)) in fast.iter().zip(&reference).enumerate() {
            assert_eq!(as_json(f), as_json(r), "replica {i}");
        }
    }
}

#[test]
fn the_pod_count_limit_is_kept_by_the_arithmetic_reprieve() {
    let low = |name: &str, minute: u32| {
        json!({"metadata": {"name": name, "labels": {"app": "low"}},
               "spec": {"nodeName": "n", "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]},
               "status": {"phase": "Running", "startTime": format!("2024-01-01T00:{minute:02}:00Z")}})
    };
    let doc = json!({
        "nodes": [{"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "4"}}}],
        "pods": [low("a", 1), low("b", 2), low("c", 3), low("d", 4)],
        "priorityClasses": [{"metadata": {"name": "high"}, "value": 1000}],
        "pdbs": [{"metadata": {"name": "low", "namespace": "default"},
                  "spec": {"selector": {"matchLabels": {"app": "low"}}}, "status": {"disruptionsAllowed": 0}}],
        "pod": {"metadata": {"name": "p"}, "spec": {"priorityClassName": "high",
                "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]}},
    });
    let scenario = kube::decode_scenario(&doc).unwrap();
    let snapshot = Snapshot::build(scenario.cluster).unwrap();
    let pod = scenario.pod.unwrap();
    assert_same(&snapshot, &pod, "pod-count limit");
    let d = decide_with(&snapshot, &pod, Options::ANSWER);
    let victims = &d.chosen_candidate().expect("preempts").victims;
    // All four are PDB-protected; the least important one goes, and it violates.
    assert_eq!(victims, &["default/d".to_string()]);
    assert_eq!(d.chosen_candidate().unwrap().num_pdb_violations, 1);
}
