//! The decision engine: kube-scheduler v1.35's default profile over an immutable
//! [`Snapshot`], evaluated on every node.
//!
//! [`decide`] runs PreFilter, Filter (in parallel over nodes, with nominated pods),
//! PreScore/Score/NormalizeScore on the feasible nodes, and, when nothing fits,
//! DefaultPreemption on every potential node. It returns a [`Decision`] that carries
//! the outcome, the placement tie set, the preemption candidates and their victims,
//! and the reasons for every node. A pod asked about again whose running plugins all
//! read only the node is filtered and scored from what its template's memo remembers
//! ([`node_local_memo`]), on the calling thread.
//!
//! Each phase of a decision is one tracing span (`filter`, `score`, `preemption`, with
//! the number of nodes it evaluated), never one per node: with no subscriber listening
//! a span costs a cached check.

pub mod affinity_index;
pub mod cow_list;
pub mod cycle_state;
pub mod decision;
pub mod fit_error;
pub mod framework;
pub mod label_counts;
pub mod memo_pool;
pub mod node_cells;
pub mod node_label_index;
pub mod node_local_memo;
pub mod plugins;
pub mod preemption;
pub mod priority_ladder;
pub mod sequence;
pub mod snapshot;
pub mod status;
#[cfg(test)]
pub(crate) mod test_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use tracing::field::Empty;

pub use decision::{Decision, Outcome};
pub use snapshot::{PodInfo, Snapshot};

use decision::{NodeScore, NodeVerdict, Placement, PlacementMode, StatusReport};
use status::{Code, Status};

use crate::model::Pod;

/// The Kubernetes version whose scheduler the engine reproduces.
pub const K8S_VERSION: &str = "v1.35.4";

/// How a decision is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// Nodes in parallel, with the per-node shortcuts (the service's path).
    Fast,
    /// The straightforward evaluation: every filter on every node, one thread, no
    /// shortcuts. The baseline the benchmarks compare against, and the reference the
    /// fast path must agree with.
    Straightforward,
}

/// What a decision computes and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Report every node's verdict, every feasible node's score and every preemption
    /// candidate. Without it the decision carries the outcome, the node, the tie sets,
    /// the chosen candidate's victims and the FitError.
    pub explain: bool,
    pub evaluation: Evaluation,
}

impl Options {
    /// Everything explained, fast evaluation.
    pub const EXPLAINED: Options = Options {
        explain: true,
        evaluation: Evaluation::Fast,
    };
    /// The answer only, fast evaluation.
    pub const ANSWER: Options = Options {
        explain: false,
        evaluation: Evaluation::Fast,
    };
}

/// The fewest nodes one parallel task visits. Handing a task to another thread costs
/// microseconds; a few hundred nodes' filters or scores cost tens of them. Smaller
/// tasks only add hand-overs on 2 cores, and 5,000 nodes still make 19 tasks for 16.
pub(crate) const NODES_PER_TASK: usize = 256;

/// Whether the fast evaluation's passes split into parallel tasks here: only on a
/// worker of rayon's pool. On any other thread (an async runtime's, a test's) each
/// pass runs whole on that thread and the pool is never woken, since rayon runs an
/// iterator it does not split on the calling thread
/// (`a_decision_off_the_pool_leaves_the_pool_alone` in `tests/fast_path.rs` holds it
/// to that).
pub(crate) fn splits_here() -> bool {
    rayon::current_thread_index().is_some()
}

/// The fewest items one parallel task takes: `per_task` where passes split
/// ([`splits_here`]), every item of the pass elsewhere.
pub(crate) fn task_len(per_task: usize) -> usize {
    if splits_here() { per_task } else { usize::MAX }
}

/// Decides where `pod` would land on `snapshot`, and whom it would preempt, with every
/// explanation.
pub fn decide(snapshot: &Snapshot, pod: &Pod) -> Decision {
    decide_with(snapshot, pod, Options::EXPLAINED)
}

/// Decides where `pod` would land on `snapshot`, and whom it would preempt.
pub fn decide_with(snapshot: &Snapshot, pod: &Pod, options: Options) -> Decision {
    decide_remembering(snapshot, pod, options, None)
}

/// [`decide_with`], reusing (and adding to) what `memo` remembers of the node-local
/// plugins' results for `pod`'s template; the fast evaluation only (the straightforward
/// one ignores it). For decisions in sequence ([`sequence::place_in_order`]).
pub fn decide_remembering(
    snapshot: &Snapshot,
    pod: &Pod,
    options: Options,
    memo: Option<&mut node_local_memo::NodeLocalMemo>,
) -> Decision {
    match options.evaluation {
        Evaluation::Fast => crate::pool::on_pool(|| decide_here(snapshot, pod, options, memo)),
        Evaluation::Straightforward => decide_here(snapshot, pod, options, memo),
    }
}

