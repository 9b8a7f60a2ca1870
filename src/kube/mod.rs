//! Kubernetes JSON/YAML → model. The only place that decodes and converts Kubernetes'
//! wire shapes (`service::native` builds them from native messages, for this module to
//! convert).
//!
//! Two input documents are understood: a conformance-style scenario object (`nodes`,
//! `pods`, `pdbs`, `priorityClasses`, optional `namespaces`, optional pending `pod`) and
//! a `v1 List` as `kubectl get nodes,pods,pdb,priorityclasses -A -o json` prints it.
//! Errors name the offending field (`pods[3].spec.containers[0].resources.requests.cpu`).
//! A single object received as JSON text ([`RawObject`]) is decoded straight from the
//! text into the wire shapes, without building a `serde_json::Value` first; a native
//! message arrives already in its wire shape (`Native`).

mod convert;
mod time;
pub(crate) mod wire;

pub use convert::{SYSTEM_PRIORITY_CLASSES, normalized_image_name};

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::model::{ClusterObjects, Namespace, Node, Pod, PodDisruptionBudget, PriorityClass};

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
    serde_json::from_str::<Value>(text).or_else(|json_err| parse_yaml(text, &json_err))
}

/// The fallback when `text` is not JSON: YAML, unless the text plainly meant to be JSON
/// (then the JSON error is the one reported).
fn parse_yaml(text: &str, json_err: &serde_json::Error) -> Result<Value, DecodeError> {
    let looks_like_json = text.trim_start().starts_with(['{', '[']);
    if looks_like_json {
        return Err(invalid_json(json_err));
    }
    serde_saphyr::from_str::<Value>(text).map_err(|e| DecodeError {
        path: String::new(),
        message: format!("invalid YAML: {e}"),
    })
}

fn invalid_json(e: &serde_json::Error) -> DecodeError {
    DecodeError {
        path: String::new(),
        message: format!("invalid JSON: {e}"),
    }
}

/// A decoding error as a [`DecodeError`]: the path `serde_path_to_error` tracked, and the
/// message without `serde_json`'s ` at line L column C`, so that an object decoded from
/// text is refused with the same words as the same object decoded from a value.
fn path_error(e: serde_path_to_error::Error<serde_json::Error>) -> DecodeError {
    let inner = e.inner();
    let message = inner.to_string();
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    DecodeError {
        path: e.path().to_string().trim_start_matches('.').to_string(),
        message: match message.strip_suffix(&position) {
            Some(m) if inner.line() > 0 => m.to_string(),
            _ => message,
        },
    }
}

// Tracking the path costs an allocation per map key, so objects are decoded without it,
// and decoded again with it only to say where a refused object went wrong.

fn typed<'v, T: Deserialize<'v>>(value: &'v Value) -> Result<T, DecodeError> {
    T::deserialize(value).or_else(|_| serde_path_to_error::deserialize(value).map_err(path_error))
}

/// Decodes JSON text whose syntax may not have been checked yet (see [`RawObject::parse`]).
fn typed_text<'t, T: Deserialize<'t>>(text: &'t str) -> Result<T, Refusal> {
    let mut de = serde_json::Deserializer::from_str(text);
    T::deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value))
        .map_err(|e| text_refusal::<T>(text, e))
}

/// Why `text` did not decode as a `T`: it is not JSON at all, or a field is wrong (found
/// by decoding again, tracking the path; `first` is the error that pass met).
fn text_refusal<'t, T: Deserialize<'t>>(text: &'t str, first: serde_json::Error) -> Refusal {
    let mut de = serde_json::Deserializer::from_str(text);
    if let Err(syntax) = IgnoredAny::deserialize(&mut de).and_then(|_| de.end()) {
        return Refusal::Text(invalid_json(&syntax));
    }
    let tracked =
        serde_path_to_error::deserialize::<_, T>(&mut serde_json::Deserializer::from_str(text));
    Refusal::Field(tracked.map_or_else(path_error, |_| DecodeError {
        path: String::new(),
        message: first.to_string(),
    }))
}

/// Why a [`RawObject`] was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its text is not JSON (nor YAML).
    Text(DecodeError),
    /// It parsed, but a field is missing, mistyped or out of range.
    Field(DecodeError),
}

/// One object as received, its kind read but not yet decoded: JSON text stays text and
/// is decoded straight into the wire shapes; YAML arrives as a value, and a native
/// message already in its wire shape (`Native`).
pub struct RawObject<'a> {
    kind: Option<Cow<'a, str>>,
    source: Source<'a>,
}

