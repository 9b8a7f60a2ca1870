//! InterPodAffinity: required pod affinity and anti-affinity of the incoming pod, and
//! the required anti-affinity of existing pods (Filter, with PreFilter topology counts
//! that preemption updates pod by pod); preferred terms of both sides (Score).

use std::collections::{BTreeMap, HashMap};

use super::{FilterPlugin, MAX_NODE_SCORE, NodeScorer};
use crate::engine::cycle_state::CycleState;
use crate::engine::snapshot::{NodeInfo, Snapshot};
use crate::engine::status::Status;
use crate::model::affinity::{PodAffinityTerm, WeightedPodAffinityTerm};
use crate::model::selector::{Labels, Selector};
use crate::model::{Node, Pod};

pub const NAME: &str = "InterPodAffinity";
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";

/// Weight of an existing pod's required affinity term in scoring (`hardPodAffinityWeight`).
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// (topology key, value) → count; entries that reach zero are removed, as upstream.
type TopologyCounts = HashMap<(String, String), i64>;

fn bump(counts: &mut TopologyCounts, node: &Node, key: &str, delta: i64) {
    if let Some(value) = node.labels.get(key) {
        let k = (key.to_string(), value.clone());
        let c = counts.entry(k.clone()).or_insert(0);
        *c += delta;
        if *c == 0 {
            counts.remove(&k);
        }
    }
}

/// The incoming pod's terms with `namespaceSelector` resolved against known namespaces
/// (`mergeAffinityTermNamespacesIfNotEmpty`).
fn resolve_namespaces(term: &PodAffinityTerm, snapshot: &Snapshot) -> PodAffinityTerm {
    let mut t = term.clone();
    if let Selector::All(reqs) = &term.namespace_selector {
        if !reqs.is_empty() {
            for ns in snapshot.namespaces() {
                if term.namespace_selector.matches(&ns.labels) {
                    t.namespaces.insert(ns.name.clone());
                }
            }
        }
    }
    t
}

fn resolve_weighted(
    terms: &[WeightedPodAffinityTerm],
    snapshot: &Snapshot,
) -> Vec<WeightedPodAffinityTerm> {
    terms
        .iter()
        .map(|w| WeightedPodAffinityTerm {
            weight: w.weight,
            term: resolve_namespaces(&w.term, snapshot),
        })
        .collect()
}

static NO_LABELS: Labels = Labels::new();

/// The incoming pod's own terms match `other` (namespace labels are not consulted).
fn own_term_matches(term: &PodAffinityTerm, other: &Pod) -> bool {
    term.matches(&other.namespace, &other.labels, &NO_LABELS)
}

/// `podMatchesAllAffinityTerms`.
fn matches_all(terms: &[PodAffinityTerm], pod: &Pod) -> bool {
    !terms.is_empty() && terms.iter().all(|t| own_term_matches(t, pod))
}

/// PreFilter state.
#[derive(Debug, Clone)]
pub struct FilterState {
    affinity: Vec<PodAffinityTerm>,
    anti_affinity: Vec<PodAffinityTerm>,
    namespace_labels: Labels,
    existing_anti_affinity_counts: TopologyCounts,
    affinity_counts: TopologyCounts,
    anti_affinity_counts: TopologyCounts,
}

