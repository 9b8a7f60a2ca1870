//! InterPodAffinity: required pod affinity and anti-affinity of the incoming pod, and
//! the required anti-affinity of existing pods (Filter, with PreFilter topology counts
//! that preemption updates pod by pod); preferred terms of both sides (Score).

mod term_tally;

use std::collections::BTreeMap;

use rayon::prelude::*;
pub use term_tally::TermTallies;
use term_tally::with_term_tally;

use super::{FilterPlugin, MAX_NODE_SCORE, NodeScorer, NodeVerdicts};
use crate::engine::Evaluation;
use crate::engine::affinity_index::TermGroup;
use crate::engine::cycle_state::CycleState;
use crate::engine::label_counts::Probe;
use crate::engine::node_label_index::{LabelColumn, NodeLabelIndex};
use crate::engine::snapshot::{NodeInfo, PodInfo, Snapshot};
use crate::engine::status::Status;
use crate::hashing::NameMap;
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

/// Topology key → value → count; entries that reach zero are removed, as upstream.
#[derive(Debug, Clone, Default)]
struct TopologyCounts(NameMap<String, NameMap<String, i64>>);

impl TopologyCounts {
    fn bump(&mut self, node: &Node, key: &str, delta: i64) {
        let Some(value) = node.labels.get(key) else {
            return;
        };
        let values = match self.0.get_mut(key) {
            Some(values) => values,
            None => self.0.entry(key.to_string()).or_default(),
        };
        let count = match values.get_mut(value) {
            Some(count) => count,
            None => values.entry(value.to_string()).or_insert(0),
        };
        *count += delta;
        if *count == 0 {
            values.remove(value);
            if values.is_empty() {
                self.0.remove(key);
            }
        }
    }

