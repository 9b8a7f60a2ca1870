//! PodTopologySpread: hard constraints (`DoNotSchedule`) as a Filter with PreFilter
//! counts that preemption updates pod by pod, and soft constraints (`ScheduleAnyway`) as
//! a Score. System default constraints need Services/ReplicaSets/StatefulSets to select
//! pods; the oracle holds none, so they never apply (as in the conformance scenarios).

mod domain_tally;

use std::collections::BTreeMap;

use rayon::prelude::*;

pub use domain_tally::DomainTallies;
use domain_tally::with_tally;

use super::node_affinity::required_matches;
use super::{FilterPlugin, MAX_NODE_SCORE, NodeScorer, NodeVerdicts};
use crate::engine::cycle_state::CycleState;
use crate::engine::framework::Feasible;
use crate::engine::label_counts::Probe;
use crate::engine::node_label_index::LabelColumn;
use crate::engine::snapshot::{NodeInfo, Snapshot};
use crate::engine::status::Status;
use crate::engine::{Evaluation, NODES_PER_TASK, task_len};
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

/// The straightforward evaluation's counts: per constraint, domain → matching pods
/// over every node that counts for it (it has every topology key and the inclusion
/// policies keep it), each node's labels read, on one thread. A counted node's domain
/// is present even with no matching pod.
fn domain_counts<'a>(
    snapshot: &'a Snapshot,
    pod: &Pod,
    constraints: &[TopologySpreadConstraint],
) -> Vec<NameMap<&'a str, i64>> {
    let mut counts = vec![NameMap::default(); constraints.len()];
    for info in &snapshot.nodes {
        let node = &info.node;
        if !has_all_keys(node, constraints) {
            continue;
        }
        for (c, counts) in constraints.iter().zip(&mut counts) {
            let required = || required_matches(pod, &node.name, &node.labels);
            if !node_included(c, pod, node, required) {
                continue;
            }
            let value = node
                .labels
                .get(&c.topology_key)
                .expect("checked: it has every key");
            *counts.entry(value).or_insert(0) += count_matching(info, c, &pod.namespace, None);
        }
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
    /// Per constraint: 1 when it selects the incoming pod itself, else 0.
    self_match: Vec<i64>,
    /// Per constraint: domain value → matching pods.
    counts: Vec<NameMap<String, i64>>,
    paths: Vec<CriticalPaths>,
    /// The fast path's Filter verdicts, until preemption changes the counts.
    verdicts: Option<NodeVerdicts>,
}

/// [`NodeVerdicts`] codes.
const MISSING_LABEL: u8 = 1;
const SKEWED: u8 = 2;

/// PreFilter: `None` (skip) when the pod has no hard constraints. With `tallies` (a
/// memo's), the fast path's counts are kept there and brought up to date.
pub fn pre_filter(
    snapshot: &Snapshot,
    pod: &Pod,
    evaluation: Evaluation,
    tallies: Option<&DomainTallies>,
) -> Option<FilterState> {
    let constraints = constraints(pod, UnsatisfiableAction::DoNotSchedule);
    if constraints.is_empty() {
        return None;
    }
    // The fast path also keeps, per constraint, the matching pods by value id.
    let (counts, by_id): (Vec<NameMap<String, i64>>, _) = match evaluation {
        Evaluation::Fast => with_tally(tallies, snapshot, pod, &constraints, |tally| {
            let index = snapshot.node_label_index();
            let present = |k: usize| {
                let domains = tally.domains(k).iter().enumerate();
                domains.filter(|(_, d)| d.nodes > 0)
            };
            let counts = constraints
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    // A present domain is some node's value: the column exists.
                    let column = index.column(&c.topology_key);
                    present(k)
                        .filter_map(|(id, d)| Some((column?.value(id as u32).to_string(), d.pods)))
                        .collect()
                })
                .collect();
            let by_id: Vec<Vec<i64>> = (0..constraints.len())
                .map(|k| tally.domains(k).iter().map(|d| d.pods).collect())
                .collect();
            (counts, Some(by_id))
        }),
        Evaluation::Straightforward => {
            let counts = domain_counts(snapshot, pod, &constraints)
                .into_iter()
                .map(|m| m.into_iter().map(|(v, n)| (v.to_string(), n)).collect())
                .collect();
            (counts, None)
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
    let self_match = constraints
        .iter()
        .map(|c| i64::from(c.selector.matches(&pod.labels)))
        .collect();
    let mut state = FilterState {
        constraints,
        self_match,
        counts,
        paths,
        verdicts: None,
    };
    if let Some(by_id) = by_id {
        state.verdicts = Some(state.verdicts_on_index(snapshot, &by_id));
    }
    Some(state)
}

