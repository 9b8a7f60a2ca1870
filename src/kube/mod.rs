//! Kubernetes JSON/YAML → model. The only place that knows Kubernetes' wire shapes.
//!
//! Two input documents are understood: a conformance-style scenario object (`nodes`,
//! `pods`, `pdbs`, `priorityClasses`, optional `namespaces`, optional pending `pod`) and
//! a `v1 List` as `kubectl get nodes,pods,pdb,priorityclasses -A -o json` prints it.
//! Errors name the offending field (`pods[3].spec.containers[0].resources.requests.cpu`).

mod convert;
mod time;
mod wire;

pub use convert::{SYSTEM_PRIORITY_CLASSES, normalized_image_name};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::{ClusterObjects, Node, Pod, PriorityClass};

/// A document or object that could not be decoded, with the path of the bad field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("field `{path}`: ") })]
pub struct DecodeError {
    /// Dotted field path, e.g. `pods[2].spec.tolerations[0].effect`; empty for the document.
    pub path: String,
    pub message: String,
}

impl DecodeError {
    /// Prefixes the path with the position of the enclosing object.
    pub fn within(mut self, prefix: &str) -> DecodeError {
        self.path = match (prefix.is_empty(), self.path.is_empty()) {
            (true, _) => self.path,
            (false, true) => prefix.to_string(),
            (false, false) if self.path.starts_with('[') => format!("{prefix}{}", self.path),
            (false, false) => format!("{prefix}.{}", self.path),
        };
        self
    }
}

/// A decoded scenario: the cluster and, when the document has one, the pending pod.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub cluster: ClusterObjects,
    pub pod: Option<Pod>,
}

/// Parses JSON, or YAML when the text is not JSON.
pub fn parse_document(text: &str) -> Result<Value, DecodeError> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(v),
        Err(json_err) => {
            let looks_like_json = text.trim_start().starts_with(['{', '[']);
            if looks_like_json {
                return Err(DecodeError {
                    path: String::new(),
                    message: format!("invalid JSON: {json_err}"),
                });
            }
            serde_saphyr::from_str::<Value>(text).map_err(|e| DecodeError {
                path: String::new(),
                message: format!("invalid YAML: {e}"),
            })
        }
    }
}

fn typed<T: DeserializeOwned>(value: &Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(|e| DecodeError {
        path: e.path().to_string().trim_start_matches('.').to_string(),
        message: e.inner().to_string(),
    })
}

/// Decodes one pod object, resolving its priority against `classes`.
pub fn decode_pod(value: &Value, classes: &[PriorityClass]) -> Result<Pod, DecodeError> {
    let wire: wire::Pod = typed(value)?;
    convert::pod(&wire, classes)
}

/// Decodes one node object.
pub fn decode_node(value: &Value) -> Result<Node, DecodeError> {
    let wire: wire::Node = typed(value)?;
    convert::node(&wire)
}

/// Whether a pod object is in a terminal phase (`Succeeded` or `Failed`).
pub fn pod_is_terminal(value: &Value) -> bool {
    matches!(
        value.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded") | Some("Failed")
    )
}

/// Collected raw objects of a document, by kind, each with its position for errors.
#[derive(Default)]
struct RawObjects<'a> {
    nodes: Vec<(String, &'a Value)>,
    pods: Vec<(String, &'a Value)>,
    pdbs: Vec<(String, &'a Value)>,
    priority_classes: Vec<(String, &'a Value)>,
    namespaces: Vec<(String, &'a Value)>,
}

fn array<'a>(doc: &'a Value, field: &str) -> Result<Vec<(String, &'a Value)>, DecodeError> {
    match doc.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{field}[{i}]"), v))
            .collect()),
        Some(_) => Err(DecodeError {
            path: field.to_string(),
            message: "must be a list".into(),
        }),
    }
}

fn collect(doc: &Value) -> Result<RawObjects<'_>, DecodeError> {
    let mut raw = RawObjects::default();
    if !doc.is_object() {
        return Err(DecodeError {
            path: String::new(),
            message: "expected an object (a scenario or a v1 List)".into(),
        });
    }
    if doc.get("items").is_some() {
        for (path, item) in array(doc, "items")? {
            let kind = item.get("kind").and_then(Value::as_str).unwrap_or("");
            let slot = match kind {
                "Node" => &mut raw.nodes,
                "Pod" => &mut raw.pods,
                "PodDisruptionBudget" => &mut raw.pdbs,
                "PriorityClass" => &mut raw.priority_classes,
                "Namespace" => &mut raw.namespaces,
                "" => {
                    return Err(DecodeError {
                        path: format!("{path}.kind"),
                        message: "is required in a List".into(),
                    });
                }
                _ => continue,
            };
            slot.push((path, item));
        }
    } else {
        raw.nodes = array(doc, "nodes")?;
        raw.pods = array(doc, "pods")?;
        raw.pdbs = array(doc, "pdbs")?;
        raw.priority_classes = array(doc, "priorityClasses")?;
        raw.namespaces = array(doc, "namespaces")?;
    }
    Ok(raw)
}

