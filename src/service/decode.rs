//! Requests → model: Kubernetes JSON/YAML or native messages, validated through
//! `crate::kube`. Every error is `INVALID_ARGUMENT` naming the offending field path,
//! e.g. ``changes[3].upsert: field `spec.containers[0].resources.requests.cpu`: …``.

use std::sync::Arc;

use tonic::Status;

use super::{native, pb};
use crate::kube::{DecodeError, Native, RawObject, Refusal};
use crate::model::{Node, Pod, PriorityClass};
use crate::store::{Batch, Change, Kind, Object, ObjectKey};

fn invalid(path: &str, e: DecodeError) -> Status {
    Status::invalid_argument(format!("{path}: {e}"))
}

/// The object at `path` refused: its text (the field `json`), or one of its fields.
fn refused(path: &str, refusal: Refusal) -> Status {
    match refusal {
        Refusal::Text(e) => invalid(&format!("{path}.json"), e),
        Refusal::Field(e) => invalid(path, e),
    }
}

/// The object of a request, its kind read; JSON text is borrowed, not parsed into a value.
fn raw_object<'a>(o: &'a pb::KubeObject, path: &str) -> Result<RawObject<'a>, Status> {
    match &o.object {
        Some(pb::kube_object::Object::Json(text)) => {
            RawObject::parse(text).map_err(|e| refused(path, Refusal::Text(e)))
        }
        Some(pb::kube_object::Object::Node(n)) => {
            Ok(RawObject::native(Native::Node(native::node(n))))
        }
        Some(pb::kube_object::Object::Pod(p)) => Ok(RawObject::native(Native::Pod(native::pod(p)))),
        Some(pb::kube_object::Object::PodDisruptionBudget(b)) => Ok(RawObject::native(
            Native::PodDisruptionBudget(native::pdb(b)),
        )),
        Some(pb::kube_object::Object::PriorityClass(c)) => Ok(RawObject::native(
            Native::PriorityClass(native::priority_class(c)),
        )),
        Some(pb::kube_object::Object::Namespace(n)) => {
            Ok(RawObject::native(Native::Namespace(native::namespace(n))))
        }
        None => Err(Status::invalid_argument(format!("{path}: no object"))),
    }
}

/// Decodes one node (e.g. a what-if template).
pub fn node(o: &pb::KubeObject, path: &str) -> Result<Node, Status> {
    raw_object(o, path)?.node().map_err(|e| refused(path, e))
}

/// Decodes a pod input against the cluster's priority classes.
pub fn pod(
    input: &Option<pb::PodInput>,
    classes: &[PriorityClass],
    path: &str,
) -> Result<Pod, Status> {
    let raw = match input.as_ref().and_then(|p| p.pod.as_ref()) {
        Some(pb::pod_input::Pod::Json(text)) => {
            RawObject::parse(text).map_err(|e| refused(path, Refusal::Text(e)))?
        }
        Some(pb::pod_input::Pod::Native(p)) => RawObject::native(Native::Pod(native::pod(p))),
        None => return Err(Status::invalid_argument(format!("{path}: is required"))),
    };
    raw.pod(classes)
        .map(|(pod, _terminal)| pod)
        .map_err(|e| refused(path, e))
}

fn key(r: &pb::ObjectRef, path: &str) -> Result<ObjectKey, Status> {
    let missing = || Status::invalid_argument(format!("{path}.name: is required"));
    if r.name.is_empty() {
        return Err(missing());
    }
    let namespace = if r.namespace.is_empty() {
        "default".to_string()
    } else {
        r.namespace.clone()
    };
    let name = r.name.clone();
    Ok(match kind(r.kind, &format!("{path}.kind"))? {
        Kind::Node => ObjectKey::Node(name),
        Kind::Pod => ObjectKey::Pod { namespace, name },
        Kind::PodDisruptionBudget => ObjectKey::PodDisruptionBudget { namespace, name },
        Kind::PriorityClass => ObjectKey::PriorityClass(name),
        Kind::Namespace => ObjectKey::Namespace(name),
    })
}