impl FilterState {
    /// Filter's verdict on every node, read from the node label index: `by_id` holds,
    /// per constraint, the matching pods by value id of its topology key.
    fn verdicts_on_index(&self, snapshot: &Snapshot, by_id: &[Vec<i64>]) -> NodeVerdicts {
        let index = snapshot.node_label_index();
        let columns: Vec<Option<&LabelColumn>> = self
            .constraints
            .iter()
            .map(|c| index.column(&c.topology_key))
            .collect();
        // Per constraint: the most matching pods a domain may hold for the pod to go
        // there.
        let most: Vec<i64> = (0..self.constraints.len())
            .map(|i| {
                i64::from(self.constraints[i].max_skew) + self.min_match(i) - self.self_match[i]
            })
            .collect();
        NodeVerdicts::new((0..snapshot.nodes.len()).map(|at| {
            for (k, column) in columns.iter().enumerate() {
                let Some(id) = column.and_then(|c| c.id(at)) else {
                    return MISSING_LABEL;
                };
                if by_id[k][id as usize] > most[k] {
                    return SKEWED;
                }
            }
            NodeVerdicts::PASSES
        }))
    }

    /// PreFilterExtensions AddPod (`delta` 1) / RemovePod (`delta` -1).
    pub fn update(&mut self, incoming: &Pod, changed: &Pod, node: &Node, delta: i64) {
        // The counts may change: the verdicts no longer hold.
        self.verdicts = None;
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

    fn filter(&self, state: &CycleState, node: &NodeInfo, at: usize) -> Option<Status> {
        let s = state.spread.as_ref()?;
        match s.verdicts.as_ref().and_then(|v| v.at(at)) {
            Some(NodeVerdicts::PASSES) => return None,
            Some(MISSING_LABEL) => return Some(Status::unresolvable(REASON_MISSING_LABEL)),
            Some(_) => return Some(Status::unschedulable(REASON)),
            None => {}
        }
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = node.node.labels.get(&c.topology_key) else {
                return Some(Status::unresolvable(REASON_MISSING_LABEL));
            };
            let matched = s.counts[i].get(value).copied().unwrap_or(0);
            if matched + s.self_match[i] - s.min_match(i) > i64::from(c.max_skew) {
                return Some(Status::unschedulable(REASON));
            }
        }
        None
    }
}

/// One soft constraint's matching pods, as Score reads them.
enum Matching {
    /// By value id of the topology key, summed over every node that counts.
    ByDomain(Vec<i64>),
    /// Hostname: each feasible node's own pods (upstream counts the scored node's
    /// pods, whether or not the inclusion policies keep the node).
    ByFeasibleNode(Vec<i64>),
}

/// Score state for the soft constraints.
pub struct Scorer {
    constraints: Vec<TopologySpreadConstraint>,
    /// Per feasible node, per constraint (row-major): the id of the node's value of the
    /// constraint's topology key; every entry of a node that lacks one of the keys is
    /// `None` (the node is ignored and scores 0).
    values: Vec<Option<u32>>,
    /// Per constraint.
    matching: Vec<Matching>,
    weights: Vec<f64>,
}

/// Value ids of the feasible nodes' domains, per constraint.
struct Domains {
    /// As [`Scorer::values`].
    values: Vec<Option<u32>>,
    /// Per constraint: how many ids there are.
    ids: Vec<usize>,
    /// As [`Scorer::matching`].
    matching: Vec<Matching>,
}

/// The fast path's domains: ids from the snapshot's node label index, read by the
/// feasible nodes' snapshot indices, and the counts from a tally (`tallies`: a memo's).
fn indexed_domains(
    snapshot: &Snapshot,
    pod: &Pod,
    constraints: &[TopologySpreadConstraint],
    feasible: &Feasible,
    tallies: Option<&DomainTallies>,
) -> Domains {
    let index = snapshot.node_label_index();
    let columns: Vec<Option<&LabelColumn>> = constraints
        .iter()
        .map(|c| index.column(&c.topology_key))
        .collect();
    let id = |node: usize, k: usize| columns[k].and_then(|c| c.id(node));
    // A few column reads per node, in runs of nodes split as the other passes are.
    let width = constraints.len();
    let mut values: Vec<Option<u32>> = vec![None; feasible.at.len() * width];
    let per_task = task_len(NODES_PER_TASK);
    values
        .par_chunks_mut(width.max(1))
        .zip(feasible.at.par_iter())
        .with_min_len(per_task)
        .for_each(|(node_values, &at)| {
            for (k, value) in node_values.iter_mut().enumerate() {
                *value = id(at as usize, k);
            }
            // A node without every key has no value for any constraint.
            if node_values.contains(&None) {
                node_values.fill(None);
            }
        });
    let ids = columns
        .iter()
        .map(|c| c.map_or(0, |c| c.distinct()))
        .collect();
    let matching = with_tally(tallies, snapshot, pod, constraints, |tally| {
        let own_pods = |k: usize| {
            let at = feasible.at.par_iter().with_min_len(per_task);
            at.map(|&at| i64::from(tally.cell(at as usize, k).pods))
                .collect()
        };
        let by_domain = |k: usize| tally.domains(k).iter().map(|d| d.pods).collect();
        constraints
            .iter()
            .enumerate()
            .map(|(k, c)| match c.topology_key == HOSTNAME {
                true => Matching::ByFeasibleNode(own_pods(k)),
                false => Matching::ByDomain(by_domain(k)),
            })
            .collect()
    });
    Domains {
        values,
        ids,
        matching,
    }
}