    fn get(&self, key: &str, value: &str) -> i64 {
        self.0
            .get(key)
            .and_then(|values| values.get(value))
            .copied()
            .unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Some label of `node` has a positive count.
    fn any_positive(&self, node: &Node) -> bool {
        self.0.iter().any(|(key, values)| {
            node.labels
                .get(key)
                .is_some_and(|v| values.get(v).is_some_and(|n| *n > 0))
        })
    }
}

/// The incoming pod's terms with `namespaceSelector` resolved against known namespaces
/// (`mergeAffinityTermNamespacesIfNotEmpty`).
fn resolve_namespaces(term: &PodAffinityTerm, snapshot: &Snapshot) -> PodAffinityTerm {
    let mut t = term.clone();
    if let Selector::All(reqs) = &term.namespace_selector
        && !reqs.is_empty()
    {
        for ns in snapshot
            .namespaces()
            .filter(|ns| term.namespace_selector.matches(&ns.labels))
        {
            t.namespaces.insert(ns.name.clone());
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

/// The topology keys of `existing`'s required anti-affinity terms that select
/// `incoming` (whose namespace has `namespace_labels`).
fn anti_affinity_selecting<'p>(
    existing: &'p Pod,
    incoming: &'p Pod,
    namespace_labels: &'p Labels,
) -> impl Iterator<Item = &'p str> {
    existing
        .pod_affinity
        .required_anti_affinity
        .iter()
        .filter(|t| t.matches(&incoming.namespace, &incoming.labels, namespace_labels))
        .map(|t| t.topology_key.as_str())
}

/// The fast path's walk over existing pods' own terms: each distinct set of terms among
/// the pods `applies` keeps (a group of [`Snapshot::affinity_index`]) is evaluated
/// once, and `emit` gets every node of the groups whose evaluation is not empty, with
/// how many of the group's pods it holds. Nodes of groups that do not select the pod
/// are never visited.
fn per_term_group<'a, T: Send + Sync, R: Send>(
    snapshot: &'a Snapshot,
    applies: impl Fn(&PodInfo) -> bool,
    evaluate: impl Fn(&'a PodInfo) -> Vec<T>,
    emit: impl Fn(&'a Node, i64, &[T], &mut Vec<R>) + Sync + Send,
) -> Vec<R> {
    /// Fewer node visits than this are not worth waking other threads for.
    const PARALLEL_FROM: usize = 512;
    let selecting: Vec<(Vec<T>, &TermGroup)> = snapshot
        .affinity_index()
        .groups()
        .filter(|g| applies(&g.representative))
        .filter_map(|g| {
            let evaluated = evaluate(&g.representative);
            (!evaluated.is_empty()).then_some((evaluated, g))
        })
        .collect();
    let visit = |evaluated: &[T], nodes: &[(u32, u32)], out: &mut Vec<R>| {
        for &(i, count) in nodes {
            emit(
                &snapshot.nodes[i as usize].node,
                i64::from(count),
                evaluated,
                out,
            );
        }
    };
    let visits: usize = selecting.iter().map(|(_, g)| g.nodes.len()).sum();
    if visits < PARALLEL_FROM || !crate::engine::splits_here() {
        let mut out = Vec::new();
        for (evaluated, g) in &selecting {
            visit(evaluated, &g.nodes, &mut out);
        }
        return out;
    }
    selecting
        .par_iter()
        .flat_map(|(evaluated, g)| {
            g.nodes
                .par_chunks(PARALLEL_FROM / 2)
                .flat_map_iter(|chunk| {
                    let mut out = Vec::new();
                    visit(evaluated, chunk, &mut out);
                    out
                })
        })
        .collect()
}

/// One of the incoming pod's terms, with the fast path's probes: a node whose label
/// counts rule out every probe holds no pod the term selects.
struct OwnTerm<'a> {
    term: &'a PodAffinityTerm,
    /// One probe per namespace the term names; `None` when its namespace selector
    /// admits pods of any namespace (own terms match with no namespace labels).
    probes: Option<Vec<Probe>>,
}

impl<'a> OwnTerm<'a> {
    fn new(term: &'a PodAffinityTerm) -> OwnTerm<'a> {
        let any_namespace = term.namespace_selector.matches(&NO_LABELS);
        OwnTerm {
            term,
            probes: (!any_namespace).then(|| {
                term.namespaces
                    .iter()
                    .map(|ns| Probe::new(ns, &term.selector))
                    .collect()
            }),
        }
    }

    /// False when no pod on `node` can match the term.
    fn may_select_on(&self, node: &NodeInfo) -> bool {
        self.probes.as_ref().is_none_or(|probes| {
            probes
                .iter()
                .any(|p| node.label_counts.any_pod_may_match(p))
        })
    }
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
    /// The fast path's Filter verdicts, until preemption changes the counts.
    verdicts: Option<NodeVerdicts>,
}

/// [`NodeVerdicts`] codes, one per Filter reason.
const FAILS_AFFINITY: u8 = 1;
const FAILS_ANTI_AFFINITY: u8 = 2;
const FAILS_EXISTING_ANTI_AFFINITY: u8 = 3;

/// One topology key read from the node label index: its column, and which of its value
/// ids have a positive count.
struct PositiveOnIndex<'i> {
    column: Option<&'i LabelColumn>,
    positive: Vec<bool>,
}

impl<'i> PositiveOnIndex<'i> {
    fn new(index: &'i NodeLabelIndex, counts: &TopologyCounts, key: &str) -> PositiveOnIndex<'i> {
        let column = index.column(key);
        let mut positive = vec![false; column.map_or(0, LabelColumn::distinct)];
        if let (Some(column), Some(values)) = (column, counts.0.get(key)) {
            let ids = values.iter().filter(|(_, n)| **n > 0);
            for id in ids.filter_map(|(value, _)| column.id_of(value)) {
                positive[id as usize] = true;
            }
        }
        PositiveOnIndex { column, positive }
    }

    /// Node `at`'s value id, `None` when it lacks the key.
    fn id(&self, at: usize) -> Option<u32> {
        self.column.and_then(|c| c.id(at))
    }

    /// Whether node `at` has the key with a value whose count is positive.
    fn positive_at(&self, at: usize) -> bool {
        self.id(at).is_some_and(|id| self.positive[id as usize])
    }
}

/// PreFilter: `None` (skip) when neither side has a required term that matters. With
/// `kept` (a memo's), the fast path's counts of the pod's own terms are kept there.
pub fn pre_filter(
    snapshot: &Snapshot,
    pod: &Pod,
    evaluation: Evaluation,
    kept: Option<&TermTallies>,
) -> Option<FilterState> {
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
        existing_anti_affinity_counts: TopologyCounts::default(),
        affinity_counts: TopologyCounts::default(),
        anti_affinity_counts: TopologyCounts::default(),
        verdicts: None,
    };
    let own_terms = !state.affinity.is_empty() || !state.anti_affinity.is_empty();
    if evaluation == Evaluation::Fast {
        // Only pods with required anti-affinity have terms that can select the pod
        // (upstream's `HavePodsWithRequiredAntiAffinityList`).
        let ns_labels = &state.namespace_labels;
        let existing = per_term_group(
            snapshot,
            PodInfo::has_required_anti_affinity,
            |e| anti_affinity_selecting(&e.pod, pod, ns_labels).collect(),
            |node, count, keys, out| out.extend(keys.iter().map(|key| (node, *key, count))),
        );
        for (node, key, count) in existing {
            state.existing_anti_affinity_counts.bump(node, key, count);
        }
        if own_terms {
            // Selectors: every affinity term at once (a pod counts when it matches
            // them all), then each anti-affinity term on its own.
            let has_affinity = !state.affinity.is_empty();
            let mut selectors: Vec<Vec<PodAffinityTerm>> = Vec::new();
            if has_affinity {
                selectors.push(state.affinity.clone());
            }
            selectors.extend(state.anti_affinity.iter().map(|t| vec![t.clone()]));
            with_term_tally(kept, snapshot, &selectors, |tally| {
                for (at, counts) in tally.selecting() {
                    let node = &snapshot.nodes[at].node;
                    let (affinity, anti) = counts.split_at(usize::from(has_affinity));
                    for &n in affinity.iter().filter(|n| **n > 0) {
                        for t in &state.affinity {
                            state
                                .affinity_counts
                                .bump(node, &t.topology_key, i64::from(n));
                        }
                    }
                    for (t, &n) in state.anti_affinity.iter().zip(anti) {
                        if n > 0 {
                            state
                                .anti_affinity_counts
                                .bump(node, &t.topology_key, i64::from(n));
                        }
                    }
                }
            });
        }
    } else {
        let relevant = snapshot
            .nodes
            .iter()
            .filter(|info| own_terms || !info.pods_with_required_anti_affinity.is_empty());
        for info in relevant {
            for existing in &info.pods {
                if existing.has_required_anti_affinity() {
                    state.count_existing_anti_affinity(pod, &existing.pod, &info.node, 1);
                }
                if own_terms {
                    state.count_own_terms(&existing.pod, &info.node, 1);
                }
            }
        }
    }
    if state.existing_anti_affinity_counts.is_empty() && !own_terms {
        return None;
    }
    if evaluation == Evaluation::Fast {
        state.verdicts = Some(state.verdicts_on_index(snapshot, pod));
    }
    Some(state)
}

impl FilterState {
    /// Filter's verdict on every node, read from the node label index (as
    /// [`InterPodAffinity`]'s checks read the node's labels).
    fn verdicts_on_index(&self, snapshot: &Snapshot, incoming: &Pod) -> NodeVerdicts {
        let index = snapshot.node_label_index();
        let on_index = |counts: &TopologyCounts, terms: &[PodAffinityTerm]| -> Vec<_> {
            let keys = terms.iter().map(|t| t.topology_key.as_str());
            keys.map(|key| PositiveOnIndex::new(index, counts, key))
                .collect()
        };
        let affinity = on_index(&self.affinity_counts, &self.affinity);
        let first_of_group =
            self.affinity_counts.is_empty() && matches_all(&self.affinity, incoming);
        let anti = if self.anti_affinity_counts.is_empty() {
            Vec::new()
        } else {
            on_index(&self.anti_affinity_counts, &self.anti_affinity)
        };
        let existing: Vec<PositiveOnIndex> = self
            .existing_anti_affinity_counts
            .0
            .keys()
            .map(|key| PositiveOnIndex::new(index, &self.existing_anti_affinity_counts, key))
            .collect();
        NodeVerdicts::new((0..snapshot.nodes.len()).map(|at| {
            let has_keys = affinity.iter().all(|a| a.id(at).is_some());
            let pods_exist = affinity.iter().all(|a| a.positive_at(at));
            if !has_keys || !(pods_exist || first_of_group) {
                FAILS_AFFINITY
            } else if anti.iter().any(|a| a.positive_at(at)) {
                FAILS_ANTI_AFFINITY
            } else if existing.iter().any(|e| e.positive_at(at)) {
                FAILS_EXISTING_ANTI_AFFINITY
            } else {
                NodeVerdicts::PASSES
            }
        }))
    }

    /// Existing pod `existing`'s required anti-affinity terms that select the incoming pod.
    fn count_existing_anti_affinity(
        &mut self,
        incoming: &Pod,
        existing: &Pod,
        node: &Node,
        delta: i64,
    ) {
        for key in anti_affinity_selecting(existing, incoming, &self.namespace_labels) {
            self.existing_anti_affinity_counts.bump(node, key, delta);
        }
    }

    /// The incoming pod's required terms that select `other`.
    fn count_own_terms(&mut self, other: &Pod, node: &Node, delta: i64) {
        if matches_all(&self.affinity, other) {
            for t in &self.affinity {
                self.affinity_counts.bump(node, &t.topology_key, delta);
            }
        }
        for t in &self.anti_affinity {
            if own_term_matches(t, other) {
                self.anti_affinity_counts.bump(node, &t.topology_key, delta);
            }
        }
    }

    /// PreFilterExtensions AddPod (`delta` 1) / RemovePod (`delta` -1).
    pub fn update(&mut self, incoming: &Pod, changed: &Pod, node: &Node, delta: i64) {
        // The counts change: the verdicts no longer hold.
        self.verdicts = None;
        self.count_existing_anti_affinity(incoming, changed, node, delta);
        self.count_own_terms(changed, node, delta);
    }

    fn satisfies_affinity(&self, incoming: &Pod, node: &Node) -> bool {
        let mut pods_exist = true;
        for t in &self.affinity {
            let Some(value) = node.labels.get(&t.topology_key) else {
                return false;
            };
            if self.affinity_counts.get(&t.topology_key, value) <= 0 {
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
            node.labels
                .get(&t.topology_key)
                .is_some_and(|v| self.anti_affinity_counts.get(&t.topology_key, v) > 0)
        })
    }

    fn satisfies_existing_anti_affinity(&self, node: &Node) -> bool {
        !self.existing_anti_affinity_counts.any_positive(node)
    }
}

pub struct InterPodAffinity;

impl FilterPlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo, at: usize) -> Option<Status> {
        let s = state.inter_pod.as_ref()?;
        match s.verdicts.as_ref().and_then(|v| v.at(at)) {
            Some(NodeVerdicts::PASSES) => return None,
            Some(FAILS_AFFINITY) => return Some(Status::unresolvable(REASON_AFFINITY)),
            Some(FAILS_ANTI_AFFINITY) => return Some(Status::unschedulable(REASON_ANTI_AFFINITY)),
            Some(_) => return Some(Status::unschedulable(REASON_EXISTING_ANTI_AFFINITY)),
            None => {}
        }
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
    topology_score: BTreeMap<String, NameMap<String, i64>>,
}

/// The weights `existing`'s own terms give the incoming pod (in a namespace with
/// `namespace_labels`), by topology key: required affinity at the hard weight,
/// preferred affinity added, preferred anti-affinity subtracted.
fn existing_terms_selecting<'p>(
    existing: &'p Pod,
    incoming: &'p Pod,
    namespace_labels: &'p Labels,
) -> impl Iterator<Item = (&'p str, i64)> {
    let selects = move |t: &PodAffinityTerm| {
        t.matches(&incoming.namespace, &incoming.labels, namespace_labels)
    };
    let affinity = &existing.pod_affinity;
    let required = affinity
        .required_affinity
        .iter()
        .filter(move |t| selects(t))
        .map(|t| (t.topology_key.as_str(), HARD_POD_AFFINITY_WEIGHT));
    let preferred = [
        (&affinity.preferred_affinity, 1),
        (&affinity.preferred_anti_affinity, -1),
    ]
    .into_iter()
    .flat_map(move |(terms, sign)| {
        terms
            .iter()
            .filter(move |w| selects(&w.term))
            .map(move |w| (w.term.topology_key.as_str(), sign * i64::from(w.weight)))
    });
    required.chain(preferred)
}

