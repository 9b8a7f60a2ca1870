//! Property test of incremental ingest: a store fed any sequence of batches (pods added,
//! sent again changed or unchanged, moved, deleted; PDBs added and removed) holds the
//! snapshot that building one from its objects afresh gives: every node's pods with
//! their precomputed parts (budgets, requests, affinity fingerprint) and the node's
//! totals, and every pending pod.
//!
//! Objects are Kubernetes JSON decoded through `preemption_oracle::kube`, applied through
//! `Store`, and compared with `Snapshot::build` of the same objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use preemption_oracle::engine::Snapshot;
use preemption_oracle::engine::snapshot::{NodeInfo, PodInfo};
use preemption_oracle::kube::{decode_cluster, decode_pod};
use preemption_oracle::model::{ClusterObjects, Node, Pod, PodDisruptionBudget};
use preemption_oracle::store::{Batch, Change, Object, ObjectKey, Store};
use proptest::prelude::*;
use serde_json::{Value, json};

const NODES: usize = 3;
const POD_NAMES: usize = 8;
const APPS: [&str; 2] = ["web", "db"];
const NAMESPACES: [&str; 2] = ["default", "team"];

/// One change to the cluster.
#[derive(Debug, Clone)]
enum Op {
    Pod(PodChange),
    DeletePod {
        name: usize,
        namespace: usize,
    },
    /// A PDB `name` in `namespace` selecting `app`.
    Pdb {
        name: usize,
        namespace: usize,
        app: usize,
    },
    DeletePdb {
        name: usize,
        namespace: usize,
    },
}

/// Pod `name` (added, or sent again) in `namespace`, bound to `node` (or pending), with
/// `app` as its label, `cpu` millicores, started or not, with anti-affinity to its own
/// app or not.
#[derive(Debug, Clone)]
struct PodChange {
    name: usize,
    namespace: usize,
    node: Option<usize>,
    app: usize,
    cpu: i64,
    started: bool,
    anti_affinity: bool,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            0..POD_NAMES,
            0..NAMESPACES.len(),
            prop::option::weighted(0.8, 0..NODES),
            0..APPS.len(),
            prop::sample::select(vec![100_i64, 250, 500]),
            any::<bool>(),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(name, namespace, node, app, cpu, started, anti_affinity)| {
                Op::Pod(PodChange { name, namespace, node, app, cpu, started, anti_affinity })
            }),
        2 => (0..POD_NAMES, 0..NAMESPACES.len())
            .prop_map(|(name, namespace)| Op::DeletePod { name, namespace }),
        1 => (0..2_usize, 0..NAMESPACES.len(), 0..APPS.len())
            .prop_map(|(name, namespace, app)| Op::Pdb { name, namespace, app }),
        1 => (0..2_usize, 0..NAMESPACES.len())
            .prop_map(|(name, namespace)| Op::DeletePdb { name, namespace }),
    ]
}

fn node_json(i: usize) -> Value {
    json!({"kind": "Node", "metadata": {"name": format!("n{i}"),
            "labels": {"kubernetes.io/hostname": format!("n{i}")}},
        "status": {"allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"}}})
}

fn pod_json(p: &PodChange) -> Value {
    let (name, namespace, app) = (p.name, NAMESPACES[p.namespace], APPS[p.app]);
    let mut pod = json!({"kind": "Pod",
        "metadata": {"name": format!("p{name}"), "namespace": namespace,
            "uid": format!("{namespace}-p{name}"), "labels": {"app": app}},
        "spec": {"containers": [{"name": "c",
            "resources": {"requests": {"cpu": format!("{}m", p.cpu), "memory": "64Mi"}}}]},
        "status": {}});
    if let Some(node) = p.node {
        pod["spec"]["nodeName"] = json!(format!("n{node}"));
    }
    if p.started {
        pod["status"]["startTime"] = json!("2026-01-01T00:00:00Z");
    }
    if p.anti_affinity {
        pod["spec"]["affinity"] = json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"app": app}},
                "topologyKey": "kubernetes.io/hostname"}]}});
    }
    pod
}

fn pdb_json(name: usize, namespace: usize, app: usize) -> Value {
    json!({"kind": "PodDisruptionBudget",
        "metadata": {"name": format!("b{name}"), "namespace": NAMESPACES[namespace]},
        "spec": {"selector": {"matchLabels": {"app": APPS[app]}}},
        "status": {"disruptionsAllowed": 1}})
}

fn decoded_pdb(doc: Value) -> PodDisruptionBudget {
    let mut objects = decode_cluster(&json!({"pdbs": [doc]})).expect("PDB decodes");
    objects.pdbs.remove(0)
}