enum Source<'a> {
    /// JSON text; its syntax is checked by decoding it, if not before.
    Json(&'a str),
    Value(Value),
    Native(Box<Native<'a>>),
}

/// An object built from a native message in the wire shape its Kubernetes JSON would
/// decode to (see `crate::service::native`), so that it is validated and converted as
/// that JSON would be. A [`RawObject`] holds it boxed, so its variants' sizes may differ.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Native<'a> {
    Node(wire::Node<'a>),
    Pod(wire::Pod<'a>),
    PodDisruptionBudget(wire::PodDisruptionBudget<'a>),
    PriorityClass(wire::PriorityClass<'a>),
    Namespace(wire::Namespace<'a>),
}

impl Native<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Native::Node(_) => wire::Node::KIND,
            Native::Pod(_) => wire::Pod::KIND,
            Native::PodDisruptionBudget(_) => wire::PodDisruptionBudget::KIND,
            Native::PriorityClass(_) => wire::PriorityClass::KIND,
            Native::Namespace(_) => wire::Namespace::KIND,
        }
    }
}

/// A wire shape of one kind: decoded from text or a value, or held by a [`Native`].
trait Shape<'s>: Deserialize<'s> {
    const KIND: &'static str;
    /// The object `native` holds, when it is of this kind.
    fn of<'a: 's>(native: &'s Native<'a>) -> Option<&'s Self>;
}

/// Implements [`Shape`] for wire shapes and the [`Native`] variant that holds each.
macro_rules! shapes {
    ($($shape:ident => $variant:ident,)*) => {$(
        impl<'s> Shape<'s> for wire::$shape<'s> {
            const KIND: &'static str = stringify!($shape);
            fn of<'a: 's>(native: &'s Native<'a>) -> Option<&'s Self> {
                match native {
                    Native::$variant(object) => Some(object),
                    _ => None,
                }
            }
        }
    )*};
}

shapes! {
    Node => Node,
    Pod => Pod,
    PodDisruptionBudget => PodDisruptionBudget,
    PriorityClass => PriorityClass,
    Namespace => Namespace,
}

/// A wire object, decoded for the caller or borrowed from a [`Native`].
enum Held<'s, W> {
    Decoded(W),
    Native(&'s W),
}

impl<W> Deref for Held<'_, W> {
    type Target = W;

    fn deref(&self) -> &W {
        match self {
            Held::Decoded(object) => object,
            Held::Native(object) => object,
        }
    }
}