/// `(topology key, value, weight)` for each of `node`'s values of the keys.
fn on_node<'n>(
    node: &'n Node,
    weights: impl IntoIterator<Item = (&'n str, i64)>,
    out: &mut Vec<(&'n str, &'n str, i64)>,
) {
    for (key, weight) in weights {
        if let Some((k, v)) = node.labels.get_key_value(key) {
            out.push((k, v, weight));
        }
    }
}

/// PreScore: `None` (skip) when no existing pod contributes anything. With `kept` (a
/// memo's), the fast path's counts of the pod's own terms are kept there.
pub fn pre_score(
    snapshot: &Snapshot,
    pod: &Pod,
    evaluation: Evaluation,
    kept: Option<&TermTallies>,
) -> Option<Scorer> {
    let preferred = resolve_weighted(&pod.pod_affinity.preferred_affinity, snapshot);
    let preferred_anti = resolve_weighted(&pod.pod_affinity.preferred_anti_affinity, snapshot);
    let has_constraints = !preferred.is_empty() || !preferred_anti.is_empty();
    let namespace_labels = snapshot.namespace_labels(&pod.namespace);
    let contributions: Vec<(&str, &str, i64)> = match evaluation {
        Evaluation::Fast => {
            // Only pods with affinity have terms of their own
            // (upstream's `HavePodsWithAffinityList`).
            let mut contributions = per_term_group(
                snapshot,
                PodInfo::has_affinity,
                |e| existing_terms_selecting(&e.pod, pod, namespace_labels).collect(),
                |node, count, weights, out| {
                    on_node(node, weights.iter().map(|(k, w)| (*k, w * count)), out)
                },
            );
            // The incoming pod's preferred terms, selecting existing pods: the weight
            // once per pod selected, on nodes the probes do not rule out.
            let own: Vec<(&PodAffinityTerm, i64)> = [(&preferred, 1), (&preferred_anti, -1)]
                .into_iter()
                .flat_map(|(terms, sign)| {
                    terms
                        .iter()
                        .map(move |w| (&w.term, sign * i64::from(w.weight)))
                })
                .collect();
            if !own.is_empty() {
                let selectors: Vec<Vec<PodAffinityTerm>> =
                    own.iter().map(|(t, _)| vec![(*t).clone()]).collect();
                with_term_tally(kept, snapshot, &selectors, |tally| {
                    for (at, counts) in tally.selecting() {
                        let node = &snapshot.nodes[at].node;
                        for ((t, weight), &n) in own.iter().zip(counts) {
                            if n > 0 {
                                let key = t.topology_key.as_str();
                                on_node(node, [(key, weight * i64::from(n))], &mut contributions);
                            }
                        }
                    }
                });
            }
            contributions
        }
        Evaluation::Straightforward => {
            // Per node: the weights its pods contribute, by topology key; merged
            // afterwards.
            snapshot
                .nodes
                .iter()
                .flat_map(|info| {
                    let node = &info.node;
                    let mut out = Vec::new();
                    if node.labels.is_empty()
                        || (!has_constraints && info.pods_with_affinity.is_empty())
                    {
                        return out;
                    }
                    for existing in info
                        .pods
                        .iter()
                        .filter(|p| has_constraints || p.has_affinity())
                    {
                        let e = &existing.pod;
                        // The incoming pod's preferred terms, selecting the existing pod.
                        for (terms, sign) in [(&preferred, 1), (&preferred_anti, -1)] {
                            let selecting = terms.iter().filter(|w| own_term_matches(&w.term, e));
                            let weights = selecting.map(|w| {
                                (w.term.topology_key.as_str(), sign * i64::from(w.weight))
                            });
                            on_node(node, weights, &mut out);
                        }
                        on_node(
                            node,
                            existing_terms_selecting(e, pod, namespace_labels),
                            &mut out,
                        );
                    }
                    out
                })
                .collect()
        }
    };
    let mut topology_score: BTreeMap<String, NameMap<String, i64>> = BTreeMap::new();
    for (key, value, weight) in contributions {
        let values = match topology_score.get_mut(key) {
            Some(v) => v,
            None => topology_score.entry(key.to_string()).or_default(),
        };
        match values.get_mut(value) {
            Some(w) => *w += weight,
            None => {
                values.insert(value.to_string(), weight);
            }
        }
    }
    (!topology_score.is_empty()).then_some(Scorer { topology_score })
}