/// What the store should hold: objects by key.
#[derive(Default)]
struct Expected {
    pods: BTreeMap<(usize, usize), Pod>,
    pdbs: BTreeMap<(usize, usize), PodDisruptionBudget>,
}

impl Expected {
    /// Records `op` and returns the store change it makes.
    fn change(&mut self, op: &Op) -> Change {
        match *op {
            Op::Pod(ref p) => {
                let pod = decode_pod(&pod_json(p), &[]).expect("pod decodes");
                self.pods.insert((p.namespace, p.name), pod.clone());
                Change::Upsert(Object::Pod(Arc::new(pod)))
            }
            Op::DeletePod { name, namespace } => {
                self.pods.remove(&(namespace, name));
                Change::Delete(ObjectKey::Pod {
                    namespace: NAMESPACES[namespace].to_string(),
                    name: format!("p{name}"),
                })
            }
            Op::Pdb {
                name,
                namespace,
                app,
            } => {
                let pdb = decoded_pdb(pdb_json(name, namespace, app));
                self.pdbs.insert((namespace, name), pdb.clone());
                Change::Upsert(Object::PodDisruptionBudget(pdb))
            }
            Op::DeletePdb { name, namespace } => {
                self.pdbs.remove(&(namespace, name));
                Change::Delete(ObjectKey::PodDisruptionBudget {
                    namespace: NAMESPACES[namespace].to_string(),
                    name: format!("b{name}"),
                })
            }
        }
    }

    fn snapshot(&self, nodes: &[Node]) -> Snapshot {
        Snapshot::build(ClusterObjects {
            nodes: nodes.to_vec(),
            pods: self.pods.values().cloned().collect(),
            pdbs: self.pdbs.values().cloned().collect(),
            ..ClusterObjects::default()
        })
        .expect("the expected cluster builds")
    }
}

/// A pod with what the snapshot precomputed for it, comparable across snapshots.
fn pod_view(p: &PodInfo) -> impl PartialEq + std::fmt::Debug + Ord {
    let mut pdbs: Vec<String> = p
        .pdbs
        .iter()
        .map(|b| format!("{}/{}", b.namespace, b.name))
        .collect();
    pdbs.sort();
    (
        p.pod.key(),
        format!("{:?}", p.pod),
        pdbs,
        format!("{:?}", p.requests),
        (p.non_zero_cpu, p.non_zero_memory),
        p.affinity_fingerprint != 0,
    )
}

/// A node's pods (in key order) and totals.
fn node_view(n: &NodeInfo) -> impl PartialEq + std::fmt::Debug {
    let mut pods: Vec<_> = n.pods.iter().map(|p| pod_view(p)).collect();
    pods.sort();
    let mut with_affinity: Vec<String> = n.pods_with_affinity.iter().map(|p| p.pod.key()).collect();
    with_affinity.sort();
    (
        n.name().to_string(),
        pods,
        format!("{:?}", n.requested),
        (n.non_zero_cpu, n.non_zero_memory),
        with_affinity,
        n.label_counts.clone(),
    )
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_store_holds_the_snapshot_a_rebuild_gives(
        batches in prop::collection::vec(prop::collection::vec(op(), 1..5), 1..12),
    ) {
        let nodes: Vec<Node> = (0..NODES)
            .map(|i| {
                let objects = decode_cluster(&json!({"nodes": [node_json(i)]})).expect("node");
                objects.nodes[0].clone()
            })
            .collect();
        let store = Store::new();
        let state = store.cluster_or_create("");
        state.apply(Batch {
            changes: nodes.iter().cloned().map(|n| Change::Upsert(Object::Node(Arc::new(n)))).collect(),
            ..Batch::default()
        });
        let mut expected = Expected::default();
        for ops in &batches {
            let changes = ops.iter().map(|op| expected.change(op)).collect();
            state.apply(Batch { changes, ..Batch::default() });

            let held = state.published().snapshot.clone();
            let rebuilt = expected.snapshot(&nodes);
            for (h, r) in held.nodes.iter().zip(rebuilt.nodes.iter()) {
                prop_assert_eq!(node_view(h), node_view(r));
            }
            for pod in expected.pods.values().filter(|p| p.node_name.is_none()) {
                let h = held.find_unbound_pod(pod).map(|p| pod_view(p));
                let r = rebuilt.find_unbound_pod(pod).map(|p| pod_view(p));
                prop_assert!(h.is_some(), "pending pod {} is held", pod.key());
                prop_assert_eq!(h, r);
            }
        }
    }
}