/// The straightforward evaluation's domains: each feasible node's labels searched, the
/// values numbered as they come.
fn interned_domains(
    snapshot: &Snapshot,
    pod: &Pod,
    constraints: &[TopologySpreadConstraint],
    feasible: &Feasible,
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
    let by_value = domain_counts(snapshot, pod, constraints);
    let matching = constraints
        .iter()
        .zip(&by_value)
        .zip(&interned)
        .map(|((c, found), ids)| {
            if c.topology_key == HOSTNAME {
                let own = |n: &&NodeInfo| count_matching(n, c, &pod.namespace, None);
                return Matching::ByFeasibleNode(feasible.nodes.iter().map(own).collect());
            }
            let mut counts = vec![0; ids.len()];
            for (value, id) in ids {
                counts[*id as usize] = found.get(value).copied().unwrap_or(0);
            }
            Matching::ByDomain(counts)
        })
        .collect();
    Domains {
        values,
        ids: interned.iter().map(NameMap::len).collect(),
        matching,
    }
}

/// PreScore: `None` (skip) when the pod has no soft constraints. With `tallies` (a
/// memo's), the fast path's counts are kept there and brought up to date.
pub fn pre_score(
    snapshot: &Snapshot,
    pod: &Pod,
    feasible: &Feasible,
    evaluation: Evaluation,
    tallies: Option<&DomainTallies>,
) -> Option<Scorer> {
    if !scores(pod) || snapshot.nodes.is_empty() {
        return None;
    }
    let constraints = constraints(pod, UnsatisfiableAction::ScheduleAnyway);
    let Domains {
        values,
        ids,
        matching,
    } = match evaluation {
        Evaluation::Fast => indexed_domains(snapshot, pod, &constraints, feasible, tallies),
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
    Some(Scorer {
        constraints,
        values,
        matching,
        weights,
    })
}

/// `x.round() as i64` (half away from zero, as Go's `math.Round`), without the
/// library call `round` compiles to where the target lacks SSE4.1: truncating is an
/// instruction, and the part truncated away is exact, so comparing it with one half is
/// too.
fn rounded(x: f64) -> i64 {
    let whole = x as i64;
    let rest = x - whole as f64;
    if rest >= 0.5 {
        whole.saturating_add(1)
    } else if rest <= -0.5 {
        whole.saturating_sub(1)
    } else {
        whole
    }
}

impl Scorer {
    fn node_values(&self, index: usize) -> &[Option<u32>] {
        let width = self.constraints.len();
        &self.values[index * width..(index + 1) * width]
    }
}

impl NodeScorer for Scorer {
    fn score(&self, index: usize, _node: &NodeInfo) -> i64 {
        let values = self.node_values(index);
        let mut score = 0.0f64;
        for (i, (c, value)) in self.constraints.iter().zip(values).enumerate() {
            let Some(id) = value else {
                return 0;
            };
            let count = match &self.matching[i] {
                Matching::ByDomain(by_id) => by_id[*id as usize],
                Matching::ByFeasibleNode(own) => own[index],
            };
            score += count as f64 * self.weights[i] + f64::from(c.max_skew - 1);
        }
        rounded(score)
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

    #[test]
    fn rounded_rounds_as_the_library_does() {
        let below_half = 0.5f64.next_down();
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            below_half,
            -below_half,
            1.0 - f64::EPSILON,
            4503599627370495.5,
            4503599627370497.0,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
        ];
        // Scores as the scorer makes them: counts times a logarithm, plus skew.
        for count in 0..200 {
            for size in 0..40 {
                let weight = ((size + 2) as f64).ln();
                values.push(f64::from(count) * weight + f64::from(size % 5));
            }
        }
        for x in values {
            assert_eq!(rounded(x), x.round() as i64, "{x}");
        }
    }

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