/// [`decide_with`] on the calling thread. On a worker of rayon's pool its passes fork
/// and join among the workers, as `decide_with`'s do; on any other thread they run
/// whole on it and the pool is never woken ([`splits_here`]). For small clusters, where
/// handing the query to the pool and back costs as much as parallel passes save, and
/// for callers whose other cores are busy with other queries anyway. With a `memo`
/// (kept across calls, see [`memo_pool`]) the node-local plugins' results on nodes
/// unchanged since are reused, as in a sequence ([`decide_remembering`]).
pub fn decide_on_this_thread(
    snapshot: &Snapshot,
    pod: &Pod,
    options: Options,
    memo: Option<&mut node_local_memo::NodeLocalMemo>,
) -> Decision {
    decide_here(snapshot, pod, options, memo)
}

/// [`decide_remembering`] on the calling thread.
fn decide_here(
    snapshot: &Snapshot,
    pod: &Pod,
    options: Options,
    memo: Option<&mut node_local_memo::NodeLocalMemo>,
) -> Decision {
    let (mut rows, kept) = match memo.filter(|_| options.evaluation == Evaluation::Fast) {
        Some(m) => {
            let (rows, kept) = m.for_pod(snapshot, pod);
            (rows, Some(kept))
        }
        None => (None, None),
    };
    let incoming = PodInfo::new(pod.clone(), Vec::new());
    let num_nodes = snapshot.nodes.len();
    let filter_phase =
        tracing::debug_span!("filter", nodes = num_nodes, feasible = Empty).entered();
    let pre = framework::run_pre_filter(snapshot, &incoming, options.evaluation, kept);
    let nominated = pod
        .nominated_node_name
        .as_deref()
        .and_then(|n| snapshot.node_index(n));
    let nominated_nodes = snapshot.nodes_with_nominated_pods();

    // A pod whose running filters and scorers all read only the node, asked about again
    // (its template's rows are laid out), is filtered from the rows in one pass on this
    // thread: every node but the few changed since is a remembered verdict, cheaper to
    // read than to hand to another thread. Whether InterPodAffinity scores (existing
    // pods' preferred terms may select the pod) is its PreScore, run here once for that
    // question and kept for Score.
    let mut inter_pod_scores = None;
    let node_local = options.evaluation == Evaluation::Fast
        && !options.explain
        && pre.rejection.is_none()
        && pre.node_names.is_none()
        && !pre.state.runs_cluster_filters()
        && !plugins::pod_topology_spread::scores(pod)
        && rows.as_deref().is_some_and(|r| r.laid_out(num_nodes))
        && inter_pod_scores
            .insert(plugins::inter_pod_affinity::pre_score(
                snapshot,
                pod,
                options.evaluation,
                kept.map(|k| &k.own_terms),
            ))
            .is_none();
    let scores_from_rows = node_local;
    // Otherwise every node is filtered in parallel. Rejected nodes' statuses are kept
    // when explained, and otherwise until a node fits: when nothing fits, preemption
    // reads them all.
    let keep = if options.explain {
        KeepStatuses::Always
    } else {
        KeepStatuses::UntilOneFits
    };
    let (statuses, filter, feasible_nodes) = match rows.as_deref_mut() {
        Some(rows) if node_local => {
            let feasible = node_local_feasible(snapshot, &pre.state, rows, &nominated_nodes);
            (None, BTreeMap::new(), feasible)
        }
        rows => filter_every_node(
            snapshot,
            &pre,
            options,
            (nominated, &nominated_nodes),
            rows,
            keep,
        ),
    };
    // When nothing fits on the rows' pass, which keeps no status, the nodes are
    // filtered again, keeping them (the node-local verdicts are remembered by now).
    let (rejections, filter, feasible_nodes) = match statuses {
        None if feasible_nodes.nodes.is_empty() => {
            let (statuses, filter, feasible) = filter_every_node(
                snapshot,
                &pre,
                options,
                (nominated, &nominated_nodes),
                rows.as_deref_mut(),
                keep,
            );
            (statuses.unwrap_or_default(), filter, feasible)
        }
        statuses => (statuses.unwrap_or_default(), filter, feasible_nodes),
    };

    let feasible = &feasible_nodes.nodes;
    filter_phase.record("feasible", feasible.len());
    drop(filter_phase);

    let score_phase = tracing::debug_span!("score", nodes = feasible.len()).entered();
    // Without a feasible node there is nothing to score (and no PreScore to run).
    let scores = if feasible.is_empty() {
        framework::Scores::default()
    } else {
        let inter_pod = inter_pod_scores.unwrap_or_else(|| {
            let kept = kept.map(|k| &k.own_terms);
            plugins::inter_pod_affinity::pre_score(snapshot, pod, options.evaluation, kept)
        });
        let pre_scored = framework::run_pre_score(
            snapshot,
            &pre.state,
            &feasible_nodes,
            options.evaluation,
            kept,
            inter_pod,
        );
        // From the rows, every node's scores are remembered but the few changed since.
        let per_task = if scores_from_rows {
            usize::MAX
        } else {
            task_len(NODES_PER_TASK)
        };
        let (scores, fresh) = framework::run_scores(
            &pre_scored,
            &feasible_nodes,
            options.evaluation,
            per_task,
            rows.as_deref(),
        );
        if let Some(memo) = rows {
            for (j, raw) in fresh {
                memo.remember_scores(feasible_nodes.at[j] as usize, feasible[j], raw);
            }
        }
        scores
    };
    let score_map: BTreeMap<String, NodeScore> = if options.explain {
        feasible
            .iter()
            .zip(&scores.totals)
            .enumerate()
            .map(|(i, (n, total))| {
                let plugins = scores.of_node(i).map(|(p, v)| (p.to_string(), v)).collect();
                (
                    n.name().to_string(),
                    NodeScore {
                        total: *total,
                        plugins,
                    },
                )
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    let nominated_feasible = nominated
        .map(|i| snapshot.nodes[i].name())
        .filter(|n| feasible.iter().any(|f| f.name() == *n));
    let placement = if let Some(n) = nominated_feasible {
        Placement {
            mode: PlacementMode::NominatedNode,
            max_score: None,
            tie_set: vec![n.to_string()],
        }
    } else if feasible.len() == 1 {
        Placement {
            mode: PlacementMode::SingleFeasible,
            max_score: None,
            tie_set: vec![feasible[0].name().to_string()],
        }
    } else if feasible.is_empty() {
        Placement {
            mode: PlacementMode::Unschedulable,
            max_score: None,
            tie_set: Vec::new(),
        }
    } else {
        let max = scores.totals.iter().copied().max().unwrap_or(0);
        let tie_set = feasible
            .iter()
            .zip(&scores.totals)
            .filter(|(_, total)| **total == max)
            .map(|(n, _)| n.name().to_string())
            .collect();
        Placement {
            mode: PlacementMode::Scored,
            max_score: Some(max),
            tie_set,
        }
    };

    drop(score_phase);

    let (outcome, node, preemption, fit_error) = if feasible.is_empty() {
        let phase = tracing::debug_span!("preemption", nodes = Empty, outcome = Empty).entered();
        let preemption = preemption::preempt(snapshot, &pre.state, &rejections, options);
        phase.record("nodes", preemption.num_potential_nodes);
        let mut fit_error = match &pre.rejection {
            Some(status) => fit_error::pre_filter_message(num_nodes, status),
            None => fit_error::message(num_nodes, rejections.iter().map(|(_, s, _)| s), None),
        };
        if let Some(message) = &preemption.post_filter.message {
            fit_error.push(' ');
            fit_error.push_str(message);
        }
        let (outcome, node) = if !preemption.eligible {
            (Outcome::NotEligible, None)
        } else if preemption.post_filter.code == Code::Success.as_str() {
            (
                Outcome::Preempts,
                preemption.selected_tie_set.first().cloned(),
            )
        } else {
            (Outcome::Unschedulable, None)
        };
        phase.record("outcome", outcome.as_str());
        (outcome, node, Some(preemption), Some(fit_error))
    } else {
        (
            Outcome::Scheduled,
            placement.tie_set.first().cloned(),
            None,
            None,
        )
    };

    let mut decision = Decision {
        outcome,
        node,
        k8s_version: K8S_VERSION,
        pod: pod.key(),
        pod_priority: pod.priority,
        preemption_policy: pod.preemption_policy.as_str(),
        num_nodes,
        pre_filter: pre.rejection.as_ref().map(StatusReport::from),
        filter,
        num_feasible: feasible.len(),
        feasible_nodes: if options.explain {
            feasible.iter().map(|n| n.name().to_string()).collect()
        } else {
            Vec::new()
        },
        scores: score_map,
        placement,
        preemption,
        fit_error,
    };
    if !options.explain {
        decision.drop_explanations();
    }
    decision
}

/// A node the filter pass rejected: its place, its status and where the status came
/// from.
pub type Rejection = (u32, Status, &'static str);

/// Rejected nodes, in snapshot order.
type Rejections = Vec<Rejection>;

/// One node's filter verdict: its rejection and where it came from, `None` if it fits.
type NodeStatus = Option<(Status, &'static str)>;

/// Filters node `i` (reading and filling its row, if given).
type NodeFilter<'f> = dyn Fn(
        usize,
        &std::sync::Arc<snapshot::NodeInfo>,
        Option<&mut node_local_memo::NodeMemo>,
    ) -> NodeStatus
    + Sync
    + 'f;

/// Which rejected nodes' statuses a filter pass keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeepStatuses {
    /// Every one: the pod is explained.
    Always,
    /// Those filtered before any node is found to fit, and so all of them when nothing
    /// fits (preemption reads them, and the FitError). Once a node fits, nothing reads
    /// them, and a pass that keeps none moves far less.
    UntilOneFits,
}

/// A filter pass's [`KeepStatuses`], and whether some node fits yet: read for each
/// rejected node, written at most once by each run of nodes (a task of the pass) that
/// finds one that fits. Aligned to cache lines of its own, so that no write near it
/// (the calling thread's stack) takes the line from the workers reading it.
#[repr(align(128))]
struct Keeping {
    keep: KeepStatuses,
    one_fits: AtomicBool,
}

impl Keeping {
    fn new(keep: KeepStatuses) -> Keeping {
        Keeping {
            keep,
            one_fits: AtomicBool::new(false),
        }
    }

    /// Whether a node rejected now keeps its status.
    fn status(&self) -> bool {
        self.keep == KeepStatuses::Always || !self.one_fits.load(Ordering::Relaxed)
    }
}

/// One filter pass's verdicts (see [`filter_every_node`]), or a run of them, in
/// snapshot order.
#[derive(Default)]
struct FilterPass<'s> {
    feasible: framework::Feasible<'s>,
    /// The rejected nodes' statuses, as kept.
    statuses: Rejections,
    /// Whether this run found a node that fits (and said so to the [`Keeping`]).
    found_fit: bool,
}

impl<'s> FilterPass<'s> {
    /// Adds node `i`'s verdict.
    #[inline]
    fn add(
        &mut self,
        (i, node): (usize, &'s snapshot::NodeInfo),
        verdict: NodeStatus,
        keeping: &Keeping,
    ) {
        match verdict {
            None => {
                self.feasible.push(i, node);
                if !self.found_fit {
                    self.found_fit = true;
                    keeping.one_fits.store(true, Ordering::Relaxed);
                }
            }
            Some((status, source)) => {
                if keeping.status() {
                    self.statuses.push((framework::place(i), status, source));
                }
            }
        }
    }

    /// These verdicts followed by `later`'s.
    fn then(mut self, mut later: FilterPass<'s>) -> Self {
        self.feasible.append(&mut later.feasible);
        self.statuses.append(&mut later.statuses);
        self.found_fit |= later.found_fit;
        self
    }
}

/// Filter on every node (the nominated node always, whatever PreFilter narrowed to), in
/// parallel for the fast evaluation, reading and filling `rows` in the same visit: the
/// rejected nodes with their statuses when kept (`keep`; `None` when a node fits and
/// they are kept only until one does), every node's verdict when explained, and the
/// feasible nodes. `nominated`: the pod's nominated node, and the nodes that have
/// nominated pods.
fn filter_every_node<'s>(
    snapshot: &'s Snapshot,
    pre: &framework::PreFilterOutcome,
    options: Options,
    (nominated, nominated_nodes): (Option<usize>, &[usize]),
    rows: Option<&mut node_local_memo::TemplateRows>,
    keep: KeepStatuses,
) -> (
    Option<Rejections>,
    BTreeMap<String, NodeVerdict>,
    framework::Feasible<'s>,
) {
    let filter_node = |i: usize,
                       node: &std::sync::Arc<snapshot::NodeInfo>,
                       memo: Option<&mut node_local_memo::NodeMemo>|
     -> NodeStatus {
        let in_scope = pre
            .node_names
            .as_ref()
            .is_none_or(|names| names.contains(node.name()))
            || nominated == Some(i);
        if !in_scope {
            let reason = format!(
                "node(s) didn't satisfy plugin(s) [{}]",
                pre.restricting_plugins.join(" ")
            );
            return Some((Status::unresolvable(reason), "PreFilterResult"));
        }
        // The straightforward evaluation asks every node for its nominated pods.
        let nominated_here = options.evaluation == Evaluation::Straightforward
            || nominated_nodes.binary_search(&i).is_ok();
        let status = match memo {
            Some(memo) => {
                let node = (node, i);
                framework::run_filters_remembering(snapshot, &pre.state, node, nominated_here, memo)
                    .map(std::borrow::Cow::into_owned)
            }
            None if nominated_here => {
                framework::run_filters_with_nominated(snapshot, &pre.state, node, i)
            }
            None => framework::run_filters(&pre.state, node, i),
        };
        status.map(|s| (s, "Filter"))
    };
    let keeping = Keeping::new(keep);
    let pass = filter_pass(
        snapshot,
        pre,
        options.evaluation,
        rows,
        &filter_node,
        &keeping,
    );
    // Kept until a node fits, they are all there when none does.
    let rejections =
        (keep == KeepStatuses::Always || pass.feasible.nodes.is_empty()).then_some(pass.statuses);
    let mut filter = BTreeMap::new();
    if options.explain {
        let mut verdicts = rejections.iter().flatten().peekable();
        for (i, node) in snapshot.nodes.iter().enumerate() {
            let verdict = match verdicts.next_if(|(at, _, _)| *at as usize == i) {
                Some((_, status, source)) => NodeVerdict::rejected(status, source),
                None => NodeVerdict::feasible(),
            };
            filter.insert(node.name().to_string(), verdict);
        }
    }
    (rejections, filter, pass.feasible)
}

/// Filters every node (see [`filter_every_node`]), in parallel for the fast
/// evaluation, keeping the rejected nodes' statuses that `keeping` asks for when each
/// is found.
fn filter_pass<'s>(
    snapshot: &'s Snapshot,
    pre: &framework::PreFilterOutcome,
    evaluation: Evaluation,
    rows: Option<&mut node_local_memo::TemplateRows>,
    filter_node: &NodeFilter,
    keeping: &Keeping,
) -> FilterPass<'s> {
    let num_nodes = snapshot.nodes.len();
    match (&pre.rejection, rows) {
        (Some(status), _) => {
            snapshot
                .nodes
                .iter()
                .enumerate()
                .fold(FilterPass::default(), |mut pass, (i, node)| {
                    pass.add((i, node), Some((status.clone(), "PreFilter")), keeping);
                    pass
                })
        }
        // Only the fast evaluation has rows.
        (None, Some(rows)) => snapshot
            .nodes
            .par_iter()
            .with_min_len(task_len(NODES_PER_TASK))
            .zip(rows.nodes_mut(num_nodes))
            .enumerate()
            .fold(FilterPass::default, |mut pass, (i, (node, memo))| {
                pass.add((i, node), filter_node(i, node, Some(memo)), keeping);
                pass
            })
            .reduce(FilterPass::default, FilterPass::then),
        (None, None) if evaluation == Evaluation::Fast => snapshot
            .nodes
            .par_iter()
            .with_min_len(task_len(NODES_PER_TASK))
            .enumerate()
            .fold(FilterPass::default, |mut pass, (i, node)| {
                pass.add((i, node), filter_node(i, node, None), keeping);
                pass
            })
            .reduce(FilterPass::default, FilterPass::then),
        (None, None) => {
            snapshot
                .nodes
                .iter()
                .enumerate()
                .fold(FilterPass::default(), |mut pass, (i, node)| {
                    pass.add((i, node), filter_node(i, node, None), keeping);
                    pass
                })
        }
    }
}

/// The feasible nodes of a pod whose filters all read only the node, from its
/// template's `rows` (laid out for the snapshot), in one pass on this thread: a
/// remembered verdict is read, a node changed since (or with nominated pods that count)
/// is filtered and remembered.
fn node_local_feasible<'s>(
    snapshot: &'s Snapshot,
    state: &cycle_state::CycleState,
    rows: &mut node_local_memo::TemplateRows,
    nominated_nodes: &[usize],
) -> framework::Feasible<'s> {
    let num_nodes = snapshot.nodes.len();
    let mut feasible = framework::Feasible::with_capacity(num_nodes);
    let mut nominated = nominated_nodes.iter().copied().peekable();
    for (i, (node, memo)) in snapshot
        .nodes
        .iter()
        .zip(rows.nodes_mut(num_nodes))
        .enumerate()
    {
        let nominated_here = nominated.next_if_eq(&i).is_some();
        let node_at = (node, i);
        if framework::run_filters_remembering(snapshot, state, node_at, nominated_here, memo)
            .is_none()
        {
            feasible.push(i, node);
        }
    }
    feasible
}
