//! PodTopologySpread: hard constraints (`DoNotSchedule`) as a Filter with PreFilter
//! counts that preemption updates pod by pod, and soft constraints (`ScheduleAnyway`) as
//! a Score. System default constraints need Services/ReplicaSets/StatefulSets to select
//! pods; the oracle holds none, so they never apply (as in the conformance scenarios).

use std::collections::BTreeMap;
use std::hash::Hash;
use std::sync::Arc;

use rayon::prelude::*;

use super::node_affinity::{RequiredOnIndex, required_matches};
use super::{FilterPlugin, MAX_NODE_SCORE, NodeScorer};
use crate::engine::Evaluation;
use crate::engine::cycle_state::CycleState;
use crate::engine::framework::Feasible;
use crate::engine::label_counts::Probe;
use crate::engine::matching_pods::{Counts, MatchingPods};
use crate::engine::node_label_index::LabelColumn;
use crate::engine::snapshot::{NodeInfo, Snapshot};
use crate::engine::status::Status;
use crate::hashing::NameMap;
use crate::model::taints::first_untolerated_hard_taint;
use crate::model::{InclusionPolicy, Node, Pod, TopologySpreadConstraint, UnsatisfiableAction};

pub const NAME: &str = "PodTopologySpread";
pub const REASON: &str = "node(s) didn't match pod topology spread constraints";
pub const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const HOSTNAME: &str = "kubernetes.io/hostname";

fn constraints(pod: &Pod, action: UnsatisfiableAction) -> Vec<TopologySpreadConstraint> {
    pod.topology_spread_constraints
        .iter()
        .filter(|c| c.when_unsatisfiable == action)
        .cloned()
        .collect()
}

/// Whether the plugin scores `pod` at all: only its `ScheduleAnyway` constraints count
/// in Score.
pub fn scores(pod: &Pod) -> bool {
    pod.topology_spread_constraints
        .iter()
        .any(|c| c.when_unsatisfiable == UnsatisfiableAction::ScheduleAnyway)
}

fn has_all_keys(node: &Node, constraints: &[TopologySpreadConstraint]) -> bool {
    constraints
        .iter()
        .all(|c| node.labels.contains_key(&c.topology_key))
}

/// `matchNodeInclusionPolicies`; `required` tells whether the node matches the pod's
/// node selector and required node affinity.
fn node_included(
    c: &TopologySpreadConstraint,
    pod: &Pod,
    node: &Node,
    required: impl FnOnce() -> bool,
) -> bool {
    if c.node_affinity_policy == InclusionPolicy::Honor && !required() {
        return false;
    }
    if c.node_taints_policy == InclusionPolicy::Honor
        && first_untolerated_hard_taint(&node.taints, &pod.tolerations).is_some()
    {
        return false;
    }
    true
}

/// Pods on `node` in `namespace` matching `c`, skipping terminating pods. With a probe
/// (the fast path) a node whose label counts rule the selector out is not visited.
fn count_matching(
    node: &NodeInfo,
    c: &TopologySpreadConstraint,
    namespace: &str,
    probe: Option<&Probe>,
) -> i64 {
    if c.selector.is_empty() || probe.is_some_and(|p| !node.label_counts.may_match(p)) {
        return 0;
    }
    node.pods
        .iter()
        .filter(|p| {
            !p.pod.terminating && p.pod.namespace == namespace && c.selector.matches(&p.pod.labels)
        })
        .count() as i64
}

/// The fast path's probes, one per constraint; `None` for the straightforward evaluation.
fn probes(
    pod: &Pod,
    constraints: &[TopologySpreadConstraint],
    evaluation: Evaluation,
) -> Option<Vec<Probe>> {
    (evaluation == Evaluation::Fast).then(|| {
        constraints
            .iter()
            .map(|c| Probe::new(&pod.namespace, &c.selector))
            .collect()
    })
}

/// Matching pods per domain of one constraint, as [`domain_counts`] adds them up; a
/// domain that a counted node has is present, even with no matching pod.
trait Tally<D>: Default + Send {
    fn add(&mut self, domain: D, n: i64);
    fn merge(&mut self, other: Self);
}

impl<D: Eq + Hash + Send> Tally<D> for NameMap<D, i64> {
    fn add(&mut self, domain: D, n: i64) {
        *self.entry(domain).or_insert(0) += n;
    }

    fn merge(&mut self, other: Self) {
        for (d, n) in other {
            self.add(d, n);
        }
    }
}

/// A tally by value id: `None` for an id no counted node has.
#[derive(Default)]
struct ById(Vec<Option<i64>>);

