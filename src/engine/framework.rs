//! The scheduling framework's runners for the default profile: PreFilter, Filter (with
//! the two-pass nominated-pods rule), PreScore/Score/NormalizeScore with weights.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use rayon::prelude::*;

use super::Evaluation;
use super::cycle_state::CycleState;
use super::node_local_memo::{KeptCounts, NodeMemo, TemplateRows};
use super::plugins::{
    FilterPlugin, NodeScorer, image_locality, inter_pod_affinity, node_affinity, node_name,
    node_ports, node_resources_balanced_allocation, node_resources_fit, node_unschedulable,
    pod_topology_spread, taint_toleration,
};
use super::snapshot::{NodeInfo, PodInfo, Snapshot};
use super::status::Status;
use crate::model::Pod;

/// Filter plugins in profile order: first those that read only the node and the pod
/// (`NODE_LOCAL_FILTERS`), then those that read other nodes' pods through PreFilter
/// state (`CLUSTER_FILTERS`). The volume plugins and DynamicResources never reject a
/// pod without volumes or resource claims, which the oracle does not model.
const NODE_LOCAL_FILTERS: [&dyn FilterPlugin; 6] = [
    &node_unschedulable::NodeUnschedulable,
    &node_name::NodeName,
    &taint_toleration::TaintToleration,
    &node_affinity::NodeAffinity,
    &node_ports::NodePorts,
    &node_resources_fit::NodeResourcesFit,
];
const CLUSTER_FILTERS: [&dyn FilterPlugin; 2] = [
    &pod_topology_spread::PodTopologySpread,
    &inter_pod_affinity::InterPodAffinity,
];

/// DynamicResources scores every node 0 for a pod without resource claims.
pub const DYNAMIC_RESOURCES: &str = "DynamicResources";

/// What PreFilter produced.
pub struct PreFilterOutcome<'a> {
    pub state: CycleState<'a>,
    /// The nodes a PreFilter plugin restricted the pod to (`PreFilterResult`).
    pub node_names: Option<BTreeSet<String>>,
    /// The plugins that restricted it, sorted.
    pub restricting_plugins: Vec<&'static str>,
    /// A PreFilter plugin rejected the pod as a whole; every node reports this status.
    pub rejection: Option<Status>,
}

/// Runs the PreFilter plugins in profile order (`kept`: a memo's counts).
pub fn run_pre_filter<'a>(
    snapshot: &Snapshot,
    pod: &'a PodInfo,
    evaluation: Evaluation,
    kept: Option<&KeptCounts>,
) -> PreFilterOutcome<'a> {
    let mut node_names = None;
    let mut restricting_plugins = Vec::new();
    let mut rejection = None;
    let skip_node_affinity = match node_affinity::pre_filter(&pod.pod) {
        node_affinity::PreFilter::Skip => true,
        node_affinity::PreFilter::Reject(s) => {
            rejection = Some(s.with_plugin(node_affinity::NAME));
            false
        }
        node_affinity::PreFilter::Run(names) => {
            if names.is_some() {
                restricting_plugins.push(node_affinity::NAME);
            }
            node_names = names;
            false
        }
    };
    let state = CycleState {
        pod,
        evaluation,
        skip_node_affinity,
        spread: pod_topology_spread::pre_filter(
            snapshot,
            &pod.pod,
            evaluation,
            kept.map(|k| &k.spread),
        ),
        inter_pod: inter_pod_affinity::pre_filter(
            snapshot,
            &pod.pod,
            evaluation,
            kept.map(|k| &k.own_terms),
        ),
    };
    PreFilterOutcome {
        state,
        node_names,
        restricting_plugins,
        rejection,
    }
}

/// The first of `plugins` to reject the node, with its status.
fn first_rejection(
    plugins: &[&dyn FilterPlugin],
    state: &CycleState,
    node: &NodeInfo,
    at: usize,
) -> Option<Status> {
    plugins
        .iter()
        .find_map(|p| p.filter(state, node, at).map(|s| s.with_plugin(p.name())))
}

/// The first of the cluster-wide filters to reject the node (none runs when PreFilter
/// skipped them all).
fn cluster_rejection(state: &CycleState, node: &NodeInfo, at: usize) -> Option<Status> {
    if !state.runs_cluster_filters() {
        return None;
    }
    first_rejection(&CLUSTER_FILTERS, state, node, at)
}

/// `RunFilterPlugins`: the first rejecting plugin's status, or `None` when the node fits.
pub fn run_filters(state: &CycleState, node: &NodeInfo, at: usize) -> Option<Status> {
    first_rejection(&NODE_LOCAL_FILTERS, state, node, at)
        .or_else(|| cluster_rejection(state, node, at))
}