/// PreFilter: `None` (skip) when neither side has a required term that matters.
pub fn pre_filter(snapshot: &Snapshot, pod: &Pod) -> Option<FilterState> {
    let affinity: Vec<PodAffinityTerm> = pod
        .pod_affinity
        .required_affinity
        .iter()
        .map(|t| resolve_namespaces(t, snapshot))
        .collect();
    let anti_affinity: Vec<PodAffinityTerm> = pod
        .pod_affinity
        .required_anti_affinity
        .iter()
        .map(|t| resolve_namespaces(t, snapshot))
        .collect();
    let namespace_labels = snapshot.namespace_labels(&pod.namespace).clone();
    let mut state = FilterState {
        affinity,
        anti_affinity,
        namespace_labels,
        existing_anti_affinity_counts: TopologyCounts::new(),
        affinity_counts: TopologyCounts::new(),
        anti_affinity_counts: TopologyCounts::new(),
    };
    let own_terms = !state.affinity.is_empty() || !state.anti_affinity.is_empty();
    for info in &snapshot.nodes {
        for existing in &info.pods {
            if existing.has_required_anti_affinity() {
                state.count_existing_anti_affinity(pod, &existing.pod, &info.node, 1);
            }
            if own_terms {
                state.count_own_terms(&existing.pod, &info.node, 1);
            }
        }
    }
    if state.existing_anti_affinity_counts.is_empty() && !own_terms {
        return None;
    }
    Some(state)
}

impl FilterState {
    /// Existing pod `existing`'s required anti-affinity terms that select the incoming pod.
    fn count_existing_anti_affinity(
        &mut self,
        incoming: &Pod,
        existing: &Pod,
        node: &Node,
        delta: i64,
    ) {
        for t in &existing.pod_affinity.required_anti_affinity {
            if t.matches(
                &incoming.namespace,
                &incoming.labels,
                &self.namespace_labels,
            ) {
                bump(
                    &mut self.existing_anti_affinity_counts,
                    node,
                    &t.topology_key,
                    delta,
                );
            }
        }
    }

    /// The incoming pod's required terms that select `other`.
    fn count_own_terms(&mut self, other: &Pod, node: &Node, delta: i64) {
        if matches_all(&self.affinity, other) {
            for t in &self.affinity {
                bump(&mut self.affinity_counts, node, &t.topology_key, delta);
            }
        }
        for t in &self.anti_affinity {
            if own_term_matches(t, other) {
                bump(&mut self.anti_affinity_counts, node, &t.topology_key, delta);
            }
        }
    }

    /// PreFilterExtensions AddPod (`delta` 1) / RemovePod (`delta` -1).
    pub fn update(&mut self, incoming: &Pod, changed: &Pod, node: &Node, delta: i64) {
        self.count_existing_anti_affinity(incoming, changed, node, delta);
        self.count_own_terms(changed, node, delta);
    }

    fn satisfies_affinity(&self, incoming: &Pod, node: &Node) -> bool {
        let mut pods_exist = true;
        for t in &self.affinity {
            let Some(value) = node.labels.get(&t.topology_key) else {
                return false;
            };
            if self
                .affinity_counts
                .get(&(t.topology_key.clone(), value.clone()))
                .copied()
                .unwrap_or(0)
                <= 0
            {
                pods_exist = false;
            }
        }
        // The first pod of a group that selects itself may go anywhere the terms allow.
        pods_exist || (self.affinity_counts.is_empty() && matches_all(&self.affinity, incoming))
    }

    fn satisfies_anti_affinity(&self, node: &Node) -> bool {
        if self.anti_affinity_counts.is_empty() {
            return true;
        }
        !self.anti_affinity.iter().any(|t| {
            node.labels.get(&t.topology_key).is_some_and(|v| {
                self.anti_affinity_counts
                    .get(&(t.topology_key.clone(), v.clone()))
                    .copied()
                    .unwrap_or(0)
                    > 0
            })
        })
    }

    fn satisfies_existing_anti_affinity(&self, node: &Node) -> bool {
        if self.existing_anti_affinity_counts.is_empty() {
            return true;
        }
        !node.labels.iter().any(|(k, v)| {
            self.existing_anti_affinity_counts
                .get(&(k.clone(), v.clone()))
                .copied()
                .unwrap_or(0)
                > 0
        })
    }
}

pub struct InterPodAffinity;

