//! Requests → model: Kubernetes JSON/YAML or native messages, validated through
//! `crate::kube`. Every error is `INVALID_ARGUMENT` naming the offending field path,
//! e.g. `changes[3].upsert.json: field `spec.containers[0].resources.requests.cpu`: …`.

use std::sync::Arc;

use serde_json::Value;
use tonic::Status;

use super::{native, pb};
use crate::kube::{self, DecodeError};
use crate::model::{Node, Pod, PriorityClass};
use crate::store::{Batch, Change, Kind, Object, ObjectKey};

fn invalid(path: &str, e: DecodeError) -> Status {
    Status::invalid_argument(format!("{path}: {e}"))
}

fn object_json(o: &pb::KubeObject, path: &str) -> Result<Value, Status> {
    match &o.object {
        Some(pb::kube_object::Object::Json(text)) => {
            kube::parse_document(text).map_err(|e| invalid(&format!("{path}.json"), e))
        }
        Some(pb::kube_object::Object::Node(n)) => Ok(native::node(n)),
        Some(pb::kube_object::Object::Pod(p)) => Ok(native::pod(p)),
        Some(pb::kube_object::Object::PodDisruptionBudget(b)) => Ok(native::pdb(b)),
        Some(pb::kube_object::Object::PriorityClass(c)) => Ok(native::priority_class(c)),
        Some(pb::kube_object::Object::Namespace(n)) => Ok(native::namespace(n)),
        None => Err(Status::invalid_argument(format!("{path}: no object"))),
    }
}

fn kind_of<'a>(v: &'a Value, path: &str) -> Result<&'a str, Status> {
    v.get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| Status::invalid_argument(format!("{path}.kind: is required")))
}

/// Decodes one node (e.g. a what-if template).
pub fn node(o: &pb::KubeObject, path: &str) -> Result<Node, Status> {
    let v = object_json(o, path)?;
    let doc = serde_json::json!({"nodes": [v]});
    let mut c =
        kube::decode_cluster(&doc).map_err(|e| invalid(path, strip_list_prefix(e, "nodes[0]")))?;
    Ok(c.nodes.remove(0))
}

fn strip_list_prefix(mut e: DecodeError, prefix: &str) -> DecodeError {
    e.path = e
        .path
        .strip_prefix(prefix)
        .map(|p| p.trim_start_matches('.').to_string())
        .unwrap_or(e.path);
    e
}

/// Decodes a pod input against the cluster's priority classes.
pub fn pod(
    input: &Option<pb::PodInput>,
    classes: &[PriorityClass],
    path: &str,
) -> Result<Pod, Status> {
    let value = match input.as_ref().and_then(|p| p.pod.as_ref()) {
        Some(pb::pod_input::Pod::Json(text)) => {
            kube::parse_document(text).map_err(|e| invalid(&format!("{path}.json"), e))?
        }
        Some(pb::pod_input::Pod::Native(p)) => native::pod(p),
        None => return Err(Status::invalid_argument(format!("{path}: is required"))),
    };
    kube::decode_pod(&value, classes).map_err(|e| invalid(path, e))
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

/// Decodes and validates a whole batch; nothing is applied unless every change is good.
/// Priority classes in the batch count when resolving the priority of its pods.
pub fn batch(
    req: &pb::SyncStateRequest,
    existing_classes: Vec<PriorityClass>,
) -> Result<Batch, Status> {
    // First pass: parse every upsert and find its kind.
    let mut parsed: Vec<Result<(String, Value), ObjectKey>> = Vec::with_capacity(req.changes.len());
    for (i, change) in req.changes.iter().enumerate() {
        let path = format!("changes[{i}]");
        match &change.change {
            Some(pb::object_change::Change::Upsert(o)) => {
                let path = format!("{path}.upsert");
                let v = object_json(o, &path)?;
                let kind = kind_of(&v, &path)?.to_string();
                parsed.push(Ok((kind, v)));
            }
            Some(pb::object_change::Change::Delete(r)) => {
                parsed.push(Err(key(r, &format!("{path}.delete"))?))
            }
            None => return Err(Status::invalid_argument(format!("{path}: no change"))),
        }
    }
    // Priority classes of this batch resolve its pods' priorities.
    let mut classes = if req.replace {
        Vec::new()
    } else {
        existing_classes
    };
    for (i, p) in parsed.iter().enumerate() {
        if let Ok((kind, v)) = p
            && kind == "PriorityClass"
        {
            let doc = serde_json::json!({"priorityClasses": [v]});
            let c = kube::decode_cluster(&doc).map_err(|e| {
                invalid(
                    &format!("changes[{i}].upsert"),
                    strip_list_prefix(e, "priorityClasses[0]"),
                )
            })?;
            classes.retain(|x| x.name != c.priority_classes[0].name);
            classes.extend(c.priority_classes);
        }
    }
    let mut changes = Vec::with_capacity(parsed.len());
    for (i, p) in parsed.into_iter().enumerate() {
        let path = format!("changes[{i}].upsert");
        let (kind, v) = match p {
            Ok(kv) => kv,
            Err(k) => {
                changes.push(Change::Delete(k));
                continue;
            }
        };
        let object = match kind.as_str() {
            "Pod" => {
                let pod = kube::decode_pod(&v, &classes).map_err(|e| invalid(&path, e))?;
                if kube::pod_is_terminal(&v) {
                    // Finished pods hold nothing: as in the scheduler's cache, they leave.
                    changes.push(Change::Delete(ObjectKey::Pod {
                        namespace: pod.namespace,
                        name: pod.name,
                    }));
                    continue;
                }
                Object::Pod(Arc::new(pod))
            }
            "Node" | "PodDisruptionBudget" | "PriorityClass" | "Namespace" => {
                let field = match kind.as_str() {
                    "Node" => "nodes",
                    "PodDisruptionBudget" => "pdbs",
                    "PriorityClass" => "priorityClasses",
                    _ => "namespaces",
                };
                let doc = serde_json::json!({ field: [v] });
                let mut c = kube::decode_cluster(&doc)
                    .map_err(|e| invalid(&path, strip_list_prefix(e, &format!("{field}[0]"))))?;
                match kind.as_str() {
                    "Node" => Object::Node(Arc::new(c.nodes.remove(0))),
                    "PodDisruptionBudget" => Object::PodDisruptionBudget(c.pdbs.remove(0)),
                    "PriorityClass" => Object::PriorityClass(c.priority_classes.remove(0)),
                    _ => Object::Namespace(c.namespaces.remove(0)),
                }
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "{path}.kind: unsupported kind {other:?}"
                )));
            }
        };
        changes.push(Change::Upsert(object));
    }
    Ok(Batch {
        replace: req.replace,
        replace_kinds: replace_kinds(&req.replace_kinds)?,
        changes,
    })
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
}