impl Tally<u32> for ById {
    fn add(&mut self, id: u32, n: i64) {
        let id = id as usize;
        if self.0.len() <= id {
            self.0.resize(id + 1, None);
        }
        *self.0[id].get_or_insert(0) += n;
    }

    fn merge(&mut self, other: Self) {
        for (id, n) in other.0.into_iter().enumerate() {
            if let Some(n) = n {
                self.add(id as u32, n);
            }
        }
    }
}

impl ById {
    /// `(id, matching pods)` of every present id.
    fn present(self) -> impl Iterator<Item = (u32, i64)> {
        self.0
            .into_iter()
            .enumerate()
            .filter_map(|(id, n)| Some((id as u32, n?)))
    }
}

/// How [`domain_counts`] reads node `i`: its domain for constraint `k` (its value of the
/// topology key, or that value's id; `None` when it lacks the key), and whether it
/// matches the pod's node selector and required node affinity.
trait NodeReading<'a>: Sync {
    type Domain: Copy + Send;
    /// How counts by domain are kept.
    type Tally: Tally<Self::Domain>;
    fn domain(&self, i: usize, info: &'a NodeInfo, k: usize) -> Option<Self::Domain>;
    fn required(&self, i: usize, info: &NodeInfo) -> bool;
}

/// Reads nodes' labels directly.
struct FromLabels<'c> {
    pod: &'c Pod,
    constraints: &'c [TopologySpreadConstraint],
}

impl<'a> NodeReading<'a> for FromLabels<'_> {
    type Domain = &'a str;
    type Tally = NameMap<&'a str, i64>;

    fn domain(&self, _: usize, info: &'a NodeInfo, k: usize) -> Option<&'a str> {
        info.node.labels.get(&self.constraints[k].topology_key)
    }

    fn required(&self, _: usize, info: &NodeInfo) -> bool {
        required_matches(self.pod, &info.node.name, &info.node.labels)
    }
}

/// Reads the snapshot's node label index (the fast path): domains are value ids.
struct FromIndex<'s> {
    columns: Vec<Option<&'s LabelColumn>>,
    required: RequiredOnIndex<'s>,
}

impl<'s> FromIndex<'s> {
    fn new(
        snapshot: &'s Snapshot,
        pod: &'s Pod,
        constraints: &[TopologySpreadConstraint],
    ) -> FromIndex<'s> {
        let index = snapshot.node_label_index();
        FromIndex {
            columns: constraints
                .iter()
                .map(|c| index.column(&c.topology_key))
                .collect(),
            required: RequiredOnIndex::new(pod, index),
        }
    }
}

impl NodeReading<'_> for FromIndex<'_> {
    type Domain = u32;
    type Tally = ById;

    fn domain(&self, i: usize, _: &NodeInfo, k: usize) -> Option<u32> {
        self.columns[k].and_then(|c| c.id(i))
    }

    fn required(&self, i: usize, info: &NodeInfo) -> bool {
        self.required.matches(i, info.name())
    }
}