impl<'a> RawObject<'a> {
    /// Reads the `kind` of JSON text, or of YAML when the text is not JSON, as
    /// [`parse_document`] does. Text that starts as `kubectl` and the client libraries
    /// write it (`{"apiVersion": "v1", "kind": "Pod", …`) has its kind read from the
    /// leading members, and the rest is checked as it is decoded; any other text has its
    /// syntax checked and its `kind` found in one pass that builds nothing else.
    pub fn parse(text: &'a str) -> Result<RawObject<'a>, DecodeError> {
        if let Some(kind) = leading_kind(text) {
            return Ok(RawObject {
                kind: Some(kind.into()),
                source: Source::Json(text),
            });
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let probed = KindProbe::deserialize(&mut de).and_then(|probe| de.end().map(|()| probe));
        match probed {
            Ok(KindProbe(kind)) => Ok(RawObject {
                kind: kind.map(Cow::Owned),
                source: Source::Json(text),
            }),
            Err(json_err) => parse_yaml(text, &json_err).map(RawObject::from_value),
        }
    }

    /// An object already parsed (e.g. a native message rendered as Kubernetes JSON).
    pub fn from_value(value: Value) -> RawObject<'static> {
        RawObject {
            kind: value
                .get("kind")
                .and_then(Value::as_str)
                .map(|kind| Cow::Owned(kind.to_string())),
            source: Source::Value(value),
        }
    }

    /// An object built from a native message.
    pub(crate) fn native(object: Native<'a>) -> RawObject<'a> {
        RawObject {
            kind: Some(Cow::Borrowed(object.kind())),
            source: Source::Native(Box::new(object)),
        }
    }

    /// The object's `kind`, when it has one that is a string.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    fn wire<'s, W: Shape<'s>>(&'s self) -> Result<Held<'s, W>, Refusal> {
        match &self.source {
            Source::Json(text) => typed_text(text).map(Held::Decoded),
            Source::Value(value) => typed(value).map(Held::Decoded).map_err(Refusal::Field),
            Source::Native(native) => W::of(native).map(Held::Native).ok_or_else(|| {
                Refusal::Field(DecodeError {
                    path: "kind".to_string(),
                    message: format!("a {} is given where a {} is wanted", native.kind(), W::KIND),
                })
            }),
        }
    }

    /// Decodes the object as a pod, resolving its priority against `classes`. The flag
    /// says whether the pod is in a terminal phase (`Succeeded` or `Failed`).
    pub fn pod(&self, classes: &[PriorityClass]) -> Result<(Pod, bool), Refusal> {
        let wire = self.wire::<wire::Pod>()?;
        let pod = convert::pod(&wire, classes).map_err(Refusal::Field)?;
        Ok((pod, convert::is_terminal(&wire)))
    }

    /// Decodes the object as a node.
    pub fn node(&self) -> Result<Node, Refusal> {
        convert::node(&*self.wire::<wire::Node>()?).map_err(Refusal::Field)
    }

    /// Decodes the object as a PodDisruptionBudget.
    pub fn pdb(&self) -> Result<PodDisruptionBudget, Refusal> {
        convert::pdb(&*self.wire::<wire::PodDisruptionBudget>()?).map_err(Refusal::Field)
    }

    /// Decodes the object as a PriorityClass.
    pub fn priority_class(&self) -> Result<PriorityClass, Refusal> {
        convert::priority_class(&*self.wire::<wire::PriorityClass>()?).map_err(Refusal::Field)
    }

    /// Decodes the object as a Namespace.
    pub fn namespace(&self) -> Result<Namespace, Refusal> {
        convert::namespace(&*self.wire::<wire::Namespace>()?).map_err(Refusal::Field)
    }
}

/// The `kind` of a JSON object whose members before `kind` all have plain string values,
/// read without parsing the rest; `None` for any other text. Only the leading members
/// are looked at: decoding the object checks the rest, and refuses a second `kind`.
fn leading_kind(text: &str) -> Option<&str> {
    let mut rest = json_space(text).strip_prefix('{')?;
    loop {
        let (key, after) = plain_string(json_space(rest))?;
        let after = json_space(after).strip_prefix(':')?;
        let (value, after) = plain_string(json_space(after))?;
        if key == "kind" {
            return Some(value);
        }
        rest = json_space(after).strip_prefix(',')?;
    }
}

/// `text` without its leading JSON whitespace.
fn json_space(text: &str) -> &str {
    text.trim_start_matches([' ', '\t', '\n', '\r'])
}

/// A JSON string without escapes at the start of `text`: its contents, and the text
/// after it.
fn plain_string(text: &str) -> Option<(&str, &str)> {
    let body = text.strip_prefix('"')?;
    let end = body.find(|c: char| c == '"' || c == '\\' || c < ' ')?;
    let after = body[end..].strip_prefix('"')?;
    Some((&body[..end], after))
}

/// The `kind` of a JSON value: the string under the key `kind` when the value is an
/// object, `None` otherwise. Everything else is skipped (syntax checked, nothing built).
struct KindProbe(Option<String>);

impl<'de> Deserialize<'de> for KindProbe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindProbeVisitor)
    }
}

struct KindProbeVisitor;

