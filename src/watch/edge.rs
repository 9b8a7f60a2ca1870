//! The watcher's edge: objects as kube-rs delivers them are stripped of what the engine
//! never reads (managed fields, annotations, container statuses) and turned into
//! `SyncState` changes — Kubernetes JSON upserts and deletes by name — so that watched
//! state enters through exactly the decoding and validation a `SyncState` client's does.

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::service::pb;

/// A kind the watcher follows.
pub trait Watched:
    Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The kind in `SyncState` terms.
    const KIND: pb::Kind;

    /// Drops fields of this kind that the engine never reads.
    fn strip(&mut self) {}
}

impl Watched for Node {
    const KIND: pb::Kind = pb::Kind::Node;
}

impl Watched for Pod {
    const KIND: pb::Kind = pb::Kind::Pod;

    fn strip(&mut self) {
        if let Some(status) = &mut self.status {
            status.container_statuses = None;
            status.init_container_statuses = None;
            status.ephemeral_container_statuses = None;
            status.resource_claim_statuses = None;
            status.message = None;
        }
    }
}

impl Watched for PodDisruptionBudget {
    const KIND: pb::Kind = pb::Kind::PodDisruptionBudget;
}

impl Watched for PriorityClass {
    const KIND: pb::Kind = pb::Kind::PriorityClass;
}

/// The Kubernetes name of a kind, as metrics label it.
pub fn kind_name(kind: pb::Kind) -> &'static str {
    match kind {
        pb::Kind::Node => "Node",
        pb::Kind::Pod => "Pod",
        pb::Kind::PodDisruptionBudget => "PodDisruptionBudget",
        pb::Kind::PriorityClass => "PriorityClass",
        pb::Kind::Namespace => "Namespace",
        pb::Kind::Unspecified => "Unspecified",
    }
}

/// The upsert of `object`, stripped, as Kubernetes JSON. `None` (with a warning) in the
/// one case the object cannot be written out, which k8s-openapi's types do not produce.
pub fn upsert<K: Watched>(mut object: K) -> Option<pb::ObjectChange> {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    meta.annotations = None;
    object.strip();
    match serde_json::to_string(&object) {
        Ok(json) => Some(pb::ObjectChange {
            change: Some(pb::object_change::Change::Upsert(pb::KubeObject {
                object: Some(pb::kube_object::Object::Json(json)),
            })),
        }),
        Err(e) => {
            tracing::warn!(kind = ?K::KIND, name = ?object.meta().name, error = %e, "cannot encode a watched object; skipped");
            None
        }
    }
}

/// The delete of `object`, by kind, namespace and name.
pub fn delete<K: Watched>(object: &K) -> pb::ObjectChange {
    let meta = object.meta();
    pb::ObjectChange {
        change: Some(pb::object_change::Change::Delete(pb::ObjectRef {
            kind: K::KIND as i32,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(change: &pb::ObjectChange) -> serde_json::Value {
        match &change.change {
            Some(pb::object_change::Change::Upsert(pb::KubeObject {
                object: Some(pb::kube_object::Object::Json(text)),
            })) => serde_json::from_str(text).unwrap(),
            other => panic!("not a JSON upsert: {other:?}"),
        }
    }

    #[test]
    fn upserts_carry_kind_and_drop_what_the_engine_never_reads() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "team",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z",
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 0}]}
        }))
        .unwrap();
        let v = json_of(&upsert(pod).unwrap());
        assert_eq!(v["kind"], "Pod");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["spec"]["nodeName"], "n1");
        assert_eq!(v["status"]["phase"], "Running");
        assert!(v["metadata"].get("annotations").is_none());
        assert!(v["metadata"].get("managedFields").is_none());
        assert!(v["status"].get("containerStatuses").is_none());
    }

    #[test]
    fn deletes_name_the_object() {
        let pdb: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "b", "namespace": "team"}
        }))
        .unwrap();
        match delete(&pdb).change {
            Some(pb::object_change::Change::Delete(r)) => {
                assert_eq!(r.kind, pb::Kind::PodDisruptionBudget as i32);
                assert_eq!((r.namespace.as_str(), r.name.as_str()), ("team", "b"));
            }
            other => panic!("not a delete: {other:?}"),
        }
    }
}