fn each<T, W: DeserializeOwned>(
    objects: &[(String, &Value)],
    convert: impl Fn(&W) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    objects
        .iter()
        .map(|(path, v)| {
            typed::<W>(v)
                .and_then(|w| convert(&w))
                .map_err(|e| e.within(path))
        })
        .collect()
}

/// Decodes the cluster in a scenario object or a v1 List. Pods in phase `Succeeded` or
/// `Failed` hold nothing and are left out, as the scheduler's cache leaves them out.
pub fn decode_cluster(doc: &Value) -> Result<ClusterObjects, DecodeError> {
    let raw = collect(doc)?;
    let priority_classes = each(&raw.priority_classes, convert::priority_class)?;
    let mut pods = Vec::with_capacity(raw.pods.len());
    for (path, v) in &raw.pods {
        let w: wire::Pod = typed(v).map_err(|e| e.within(path))?;
        if convert::is_terminal(&w) {
            continue;
        }
        pods.push(convert::pod(&w, &priority_classes).map_err(|e| e.within(path))?);
    }
    Ok(ClusterObjects {
        nodes: each(&raw.nodes, convert::node)?,
        pods,
        pdbs: each(&raw.pdbs, convert::pdb)?,
        namespaces: each(&raw.namespaces, convert::namespace)?,
        priority_classes,
    })
}

/// Decodes a scenario document: the cluster, plus its `pod` when present.
pub fn decode_scenario(doc: &Value) -> Result<Scenario, DecodeError> {
    let cluster = decode_cluster(doc)?;
    let pod = match doc.get("pod") {
        None | Some(Value::Null) => None,
        Some(p) => Some(decode_pod(p, &cluster.priority_classes).map_err(|e| e.within("pod"))?),
    };
    Ok(Scenario { cluster, pod })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let doc = parse_document(
            r#"{"nodes":[{"metadata":{"name":"n"},"status":{"allocatable":{"cpu":"4"}}}],
                "pods":[{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"lots"}}}]}}]}"#,
        )
        .unwrap();
        let e = decode_cluster(&doc).unwrap_err();
        assert_eq!(e.path, "pods[0].spec.containers[0].resources.requests.cpu");
        assert!(e.to_string().contains("not a valid quantity"), "{e}");

        let doc = parse_document(
            r#"{"nodes":[{"metadata":{"name":"n"},"spec":{"taints":[{"key":"k","effect":7}]}}]}"#,
        )
        .unwrap();
        let e = decode_cluster(&doc).unwrap_err();
        assert_eq!(e.path, "nodes[0].spec.taints[0].effect");
    }

    #[test]
    fn negative_quantities_are_refused_as_the_api_server_refuses_them() {
        let pod = |resources: &str| {
            format!(
                r#"{{"pods":[{{"metadata":{{"name":"p"}},"spec":{{"containers":[{{"name":"c","resources":{resources}}}]}}}}]}}"#
            )
        };
        for (resources, path) in [
            (
                r#"{"requests":{"cpu":"-500m"}}"#,
                "pods[0].spec.containers[0].resources.requests.cpu",
            ),
            (
                r#"{"limits":{"memory":"-1Gi"}}"#,
                "pods[0].spec.containers[0].resources.limits.memory",
            ),
        ] {
            let e = decode_cluster(&parse_document(&pod(resources)).unwrap()).unwrap_err();
            assert_eq!(e.path, path);
            assert!(e.to_string().contains("greater than or equal to 0"), "{e}");
        }
        let node = r#"{"nodes":[{"metadata":{"name":"n"},"status":{"allocatable":{"cpu":"-1"}}}]}"#;
        let e = decode_cluster(&parse_document(node).unwrap()).unwrap_err();
        assert_eq!(e.path, "nodes[0].status.allocatable.cpu");
        // Zero is fine.
        let zero = pod(r#"{"requests":{"cpu":"0","memory":"-0"}}"#);
        assert!(decode_cluster(&parse_document(&zero).unwrap()).is_ok());
    }

    #[test]
    fn reads_kubectl_lists_and_yaml() {
        let doc = parse_document(
            "apiVersion: v1\nkind: List\nitems:\n- kind: Node\n  metadata: {name: a}\n  status: {allocatable: {cpu: 2, pods: 10}}\n- kind: Service\n  metadata: {name: s}\n",
        )
        .unwrap();
        let c = decode_cluster(&doc).unwrap();
        assert_eq!(c.nodes.len(), 1);
        assert_eq!(c.nodes[0].allocatable.milli_cpu, 2000);
        assert_eq!(c.nodes[0].allowed_pods, 10);
    }
}