impl<'de> Visitor<'de> for KindProbeVisitor {
    type Value = KindProbe;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<KindProbe, E> {
        Ok(KindProbe(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<KindProbe, E> {
        Ok(KindProbe(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<KindProbe, E> {
        Ok(KindProbe(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<KindProbe, E> {
        Ok(KindProbe(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<KindProbe, E> {
        Ok(KindProbe(None))
    }

    fn visit_unit<E>(self) -> Result<KindProbe, E> {
        Ok(KindProbe(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KindProbe, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KindProbe(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KindProbe, A::Error> {
        // As in a `Value`, the last of repeated keys counts (decoding the object then
        // refuses the repeated `kind`, as it refuses any repeated field).
        let mut kind = None;
        while let Some(key) = map.next_key::<wire::Text>()? {
            if key == "kind" {
                kind = match map.next_value::<Value>()? {
                    Value::String(s) => Some(s),
                    _ => None,
                };
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(KindProbe(kind))
    }
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

/// Where an object sits in its document (`pods[3]`), formatted only for an error.
#[derive(Clone, Copy)]
struct Position {
    list: &'static str,
    index: usize,
}

impl Position {
    fn of(self, e: DecodeError) -> DecodeError {
        e.within(&format!("{}[{}]", self.list, self.index))
    }
}

/// Collected raw objects of a document, by kind, each with its position for errors.
#[derive(Default)]
struct RawObjects<'a> {
    nodes: Vec<(Position, &'a Value)>,
    pods: Vec<(Position, &'a Value)>,
    pdbs: Vec<(Position, &'a Value)>,
    priority_classes: Vec<(Position, &'a Value)>,
    namespaces: Vec<(Position, &'a Value)>,
}

fn array<'a>(
    doc: &'a Value,
    list: &'static str,
) -> Result<Vec<(Position, &'a Value)>, DecodeError> {
    match doc.get(list) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items
            .iter()
            .enumerate()
            .map(|(index, v)| (Position { list, index }, v))
            .collect()),
        Some(_) => Err(DecodeError {
            path: list.to_string(),
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
        for (position, item) in array(doc, "items")? {
            let kind = item.get("kind").and_then(Value::as_str).unwrap_or("");
            let slot = match kind {
                "Node" => &mut raw.nodes,
                "Pod" => &mut raw.pods,
                "PodDisruptionBudget" => &mut raw.pdbs,
                "PriorityClass" => &mut raw.priority_classes,
                "Namespace" => &mut raw.namespaces,
                "" => {
                    return Err(position.of(DecodeError {
                        path: "kind".into(),
                        message: "is required in a List".into(),
                    }));
                }
                _ => continue,
            };
            slot.push((position, item));
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

fn each<'v, T, W: Deserialize<'v>>(
    objects: &[(Position, &'v Value)],
    convert: impl Fn(&W) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    objects
        .iter()
        .map(|(position, v)| {
            typed::<W>(v)
                .and_then(|w| convert(&w))
                .map_err(|e| position.of(e))
        })
        .collect()
}

/// Decodes the cluster in a scenario object or a v1 List. Pods in phase `Succeeded` or
/// `Failed` hold nothing and are left out, as the scheduler's cache leaves them out.
pub fn decode_cluster(doc: &Value) -> Result<ClusterObjects, DecodeError> {
    let raw = collect(doc)?;
    let priority_classes = each(&raw.priority_classes, convert::priority_class)?;
    let mut pods = Vec::with_capacity(raw.pods.len());
    for (position, v) in &raw.pods {
        let w: wire::Pod = typed(v).map_err(|e| position.of(e))?;
        if convert::is_terminal(&w) {
            continue;
        }
        pods.push(convert::pod(&w, &priority_classes).map_err(|e| position.of(e))?);
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
    use crate::model::labels::Labels;
    use crate::model::quantity::Quantity;

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
    #[test]
    fn text_decodes_as_the_same_object_as_a_value_would() {
        let pods = [
            r#"{"kind":"Pod","metadata":{"name":"p","namespace":"ns","labels":{"app":"web"}},
                "spec":{"nodeName":"n1","priority":5,"tolerations":[{"key":"k","operator":"Exists"}],
                "containers":[{"name":"c","image":"nginx","resources":{"requests":{"cpu":"250m","memory":1024}},
                "ports":[{"containerPort":80,"hostPort":8080}]}]},"status":{"phase":"Running"}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]},
                "status":{"phase":"Failed"}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"priority":"high","containers":[{"name":"c"}]}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"priority":1.5,"containers":[{"name":"c"}]}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"priority":99999999999999999999,"containers":[{"name":"c"}]}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p","labels":{"a":1}},"spec":{"containers":[{"name":"c"}]}}"#,
            r#"{"kind":"Pod","metadata":[],"spec":{"containers":[{"name":"c"}]}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":null}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":{"name":"c"}}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c",
                "resources":{"limits":{"cpu":{"value":1}}}}]}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c",
                "resources":{"requests":{"cpu":"lots"}}}]}}"#,
            r#""a pod""#,
            // Members out of order and repeated: the later wins, as in a map.
            r#"{"kind":"Pod","metadata":{"name":"p","labels":{"b":"2","a":"1","b":"3"}},
                "spec":{"nodeSelector":{"z":"1","y":"2","z":"0"},"containers":[{"name":"c",
                "resources":{"requests":{"memory":"1Gi","cpu":"1","memory":"2Gi"}}}],
                "topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"zone",
                "whenUnsatisfiable":"DoNotSchedule",
                "labelSelector":{"matchLabels":{"b":"x","a":"y","b":"z"}}}]}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p","labels":["a"]},"spec":{"containers":[{"name":"c"}]}}"#,
        ];
        for text in pods {
            let from_text = RawObject::parse(text).unwrap();
            assert!(matches!(from_text.source, Source::Json(_)), "{text}");
            let from_value = RawObject::from_value(parse_document(text).unwrap());
            assert_eq!(from_text.kind(), from_value.kind());
            assert_eq!(
                format!("{:?}", from_text.pod(&[])),
                format!("{:?}", from_value.pod(&[])),
                "{text}"
            );
        }
        let (repeated, _) = RawObject::parse(pods[pods.len() - 2])
            .unwrap()
            .pod(&[])
            .unwrap();
        assert_eq!(repeated.labels, Labels::from([("a", "1"), ("b", "3")]));
        let selector = repeated.node_selector.expect("a node selector");
        assert_eq!(selector, Labels::from([("y", "2"), ("z", "0")]));
        let requests = &repeated.resources.containers[0].requests;
        assert_eq!(requests.keys().collect::<Vec<_>>(), ["cpu", "memory"]);
        assert_eq!(requests.get("memory"), Quantity::parse("2Gi").ok().as_ref());
    }

    #[test]
    fn bare_numbers_are_quantities_in_yaml_and_json() {
        let yaml = "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    resources: {requests: {cpu: 0.5, memory: 1024}}\n";
        let json = r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c",
            "resources":{"requests":{"cpu":0.5,"memory":1024}}}]}}"#;
        for text in [yaml, json] {
            let raw = RawObject::parse(text).unwrap();
            assert_eq!(raw.kind(), Some("Pod"));
            let (pod, terminal) = raw.pod(&[]).unwrap();
            assert!(!terminal);
            let requests = pod.requests();
            assert_eq!((requests.milli_cpu, requests.memory), (500, 1024), "{text}");
        }
        let e = RawObject::parse("kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    resources: {requests: {cpu: [1]}}\n")
            .unwrap()
            .pod(&[])
            .unwrap_err();
        let Refusal::Field(e) = e else {
            panic!("{e:?}")
        };
        assert_eq!(e.path, "spec.containers[0].resources.requests.cpu");
    }

    #[test]
    fn a_leading_kind_is_read_without_parsing_the_rest() {
        let read = [
            (
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"#,
                Some("Pod"),
            ),
            (" {\n \"kind\" :\t\"Node\" }", Some("Node")),
            (r#"{"a":"x","b":"y","kind":""}"#, Some("")),
            // Anything else takes the full pass.
            (r#"{"metadata":{},"kind":"Pod"}"#, None),
            (r#"{"apiVersion":1,"kind":"Pod"}"#, None),
            (r#"{"kin\u0064":"Pod"}"#, None),
            (r#"{"kind":"P\u006fd"}"#, None),
            (r#"{"kind":7}"#, None),
            (r#"[{"kind":"Pod"}]"#, None),
            ("kind: Pod", None),
            ("", None),
        ];
        for (text, kind) in read {
            assert_eq!(leading_kind(text), kind, "{text}");
        }
    }

    #[test]
    fn text_read_ahead_is_checked_as_it_is_decoded() {
        let refusal = |text: &str| RawObject::parse(text).unwrap().pod(&[]).unwrap_err();
        for broken in [
            r#"{"kind":"Pod","metadata":{"name":"p"}} trailing"#,
            r#"{"kind":"Pod","metadata":{"name":"p""#,
            r#"{"kind":"Pod","metadata":{"name":"p",}}"#,
        ] {
            assert!(
                matches!(&refusal(broken), Refusal::Text(e) if e.message.starts_with("invalid JSON: ")),
                "{broken}: {:?}",
                refusal(broken)
            );
        }
        // A second `kind` is refused like any repeated field, whichever kind it names.
        for repeated in [
            r#"{"kind":"Pod","metadata":{"name":"p"},"kind":"Node"}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"kind":"Pod"}"#,
        ] {
            assert_eq!(
                refusal(repeated),
                Refusal::Field(DecodeError {
                    path: String::new(),
                    message: "duplicate field `kind`".into()
                }),
                "{repeated}"
            );
        }
    }
}