impl NodeScorer for Scorer {
    fn score(&self, _index: usize, node: &NodeInfo) -> i64 {
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

    fn normalizes(&self) -> bool {
        true
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::engine::decision::Outcome;
    use crate::engine::status::Code;
    use crate::engine::test_support::*;

    const ZONE: &str = "topology.kubernetes.io/zone";
    const HOST: &str = "kubernetes.io/hostname";

    fn zoned(name: &str, zone: &str) -> Value {
        labeled(node(name, "4", "8Gi", 110), json!({ZONE: zone}))
    }

    fn app(name: &str, app: &str) -> Value {
        labeled(pod(name, "100m", ""), json!({"app": app}))
    }

    fn term(app: &str, key: &str) -> Value {
        json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key})
    }

    fn with_affinity(p: Value, kind: &str, required: Value, preferred: Value) -> Value {
        merge(
            p,
            json!({"spec": {"affinity": {kind: {
                "requiredDuringSchedulingIgnoredDuringExecution": required,
                "preferredDuringSchedulingIgnoredDuringExecution": preferred,
            }}}}),
        )
    }

    fn affinity(p: Value, terms: Value) -> Value {
        with_affinity(p, "podAffinity", terms, json!([]))
    }

    fn anti(p: Value, terms: Value) -> Value {
        with_affinity(p, "podAntiAffinity", terms, json!([]))
    }