/// Per constraint: domain → matching pods, over every node that counts for it (it has
/// every topology key and the inclusion policies keep it), each node read through
/// `read`. The fast path counts nodes in parallel, as upstream's parallelizer does.
/// Without `every_domain` only the counts matter (not which domains exist), and the
/// fast path skips the nodes whose label counts rule out every constraint's selector.
/// With `matching` (a sequence), each node's count is reused while the node is the
/// same, and counts made afresh are remembered there.
fn domain_counts<'a, R: NodeReading<'a>>(
    snapshot: &'a Snapshot,
    pod: &Pod,
    constraints: &[TopologySpreadConstraint],
    evaluation: Evaluation,
    every_domain: bool,
    read: &R,
    matching: Option<&MatchingPods>,
) -> Vec<R::Tally> {
    let probes = probes(pod, constraints, evaluation);
    let reader = matching.map(MatchingPods::reader);
    let remembered: Vec<Option<Counts>> = constraints
        .iter()
        .map(|c| reader.as_ref()?.table(&pod.namespace, &c.selector))
        .collect();
    // Per constraint, the domain counts; and the counts made afresh (constraint, node,
    // count) when there is a memo to remember them in.
    type Acc<T> = (Vec<T>, Vec<(usize, usize, u32)>);
    // Adds one node (by reference: the accumulator is not moved for every node).
    let add = |(counts, fresh): &mut Acc<R::Tally>, (i, info): (usize, &'a Arc<NodeInfo>)| {
        let known = |k: usize| remembered[k].and_then(|r| r.get(i, info));
        if !every_domain {
            // Only the counts matter: skip a node known to hold no matching pod, from
            // the memo or from its label counts (which then go in the memo).
            let rules_out = |k: usize| {
                probes
                    .as_ref()
                    .is_some_and(|p| !info.label_counts.may_match(&p[k]))
            };
            let holds_none = (0..constraints.len()).all(|k| match known(k) {
                Some(n) => n == 0,
                None => rules_out(k),
            });
            if holds_none {
                if matching.is_some() {
                    let unknown = (0..constraints.len()).filter(|&k| known(k).is_none());
                    fresh.extend(unknown.map(|k| (k, i, 0)));
                }
                return;
            }
        }
        if !(0..constraints.len()).all(|k| read.domain(i, info, k).is_some()) {
            return;
        }
        for (k, c) in constraints.iter().enumerate() {
            if !node_included(c, pod, &info.node, || read.required(i, info)) {
                continue;
            }
            let n = match known(k) {
                Some(n) => i64::from(n),
                None => {
                    let probe = probes.as_ref().map(|p| &p[k]);
                    let n = count_matching(info, c, &pod.namespace, probe);
                    if matching.is_some() {
                        fresh.push((k, i, n as u32));
                    }
                    n
                }
            };
            let d = read
                .domain(i, info, k)
                .expect("checked: the node has every key");
            counts[k].add(d, n);
        }
    };
    let empty = || {
        let counts = (0..constraints.len()).map(|_| R::Tally::default());
        (counts.collect(), Vec::new())
    };
    let (counts, fresh) = match evaluation {
        Evaluation::Fast => snapshot
            .nodes
            .par_iter()
            .with_min_len(crate::engine::task_len(crate::engine::NODES_PER_TASK))
            .enumerate()
            .fold(empty, |mut acc, node| {
                add(&mut acc, node);
                acc
            })
            .reduce(empty, |(mut a, mut fresh_a), (b, fresh_b)| {
                for (a, b) in a.iter_mut().zip(b) {
                    a.merge(b);
                }
                fresh_a.extend(fresh_b);
                (a, fresh_a)
            }),
        Evaluation::Straightforward => {
            let mut acc = empty();
            for node in snapshot.nodes.iter().enumerate() {
                add(&mut acc, node);
            }
            acc
        }
    };
    // The read lock goes before the counts made afresh are written.
    drop(remembered);
    drop(reader);
    if let Some(matching) = matching {
        matching.remember(fresh.into_iter().map(|(k, i, n)| {
            let c = &constraints[k];
            (
                pod.namespace.as_str(),
                &c.selector,
                i,
                &snapshot.nodes[i],
                n,
            )
        }));
    }
    counts
}

/// The two smallest domain counts (`criticalPaths`), updated as upstream updates them.
#[derive(Debug, Clone)]
struct CriticalPaths([(String, i64); 2]);

impl CriticalPaths {
    fn new() -> CriticalPaths {
        CriticalPaths([
            (String::new(), i64::from(i32::MAX)),
            (String::new(), i64::from(i32::MAX)),
        ])
    }

    fn update(&mut self, value: &str, num: i64) {
        let p = &mut self.0;
        let i = if value == p[0].0 {
            Some(0)
        } else if value == p[1].0 {
            Some(1)
        } else {
            None
        };
        match i {
            Some(i) => {
                p[i].1 = num;
                if p[0].1 > p[1].1 {
                    p.swap(0, 1);
                }
            }
            None => {
                if num < p[0].1 {
                    p[1] = p[0].clone();
                    p[0] = (value.to_string(), num);
                } else if num < p[1].1 {
                    p[1] = (value.to_string(), num);
                }
            }
        }
    }
}

/// PreFilter state for the hard constraints.
#[derive(Debug, Clone)]
pub struct FilterState {
    constraints: Vec<TopologySpreadConstraint>,
    /// Per constraint: domain value → matching pods.
    counts: Vec<NameMap<String, i64>>,
    paths: Vec<CriticalPaths>,
}