/// The nominated pods that count on `node` for the pod being placed: those of at least
/// its priority, other than itself.
fn nominated_counting<'s>(
    snapshot: &'s Snapshot,
    state: &CycleState,
    node: &NodeInfo,
) -> Vec<&'s Arc<PodInfo>> {
    let incoming = &state.pod.pod;
    snapshot
        .nominated_pods(node.name())
        .iter()
        .filter(|p| p.pod.priority >= incoming.priority && !same_pod(&p.pod, incoming))
        .collect()
}

/// [`run_filters_with_nominated`] on `node` (`nominated`: some pod is nominated to it),
/// reusing the node-local filters' verdict `memo` remembers for this very node, and
/// remembering it there when it is computed afresh. A node where nominated pods count
/// is evaluated in full (and nothing is remembered). A remembered rejection is lent,
/// not copied: most callers only ask whether the node passed.
pub fn run_filters_remembering<'m>(
    snapshot: &Snapshot,
    state: &CycleState,
    (node, at): (&Arc<NodeInfo>, usize),
    nominated: bool,
    memo: &'m mut NodeMemo,
) -> Option<Cow<'m, Status>> {
    if nominated && !nominated_counting(snapshot, state, node).is_empty() {
        return run_filters_with_nominated(snapshot, state, node, at).map(Cow::Owned);
    }
    if memo.filter(node).is_none() {
        let local = first_rejection(&NODE_LOCAL_FILTERS, state, node, at);
        memo.remember_filter(node, local);
    }
    match memo.filter(node).expect("remembered above") {
        Some(rejected) => Some(Cow::Borrowed(rejected)),
        None => cluster_rejection(state, node, at).map(Cow::Owned),
    }
}

/// `RunFilterPluginsWithNominatedPods`: nominated pods of at least the pod's priority
/// count on their node; if the pod fits with them, it must also fit without them.
pub fn run_filters_with_nominated(
    snapshot: &Snapshot,
    state: &CycleState,
    node: &NodeInfo,
    at: usize,
) -> Option<Status> {
    let nominated = nominated_counting(snapshot, state, node);
    if nominated.is_empty() {
        return run_filters(state, node, at);
    }
    let mut with_nominated = node.clone();
    let mut state_with_nominated = state.clone();
    for p in nominated {
        with_nominated.add_pod(Arc::clone(p));
        state_with_nominated.add_pod(p, &with_nominated.node);
    }
    if let Some(status) = run_filters(&state_with_nominated, &with_nominated, at) {
        return Some(status);
    }
    run_filters(state, node, at)
}

/// The same pod: same uid, or same namespace and name (a manifest without a uid).
fn same_pod(a: &Pod, b: &Pod) -> bool {
    a.uid == b.uid || (a.namespace == b.namespace && a.name == b.name)
}

/// A node's place in the snapshot, as the per-node lists keep it.
pub fn place(at: usize) -> u32 {
    u32::try_from(at).expect("fewer than 2^32 nodes")
}

/// The nodes that passed Filter, in snapshot order.
#[derive(Debug, Clone, Default)]
pub struct Feasible<'a> {
    pub nodes: Vec<&'a NodeInfo>,
    /// Each one's index in the snapshot (for the snapshot's per-node indexes).
    pub at: Vec<u32>,
}

impl<'a> Feasible<'a> {
    /// Room for `nodes` nodes.
    pub fn with_capacity(nodes: usize) -> Feasible<'a> {
        Feasible {
            nodes: Vec::with_capacity(nodes),
            at: Vec::with_capacity(nodes),
        }
    }

    pub fn push(&mut self, at: usize, node: &'a NodeInfo) {
        self.nodes.push(node);
        self.at.push(place(at));
    }

    /// Moves `later`'s nodes, which follow these in snapshot order, to the end.
    pub fn append(&mut self, later: &mut Feasible<'a>) {
        self.nodes.append(&mut later.nodes);
        self.at.append(&mut later.at);
    }

    /// Every node of `snapshot`.
    #[cfg(test)]
    pub fn all(snapshot: &'a Snapshot) -> Feasible<'a> {
        let mut feasible = Feasible::default();
        for (at, node) in snapshot.nodes.iter().enumerate() {
            feasible.push(at, node);
        }
        feasible
    }
}

/// The weighted scores of the feasible nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scores {
    /// The plugins that scored, in profile order.
    pub plugins: Vec<&'static str>,
    /// Their weights.
    weights: Vec<i64>,
    /// Their places in the profile.
    profile_slots: Vec<usize>,
    /// Per feasible node (in the order given), by place in the profile: the raw scores
    /// (the places of plugins that did not run are never read).
    raw: Vec<[i64; MAX_SCORERS]>,
    /// Per plugin with a NormalizeScore: the normalised scores of the feasible nodes.
    normalized: Vec<Option<Vec<i64>>>,
    /// Per feasible node: the sum of its weighted scores.
    pub totals: Vec<i64>,
}