impl FilterPlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Option<Status> {
        let s = state.inter_pod.as_ref()?;
        if !s.satisfies_affinity(&state.pod.pod, &node.node) {
            return Some(Status::unresolvable(REASON_AFFINITY));
        }
        if !s.satisfies_anti_affinity(&node.node) {
            return Some(Status::unschedulable(REASON_ANTI_AFFINITY));
        }
        if !s.satisfies_existing_anti_affinity(&node.node) {
            return Some(Status::unschedulable(REASON_EXISTING_ANTI_AFFINITY));
        }
        None
    }
}

/// Score state: topology key → value → summed weights.
pub struct Scorer {
    topology_score: BTreeMap<String, HashMap<String, i64>>,
}

fn add_term(
    scores: &mut BTreeMap<String, HashMap<String, i64>>,
    node: &Node,
    key: &str,
    weight: i64,
) {
    if let Some(value) = node.labels.get(key) {
        *scores
            .entry(key.to_string())
            .or_default()
            .entry(value.clone())
            .or_insert(0) += weight;
    }
}

/// PreScore: `None` (skip) when no existing pod contributes anything.
pub fn pre_score(snapshot: &Snapshot, pod: &Pod) -> Option<Scorer> {
    let preferred = resolve_weighted(&pod.pod_affinity.preferred_affinity, snapshot);
    let preferred_anti = resolve_weighted(&pod.pod_affinity.preferred_anti_affinity, snapshot);
    let has_constraints = !preferred.is_empty() || !preferred_anti.is_empty();
    let namespace_labels = snapshot.namespace_labels(&pod.namespace);
    let mut topology_score: BTreeMap<String, HashMap<String, i64>> = BTreeMap::new();
    for info in &snapshot.nodes {
        let node = &info.node;
        if node.labels.is_empty() {
            continue;
        }
        for existing in info
            .pods
            .iter()
            .filter(|p| has_constraints || p.has_affinity())
        {
            let e = &existing.pod;
            // The incoming pod's preferred terms, selecting the existing pod.
            for (terms, sign) in [(&preferred, 1), (&preferred_anti, -1)] {
                for w in terms.iter().filter(|w| own_term_matches(&w.term, e)) {
                    add_term(
                        &mut topology_score,
                        node,
                        &w.term.topology_key,
                        sign * i64::from(w.weight),
                    );
                }
            }
            // The existing pod's terms, selecting the incoming pod.
            for t in &e.pod_affinity.required_affinity {
                if t.matches(&pod.namespace, &pod.labels, namespace_labels) {
                    add_term(
                        &mut topology_score,
                        node,
                        &t.topology_key,
                        HARD_POD_AFFINITY_WEIGHT,
                    );
                }
            }
            for (terms, sign) in [
                (&e.pod_affinity.preferred_affinity, 1),
                (&e.pod_affinity.preferred_anti_affinity, -1),
            ] {
                for w in terms.iter().filter(|w| {
                    w.term
                        .matches(&pod.namespace, &pod.labels, namespace_labels)
                }) {
                    add_term(
                        &mut topology_score,
                        node,
                        &w.term.topology_key,
                        sign * i64::from(w.weight),
                    );
                }
            }
        }
    }
    (!topology_score.is_empty()).then_some(Scorer { topology_score })
}

impl NodeScorer for Scorer {
    fn score(&self, node: &NodeInfo) -> i64 {
        self.topology_score
            .iter()
            .filter_map(|(key, values)| {
                node.node
                    .labels
                    .get(key)
                    .map(|v| values.get(v).copied().unwrap_or(0))
            })
            .sum()
    }

    fn normalize(&self, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        if self.topology_score.is_empty() {
            return;
        }
        let min = scores.iter().copied().min().unwrap_or(0);
        let max = scores.iter().copied().max().unwrap_or(0);
        let diff = max - min;
        for s in scores.iter_mut() {
            let f = if diff > 0 {
                MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)
            } else {
                0.0
            };
            *s = f as i64;
        }
    }
}