    /// a, b in z1; c in z2; d has no zone label.
    fn nodes() -> Vec<Value> {
        vec![
            zoned("a", "z1"),
            zoned("b", "z1"),
            zoned("c", "z2"),
            node("d", "4", "8Gi", 110),
        ]
    }

    #[test]
    fn required_affinity_follows_the_topology_domain() {
        let s = snapshot(nodes(), vec![bound(app("db", "db"), "a")]);
        let d = decide_json(&s, &affinity(app("p", "web"), json!([term("db", ZONE)])));
        assert_eq!(d.feasible_nodes, strings(&["a", "b"]));
        for n in ["c", "d"] {
            assert_rejected(
                &d,
                n,
                Code::UnschedulableAndUnresolvable,
                NAME,
                &[REASON_AFFINITY],
            );
        }
        // Every term must hold: add one on hostname.
        let p = affinity(app("p", "web"), json!([term("db", ZONE), term("db", HOST)]));
        assert_eq!(decide_json(&s, &p).feasible_nodes, strings(&["a"]));
    }

    #[test]
    fn first_pod_of_a_self_selecting_group_goes_anywhere_with_the_keys() {
        let s = snapshot(nodes(), vec![bound(app("other", "cache"), "a")]);
        let p = affinity(app("p", "db"), json!([term("db", ZONE)]));
        let d = decide_json(&s, &p);
        assert_eq!(d.feasible_nodes, strings(&["a", "b", "c"]));
        assert_rejected(
            &d,
            "d",
            Code::UnschedulableAndUnresolvable,
            NAME,
            &[REASON_AFFINITY],
        );
        // A pod that does not match its own term gets no such exemption.
        let p = affinity(app("p", "web"), json!([term("db", ZONE)]));
        assert!(decide_json(&s, &p).feasible_nodes.is_empty());
        // Once a matching pod exists in some domain, only that domain qualifies.
        let s = snapshot(nodes(), vec![bound(app("db0", "db"), "c")]);
        let p = affinity(app("p", "db"), json!([term("db", ZONE)]));
        assert_eq!(decide_json(&s, &p).feasible_nodes, strings(&["c"]));
        // A matching pod on a node without the key counts nowhere: still the first pod.
        let s = snapshot(nodes(), vec![bound(app("db0", "db"), "d")]);
        assert_eq!(
            decide_json(&s, &p).feasible_nodes,
            strings(&["a", "b", "c"])
        );
    }