/// PreFilter: `None` (skip) when the pod has no hard constraints. With `matching` (a
/// sequence), node counts are reused and remembered there.
pub fn pre_filter(
    snapshot: &Snapshot,
    pod: &Pod,
    evaluation: Evaluation,
    matching: Option<&MatchingPods>,
) -> Option<FilterState> {
    let constraints = constraints(pod, UnsatisfiableAction::DoNotSchedule);
    if constraints.is_empty() {
        return None;
    }
    let counts: Vec<NameMap<String, i64>> = match evaluation {
        Evaluation::Fast => {
            let read = FromIndex::new(snapshot, pod, &constraints);
            let by_id = domain_counts(
                snapshot,
                pod,
                &constraints,
                evaluation,
                true,
                &read,
                matching,
            );
            let index = snapshot.node_label_index();
            by_id
                .into_iter()
                .zip(&constraints)
                .map(|(m, c)| {
                    // A counted node has the key, so the column exists.
                    let column = index.column(&c.topology_key);
                    m.present()
                        .filter_map(|(id, n)| Some((column?.value(id).to_string(), n)))
                        .collect()
                })
                .collect()
        }
        Evaluation::Straightforward => {
            let read = FromLabels {
                pod,
                constraints: &constraints,
            };
            domain_counts(snapshot, pod, &constraints, evaluation, true, &read, None)
                .into_iter()
                .map(|m| m.into_iter().map(|(v, n)| (v.to_string(), n)).collect())
                .collect()
        }
    };
    let paths = counts
        .iter()
        .map(|m| {
            let mut p = CriticalPaths::new();
            // Sorted for determinism; ties cannot change the minimum.
            for (value, num) in m.iter().collect::<BTreeMap<_, _>>() {
                p.update(value, *num);
            }
            p
        })
        .collect();
    Some(FilterState {
        constraints,
        counts,
        paths,
    })
}

impl FilterState {
    /// PreFilterExtensions AddPod (`delta` 1) / RemovePod (`delta` -1).
    pub fn update(&mut self, incoming: &Pod, changed: &Pod, node: &Node, delta: i64) {
        if changed.namespace != incoming.namespace || !has_all_keys(node, &self.constraints) {
            return;
        }
        for (i, c) in self.constraints.iter().enumerate() {
            let required = || required_matches(incoming, &node.name, &node.labels);
            if !c.selector.matches(&changed.labels) || !node_included(c, incoming, node, required) {
                continue;
            }
            let value = &node.labels[&c.topology_key];
            let count = self.counts[i].entry(value.to_string()).or_insert(0);
            *count += delta;
            let n = *count;
            self.paths[i].update(value, n);
        }
    }

    fn min_match(&self, i: usize) -> i64 {
        if (self.counts[i].len() as i64) < i64::from(self.constraints[i].min_domains) {
            0
        } else {
            self.paths[i].0[0].1
        }
    }
}

pub struct PodTopologySpread;

impl FilterPlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Option<Status> {
        let s = state.spread.as_ref()?;
        let pod = &state.pod.pod;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = node.node.labels.get(&c.topology_key) else {
                return Some(Status::unresolvable(REASON_MISSING_LABEL));
            };
            let self_match = i64::from(c.selector.matches(&pod.labels));
            let matched = s.counts[i].get(value).copied().unwrap_or(0);
            if matched + self_match - s.min_match(i) > i64::from(c.max_skew) {
                return Some(Status::unschedulable(REASON));
            }
        }
        None
    }
}

/// Score state for the soft constraints.
pub struct Scorer<'a> {
    pod: &'a Pod,
    constraints: Vec<TopologySpreadConstraint>,
    /// Per feasible node, per constraint (row-major): the id of the node's value of the
    /// constraint's topology key; every entry of a node that lacks one of the keys is
    /// `None` (the node is ignored and scores 0).
    values: Vec<Option<u32>>,
    /// Per constraint: matching pods by value id; `None` for hostname, whose one node's
    /// pods are counted when it is scored.
    counts: Vec<Option<Vec<i64>>>,
    weights: Vec<f64>,
    /// The fast path's probes for the hostname constraints' counts.
    probes: Option<Vec<Probe>>,
}

/// Value ids of the feasible nodes' domains, per constraint.
struct Domains {
    /// As [`Scorer::values`].
    values: Vec<Option<u32>>,
    /// Per constraint: how many ids there are.
    ids: Vec<usize>,
    /// Per constraint: matching pods by value id, over every node that counts.
    counts: Vec<Vec<i64>>,
}

