//! The Kubernetes JSON shapes we read, as `kubectl get -o json` prints them.
//!
//! Only the fields the scheduler reads are declared; everything else is ignored. Values
//! stay as written (quantities as strings); `super::convert` validates and normalises.
//! Strings are borrowed from the text or value being decoded ([`Text`]), so a wire
//! object lives only while its source does and costs no copies of its own; every
//! struct says so with `bound(deserialize = "'de: 'a")`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;

use serde::de::{Error, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A string of the object, borrowed from the JSON text (or value) it was decoded from
/// when it holds no escapes, so that decoding copies only what the model keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text<'a>(Cow<'a, str>);

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Text<'a> {
        Text(Cow::Borrowed(text))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

/// A quantity, written as a string or (in hand-written YAML) a bare number.
#[derive(Debug, Clone, Default)]
pub struct QuantityText<'a>(pub Text<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for QuantityText<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(QuantityTextVisitor)
    }
}

struct QuantityTextVisitor;

impl QuantityTextVisitor {
    fn number<'de>(v: impl ToString) -> QuantityText<'de> {
        QuantityText(Text(Cow::Owned(v.to_string())))
    }
}

impl<'de> Visitor<'de> for QuantityTextVisitor {
    type Value = QuantityText<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a quantity (a string or a number)")
    }

    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<QuantityText<'de>, E> {
        TextVisitor.visit_borrowed_str(v).map(QuantityText)
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<QuantityText<'de>, E> {
        TextVisitor.visit_str(v).map(QuantityText)
    }

    fn visit_string<E: Error>(self, v: String) -> Result<QuantityText<'de>, E> {
        TextVisitor.visit_string(v).map(QuantityText)
    }

    fn visit_i64<E>(self, v: i64) -> Result<QuantityText<'de>, E> {
        Ok(Self::number(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<QuantityText<'de>, E> {
        Ok(Self::number(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<QuantityText<'de>, E> {
        Ok(Self::number(v))
    }
}

/// An object's `kind`, declared so that a repeated `kind` is refused like any repeated
/// field; its value is read before the object is decoded (see `super::RawObject`).
pub type KindField = IgnoredAny;

pub type WireResourceList<'a> = Map<Text<'a>, QuantityText<'a>>;

/// A JSON object of string keys (labels, a resource list), as pairs sorted by key, each
/// key once: of two members with one key the later wins, as in a map. Cheaper to build
/// and free than a `BTreeMap` for the few members these objects have.
#[derive(Debug)]
pub struct Map<K, V>(Vec<(K, V)>);

impl<K, V> Default for Map<K, V> {
    fn default() -> Self {
        Map(Vec::new())
    }
}

impl<K, V> Map<K, V> {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The members in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + Clone {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<K: AsRef<str>, V> FromIterator<(K, V)> for Map<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut pairs: Vec<(K, V)> = pairs.into_iter().collect();
        crate::model::sort_pairs_later_wins(&mut pairs);
        Map(pairs)
    }
}

impl<'m, K, V> IntoIterator for &'m Map<K, V> {
    type Item = (&'m K, &'m V);
    type IntoIter = std::iter::Map<std::slice::Iter<'m, (K, V)>, fn(&'m (K, V)) -> (&'m K, &'m V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<'de, K, V> Deserialize<'de> for Map<K, V>
where
    K: Deserialize<'de> + AsRef<str>,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, V>(std::marker::PhantomData<(K, V)>);

        impl<'de, K, V> Visitor<'de> for MapVisitor<K, V>
        where
            K: Deserialize<'de> + AsRef<str>,
            V: Deserialize<'de>,
        {
            type Value = Map<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Map<K, V>, A::Error> {
                let mut pairs = Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
                while let Some(pair) = access.next_entry()? {
                    pairs.push(pair);
                }
                crate::model::sort_pairs_later_wins(&mut pairs);
                Ok(Map(pairs))
            }
        }

        d.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct ObjectMeta<'a> {
    pub name: Option<Text<'a>>,
    pub namespace: Option<Text<'a>>,
    pub uid: Option<Text<'a>>,
    pub labels: Option<Map<Text<'a>, Text<'a>>>,
    pub creation_timestamp: Option<Text<'a>>,
    pub deletion_timestamp: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct Node<'a> {
    pub kind: KindField,
    pub metadata: ObjectMeta<'a>,
    pub spec: NodeSpec<'a>,
    pub status: NodeStatus<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct NodeSpec<'a> {
    pub taints: Vec<Taint<'a>>,
    pub unschedulable: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct Taint<'a> {
    pub key: Text<'a>,
    pub value: Text<'a>,
    pub effect: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct NodeStatus<'a> {
    pub allocatable: Option<WireResourceList<'a>>,
    pub capacity: Option<WireResourceList<'a>>,
    pub images: Vec<ContainerImage<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct ContainerImage<'a> {
    pub names: Vec<Text<'a>>,
    pub size_bytes: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct Pod<'a> {
    pub kind: KindField,
    pub metadata: ObjectMeta<'a>,
    pub spec: PodSpec<'a>,
    pub status: PodStatus<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct PodSpec<'a> {
    pub node_name: Option<Text<'a>>,
    pub priority: Option<i32>,
    pub priority_class_name: Option<Text<'a>>,
    pub preemption_policy: Option<Text<'a>>,
    pub containers: Vec<Container<'a>>,
    pub init_containers: Vec<Container<'a>>,
    pub overhead: Option<WireResourceList<'a>>,
    pub resources: Option<ResourceRequirements<'a>>,
    pub node_selector: Option<Map<Text<'a>, Text<'a>>>,
    pub affinity: Option<Affinity<'a>>,
    pub tolerations: Vec<Toleration<'a>>,
    pub topology_spread_constraints: Vec<TopologySpreadConstraint<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct Container<'a> {
    pub name: Text<'a>,
    pub image: Text<'a>,
    pub resources: ResourceRequirements<'a>,
    pub ports: Vec<ContainerPort<'a>>,
    pub restart_policy: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct ResourceRequirements<'a> {
    pub requests: Option<WireResourceList<'a>>,
    pub limits: Option<WireResourceList<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct ContainerPort<'a> {
    pub container_port: i32,
    pub host_port: i32,
    #[serde(rename = "hostIP")]
    pub host_ip: Option<Text<'a>>,
    pub protocol: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct Toleration<'a> {
    pub key: Text<'a>,
    pub operator: Option<Text<'a>>,
    pub value: Text<'a>,
    pub effect: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct Affinity<'a> {
    pub node_affinity: Option<NodeAffinity<'a>>,
    pub pod_affinity: Option<PodAffinity<'a>>,
    pub pod_anti_affinity: Option<PodAffinity<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct NodeAffinity<'a> {
    pub required_during_scheduling_ignored_during_execution: Option<NodeSelector<'a>>,
    pub preferred_during_scheduling_ignored_during_execution:
        Option<Vec<PreferredSchedulingTerm<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct NodeSelector<'a> {
    pub node_selector_terms: Vec<NodeSelectorTerm<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct NodeSelectorTerm<'a> {
    pub match_expressions: Vec<SelectorRequirement<'a>>,
    pub match_fields: Vec<SelectorRequirement<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct SelectorRequirement<'a> {
    pub key: Text<'a>,
    pub operator: Text<'a>,
    pub values: Vec<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct PreferredSchedulingTerm<'a> {
    pub weight: i32,
    pub preference: NodeSelectorTerm<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct PodAffinity<'a> {
    pub required_during_scheduling_ignored_during_execution: Vec<PodAffinityTerm<'a>>,
    pub preferred_during_scheduling_ignored_during_execution: Vec<WeightedPodAffinityTerm<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct PodAffinityTerm<'a> {
    pub label_selector: Option<LabelSelector<'a>>,
    pub namespaces: Vec<Text<'a>>,
    pub namespace_selector: Option<LabelSelector<'a>>,
    pub topology_key: Text<'a>,
    pub match_label_keys: Vec<Text<'a>>,
    pub mismatch_label_keys: Vec<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct WeightedPodAffinityTerm<'a> {
    pub weight: i32,
    pub pod_affinity_term: PodAffinityTerm<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct LabelSelector<'a> {
    pub match_labels: Map<Text<'a>, Text<'a>>,
    pub match_expressions: Vec<SelectorRequirement<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct TopologySpreadConstraint<'a> {
    pub max_skew: i32,
    pub topology_key: Text<'a>,
    pub when_unsatisfiable: Text<'a>,
    pub label_selector: Option<LabelSelector<'a>>,
    pub min_domains: Option<i32>,
    pub node_affinity_policy: Option<Text<'a>>,
    pub node_taints_policy: Option<Text<'a>>,
    pub match_label_keys: Vec<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct PodStatus<'a> {
    pub phase: Option<Text<'a>>,
    pub nominated_node_name: Option<Text<'a>>,
    pub start_time: Option<Text<'a>>,
    pub conditions: Vec<PodCondition<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct PodCondition<'a> {
    #[serde(rename = "type")]
    pub type_: Text<'a>,
    pub status: Text<'a>,
    pub reason: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct PodDisruptionBudget<'a> {
    pub kind: KindField,
    pub metadata: ObjectMeta<'a>,
    pub spec: PdbSpec<'a>,
    pub status: PdbStatus<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct PdbSpec<'a> {
    pub selector: Option<LabelSelector<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct PdbStatus<'a> {
    pub disruptions_allowed: i32,
    pub disrupted_pods: BTreeMap<Text<'a>, IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct PriorityClass<'a> {
    pub kind: KindField,
    pub metadata: ObjectMeta<'a>,
    pub value: i32,
    pub global_default: bool,
    pub preemption_policy: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "'de: 'a"))]
pub struct Namespace<'a> {
    pub kind: KindField,
    pub metadata: ObjectMeta<'a>,
}