    #[test]
    fn incoming_anti_affinity() {
        let s = snapshot(nodes(), vec![bound(app("db", "db"), "a")]);
        let d = decide_json(&s, &anti(app("p", "web"), json!([term("db", HOST)])));
        assert_rejected(&d, "a", Code::Unschedulable, NAME, &[REASON_ANTI_AFFINITY]);
        assert_eq!(d.feasible_nodes, strings(&["b", "c", "d"]));
        let d = decide_json(&s, &anti(app("p", "web"), json!([term("db", ZONE)])));
        for n in ["a", "b"] {
            assert_rejected(&d, n, Code::Unschedulable, NAME, &[REASON_ANTI_AFFINITY]);
        }
        // A node without the key cannot host a conflicting domain.
        assert_eq!(d.feasible_nodes, strings(&["c", "d"]));
    }

    #[test]
    fn existing_pods_anti_affinity() {
        let guard = anti(app("guard", "guard"), json!([term("web", ZONE)]));
        let s = snapshot(nodes(), vec![bound(guard, "a")]);
        let d = decide_json(&s, &app("p", "web"));
        for n in ["a", "b"] {
            assert_rejected(
                &d,
                n,
                Code::Unschedulable,
                NAME,
                &[REASON_EXISTING_ANTI_AFFINITY],
            );
        }
        assert_eq!(d.feasible_nodes, strings(&["c", "d"]));
        // The existing pod's term applies to its own namespace only.
        let d = decide_json(&s, &in_namespace(app("p", "web"), "other"));
        assert_eq!(d.feasible_nodes.len(), 4);
        // And only to pods its selector matches.
        assert_eq!(decide_json(&s, &app("p", "api")).feasible_nodes.len(), 4);
    }

    #[test]
    fn affinity_is_checked_before_anti_affinity() {
        let s = snapshot(nodes(), vec![bound(app("db", "db"), "c")]);
        let p = with_affinity(
            affinity(app("p", "web"), json!([term("db", ZONE)])),
            "podAntiAffinity",
            json!([term("db", HOST)]),
            json!([]),
        );
        let d = decide_json(&s, &p);
        assert_rejected(
            &d,
            "a",
            Code::UnschedulableAndUnresolvable,
            NAME,
            &[REASON_AFFINITY],
        );
        assert_rejected(&d, "c", Code::Unschedulable, NAME, &[REASON_ANTI_AFFINITY]);
    }