impl Scores {
    /// Plugin `j`'s score of the feasible node at `index`, normalised, unweighted.
    fn score(&self, index: usize, j: usize) -> i64 {
        match &self.normalized[j] {
            Some(column) => column[index],
            None => self.raw[index][self.profile_slots[j]],
        }
    }

    /// Plugin → weighted score of the feasible node at `index`.
    pub fn of_node(&self, index: usize) -> impl Iterator<Item = (&'static str, i64)> + '_ {
        self.plugins
            .iter()
            .zip(&self.weights)
            .enumerate()
            .map(move |(j, (p, w))| (*p, self.score(index, j) * w))
    }
}

/// The score plugins of the default profile.
pub const MAX_SCORERS: usize = 8;

/// A score plugin's name, weight, whether its score reads only the node and the pod
/// (see [`super::node_local_memo`]), and its PreScore result (`None`: skipped).
type WeightedScorer<'a> = (&'static str, i64, bool, Option<Box<dyn NodeScorer + 'a>>);

/// A score plugin that runs for this pod, with its place in the profile (the memo's
/// rows are by that place: pods of one template can differ in which cluster-wide
/// plugins run).
struct ActiveScorer<'a> {
    profile_slot: usize,
    name: &'static str,
    weight: i64,
    local: bool,
    scorer: Box<dyn NodeScorer + 'a>,
}

/// The score plugins that run for a pod on its feasible nodes, PreScore done.
pub struct PreScored<'a> {
    active: Vec<ActiveScorer<'a>>,
    /// The places among them of those that are not node-local.
    cluster: Vec<usize>,
}

/// Runs PreScore for `feasible` in profile order. `inter_pod` is InterPodAffinity's
/// PreScore, which reads neither the feasible nodes nor the cycle state, run by the
/// caller (who may need it before Filter: see `decide_here`); `kept`: a memo's counts.
pub fn run_pre_score<'a>(
    snapshot: &'a Snapshot,
    state: &'a CycleState,
    feasible: &'a Feasible,
    evaluation: Evaluation,
    kept: Option<&KeptCounts>,
    inter_pod: Option<inter_pod_affinity::Scorer>,
) -> PreScored<'a> {
    let pod = &state.pod.pod;
    let scorers: [WeightedScorer<'_>; MAX_SCORERS] = [
        (
            taint_toleration::NAME,
            3,
            true,
            Some(Box::new(taint_toleration::pre_score(state))),
        ),
        (
            node_affinity::NAME,
            2,
            true,
            node_affinity::pre_score(state, snapshot, feasible)
                .map(|s| Box::new(s) as Box<dyn NodeScorer>),
        ),
        (
            node_resources_fit::NAME,
            1,
            true,
            Some(Box::new(node_resources_fit::pre_score(state))),
        ),
        (
            pod_topology_spread::NAME,
            2,
            false,
            pod_topology_spread::pre_score(
                snapshot,
                pod,
                feasible,
                evaluation,
                kept.map(|k| &k.spread),
            )
            .map(|s| Box::new(s) as Box<dyn NodeScorer>),
        ),
        (
            inter_pod_affinity::NAME,
            2,
            false,
            inter_pod.map(|s| Box::new(s) as Box<dyn NodeScorer>),
        ),
        (DYNAMIC_RESOURCES, 2, true, Some(Box::new(NoClaims))),
        (
            node_resources_balanced_allocation::NAME,
            1,
            true,
            node_resources_balanced_allocation::pre_score(state)
                .map(|s| Box::new(s) as Box<dyn NodeScorer>),
        ),
        (
            image_locality::NAME,
            1,
            true,
            Some(Box::new(image_locality::pre_score(
                snapshot, pod, feasible, evaluation,
            ))),
        ),
    ];
    // The plugins that run, in profile order.
    let active = scorers
        .into_iter()
        .enumerate()
        .filter_map(|(profile_slot, (name, weight, local, scorer))| {
            scorer.map(|scorer| ActiveScorer {
                profile_slot,
                name,
                weight,
                local,
                scorer,
            })
        })
        .collect::<Vec<_>>();
    let cluster = (0..active.len()).filter(|&j| !active[j].local).collect();
    PreScored { active, cluster }
}