fn kind(value: i32, path: &str) -> Result<Kind, Status> {
    match pb::Kind::try_from(value).unwrap_or(pb::Kind::Unspecified) {
        pb::Kind::Node => Ok(Kind::Node),
        pb::Kind::Pod => Ok(Kind::Pod),
        pb::Kind::PodDisruptionBudget => Ok(Kind::PodDisruptionBudget),
        pb::Kind::PriorityClass => Ok(Kind::PriorityClass),
        pb::Kind::Namespace => Ok(Kind::Namespace),
        pb::Kind::Unspecified => Err(Status::invalid_argument(format!(
            "{path}: must be a kind, not {value}"
        ))),
    }
}

fn replace_kinds(values: &[i32]) -> Result<Vec<Kind>, Status> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| kind(*v, &format!("replace_kinds[{i}]")))
        .collect()
}

/// The change a rejected batch names: its error starts `changes[N]`. A feeder drops that
/// one object and sends the rest.
pub fn rejected_change(status: &Status) -> Option<usize> {
    if status.code() != tonic::Code::InvalidArgument {
        return None;
    }
    let rest = status.message().strip_prefix("changes[")?;
    rest[..rest.find(']')?].parse().ok()
}

/// The path of the `i`th upsert of a batch, for its errors.
fn upsert_path(i: usize) -> String {
    format!("changes[{i}].upsert")
}

/// Decodes and validates a whole batch; nothing is applied unless every change is good.
/// Priority classes in the batch count when resolving the priority of its pods.
pub fn batch(
    req: &pb::SyncStateRequest,
    existing_classes: Vec<PriorityClass>,
) -> Result<Batch, Status> {
    // First pass: read every upsert's kind (JSON text stays text).
    let mut parsed: Vec<Result<RawObject, ObjectKey>> = Vec::with_capacity(req.changes.len());
    for (i, change) in req.changes.iter().enumerate() {
        match &change.change {
            Some(pb::object_change::Change::Upsert(o)) => {
                let raw = raw_object(o, &upsert_path(i))?;
                if raw.kind().is_none() {
                    return Err(Status::invalid_argument(format!(
                        "{}.kind: is required",
                        upsert_path(i)
                    )));
                }
                parsed.push(Ok(raw));
            }
            Some(pb::object_change::Change::Delete(r)) => {
                parsed.push(Err(key(r, &format!("changes[{i}].delete"))?))
            }
            None => return Err(Status::invalid_argument(format!("changes[{i}]: no change"))),
        }
    }
    // Priority classes of this batch resolve its pods' priorities.
    let mut classes = if req.replace {
        Vec::new()
    } else {
        existing_classes
    };
    for (i, p) in parsed.iter().enumerate() {
        if let Ok(raw) = p
            && raw.kind() == Some("PriorityClass")
        {
            let c = raw
                .priority_class()
                .map_err(|e| refused(&upsert_path(i), e))?;
            classes.retain(|x| x.name != c.name);
            classes.push(c);
        }
    }
    // Each object decodes on its own: big batches (an initial sync, a re-list, a stream's
    // next batch while the pool applies the one before) are shared out between this
    // thread and the pool's free workers. The first refused object, in batch order,
    // names the error.
    let decode = |i, p: &_| change(i, p, &classes);
    let changes: Vec<Change> = if parsed.len() >= PARALLEL_DECODE_FROM {
        crate::pool::share_out(&parsed, decode)
            .into_iter()
            .collect::<Result<_, _>>()?
    } else {
        parsed
            .iter()
            .enumerate()
            .map(|(i, p)| decode(i, p))
            .collect::<Result<_, _>>()?
    };
    Ok(Batch {
        replace: req.replace,
        replace_kinds: replace_kinds(&req.replace_kinds)?,
        changes,
    })
}

/// Batches from this many objects up decode in parallel.
const PARALLEL_DECODE_FROM: usize = 64;

