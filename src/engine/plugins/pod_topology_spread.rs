//! PodTopologySpread: hard constraints (`DoNotSchedule`) as a Filter with PreFilter
//! counts that preemption updates pod by pod, and soft constraints (`ScheduleAnyway`) as
//! a Score. System default constraints need Services/ReplicaSets/StatefulSets to select
//! pods; the oracle holds none, so they never apply (as in the conformance scenarios).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::node_affinity::required_matches;
use super::{FilterPlugin, MAX_NODE_SCORE, NodeScorer};
use crate::engine::cycle_state::CycleState;
use crate::engine::snapshot::{NodeInfo, PodInfo, Snapshot};
use crate::engine::status::Status;
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

fn has_all_keys(node: &Node, constraints: &[TopologySpreadConstraint]) -> bool {
    constraints
        .iter()
        .all(|c| node.labels.contains_key(&c.topology_key))
}

/// `matchNodeInclusionPolicies`.
fn node_included(c: &TopologySpreadConstraint, pod: &Pod, node: &Node) -> bool {
    if c.node_affinity_policy == InclusionPolicy::Honor
        && !required_matches(pod, &node.name, &node.labels)
    {
        return false;
    }
    if c.node_taints_policy == InclusionPolicy::Honor
        && first_untolerated_hard_taint(&node.taints, &pod.tolerations).is_some()
    {
        return false;
    }
    true
}

/// Pods on `node` in `namespace` matching `c`, skipping terminating pods.
fn count_matching(
    pods: &[std::sync::Arc<PodInfo>],
    c: &TopologySpreadConstraint,
    namespace: &str,
) -> i64 {
    if c.selector.is_empty() {
        return 0;
    }
    pods.iter()
        .filter(|p| {
            !p.pod.terminating && p.pod.namespace == namespace && c.selector.matches(&p.pod.labels)
        })
        .count() as i64
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
    counts: Vec<HashMap<String, i64>>,
    paths: Vec<CriticalPaths>,
}

/// PreFilter: `None` when the pod has no hard constraints (the plugin is skipped).
pub fn pre_filter(snapshot: &Snapshot, pod: &Pod) -> Option<FilterState> {
    let constraints = constraints(pod, UnsatisfiableAction::DoNotSchedule);
    if constraints.is_empty() {
        return None;
    }
    let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
    for info in &snapshot.nodes {
        let node = &info.node;
        if !has_all_keys(node, &constraints) {
            continue;
        }
        for (i, c) in constraints.iter().enumerate() {
            if !node_included(c, pod, node) {
                continue;
            }
            let value = &node.labels[&c.topology_key];
            *counts[i].entry(value.clone()).or_insert(0) +=
                count_matching(&info.pods, c, &pod.namespace);
        }
    }
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
            if !c.selector.matches(&changed.labels) || !node_included(c, incoming, node) {
                continue;
            }
            let value = &node.labels[&c.topology_key];
            let count = self.counts[i].entry(value.clone()).or_insert(0);
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
    ignored: HashSet<String>,
    /// Per constraint: domain value → matching pods (not used for hostname).
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

/// PreScore: `None` (skip) when the pod has no soft constraints.
pub fn pre_score<'a>(
    snapshot: &Snapshot,
    pod: &'a Pod,
    feasible: &[&NodeInfo],
) -> Option<Scorer<'a>> {
    let constraints = constraints(pod, UnsatisfiableAction::ScheduleAnyway);
    if constraints.is_empty() || snapshot.nodes.is_empty() {
        return None;
    }
    let mut ignored = HashSet::new();
    let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
    for n in feasible {
        if !has_all_keys(&n.node, &constraints) {
            ignored.insert(n.name().to_string());
            continue;
        }
        for (i, c) in constraints.iter().enumerate() {
            if c.topology_key != HOSTNAME {
                counts[i]
                    .entry(n.node.labels[&c.topology_key].clone())
                    .or_insert(0);
            }
        }
    }
    let weights = constraints
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let size = if c.topology_key == HOSTNAME {
                feasible.len() - ignored.len()
            } else {
                counts[i].len()
            };
            ((size + 2) as f64).ln()
        })
        .collect();
    for info in &snapshot.nodes {
        let node = &info.node;
        if !has_all_keys(node, &constraints) {
            continue;
        }
        for (i, c) in constraints.iter().enumerate() {
            if !node_included(c, pod, node) {
                continue;
            }
            if let Some(count) = counts[i].get_mut(&node.labels[&c.topology_key]) {
                *count += count_matching(&info.pods, c, &pod.namespace);
            }
        }
    }
    Some(Scorer {
        pod,
        constraints,
        ignored,
        counts,
        weights,
    })
}

impl NodeScorer for Scorer<'_> {
    fn score(&self, node: &NodeInfo) -> i64 {
        if self.ignored.contains(node.name()) {
            return 0;
        }
        let mut score = 0.0f64;
        for (i, c) in self.constraints.iter().enumerate() {
            let Some(value) = node.node.labels.get(&c.topology_key) else {
                continue;
            };
            let count = if c.topology_key == HOSTNAME {
                count_matching(&node.pods, c, &self.pod.namespace)
            } else {
                self.counts[i].get(value).copied().unwrap_or(0)
            };
            score += count as f64 * self.weights[i] + f64::from(c.max_skew - 1);
        }
        score.round() as i64
    }

    fn normalize(&self, nodes: &[&NodeInfo], scores: &mut [i64]) {
        let mut min = i64::MAX;
        let mut max = 0i64;
        let valid: Vec<bool> = nodes
            .iter()
            .map(|n| !self.ignored.contains(n.name()))
            .collect();
        for (s, ok) in scores.iter().zip(&valid) {
            if *ok {
                min = min.min(*s);
                max = max.max(*s);
            }
        }
        for (s, ok) in scores.iter_mut().zip(&valid) {
            *s = if !ok {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}
