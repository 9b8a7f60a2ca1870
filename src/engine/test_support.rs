//! Test-only builders shared by the engine's unit tests.
//!
//! Objects are written as the Kubernetes JSON `kubectl get -o json` prints, decoded
//! through [`crate::kube`] and assembled into a [`Snapshot`], so every unit test also
//! exercises the real decoding path. Builders return `serde_json::Value`s that tests
//! refine with [`merge`] (a recursive JSON merge: objects merge, everything else is
//! replaced, `null` deletes a key).

use serde_json::{Map, Value, json};

use super::decision::{Decision, NodeVerdict};
use super::framework::{PreFilterOutcome, run_pre_filter};
use super::plugins::FilterPlugin;
use super::snapshot::{PodInfo, Snapshot};
use super::status::{Code, Status};
use crate::kube::{decode_cluster, decode_pod};
use crate::model::Pod;

/// The image every builder pod runs.
pub const APP_IMAGE: &str = "registry.example/app:1.0";

/// Recursively merges `patch` into `base` (JSON merge patch, RFC 7386).
pub fn merge(mut base: Value, patch: Value) -> Value {
    merge_into(&mut base, patch);
    base
}

fn merge_into(base: &mut Value, patch: Value) {
    match patch {
        Value::Object(patch) => {
            if !base.is_object() {
                *base = Value::Object(Map::new());
            }
            let target = base.as_object_mut().expect("object");
            for (k, v) in patch {
                if v.is_null() {
                    target.remove(&k);
                } else {
                    merge_into(target.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        other => *base = other,
    }
}

/// A Ready node with `kubernetes.io/hostname` set and the given allocatable.
pub fn node(name: &str, cpu: &str, memory: &str, pods: u32) -> Value {
    let alloc = json!({"cpu": cpu, "memory": memory, "pods": pods.to_string()});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {"allocatable": alloc.clone(), "capacity": alloc},
    })
}

/// Adds labels to a node or pod.
pub fn labeled(object: Value, labels: Value) -> Value {
    merge(object, json!({"metadata": {"labels": labels}}))
}

/// Replaces a node's taints.
pub fn tainted(node: Value, taints: Value) -> Value {
    merge(node, json!({"spec": {"taints": taints}}))
}

/// A pending pod in `default` with one container requesting `cpu` and `memory`
/// (an empty string leaves that request out).
pub fn pod(name: &str, cpu: &str, memory: &str) -> Value {
    let mut requests = Map::new();
    if !cpu.is_empty() {
        requests.insert("cpu".into(), json!(cpu));
    }
    if !memory.is_empty() {
        requests.insert("memory".into(), json!(memory));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {
            "containers": [{
                "name": "app",
                "image": APP_IMAGE,
                "resources": {"requests": Value::Object(requests)},
            }],
        },
        "status": {"phase": "Pending"},
    })
}

/// Moves a pod to another namespace.
pub fn in_namespace(pod: Value, namespace: &str) -> Value {
    merge(pod, json!({"metadata": {"namespace": namespace}}))
}

/// Binds a pod to `node` (running).
pub fn bound(pod: Value, node: &str) -> Value {
    merge(
        pod,
        json!({"spec": {"nodeName": node}, "status": {"phase": "Running"}}),
    )
}

/// A pod nominated to `node` by an earlier preemption (not bound).
pub fn nominated(pod: Value, node: &str) -> Value {
    merge(pod, json!({"status": {"nominatedNodeName": node}}))
}

/// Sets the admitted priority (`spec.priority`, as the API server stores it).
pub fn prio(pod: Value, priority: i32) -> Value {
    merge(pod, json!({"spec": {"priority": priority}}))
}

/// Sets `spec.priorityClassName`.
pub fn class(pod: Value, name: &str) -> Value {
    merge(pod, json!({"spec": {"priorityClassName": name}}))
}

/// Sets `status.startTime` (RFC 3339).
pub fn started(pod: Value, time: &str) -> Value {
    merge(pod, json!({"status": {"startTime": time}}))
}

/// Marks a pod as terminating because an earlier preemption evicted it.
pub fn preempted_terminating(pod: Value) -> Value {
    merge(
        pod,
        json!({
            "metadata": {"deletionTimestamp": "2024-05-01T12:00:00Z"},
            "status": {"conditions": [{
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "PreemptionByScheduler",
            }]},
        }),
    )
}

/// A `policy/v1` PodDisruptionBudget selecting `match_labels` in `namespace`.
pub fn pdb(name: &str, namespace: &str, match_labels: Value, disruptions_allowed: i32) -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": match_labels}},
        "status": {"disruptionsAllowed": disruptions_allowed, "currentHealthy": 1,
                   "desiredHealthy": 1, "expectedPods": 1},
    })
}

/// A PriorityClass.
pub fn priority_class(name: &str, value: i32) -> Value {
    json!({
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
    })
}

/// A Namespace with labels.
pub fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