/// The change the `i`th entry of a batch makes, its pod priorities resolved by
/// `classes`.
fn change(
    i: usize,
    parsed: &Result<RawObject, ObjectKey>,
    classes: &[PriorityClass],
) -> Result<Change, Status> {
    let raw = match parsed {
        Ok(raw) => raw,
        Err(k) => return Ok(Change::Delete(k.clone())),
    };
    let at = |e| refused(&upsert_path(i), e);
    let object = match raw.kind().unwrap_or_default() {
        "Pod" => {
            let (pod, terminal) = raw.pod(classes).map_err(at)?;
            if terminal {
                // Finished pods hold nothing: as in the scheduler's cache, they leave.
                return Ok(Change::Delete(ObjectKey::Pod {
                    namespace: pod.namespace,
                    name: pod.name,
                }));
            }
            Object::Pod(Arc::new(pod))
        }
        "Node" => Object::Node(Arc::new(raw.node().map_err(at)?)),
        "PodDisruptionBudget" => Object::PodDisruptionBudget(raw.pdb().map_err(at)?),
        "PriorityClass" => Object::PriorityClass(raw.priority_class().map_err(at)?),
        "Namespace" => Object::Namespace(raw.namespace().map_err(at)?),
        other => {
            return Err(Status::invalid_argument(format!(
                "{}.kind: unsupported kind {other:?}",
                upsert_path(i)
            )));
        }
    };
    Ok(Change::Upsert(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_upsert(v: serde_json::Value) -> pb::ObjectChange {
        pb::ObjectChange {
            change: Some(pb::object_change::Change::Upsert(pb::KubeObject {
                object: Some(pb::kube_object::Object::Json(v.to_string())),
            })),
        }
    }

    #[test]
    fn a_refused_batch_names_the_change_a_feeder_drops() {
        let good = serde_json::json!({"kind": "Node", "metadata": {"name": "n1"}});
        let bad = serde_json::json!({"kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "lots"}}}]}});
        let req = pb::SyncStateRequest {
            changes: vec![
                json_upsert(good.clone()),
                json_upsert(good),
                json_upsert(bad),
            ],
            ..Default::default()
        };
        let status = batch(&req, Vec::new()).unwrap_err();
        assert_eq!(rejected_change(&status), Some(2), "{}", status.message());
        assert_eq!(rejected_change(&Status::unavailable("changes[1]")), None);
    }

    #[test]
    fn replace_kinds_must_name_kinds() {
        let req = pb::SyncStateRequest {
            replace_kinds: vec![pb::Kind::Pod as i32, 0],
            ..Default::default()
        };
        let status = batch(&req, Vec::new()).unwrap_err();
        assert!(
            status.message().starts_with("replace_kinds[1]"),
            "{}",
            status.message()
        );
        assert_eq!(rejected_change(&status), None);
    }
    fn text_upsert(text: &str) -> pb::ObjectChange {
        pb::ObjectChange {
            change: Some(pb::object_change::Change::Upsert(pb::KubeObject {
                object: Some(pb::kube_object::Object::Json(text.to_string())),
            })),
        }
    }

    fn refusal(changes: Vec<pb::ObjectChange>) -> String {
        let req = pb::SyncStateRequest {
            changes,
            ..Default::default()
        };
        batch(&req, Vec::new()).unwrap_err().message().to_string()
    }

    #[test]
    fn a_big_batch_decodes_in_parallel_in_order_and_names_its_first_refusal() {
        let pod = |k: usize, cpu: &str| {
            json_upsert(serde_json::json!({"kind": "Pod",
                "metadata": {"name": format!("p{k}"), "namespace": "default"},
                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}))
        };
        let size = 4 * PARALLEL_DECODE_FROM;
        let good: Vec<_> = (0..size).map(|k| pod(k, "100m")).collect();
        let req = pb::SyncStateRequest {
            changes: good.clone(),
            ..Default::default()
        };
        let names: Vec<String> = batch(&req, Vec::new())
            .expect("a good batch")
            .changes
            .into_iter()
            .map(|c| match c {
                Change::Upsert(Object::Pod(p)) => p.name.clone(),
                _ => panic!("not a pod upsert"),
            })
            .collect();
        let in_order: Vec<String> = (0..size).map(|k| format!("p{k}")).collect();
        assert_eq!(names, in_order);
        // Two refusals: the first in batch order names the error, whichever thread
        // decoded it.
        let (first, second) = (size - PARALLEL_DECODE_FROM, size - 1);
        let mut bad = good;
        bad[second] = pod(second, "lots");
        bad[first] = pod(first, "plenty");
        let message = refusal(bad);
        assert!(
            message.starts_with(&format!(
                "changes[{first}].upsert: field `spec.containers[0].resources.requests.cpu`: "
            )),
            "{message}"
        );
    }

    #[test]
    fn errors_in_json_text_name_the_change_and_the_field() {
        let node = json_upsert(serde_json::json!({"kind": "Node", "metadata": {"name": "n1"}}));
        let bad_cpu = serde_json::json!({"kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "lots"}}}]}});
        let message = refusal(vec![node.clone(), json_upsert(bad_cpu)]);
        assert!(
            message.starts_with(
                "changes[1].upsert: field `spec.containers[0].resources.requests.cpu`: "
            ),
            "{message}"
        );
        // A field of the wrong type: the same words as from a value, no text position.
        let bad_effect = serde_json::json!({"kind": "Node", "metadata": {"name": "n2"},
            "spec": {"taints": [{"key": "k", "effect": 7}]}});
        assert_eq!(
            refusal(vec![node.clone(), json_upsert(bad_effect)]),
            "changes[1].upsert: field `spec.taints[0].effect`: invalid type: integer `7`, expected a string"
        );
        let bad_quantity = serde_json::json!({"kind": "Node", "metadata": {"name": "n2"},
            "status": {"allocatable": {"cpu": true}}});
        assert_eq!(
            refusal(vec![json_upsert(bad_quantity)]),
            "changes[0].upsert: field `status.allocatable.cpu`: invalid type: boolean `true`, expected a quantity (a string or a number)"
        );
        let message = refusal(vec![node.clone(), text_upsert(r#"{"kind": "Pod", "#)]);
        assert!(
            message.starts_with("changes[1].upsert.json: invalid JSON: "),
            "{message}"
        );
        for no_kind in [r#"{"metadata": {"name": "x"}}"#, r#"{"kind": 7}"#, "[1, 2]"] {
            assert_eq!(
                refusal(vec![node.clone(), text_upsert(no_kind)]),
                "changes[1].upsert.kind: is required",
                "{no_kind}"
            );
        }
        assert_eq!(
            refusal(vec![text_upsert(r#"{"kind": "Service"}"#)]),
            "changes[0].upsert.kind: unsupported kind \"Service\""
        );
    }

    #[test]
    fn json_and_yaml_text_decode_alike() {
        let json = r#"{"kind": "Node", "metadata": {"name": "n1"},
            "status": {"allocatable": {"cpu": 2, "memory": "1Gi", "pods": 110, "example.com/gpu": 0.5}}}"#;
        let yaml = "kind: Node\nmetadata: {name: n1}\nstatus:\n  allocatable: {cpu: 2, memory: 1Gi, pods: 110, example.com/gpu: 0.5}\n";
        let decoded = |text: &str| {
            let req = pb::SyncStateRequest {
                changes: vec![text_upsert(text)],
                ..Default::default()
            };
            match batch(&req, Vec::new()).unwrap().changes.remove(0) {
                Change::Upsert(Object::Node(n)) => n,
                other => panic!("not a node: {other:?}"),
            }
        };
        let (from_json, from_yaml) = (decoded(json), decoded(yaml));
        assert_eq!(from_json.allocatable.milli_cpu, 2000);
        assert_eq!(from_json.allowed_pods, 110);
        assert_eq!(from_json.allocatable, from_yaml.allocatable);
        assert_eq!(from_json.allowed_pods, from_yaml.allowed_pods);
    }

    #[test]
    fn a_batch_resolves_its_own_classes_and_turns_finished_pods_into_deletes() {
        let class = serde_json::json!({"kind": "PriorityClass", "metadata": {"name": "gold"},
            "value": 1000});
        let pod = |name: &str, phase: &str| {
            serde_json::json!({"kind": "Pod", "metadata": {"name": name, "namespace": "web"},
                "spec": {"priorityClassName": "gold", "containers": [{"name": "c"}]},
                "status": {"phase": phase}})
        };
        let req = pb::SyncStateRequest {
            changes: vec![
                json_upsert(pod("running", "Running")),
                json_upsert(pod("done", "Succeeded")),
                json_upsert(class),
            ],
            ..Default::default()
        };
        let changes = batch(&req, Vec::new()).unwrap().changes;
        match &changes[0] {
            Change::Upsert(Object::Pod(p)) => assert_eq!(p.priority, 1000),
            other => panic!("not a pod: {other:?}"),
        }
        assert!(
            matches!(&changes[1], Change::Delete(ObjectKey::Pod { namespace, name })
                if namespace == "web" && name == "done"),
            "{:?}",
            changes[1]
        );
        assert!(matches!(&changes[2], Change::Upsert(Object::PriorityClass(c)) if c.value == 1000));
    }

    /// A native pod using every field of the message, and the same pod as Kubernetes
    /// JSON.
    fn rich_pod(cpu: &str) -> (pb::Pod, serde_json::Value) {
        let map = |pairs: &[(&str, &str)]| -> std::collections::HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let strings =
            |items: &[&str]| -> Vec<String> { items.iter().map(|s| s.to_string()).collect() };
        let requirement = |key: &str, operator: &str, values: &[&str]| pb::SelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: strings(values),
        };
        let web = || pb::LabelSelector {
            match_labels: map(&[("app", "web")]),
            match_expressions: vec![requirement("tier", "In", &["front"])],
        };
        let term = |key: &str| pb::PodAffinityTerm {
            label_selector: Some(web()),
            namespaces: strings(&["default", "other"]),
            namespace_selector: Some(pb::LabelSelector::default()),
            topology_key: key.into(),
            match_label_keys: strings(&["pod-template-hash"]),
            mismatch_label_keys: strings(&["team"]),
        };
        let native = pb::Pod {
            namespace: "shop".into(),
            name: "web-1".into(),
            uid: "u-1".into(),
            labels: map(&[("app", "web"), ("tier", "front")]),
            priority_class_name: String::new(),
            priority: None,
            preemption_policy: "Never".into(),
            node_name: "n1".into(),
            nominated_node_name: "n2".into(),
            containers: vec![pb::Container {
                name: "main".into(),
                image: "nginx".into(),
                requests: map(&[("cpu", cpu), ("memory", "128Mi")]),
                limits: map(&[("memory", "256Mi"), ("example.com/gpu", "1")]),
                ports: vec![pb::ContainerPort {
                    container_port: 80,
                    host_port: 8080,
                    host_ip: "10.0.0.1".into(),
                    protocol: "UDP".into(),
                }],
                restart_policy: String::new(),
            }],
            init_containers: vec![pb::Container {
                name: "sidecar".into(),
                image: "envoy:1.30".into(),
                requests: map(&[("cpu", "50m")]),
                restart_policy: "Always".into(),
                ..Default::default()
            }],
            overhead: map(&[("cpu", "10m")]),
            node_selector: map(&[("disk", "ssd")]),
            tolerations: vec![pb::Toleration {
                key: "dedicated".into(),
                operator: "Equal".into(),
                value: "web".into(),
                effect: "NoSchedule".into(),
            }],
            affinity: Some(pb::Affinity {
                node_affinity: Some(pb::NodeAffinity {
                    required: Some(pb::NodeSelector {
                        node_selector_terms: vec![pb::NodeSelectorTerm {
                            match_expressions: vec![requirement("zone", "In", &["a", "b"])],
                            match_fields: vec![requirement("metadata.name", "NotIn", &["n9"])],
                        }],
                    }),
                    preferred: vec![pb::PreferredSchedulingTerm {
                        weight: 7,
                        preference: Some(pb::NodeSelectorTerm {
                            match_expressions: vec![requirement("gpu", "Exists", &[])],
                            match_fields: Vec::new(),
                        }),
                    }],
                }),
                pod_affinity: Some(pb::PodAffinity {
                    required: vec![term("zone")],
                    preferred: Vec::new(),
                }),
                pod_anti_affinity: Some(pb::PodAffinity {
                    required: Vec::new(),
                    preferred: vec![pb::WeightedPodAffinityTerm {
                        weight: 3,
                        pod_affinity_term: Some(term("kubernetes.io/hostname")),
                    }],
                }),
            }),
            topology_spread_constraints: vec![pb::TopologySpreadConstraint {
                max_skew: 2,
                topology_key: "zone".into(),
                when_unsatisfiable: "DoNotSchedule".into(),
                label_selector: Some(web()),
                min_domains: Some(3),
                node_affinity_policy: "Ignore".into(),
                node_taints_policy: "Honor".into(),
                match_label_keys: strings(&["pod-template-hash"]),
            }],
            start_time: "2026-01-01T00:00:00Z".into(),
            creation_timestamp: "2025-12-31T23:59:00Z".into(),
            deletion_timestamp: "2026-01-02T00:00:00Z".into(),
            phase: "Running".into(),
            preempted_by_scheduler: true,
        };
        let selector = serde_json::json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]});
        let term = |key: &str| {
            serde_json::json!({"labelSelector": selector,
            "namespaces": ["default", "other"], "namespaceSelector": {}, "topologyKey": key,
            "matchLabelKeys": ["pod-template-hash"], "mismatchLabelKeys": ["team"]})
        };
        let json = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": "shop", "name": "web-1", "uid": "u-1",
                "labels": {"app": "web", "tier": "front"},
                "creationTimestamp": "2025-12-31T23:59:00Z",
                "deletionTimestamp": "2026-01-02T00:00:00Z"},
            "spec": {
                "preemptionPolicy": "Never", "nodeName": "n1",
                "containers": [{"name": "main", "image": "nginx",
                    "resources": {"requests": {"cpu": cpu, "memory": "128Mi"},
                        "limits": {"memory": "256Mi", "example.com/gpu": "1"}},
                    "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1",
                        "protocol": "UDP"}]}],
                "initContainers": [{"name": "sidecar", "image": "envoy:1.30",
                    "resources": {"requests": {"cpu": "50m"}}, "restartPolicy": "Always"}],
                "overhead": {"cpu": "10m"},
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web",
                    "effect": "NoSchedule"}],
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
                            "matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}],
                            "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n9"]}]}]},
                        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 7,
                            "preference": {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}}]},
                    "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("zone")]},
                    "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 3, "podAffinityTerm": term("kubernetes.io/hostname")}]}},
                "topologySpreadConstraints": [{"maxSkew": 2, "topologyKey": "zone",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector, "minDomains": 3,
                    "nodeAffinityPolicy": "Ignore", "nodeTaintsPolicy": "Honor",
                    "matchLabelKeys": ["pod-template-hash"]}]},
            "status": {"phase": "Running", "nominatedNodeName": "n2",
                "startTime": "2026-01-01T00:00:00Z",
                "conditions": [{"type": "DisruptionTarget", "status": "True",
                    "reason": "PreemptionByScheduler"}]}
        });
        (native, json)
    }

    #[test]
    fn a_native_pod_decodes_as_its_kubernetes_json_does() {
        let decode = |pod: pb::pod_input::Pod| {
            super::pod(&Some(pb::PodInput { pod: Some(pod) }), &[], "pod")
        };
        let (native, json) = rich_pod("250m");
        let from_native = decode(pb::pod_input::Pod::Native(native.clone())).unwrap();
        let from_json = decode(pb::pod_input::Pod::Json(json.to_string())).unwrap();
        assert_eq!(from_native, from_json);
        assert!(from_native.preempted_by_scheduler && from_native.terminating);
        assert_eq!(from_native.topology_spread_constraints.len(), 1);

        // The same refusal, naming the same field, either way.
        let (bad_native, bad_json) = rich_pod("lots");
        let refused_native = decode(pb::pod_input::Pod::Native(bad_native)).unwrap_err();
        let refused_json = decode(pb::pod_input::Pod::Json(bad_json.to_string())).unwrap_err();
        assert_eq!(refused_native.message(), refused_json.message());
        assert!(
            refused_native
                .message()
                .contains("spec.containers[0].resources.requests.cpu"),
            "{}",
            refused_native.message()
        );

        // A SyncState native pod takes the same path.
        let req = pb::SyncStateRequest {
            changes: vec![pb::ObjectChange {
                change: Some(pb::object_change::Change::Upsert(pb::KubeObject {
                    object: Some(pb::kube_object::Object::Pod(Box::new(native))),
                })),
            }],
            ..Default::default()
        };
        match &batch(&req, Vec::new()).unwrap().changes[..] {
            [Change::Upsert(Object::Pod(p))] => assert_eq!(**p, from_json),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn native_objects_of_every_kind_decode_as_their_kubernetes_json_does() {
        let map = |pairs: &[(&str, &str)]| -> std::collections::HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let upsert = |object: pb::kube_object::Object| pb::ObjectChange {
            change: Some(pb::object_change::Change::Upsert(pb::KubeObject {
                object: Some(object),
            })),
        };
        let native = [
            pb::kube_object::Object::PriorityClass(Box::new(pb::PriorityClass {
                name: "high".into(),
                value: 1000,
                global_default: true,
                preemption_policy: "Never".into(),
            })),
            pb::kube_object::Object::Namespace(Box::new(pb::Namespace {
                name: "shop".into(),
                labels: map(&[("team", "a")]),
            })),
            pb::kube_object::Object::Node(Box::new(pb::Node {
                name: "n1".into(),
                labels: map(&[("zone", "a")]),
                taints: vec![pb::Taint {
                    key: "dedicated".into(),
                    value: "web".into(),
                    effect: "NoSchedule".into(),
                }],
                unschedulable: true,
                allocatable: map(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]),
                images: vec![pb::ContainerImage {
                    names: vec!["nginx:1.27".into()],
                    size_bytes: 1 << 20,
                }],
            })),
            pb::kube_object::Object::PodDisruptionBudget(Box::new(pb::PodDisruptionBudget {
                namespace: "shop".into(),
                name: "web".into(),
                selector: Some(pb::LabelSelector {
                    match_labels: map(&[("app", "web")]),
                    match_expressions: vec![pb::SelectorRequirement {
                        key: "tier".into(),
                        operator: "NotIn".into(),
                        values: vec!["batch".into()],
                    }],
                }),
                disruptions_allowed: 2,
                disrupted_pods: vec!["web-0".into()],
            })),
        ];
        let json = [
            serde_json::json!({"kind": "PriorityClass", "metadata": {"name": "high"},
                "value": 1000, "globalDefault": true, "preemptionPolicy": "Never"}),
            serde_json::json!({"kind": "Namespace",
                "metadata": {"name": "shop", "labels": {"team": "a"}}}),
            serde_json::json!({"kind": "Node", "metadata": {"name": "n1", "labels": {"zone": "a"}},
                "spec": {"unschedulable": true,
                    "taints": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}]},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                    "images": [{"names": ["nginx:1.27"], "sizeBytes": 1 << 20}]}}),
            serde_json::json!({"kind": "PodDisruptionBudget",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"selector": {"matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["batch"]}]}},
                "status": {"disruptionsAllowed": 2,
                    "disruptedPods": {"web-0": "2026-01-01T00:00:00Z"}}}),
        ];
        let decoded = |changes: Vec<pb::ObjectChange>| {
            let req = pb::SyncStateRequest {
                changes,
                ..Default::default()
            };
            format!("{:?}", batch(&req, Vec::new()).unwrap().changes)
        };
        assert_eq!(
            decoded(native.iter().cloned().map(upsert).collect()),
            decoded(json.iter().cloned().map(json_upsert).collect())
        );

        // A native object of another kind where a node is wanted is refused.
        let pod = pb::KubeObject {
            object: Some(pb::kube_object::Object::Pod(Box::new(rich_pod("250m").0))),
        };
        let refusal = node(&pod, "template").unwrap_err();
        assert_eq!(
            refusal.message(),
            "template: field `kind`: a Pod is given where a Node is wanted"
        );
    }
}