/// The fast path's domains: ids from the snapshot's node label index, read by the
/// feasible nodes' snapshot indices.
fn indexed_domains<'a>(
    snapshot: &'a Snapshot,
    pod: &'a Pod,
    constraints: &[TopologySpreadConstraint],
    feasible: &Feasible<'a>,
    matching: Option<&MatchingPods>,
) -> Domains {
    let read = FromIndex::new(snapshot, pod, constraints);
    let id = |node: usize, k: usize| read.columns[k].and_then(|c| c.id(node));
    // Two column reads per node: cheaper on one thread than handed out to the pool.
    let width = constraints.len();
    let mut values: Vec<Option<u32>> = Vec::with_capacity(feasible.at.len() * width);
    for &at in &feasible.at {
        let node_values = values.len();
        values.extend((0..width).map(|k| id(at as usize, k)));
        // A node without every key has no value for any constraint.
        if values[node_values..].contains(&None) {
            values[node_values..].fill(None);
        }
    }
    let ids: Vec<usize> = read
        .columns
        .iter()
        .map(|c| c.map_or(0, |c| c.distinct()))
        .collect();
    let by_id = domain_counts(
        snapshot,
        pod,
        constraints,
        Evaluation::Fast,
        false,
        &read,
        matching,
    );
    let counts = by_id
        .into_iter()
        .zip(&ids)
        .map(|(found, &n)| {
            let mut counts = vec![0; n];
            for (id, matching) in found.present() {
                counts[id as usize] = matching;
            }
            counts
        })
        .collect();
    Domains {
        values,
        ids,
        counts,
    }
}

/// The straightforward evaluation's domains: each feasible node's labels searched, the
/// values numbered as they come.
fn interned_domains<'a>(
    snapshot: &'a Snapshot,
    pod: &Pod,
    constraints: &[TopologySpreadConstraint],
    feasible: &Feasible<'a>,
) -> Domains {
    let mut interned: Vec<NameMap<&str, u32>> = vec![NameMap::default(); constraints.len()];
    let mut values = Vec::with_capacity(feasible.nodes.len() * constraints.len());
    for node in &feasible.nodes {
        let has_all = has_all_keys(&node.node, constraints);
        for (k, c) in constraints.iter().enumerate() {
            let value = has_all
                .then(|| node.node.labels.get(&c.topology_key))
                .flatten()
                .map(|v| {
                    let next = interned[k].len() as u32;
                    *interned[k].entry(v).or_insert(next)
                });
            values.push(value);
        }
    }
    let read = FromLabels { pod, constraints };
    let by_value = domain_counts(
        snapshot,
        pod,
        constraints,
        Evaluation::Straightforward,
        false,
        &read,
        None,
    );
    let counts = by_value
        .iter()
        .zip(&interned)
        .map(|(found, ids)| {
            let mut counts = vec![0; ids.len()];
            for (value, id) in ids {
                counts[*id as usize] = found.get(value).copied().unwrap_or(0);
            }
            counts
        })
        .collect();
    Domains {
        values,
        ids: interned.iter().map(NameMap::len).collect(),
        counts,
    }
}

/// PreScore: `None` (skip) when the pod has no soft constraints. With `matching` (a
/// sequence), node counts are reused and remembered there.
pub fn pre_score<'a>(
    snapshot: &'a Snapshot,
    pod: &'a Pod,
    feasible: &Feasible<'a>,
    evaluation: Evaluation,
    matching: Option<&MatchingPods>,
) -> Option<Scorer<'a>> {
    if !scores(pod) || snapshot.nodes.is_empty() {
        return None;
    }
    let constraints = constraints(pod, UnsatisfiableAction::ScheduleAnyway);
    let Domains {
        values,
        ids,
        counts,
        ..
    } = match evaluation {
        Evaluation::Fast => indexed_domains(snapshot, pod, &constraints, feasible, matching),
        Evaluation::Straightforward => interned_domains(snapshot, pod, &constraints, feasible),
    };
    let width = constraints.len();
    let scored = values.chunks(width).filter(|v| v[0].is_some());
    // The domains among the feasible nodes that are not ignored.
    let mut seen: Vec<Vec<bool>> = ids.iter().map(|n| vec![false; *n]).collect();
    let mut num_scored = 0;
    for node_values in scored {
        num_scored += 1;
        for (id, seen) in node_values.iter().zip(&mut seen) {
            seen[id.expect("a scored node has every key") as usize] = true;
        }
    }
    let weights = constraints
        .iter()
        .zip(&seen)
        .map(|(c, seen)| {
            let size = if c.topology_key == HOSTNAME {
                num_scored
            } else {
                seen.iter().filter(|s| **s).count()
            };
            ((size + 2) as f64).ln()
        })
        .collect();
    let probes = probes(pod, &constraints, evaluation);
    let counts = constraints
        .iter()
        .zip(counts)
        .map(|(c, counts)| (c.topology_key != HOSTNAME).then_some(counts))
        .collect();
    Some(Scorer {
        pod,
        constraints,
        values,
        counts,
        weights,
        probes,
    })
}