    #[test]
    fn term_namespaces_and_namespace_selector() {
        let doc = json!({
            "nodes": nodes(),
            "namespaces": [
                namespace("data", json!({"team": "data"})),
                namespace("default", json!({"team": "web"})),
            ],
            "pods": [
                bound(in_namespace(app("db-data", "db"), "data"), "a"),
                bound(app("db-default", "db"), "c"),
            ],
        });
        let s = cluster_doc(&doc);
        // Default: the pod's own namespace.
        let d = decide_json(&s, &affinity(app("p", "web"), json!([term("db", ZONE)])));
        assert_eq!(d.feasible_nodes, strings(&["c"]));
        // Named namespaces.
        let mut t = term("db", ZONE);
        t["namespaces"] = json!(["data"]);
        let d = decide_json(&s, &affinity(app("p", "web"), json!([t])));
        assert_eq!(d.feasible_nodes, strings(&["a", "b"]));
        // A namespace selector, resolved against the namespaces' labels.
        let mut t = term("db", ZONE);
        t["namespaceSelector"] = json!({"matchLabels": {"team": "data"}});
        let d = decide_json(&s, &affinity(app("p", "web"), json!([t])));
        assert_eq!(d.feasible_nodes, strings(&["a", "b"]));
        // An empty namespace selector selects every namespace.
        let mut t = term("db", ZONE);
        t["namespaceSelector"] = json!({});
        let d = decide_json(&s, &affinity(app("p", "web"), json!([t])));
        assert_eq!(d.feasible_nodes, strings(&["a", "b", "c"]));
    }

    #[test]
    fn existing_anti_affinity_namespace_selector_uses_the_incoming_namespace_labels() {
        let mut t = term("web", HOST);
        t["namespaceSelector"] = json!({"matchLabels": {"tier": "frontend"}});
        let doc = json!({
            "nodes": nodes(),
            "namespaces": [
                namespace("shop", json!({"tier": "frontend"})),
                namespace("batch", json!({"tier": "backend"})),
            ],
            "pods": [bound(anti(app("guard", "guard"), json!([t])), "a")],
        });
        let s = cluster_doc(&doc);
        let d = decide_json(&s, &in_namespace(app("p", "web"), "shop"));
        assert_rejected(
            &d,
            "a",
            Code::Unschedulable,
            NAME,
            &[REASON_EXISTING_ANTI_AFFINITY],
        );
        let d = decide_json(&s, &in_namespace(app("p", "web"), "batch"));
        assert_feasible(&d, "a");
    }

    /// Upstream's `mergeAffinityTermNamespacesIfNotEmpty` adds the namespaces the
    /// selector picks to the term and then sets the selector to `Nothing`; the
    /// incoming pod's own terms are later matched with nil namespace labels. The
    /// engine keeps the selector and matches it against an empty label set, so a
    /// selector that an empty set satisfies (`NotIn`, `DoesNotExist`) selects pods
    /// in every namespace, including ones whose labels the selector rejects.
    #[test]
    fn incoming_namespace_selector_keeps_upstreams_value_semantics() {
        // Upstream merges the namespaces a selector picks into the term, then sets the
        // selector to Nothing on a *copy* of the term (`mergeAffinityTermNamespacesIfNotEmpty`
        // takes it by value). The stored selector survives and is matched against empty
        // namespace labels, which a `NotIn` requirement satisfies: v1.35.4 applies such a
        // term to pods in every namespace, and so does the oracle.
        let mut t = term("db", HOST);
        t["namespaceSelector"] = json!({"matchExpressions": [{"key": "environment", "operator": "NotIn", "values": ["prod"]}]});
        let doc = json!({
            "nodes": nodes(),
            "namespaces": [
                namespace("prod", json!({"environment": "prod"})),
                namespace("dev", json!({"environment": "dev"})),
            ],
            "pods": [bound(in_namespace(app("db", "db"), "prod"), "a")],
        });
        let s = cluster_doc(&doc);
        let d = decide_json(&s, &in_namespace(anti(app("p", "web"), json!([t])), "dev"));
        assert_rejected(
            &d,
            "a",
            Code::Unschedulable,
            "InterPodAffinity",
            &["node(s) didn't match pod anti-affinity rules"],
        );
    }

    #[test]
    fn preemption_evicts_pods_the_incoming_anti_affinity_rejects() {
        let s = snapshot(
            nodes(),
            vec![
                prio(bound(app("db", "db"), "a"), 0),
                prio(bound(app("cache", "cache"), "a"), 0),
                prio(bound(pod("fill-b", "4", ""), "b"), 5000),
                prio(bound(pod("fill-c", "4", ""), "c"), 5000),
                prio(bound(pod("fill-d", "4", ""), "d"), 5000),
            ],
        );
        let p = prio(anti(app("p", "web"), json!([term("db", HOST)])), 100);
        let d = decide_json(&s, &p);
        assert_eq!(d.outcome, Outcome::Preempts);
        assert_eq!(d.node.as_deref(), Some("a"));
        assert_eq!(victims(&d, "a"), Some(strings(&["default/db"])));
    }