/// Decodes a scenario-shaped document into a snapshot.
pub fn cluster_doc(doc: &Value) -> Snapshot {
    let objects = decode_cluster(doc).unwrap_or_else(|e| panic!("decode: {e}"));
    Snapshot::build(objects).expect("snapshot")
}

/// Decodes nodes, pods, PDBs and priority classes into a snapshot.
pub fn cluster(
    nodes: Vec<Value>,
    pods: Vec<Value>,
    pdbs: Vec<Value>,
    classes: Vec<Value>,
) -> Snapshot {
    cluster_doc(&json!({"nodes": nodes, "pods": pods, "pdbs": pdbs, "priorityClasses": classes}))
}

/// Nodes and pods only.
pub fn snapshot(nodes: Vec<Value>, pods: Vec<Value>) -> Snapshot {
    cluster(nodes, pods, Vec::new(), Vec::new())
}

/// Decodes the pending pod against the snapshot's priority classes.
pub fn pending(snapshot: &Snapshot, pod: &Value) -> Pod {
    decode_pod(pod, &snapshot.priority_classes()).unwrap_or_else(|e| panic!("decode pod: {e}"))
}

/// Decodes `pod` and decides it on `snapshot`.
pub fn decide_json(snapshot: &Snapshot, pod: &Value) -> Decision {
    super::decide(snapshot, &pending(snapshot, pod))
}

/// Runs PreFilter for `pod` and hands the outcome to `f`.
pub fn with_pre_filter<R>(
    snapshot: &Snapshot,
    pod: &Value,
    f: impl FnOnce(&PreFilterOutcome<'_>) -> R,
) -> R {
    let info = PodInfo::new(pending(snapshot, pod), Vec::new());
    let pre = run_pre_filter(snapshot, &info, super::Evaluation::Fast, None);
    f(&pre)
}

/// Runs one Filter plugin on one node after PreFilter (no nominated pods).
pub fn run_filter(
    snapshot: &Snapshot,
    pod: &Value,
    plugin: &dyn FilterPlugin,
    node: &str,
) -> Option<Status> {
    with_pre_filter(snapshot, pod, |pre| {
        let i = snapshot.node_index(node).expect("unknown node");
        plugin.filter(&pre.state, &snapshot.nodes[i], i)
    })
}

/// The decision's verdict for `node`.
pub fn verdict<'a>(d: &'a Decision, node: &str) -> &'a NodeVerdict {
    d.filter
        .get(node)
        .unwrap_or_else(|| panic!("no verdict for {node}"))
}

/// Asserts that `node` passed every filter.
#[track_caller]
pub fn assert_feasible(d: &Decision, node: &str) {
    let v = verdict(d, node);
    assert!(v.feasible, "{node} should be feasible, got {v:?}");
}

/// Asserts a Filter rejection with its code, plugin and exact reasons.
#[track_caller]
pub fn assert_rejected(d: &Decision, node: &str, code: Code, plugin: &str, reasons: &[&str]) {
    let v = verdict(d, node);
    assert!(!v.feasible, "{node} should be rejected");
    assert_eq!(v.code.as_deref(), Some(code.as_str()), "{node}: {v:?}");
    assert_eq!(v.plugin.as_deref(), Some(plugin), "{node}: {v:?}");
    let want: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
    assert_eq!(v.reasons.as_ref(), Some(&want), "{node}: {v:?}");
    assert_eq!(v.source, Some("Filter"), "{node}: {v:?}");
}

/// A feasible node's weighted score from `plugin`, `None` when the plugin skipped.
pub fn plugin_score(d: &Decision, node: &str, plugin: &str) -> Option<i64> {
    d.scores
        .get(node)
        .unwrap_or_else(|| panic!("{node} has no scores"))
        .plugins
        .get(plugin)
        .copied()
}

/// The victims reported for a candidate node, or `None` when it is not a candidate.
pub fn victims(d: &Decision, node: &str) -> Option<Vec<String>> {
    d.preemption
        .as_ref()
        .expect("no preemption")
        .candidates
        .iter()
        .find(|c| c.node == node)
        .map(|c| c.victims.clone())
}

/// Owned strings, for comparisons.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_recursive_and_null_deletes() {
        let v = merge(
            json!({"a": {"b": 1, "c": 2}, "d": [1, 2]}),
            json!({"a": {"b": 3, "c": null}, "d": [9]}),
        );
        assert_eq!(v, json!({"a": {"b": 3}, "d": [9]}));
    }

    #[test]
    fn builders_decode() {
        let s = cluster(
            vec![node("n1", "2", "4Gi", 10)],
            vec![prio(bound(pod("p", "500m", "1Gi"), "n1"), 7)],
            vec![pdb("b", "default", json!({"app": "x"}), 1)],
            vec![priority_class("high", 1000)],
        );
        assert_eq!(s.nodes[0].requested.milli_cpu, 500);
        assert_eq!(s.nodes[0].pods[0].pod.priority, 7);
        assert_eq!(
            pending(&s, &class(pod("q", "1", ""), "high")).priority,
            1000
        );
    }
}