impl Scorer<'_> {
    fn node_values(&self, index: usize) -> &[Option<u32>] {
        let width = self.constraints.len();
        &self.values[index * width..(index + 1) * width]
    }
}

impl NodeScorer for Scorer<'_> {
    fn score(&self, index: usize, node: &NodeInfo) -> i64 {
        let values = self.node_values(index);
        let mut score = 0.0f64;
        for (i, (c, value)) in self.constraints.iter().zip(values).enumerate() {
            let Some(id) = value else {
                return 0;
            };
            let count = match &self.counts[i] {
                Some(by_id) => by_id[*id as usize],
                None => {
                    let probe = self.probes.as_ref().map(|p| &p[i]);
                    count_matching(node, c, &self.pod.namespace, probe)
                }
            };
            score += count as f64 * self.weights[i] + f64::from(c.max_skew - 1);
        }
        score.round() as i64
    }

    fn normalizes(&self) -> bool {
        true
    }

    fn normalize(&self, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        let mut min = i64::MAX;
        let mut max = 0i64;
        let valid = |i: usize| self.node_values(i)[0].is_some();
        for (i, s) in scores.iter().enumerate() {
            if valid(i) {
                min = min.min(*s);
                max = max.max(*s);
            }
        }
        for (i, s) in scores.iter_mut().enumerate() {
            *s = if !valid(i) {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
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

    fn zoned(name: &str, zone: &str) -> Value {
        labeled(node(name, "4", "8Gi", 110), json!({ZONE: zone}))
    }

    fn web(name: &str) -> Value {
        labeled(pod(name, "100m", ""), json!({"app": "web"}))
    }

    fn constraint(key: &str, max_skew: i32, action: &str) -> Value {
        json!({
            "maxSkew": max_skew,
            "topologyKey": key,
            "whenUnsatisfiable": action,
            "labelSelector": {"matchLabels": {"app": "web"}},
        })
    }

    fn spreading(p: Value, constraints: Value) -> Value {
        merge(
            p,
            json!({"spec": {"topologySpreadConstraints": constraints}}),
        )
    }

    fn hard(max_skew: i32) -> Value {
        constraint(ZONE, max_skew, "DoNotSchedule")
    }

    /// a and b in z1 with two web pods on a; c in z2 with none.
    fn two_zones() -> crate::engine::Snapshot {
        snapshot(
            vec![zoned("a", "z1"), zoned("b", "z1"), zoned("c", "z2")],
            vec![bound(web("w1"), "a"), bound(web("w2"), "a")],
        )
    }

    #[test]
    fn max_skew_counts_matching_pods_per_domain() {
        let s = two_zones();
        let d = decide_json(&s, &spreading(web("p"), json!([hard(1)])));
        // z1: 2 + 1 − min 0 = 3 > 1.
        for n in ["a", "b"] {
            assert_rejected(&d, n, Code::Unschedulable, NAME, &[REASON]);
        }
        assert_feasible(&d, "c");
        // maxSkew 3 tolerates it.
        let d = decide_json(&s, &spreading(web("p"), json!([hard(3)])));
        assert_eq!(d.feasible_nodes, strings(&["a", "b", "c"]));
        // maxSkew 2: 2 + 1 − 0 = 3 > 2 still.
        let d = decide_json(&s, &spreading(web("p"), json!([hard(2)])));
        assert_eq!(d.feasible_nodes, strings(&["c"]));
    }

    #[test]
    fn an_incoming_pod_that_does_not_match_adds_nothing() {
        let s = two_zones();
        let other = labeled(pod("p", "100m", ""), json!({"app": "batch"}));
        // z1: 2 + 0 − 0 = 2 ≤ 2.
        let d = decide_json(&s, &spreading(other.clone(), json!([hard(2)])));
        assert_eq!(d.feasible_nodes, strings(&["a", "b", "c"]));
        let d = decide_json(&s, &spreading(other, json!([hard(1)])));
        assert_eq!(d.feasible_nodes, strings(&["c"]));
    }

    #[test]
    fn node_without_the_topology_key_is_unresolvable() {
        let s = snapshot(
            vec![zoned("a", "z1"), node("bare", "4", "8Gi", 110)],
            vec![bound(web("w1"), "bare"), bound(web("w2"), "bare")],
        );
        let d = decide_json(&s, &spreading(web("p"), json!([hard(1)])));
        assert_rejected(
            &d,
            "bare",
            Code::UnschedulableAndUnresolvable,
            NAME,
            &[REASON_MISSING_LABEL],
        );
        // The bare node's pods count in no domain: z1 is 0 + 1 − 0.
        assert_feasible(&d, "a");
    }

    #[test]
    fn min_domains_treats_the_global_minimum_as_zero() {
        let s = snapshot(
            vec![zoned("a", "z1"), zoned("c", "z2")],
            vec![bound(web("w1"), "a"), bound(web("w2"), "c")],
        );
        let with_min = |min: Option<i32>| {
            let mut c = hard(1);
            if let Some(m) = min {
                c["minDomains"] = json!(m);
            }
            decide_json(&s, &spreading(web("p"), json!([c])))
        };
        // Two domains with one pod each: 1 + 1 − 1 = 1.
        assert_eq!(with_min(None).feasible_nodes, strings(&["a", "c"]));
        assert_eq!(with_min(Some(2)).feasible_nodes, strings(&["a", "c"]));
        // Fewer domains than minDomains: 1 + 1 − 0 = 2 > 1 everywhere.
        let d = with_min(Some(3));
        for n in ["a", "c"] {
            assert_rejected(&d, n, Code::Unschedulable, NAME, &[REASON]);
        }
    }

    #[test]
    fn node_affinity_policy_honor_excludes_unselected_nodes() {
        let s = snapshot(
            vec![
                labeled(zoned("a", "z1"), json!({"pool": "x"})),
                labeled(zoned("b", "z2"), json!({"pool": "y"})),
            ],
            vec![bound(web("w1"), "a")],
        );
        let p = |policy: Option<&str>| {
            let mut c = hard(1);
            if let Some(policy) = policy {
                c["nodeAffinityPolicy"] = json!(policy);
            }
            merge(
                spreading(web("p"), json!([c])),
                json!({"spec": {"nodeSelector": {"pool": "x"}}}),
            )
        };
        // Honor (the default): z2 is not a domain, so the minimum is z1's 1.
        for policy in [None, Some("Honor")] {
            let d = decide_json(&s, &p(policy));
            assert_feasible(&d, "a");
            assert_rejected(
                &d,
                "b",
                Code::UnschedulableAndUnresolvable,
                "NodeAffinity",
                &["node(s) didn't match Pod's node affinity/selector"],
            );
        }
        // Ignore: z2 counts with 0 pods, so a has skew 2.
        let d = decide_json(&s, &p(Some("Ignore")));
        assert_rejected(&d, "a", Code::Unschedulable, NAME, &[REASON]);
    }

    #[test]
    fn node_taints_policy_honor_excludes_untolerated_nodes() {
        let s = snapshot(
            vec![
                zoned("a", "z1"),
                tainted(
                    zoned("b", "z2"),
                    json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
                ),
            ],
            vec![bound(web("w1"), "a")],
        );
        let p = |policy: Option<&str>| {
            let mut c = hard(1);
            if let Some(policy) = policy {
                c["nodeTaintsPolicy"] = json!(policy);
            }
            spreading(web("p"), json!([c]))
        };
        // Ignore (the default): the tainted z2 counts with 0 pods.
        for policy in [None, Some("Ignore")] {
            let d = decide_json(&s, &p(policy));
            assert_rejected(&d, "a", Code::Unschedulable, NAME, &[REASON]);
            assert_rejected(
                &d,
                "b",
                Code::UnschedulableAndUnresolvable,
                "TaintToleration",
                &["node(s) had untolerated taint(s)"],
            );
        }
        let d = decide_json(&s, &p(Some("Honor")));
        assert_feasible(&d, "a");
        // With a toleration the tainted node is a domain again, even under Honor.
        let tolerant = merge(
            p(Some("Honor")),
            json!({"spec": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}}),
        );
        let d = decide_json(&s, &tolerant);
        assert_rejected(&d, "a", Code::Unschedulable, NAME, &[REASON]);
        assert_feasible(&d, "b");
    }

    #[test]
    fn other_namespaces_and_terminating_pods_do_not_count() {
        let s = snapshot(
            vec![zoned("a", "z1"), zoned("c", "z2")],
            vec![
                bound(in_namespace(web("o1"), "other"), "a"),
                bound(in_namespace(web("o2"), "other"), "a"),
                bound(
                    merge(
                        web("gone"),
                        json!({"metadata": {"deletionTimestamp": "2024-05-01T12:00:00Z"}}),
                    ),
                    "a",
                ),
            ],
        );
        let d = decide_json(&s, &spreading(web("p"), json!([hard(1)])));
        assert_eq!(d.feasible_nodes, strings(&["a", "c"]));
        // The same pods in the pod's own namespace do count.
        let d = decide_json(
            &s,
            &in_namespace(spreading(web("p"), json!([hard(1)])), "other"),
        );
        assert_eq!(d.feasible_nodes, strings(&["c"]));
    }

    #[test]
    fn pre_filter_state_and_skip() {
        let s = two_zones();
        with_pre_filter(&s, &web("p"), |pre| assert!(pre.state.spread.is_none()));
        with_pre_filter(&s, &spreading(web("p"), json!([hard(1)])), |pre| {
            let st = pre.state.spread.as_ref().unwrap();
            assert_eq!(st.counts[0].get("z1"), Some(&2));
            assert_eq!(st.counts[0].get("z2"), Some(&0));
            assert_eq!(st.min_match(0), 0);
        });
        // Soft constraints alone do not run the filter.
        with_pre_filter(
            &s,
            &spreading(web("p"), json!([constraint(ZONE, 1, "ScheduleAnyway")])),
            |pre| assert!(pre.state.spread.is_none()),
        );
    }

    #[test]
    fn preemption_updates_counts_pod_by_pod() {
        let s = snapshot(
            vec![
                zoned("a", "z1"),
                labeled(node("c", "1", "8Gi", 110), json!({ZONE: "z2"})),
            ],
            vec![
                started(prio(bound(web("web-old"), "a"), 0), "2024-05-01T10:00:00Z"),
                started(prio(bound(web("web-new"), "a"), 0), "2024-05-01T11:00:00Z"),
                prio(bound(pod("system", "1", ""), "c"), 2000),
            ],
        );
        let d = decide_json(&s, &prio(spreading(web("p"), json!([hard(2)])), 1000));
        assert_rejected(&d, "a", Code::Unschedulable, NAME, &[REASON]);
        assert_rejected(
            &d,
            "c",
            Code::Unschedulable,
            "NodeResourcesFit",
            &["Insufficient cpu"],
        );
        assert_eq!(d.outcome, Outcome::Preempts);
        // Without both: 0 + 1. Reprieving web-old: 1 + 1 ≤ 2. web-new: 2 + 1 > 2.
        assert_eq!(victims(&d, "a"), Some(strings(&["default/web-new"])));
        let c = &d.preemption.as_ref().unwrap().nodes["c"];
        assert!(!c.candidate);
        assert_eq!(
            c.reasons,
            Some(strings(&["No preemption victims found for incoming pod"]))
        );
    }

    #[test]
    fn soft_hostname_constraint_scores_fewer_matches_higher() {
        let s = snapshot(
            vec![node("a", "4", "8Gi", 110), node("b", "4", "8Gi", 110)],
            vec![bound(web("w1"), "a")],
        );
        let p = spreading(web("p"), json!([constraint(HOSTNAME, 1, "ScheduleAnyway")]));
        let d = decide_json(&s, &p);
        // Weight ln(2 + 2); raw a round(1 × 1.386) = 1, b 0; normalised
        // 100 × (max + min − s) / max: a 0, b 100; plugin weight 2.
        assert_eq!(plugin_score(&d, "a", NAME), Some(0));
        assert_eq!(plugin_score(&d, "b", NAME), Some(200));
    }

    #[test]
    fn soft_zone_constraint_ignores_nodes_without_the_key() {
        let s = snapshot(
            vec![
                zoned("a", "z1"),
                zoned("b", "z1"),
                zoned("c", "z2"),
                node("d", "4", "8Gi", 110),
            ],
            vec![
                bound(web("w1"), "a"),
                bound(web("w2"), "a"),
                bound(web("w3"), "b"),
            ],
        );
        let score = |max_skew: i32| {
            let d = decide_json(
                &s,
                &spreading(
                    web("p"),
                    json!([constraint(ZONE, max_skew, "ScheduleAnyway")]),
                ),
            );
            ["a", "b", "c", "d"].map(|n| plugin_score(&d, n, NAME).unwrap())
        };
        // Two zones: weight ln 4 = 1.386. Raw z1 round(3 × 1.386) = 4, z2 0, d ignored.
        assert_eq!(score(1), [0, 0, 200, 0]);
        // maxSkew 2 adds 1 to each raw score: 5 and 1 → 100 × 1/5 = 20 and 100.
        assert_eq!(score(2), [40, 40, 200, 0]);
    }

    #[test]
    fn no_soft_constraints_skip_scoring() {
        let s = two_zones();
        let d = decide_json(&s, &spreading(web("p"), json!([hard(5)])));
        assert_eq!(plugin_score(&d, "a", NAME), None);
    }
}