    #[test]
    fn preemption_evicts_existing_pods_whose_anti_affinity_rejects_the_pod() {
        let guard = prio(anti(app("guard", "guard"), json!([term("web", HOST)])), 0);
        let s = snapshot(
            vec![zoned("a", "z1"), zoned("b", "z1")],
            vec![
                bound(guard, "a"),
                prio(bound(app("other", "x"), "a"), 0),
                prio(bound(pod("fill-b", "4", ""), "b"), 5000),
            ],
        );
        let d = decide_json(&s, &prio(app("p", "web"), 100));
        assert_rejected(
            &d,
            "a",
            Code::Unschedulable,
            NAME,
            &[REASON_EXISTING_ANTI_AFFINITY],
        );
        assert_eq!(victims(&d, "a"), Some(strings(&["default/guard"])));
    }

    #[test]
    fn affinity_failures_are_not_preemption_candidates() {
        let s = snapshot(
            vec![zoned("a", "z1")],
            vec![prio(bound(app("low", "x"), "a"), 0)],
        );
        let d = decide_json(
            &s,
            &prio(affinity(app("p", "web"), json!([term("db", ZONE)])), 100),
        );
        assert_eq!(d.outcome, Outcome::Unschedulable);
        assert!(d.preemption.as_ref().unwrap().potential_nodes.is_empty());
    }

    #[test]
    fn preferred_terms_of_the_incoming_pod_score() {
        let s = snapshot(
            vec![zoned("a", "z1"), zoned("b", "z1"), zoned("c", "z2")],
            vec![
                bound(app("db", "db"), "a"),
                bound(app("cache", "cache"), "b"),
            ],
        );
        let p = merge(
            with_affinity(
                app("p", "web"),
                "podAffinity",
                json!([]),
                json!([{"weight": 50, "podAffinityTerm": term("db", ZONE)}]),
            ),
            json!({"spec": {"affinity": {"podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 20, "podAffinityTerm": term("cache", HOST)}
                ]
            }}}}),
        );
        let d = decide_json(&s, &p);
        // Raw: a 50, b 50 − 20 = 30, c 0; min-max normalised 100, 60, 0; weight 2.
        assert_eq!(plugin_score(&d, "a", NAME), Some(200));
        assert_eq!(plugin_score(&d, "b", NAME), Some(120));
        assert_eq!(plugin_score(&d, "c", NAME), Some(0));
    }

    #[test]
    fn existing_pods_terms_score_the_incoming_pod() {
        let lover = affinity(app("lover", "x"), json!([term("web", ZONE)]));
        let hater = with_affinity(
            app("hater", "y"),
            "podAntiAffinity",
            json!([]),
            json!([{"weight": 30, "podAffinityTerm": term("web", HOST)}]),
        );
        let s = snapshot(
            vec![zoned("a", "z1"), zoned("b", "z1"), zoned("c", "z2")],
            vec![bound(lover, "c"), bound(hater, "b")],
        );
        let d = decide_json(&s, &app("p", "web"));
        // Raw: a 0, b −30, c +1 (hard affinity weight 1); min −30, max 1, diff 31:
        // a 100 × 30/31 = 96, b 0, c 100; weight 2.
        assert_eq!(plugin_score(&d, "a", NAME), Some(192));
        assert_eq!(plugin_score(&d, "b", NAME), Some(0));
        assert_eq!(plugin_score(&d, "c", NAME), Some(200));
    }

    #[test]
    fn scoring_skips_without_any_affinity() {
        let s = snapshot(
            vec![zoned("a", "z1"), zoned("b", "z2")],
            vec![bound(app("db", "db"), "a")],
        );
        let d = decide_json(&s, &app("p", "web"));
        assert_eq!(plugin_score(&d, "a", NAME), None);
        with_pre_filter(&s, &app("p", "web"), |pre| {
            assert!(pre.state.inter_pod.is_none())
        });
        // Equal raw scores normalise to 0.
        let p = with_affinity(
            app("p", "web"),
            "podAffinity",
            json!([]),
            json!([{"weight": 10, "podAffinityTerm": term("db", "missing-key")}]),
        );
        let d = decide_json(&s, &p);
        assert_eq!(plugin_score(&d, "a", NAME), None);
        let p = with_affinity(
            app("p", "web"),
            "podAffinity",
            json!([]),
            json!([{"weight": 10, "podAffinityTerm": term("db", "kubernetes.io/os")}]),
        );
        let s = snapshot(
            vec![
                labeled(zoned("a", "z1"), json!({"kubernetes.io/os": "linux"})),
                labeled(zoned("b", "z2"), json!({"kubernetes.io/os": "linux"})),
            ],
            vec![bound(app("db", "db"), "a")],
        );
        let d = decide_json(&s, &p);
        assert_eq!(plugin_score(&d, "a", NAME), Some(0));
        assert_eq!(plugin_score(&d, "b", NAME), Some(0));
    }
}