/// Runs Score and NormalizeScore for `feasible` (the nodes PreScore was given) and
/// weighs the results. Every plugin scores a node in the same visit, so a query reads
/// each feasible node once for all of them; the fast evaluation visits them in
/// parallel tasks of at least `per_task` nodes, and then normalizes the plugins'
/// columns in parallel and sums the totals in runs of `per_task` nodes.
///
/// With `memo`, node-local raw scores it remembers for the very same node are reused;
/// the second value lists the feasible nodes (by place among them) whose node-local raw
/// scores were computed afresh, with those scores by place in the profile, for the
/// caller to remember.
pub fn run_scores(
    pre: &PreScored,
    feasible: &Feasible,
    evaluation: Evaluation,
    per_task: usize,
    memo: Option<&TemplateRows>,
) -> (Scores, Vec<(usize, [i64; MAX_SCORERS])>) {
    let nodes = &feasible.nodes;
    let active = &pre.active;
    // Each feasible node's raw scores, and whether its node-local ones are fresh: the
    // remembered row as it is, with the cluster-wide plugins' scores filled in.
    let raw = |(i, node): (usize, &&NodeInfo)| {
        let remembered = memo
            .and_then(|m| m.node(feasible.at[i] as usize))
            .and_then(|m| m.scores(node));
        let score = |row: &mut [i64; MAX_SCORERS], a: &ActiveScorer| {
            row[a.profile_slot] = a.scorer.score(i, node);
        };
        let mut row = [0; MAX_SCORERS];
        match remembered {
            Some(r) => {
                row = r.map(i64::from);
                pre.cluster
                    .iter()
                    .for_each(|&j| score(&mut row, &active[j]));
            }
            None => active.iter().for_each(|a| score(&mut row, a)),
        }
        row
    };
    // Whether the passes below split into tasks: a pass of one task runs as a plain
    // loop, without the pool's machinery.
    let split = evaluation == Evaluation::Fast && per_task < nodes.len();
    let raw_scores: Vec<[i64; MAX_SCORERS]> = if split {
        nodes
            .par_iter()
            .with_min_len(per_task)
            .enumerate()
            .map(raw)
            .collect()
    } else {
        nodes.iter().enumerate().map(raw).collect()
    };
    // The rows scored afresh, for the memo to remember (rows do not change meanwhile).
    let fresh = match memo {
        Some(m) => (nodes.iter().enumerate())
            .filter(|&(i, node)| {
                let at = feasible.at[i] as usize;
                m.node(at).and_then(|m| m.scores(node)).is_none()
            })
            .map(|(i, _)| (i, raw_scores[i]))
            .collect(),
        None => Vec::new(),
    };
    // NormalizeScore, one column per plugin that has one; the others' raw scores stand.
    // Where the raw scores were split, so are the columns (one task each) and the
    // totals, so that no pass over every feasible node is left to one thread.
    let normalize = |a: &ActiveScorer| {
        a.scorer.normalizes().then(|| {
            let mut column: Vec<i64> = raw_scores.iter().map(|row| row[a.profile_slot]).collect();
            a.scorer.normalize(nodes, &mut column);
            column
        })
    };
    let normalized = if split {
        active.par_iter().map(normalize).collect()
    } else {
        active.iter().map(normalize).collect()
    };
    let mut scores = Scores {
        plugins: active.iter().map(|a| a.name).collect(),
        weights: active.iter().map(|a| a.weight).collect(),
        profile_slots: active.iter().map(|a| a.profile_slot).collect(),
        raw: raw_scores,
        normalized,
        totals: Vec::new(),
    };
    // Plugin by plugin over a run of nodes, so each sum runs down one column.
    let run = per_task.min(nodes.len()).max(1);
    let add_up = |(nth, totals): (usize, &mut [i64])| {
        let from = nth * run;
        for (j, weight) in scores.weights.iter().enumerate() {
            match &scores.normalized[j] {
                Some(column) => {
                    for (total, score) in totals.iter_mut().zip(&column[from..]) {
                        *total += score * weight;
                    }
                }
                None => {
                    let slot = scores.profile_slots[j];
                    for (total, row) in totals.iter_mut().zip(&scores.raw[from..]) {
                        *total += row[slot] * weight;
                    }
                }
            }
        }
    };
    let mut totals = vec![0; nodes.len()];
    if split {
        totals.par_chunks_mut(run).enumerate().for_each(add_up);
    } else {
        totals.chunks_mut(run).enumerate().for_each(add_up);
    }
    scores.totals = totals;
    (scores, fresh)
}

/// DynamicResources' score for a pod without claims.
struct NoClaims;

impl NodeScorer for NoClaims {
    fn score(&self, _index: usize, _node: &NodeInfo) -> i64 {
        0
    }
}
