//! DefaultPreemption (the PostFilter), evaluated on every potential node instead of
//! upstream's sample: eligibility, the per-node dry run with PDB-first reprieve, and the
//! candidate choice by upstream's five criteria, reported as the whole tie set.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::cycle_state::CycleState;
use super::decision::{Candidate, PostFilter, Preemption, PreemptionNode, Victim};
use super::fit_error;
use super::framework::run_filters_with_nominated;
use super::plugins::node_resources_fit::fits;
use super::priority_ladder::{Budgets, Rung};
use super::snapshot::{NodeInfo, PodInfo, Snapshot};
use super::status::{Code, Status};
use super::{Evaluation, Options, Rejection};
use super::{NODES_PER_TASK, task_len};
use crate::model::resources::Resources;
use crate::model::{PodDisruptionBudget, PreemptionPolicy};
use crate::prefetch;

pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const INELIGIBLE_POLICY: &str = "not eligible due to preemptionPolicy=Never.";
pub const INELIGIBLE_TERMINATING: &str =
    "not eligible due to a terminating pod on the nominated node.";
/// The DynamicResources PostFilter runs first and always declines for a pod without claims.
pub const DRA_POST_FILTER_MESSAGE: &str = "no new claims to deallocate";

/// What the reprieve reads of a pod it may evict: from the pod itself (the full dry
/// run) or from the node's priority ladder (the fast one).
trait Evictable<'a>: Copy {
    fn pod(self) -> &'a Arc<PodInfo>;
    fn priority(self) -> i32;
    /// The start time; a pod that has not started counts as starting after every
    /// recorded start.
    fn start(self) -> i64;
    fn budgets(self) -> Budgets<'a>;

    /// `util.MoreImportantPod` as a key: higher priority, then earlier start.
    fn importance(self) -> (Reverse<i32>, i64) {
        (Reverse(self.priority()), self.start())
    }
}

impl<'a> Evictable<'a> for &'a Arc<PodInfo> {
    fn pod(self) -> &'a Arc<PodInfo> {
        self
    }

    fn priority(self) -> i32 {
        self.pod.priority
    }

    fn start(self) -> i64 {
        self.pod.start_time.unwrap_or(i64::MAX)
    }

    fn budgets(self) -> Budgets<'a> {
        Budgets::of(self)
    }
}

/// A rung of a node's ladder: its index on the ladder and the node it belongs to.
#[derive(Debug, Clone, Copy)]
struct LadderPod<'a> {
    at: usize,
    node: &'a NodeInfo,
}

impl<'a> LadderPod<'a> {
    fn rung(self) -> &'a Rung {
        &self.node.ladder.rungs()[self.at]
    }
}

impl<'a> Evictable<'a> for LadderPod<'a> {
    fn pod(self) -> &'a Arc<PodInfo> {
        self.node.ladder.pod(self.at, &self.node.pods)
    }

    fn priority(self) -> i32 {
        self.rung().priority
    }

    fn start(self) -> i64 {
        self.rung().start
    }

    fn budgets(self) -> Budgets<'a> {
        self.node.ladder.budgets(self.rung())
    }
}

/// The budgets a victim's eviction would violate.
type Violations<'a> = Vec<&'a Arc<PodDisruptionBudget>>;

/// The dry run on one node: victims, most important first, each with the budgets its
/// eviction would violate.
#[derive(Debug, Clone)]
pub struct NodeVictims<'a> {
    pub victims: Vec<(&'a Arc<PodInfo>, Violations<'a>)>,
    pub num_pdb_violations: i64,
    /// The candidate's [`selection_scores`].
    scores: [i64; 5],
}

/// `filterPodsWithPDBViolation`: for each of `pods` (most important first), the budgets
/// its eviction would exceed (empty for most).
fn pdb_violations<'a>(pods: &[impl Evictable<'a>]) -> Vec<Violations<'a>> {
    // Disruptions left per budget (by `namespace/name`), as the pods are counted.
    let mut allowed: Vec<(&Arc<PodDisruptionBudget>, i64)> = Vec::new();
    let mut count = |pdb: &'a Arc<PodDisruptionBudget>, violated: &mut Violations<'a>| {
        let same = |b: &&Arc<PodDisruptionBudget>| {
            Arc::ptr_eq(b, pdb) || (b.name == pdb.name && b.namespace == pdb.namespace)
        };
        let left = match allowed.iter().position(|(b, _)| same(b)) {
            Some(i) => &mut allowed[i].1,
            None => {
                allowed.push((pdb, i64::from(pdb.disruptions_allowed)));
                &mut allowed.last_mut().expect("just pushed").1
            }
        };
        *left -= 1;
        if *left < 0 {
            violated.push(pdb);
        }
    };
    pods.iter()
        .map(|&p| {
            let mut violated = Vec::new();
            match p.budgets() {
                Budgets::None => {}
                Budgets::One(pdb) => count(pdb, &mut violated),
                Budgets::Many => {
                    let pod = p.pod();
                    for pdb in &pod.pdbs {
                        if !pdb.disrupted_pods.contains(&pod.pod.name) {
                            count(pdb, &mut violated);
                        }
                    }
                }
            }
            violated
        })
        .collect()
}

/// `SelectVictimsOnNode` on `node`, at place `at` in the snapshot.
pub fn select_victims<'a>(
    snapshot: &Snapshot,
    state: &CycleState,
    (node, at): (&'a NodeInfo, usize),
) -> Result<NodeVictims<'a>, Status> {
    let incoming = &state.pod.pod;
    let mut potential: Vec<&'a Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.pod.priority < incoming.priority)
        .collect();
    let mut copy = node.clone();
    let mut state = state.clone();
    for p in &potential {
        copy.remove_pod(&p.pod);
        state.remove_pod(p, &copy.node);
    }
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS));
    }
    if let Some(status) = run_filters_with_nominated(snapshot, &state, &copy, at) {
        return Err(status);
    }
    // Stable: pods equal in importance keep the node's order.
    potential.sort_by_key(|p| p.importance());
    Ok(reprieve(&potential, |p| {
        copy.add_pod(Arc::clone(p));
        state.add_pod(p, &copy.node);
        let fits = run_filters_with_nominated(snapshot, &state, &copy, at).is_none();
        if !fits {
            copy.remove_pod(&p.pod);
            state.remove_pod(p, &copy.node);
        }
        fits
    }))
}

/// Upstream's reprieve over `potential`, most important first: the pods whose eviction
/// would violate a PDB before the others, each put back if `keep` says the pod still
/// fits with it (and `keep` undoes the addition when it does not). The pods not kept
/// are the victims, most important first.
fn reprieve<'a, P: Evictable<'a>>(
    potential: &[P],
    mut keep: impl FnMut(P) -> bool,
) -> NodeVictims<'a> {
    let covered = potential
        .iter()
        .any(|p| !matches!(p.budgets(), Budgets::None));
    let mut violations = if covered {
        pdb_violations(potential)
    } else {
        Vec::new()
    };
    let violates = |i: usize| violations.get(i).is_some_and(|v| !v.is_empty());
    // Victims with their index in `potential`.
    let mut victims: Vec<(P, usize)> = Vec::with_capacity(potential.len());
    let mut num_pdb_violations = 0;
    let mut visited = [0; 2];
    for violating in [true, false] {
        for (i, &p) in potential.iter().enumerate() {
            if violates(i) != violating {
                continue;
            }
            visited[usize::from(violating)] += 1;
            if !keep(p) {
                num_pdb_violations += i64::from(violating);
                victims.push((p, i));
            }
        }
    }
    if visited[0] > 0 && visited[1] > 0 {
        // Stable, as upstream's sort.
        victims.sort_by_key(|(p, _)| p.importance());
    }
    let scores = selection_scores(num_pdb_violations, victims.iter().map(|(p, _)| *p));
    let victims = victims
        .into_iter()
        .map(|(p, i)| {
            let violated = violations.get_mut(i).map(std::mem::take);
            (p.pod(), violated.unwrap_or_default())
        })
        .collect();
    NodeVictims {
        victims,
        num_pdb_violations,
        scores,
    }
}

/// A dry run's result on one node.
enum DryRun<'a> {
    Candidate(NodeVictims<'a>),
    /// Not a candidate, with the status that says why.
    Rejected(Status),
    /// Not a candidate: even without every lower-priority pod the pod's requests do
    /// not fit. The exact status (which may come from an earlier plugin) is computed
    /// only when it is reported.
    DoesNotFit,
}

/// Why [`screen`] closed a node: the dry run it stands for, in a byte, so that the
/// screens of thousands of nodes (`Result<i32, Closed>`, a word each) are kept and
/// read again rather than a whole [`DryRun`] per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// No pod on the node has a lower priority.
    NoVictims,
    /// [`DryRun::DoesNotFit`].
    DoesNotFit,
}

impl Closed {
    fn dry_run<'a>(self) -> DryRun<'a> {
        match self {
            Closed::NoVictims => DryRun::Rejected(Status::unresolvable(NO_VICTIMS)),
            Closed::DoesNotFit => DryRun::DoesNotFit,
        }
    }
}

/// The usage `node` would have with its `lower` least important pods gone: cpu, memory
/// and ephemeral storage from the ladder, and scalar resources (read from the pods)
/// only when the pod requests some.
fn used_without(node: &NodeInfo, lower: usize, request: &Resources) -> Resources {
    if request.scalars.is_empty() {
        let freed = node.ladder.lowest(lower);
        Resources {
            milli_cpu: node.requested.milli_cpu - freed.milli_cpu,
            memory: node.requested.memory - freed.memory,
            ephemeral_storage: node.requested.ephemeral_storage - freed.ephemeral_storage,
            scalars: Vec::new(),
        }
    } else {
        let mut used = node.requested.clone();
        for i in 0..lower {
            used.accumulate(&node.ladder.pod(i, &node.pods).requests, -1);
        }
        used
    }
}

/// The fast dry run's first step, from the node's ladder alone (binary searches): the
/// result when the node cannot be a candidate (it has no lower-priority pod, or the
/// requests do not fit even with all of them gone, whatever the other filters say);
/// otherwise the least priority its highest victim can have, since every pod up to that
/// priority must go for the requests' cpu, memory, ephemeral storage and pod count to
/// fit (`i32::MIN`, no bound, when some pod requests a negative amount).
fn screen(state: &CycleState, node: &NodeInfo) -> Result<i32, Closed> {
    let (lower, _) = node.ladder.below(state.pod.pod.priority);
    if lower == 0 {
        return Err(Closed::NoVictims);
    }
    let request = &state.pod.requests;
    let allocatable = &node.node.allocatable;
    let allowed = node.node.allowed_pods;
    let fits_without = |n: usize, request: &Resources| {
        let used = used_without(node, n, request);
        fits(request, allocatable, allowed, &used, node.pods.len() - n)
    };
    if !fits_without(lower, request) {
        return Err(Closed::DoesNotFit);
    }
    if !node.ladder.monotone() {
        // A pod that frees less than nothing: no bound.
        return Ok(i32::MIN);
    }
    // Scalar resources can only ask for more victims: the bound leaves them out.
    let base = Resources {
        scalars: Vec::new(),
        ..request.clone()
    };
    // The fewest least important pods whose removal makes room (at least one).
    let (mut lo, mut hi) = (1, lower);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fits_without(mid, &base) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(node.ladder.rungs()[lo - 1].priority)
}

/// `SelectVictimsOnNode` for a node [`screen`] left open, with a shortcut that cannot
/// change its result: when nothing but resources can change as pods come and go (no
/// topology spread or inter-pod affinity state, no host ports, no nominated pods that
/// count here), the reprieve is arithmetic on the ladder's requests, in the ladder's
/// order. Everything else runs the full filter plugins.
fn dry_run_fast<'a>(
    snapshot: &Snapshot,
    state: &CycleState,
    (node, at): (&'a NodeInfo, usize),
) -> DryRun<'a> {
    let incoming = &state.pod.pod;
    let request = &state.pod.requests;
    let exact_scalars = !request.scalars.is_empty();
    let (lower, _) = node.ladder.below(incoming.priority);
    let mut used = used_without(node, lower, request);
    let mut pods = node.pods.len() - lower;
    let allocatable = &node.node.allocatable;
    let allowed = node.node.allowed_pods;
    let only_resources_change = state.spread.is_none()
        && state.inter_pod.is_none()
        && incoming.host_ports.is_empty()
        && !snapshot
            .nominated_pods(node.name())
            .iter()
            .any(|p| p.pod.priority >= incoming.priority);
    if !only_resources_change {
        return match select_victims(snapshot, state, (node, at)) {
            Ok(v) => DryRun::Candidate(v),
            Err(status) => DryRun::Rejected(status),
        };
    }
    let ladder = &node.ladder;
    let potential = by_importance(node, lower);
    let give_back = |used: &mut Resources, p: LadderPod, sign: i64| {
        if exact_scalars {
            used.accumulate(&p.pod().requests, sign);
        } else {
            let requests = ladder.requests(p.at);
            used.milli_cpu += sign * requests.milli_cpu;
            used.memory += sign * requests.memory;
            used.ephemeral_storage += sign * requests.ephemeral_storage;
        }
    };
    DryRun::Candidate(reprieve(&potential, |p| {
        give_back(&mut used, p, 1);
        // The node now holds `pods + 1` pods with `p` back.
        let still_fits = fits(request, allocatable, allowed, &used, pods + 1);
        if still_fits {
            pods += 1;
        } else {
            give_back(&mut used, p, -1);
        }
        still_fits
    }))
}

/// The node's `lower` least important pods (the ladder's lowest rungs), most important
/// first, as a stable sort of the node's pods by importance orders them: pods equal in
/// priority and start keep the node's order.
fn by_importance(node: &NodeInfo, lower: usize) -> Vec<LadderPod<'_>> {
    let mut potential: Vec<LadderPod> = (0..lower).rev().map(|at| LadderPod { at, node }).collect();
    let mut i = 0;
    while i < potential.len() {
        let key = potential[i].importance();
        let end = i + potential[i..]
            .iter()
            .take_while(|p| p.importance() == key)
            .count();
        if end - i > 1 {
            potential[i..end].sort_by_key(|p| node.ladder.place(p.at));
        }
        i = end;
    }
    potential
}

/// The candidate selection criteria, in order, for a candidate with `victims`; each
/// maps a candidate to a value to maximise (`pickOneNodeForPreemption`).
fn selection_scores<'a>(
    num_pdb_violations: i64,
    victims: impl Iterator<Item = impl Evictable<'a>> + Clone,
) -> [i64; 5] {
    let highest = victims
        .clone()
        .map(|p| i64::from(p.priority()))
        .max()
        .unwrap_or(0);
    let sum: i64 = victims
        .clone()
        .map(|p| i64::from(p.priority()) + i64::from(i32::MAX) + 1)
        .sum();
    let count = victims.clone().count() as i64;
    let earliest_of_highest = victims
        .filter(|p| i64::from(p.priority()) == highest)
        .map(|p| p.start())
        .min()
        .unwrap_or(i64::MIN);
    [
        -num_pdb_violations,
        -highest,
        -sum,
        -count,
        earliest_of_highest,
    ]
}

/// Every candidate node the selection may return, in `candidates`' order.
fn select_tie_set<'c>(candidates: &'c [(&String, NodeVictims)]) -> Vec<&'c String> {
    let mut remaining: Vec<&(&String, NodeVictims)> = candidates.iter().collect();
    for criterion in 0..5 {
        let best = remaining
            .iter()
            .map(|(_, c)| c.scores[criterion])
            .max()
            .unwrap_or(0);
        remaining.retain(|(_, c)| c.scores[criterion] == best);
    }
    remaining.into_iter().map(|(n, _)| *n).collect()
}

/// `PodEligibleToPreemptOthers`.
fn ineligible_reason(
    snapshot: &Snapshot,
    pod: &PodInfo,
    rejections: &[Rejection],
) -> Option<&'static str> {
    if pod.pod.preemption_policy == PreemptionPolicy::Never {
        return Some(INELIGIBLE_POLICY);
    }
    let nominated = pod.pod.nominated_node_name.as_ref()?;
    let index = snapshot.node_index(nominated);
    let status_of = |i: usize| {
        let at = rejections.binary_search_by_key(&i, |(at, _, _)| *at as usize);
        at.ok().map(|at| &rejections[at].1)
    };
    let unresolvable = index
        .and_then(status_of)
        .is_none_or(|s| s.code == Code::UnschedulableAndUnresolvable);
    if unresolvable {
        return None;
    }
    let node = &snapshot.nodes[index?];
    node.pods
        .iter()
        .any(|p| p.pod.priority < pod.pod.priority && p.pod.preempted_by_scheduler)
        .then_some(INELIGIBLE_TERMINATING)
}

/// How many nodes apart [`prefetch_screens`]' stages run: far enough for a line to
/// arrive while the screens between run, near enough that it is still there.
const SCREEN_PREFETCH_STAGE: usize = 4;

/// Asks ahead ([`crate::prefetch`]) for what [`screen`] reads of the nodes after the
/// one at `pos` among the `potential` nodes, for a pod of `priority`. Each node's part
/// is a chain (the node, then its `Node` and ladder, then the ladder's priorities,
/// then the rung its search ends on), so the stages run a few nodes apart, each
/// reading only what an earlier one brought in: a screen is a few dozen instructions,
/// and without the hints a pass over 5,000 nodes waits on a cache miss per link.
fn prefetch_screens(snapshot: &Snapshot, potential: &[usize], pos: usize, priority: i32) {
    let d = SCREEN_PREFETCH_STAGE;
    let node = |ahead: usize| potential.get(pos + ahead).map(|&i| &snapshot.nodes[i]);
    if let Some(n) = node(3 * d) {
        prefetch::block_of(n);
    }
    if let Some(n) = node(2 * d) {
        prefetch::block_of(&n.node);
        n.ladder.prefetch_rungs();
    }
    if let Some(n) = node(d) {
        n.ladder.prefetch_priorities();
    }
    if let Some(n) = node(d / 2) {
        n.ladder.prefetch_below(priority);
    }
}

/// Asks ahead for what [`dry_run_fast`] reads of the nodes after the one at `k` in
/// `order` (positions among the `potential` nodes), in three stages a run apart: the
/// node's block; its `Node`, its ladder's block and its name (which its nominated
/// pods are looked up by); then its ladder's priorities, every rung and their places.
fn prefetch_dry_runs(snapshot: &Snapshot, potential: &[usize], order: &[usize], k: usize) {
    let node = |ahead: usize| {
        let pos = *order.get(k + ahead)?;
        Some(&snapshot.nodes[potential[pos]])
    };
    if let Some(n) = node(3) {
        prefetch::block_of(n);
    }
    if let Some(n) = node(2) {
        prefetch::block_of(&n.node);
        n.ladder.prefetch_rungs();
    }
    if let Some(n) = node(1) {
        n.ladder.prefetch_all();
        prefetch::buffer_of(n.node.name.as_bytes());
    }
}

/// The fast dry runs of the `potential` nodes (their places), in parallel, in the
/// nodes' order: each node [`screen`]ed first, then the open ones run. Without
/// explanations only the nodes that may still be selected run (`None` for the
/// others): first those whose victims may have the lowest highest priority; then those
/// that no candidate found so far beats for certain (one without PDB violations whose
/// highest victim has a lower priority than any the node could offer).
fn fast_dry_runs<'a>(
    snapshot: &'a Snapshot,
    state: &CycleState,
    potential: &[usize],
    explain: bool,
) -> impl Iterator<Item = Option<DryRun<'a>>> {
    let screened: Vec<Result<i32, Closed>> = potential
        .par_iter()
        .with_min_len(task_len(NODES_PER_TASK))
        .enumerate()
        .map(|(pos, &i)| {
            prefetch_screens(snapshot, potential, pos, state.pod.pod.priority);
            screen(state, &snapshot.nodes[i])
        })
        .collect();
    let least = screened.iter().filter_map(|s| s.ok()).min();
    let bounds = || {
        screened
            .iter()
            .enumerate()
            .filter_map(|(pos, s)| Some((pos, s.ok()?)))
    };
    // Each run is found again by its position; the positions ascend.
    let run = |order: Vec<usize>| -> Vec<(usize, DryRun<'a>)> {
        order
            .par_iter()
            .with_min_len(task_len(1))
            .enumerate()
            .map(|(k, &pos)| {
                prefetch_dry_runs(snapshot, potential, &order, k);
                let at = potential[pos];
                (
                    pos,
                    dry_run_fast(snapshot, state, (&snapshot.nodes[at], at)),
                )
            })
            .collect()
    };
    let first = |h: i32| explain || Some(h) == least;
    let mut runs = run(bounds()
        .filter(|&(_, h)| first(h))
        .map(|(pos, _)| pos)
        .collect());
    let best = runs
        .iter()
        .filter_map(|(_, r)| match r {
            DryRun::Candidate(v) if !v.victims.is_empty() => Some(v.scores),
            _ => None,
        })
        .max();
    let beaten = |h: i32| best.is_some_and(|s| s[0] == 0 && s[1] > -i64::from(h));
    let rest: Vec<usize> = bounds()
        .filter(|&(_, h)| !first(h) && !beaten(h))
        .map(|(pos, _)| pos)
        .collect();
    if !rest.is_empty() {
        runs.extend(run(rest));
        runs.sort_unstable_by_key(|&(pos, _)| pos);
    }
    let mut runs = runs.into_iter().peekable();
    screened
        .into_iter()
        .enumerate()
        .map(move |(pos, s)| match s {
            Err(closed) => Some(closed.dry_run()),
            Ok(_) => runs.next_if(|&(at, _)| at == pos).map(|(_, r)| r),
        })
}

/// Runs DefaultPreemption after the filter pass found no node. `rejections` holds every
/// rejected node's filter status, in the snapshot's node order (a node not there has
/// none).
pub fn preempt(
    snapshot: &Snapshot,
    state: &CycleState,
    rejections: &[Rejection],
    options: Options,
) -> Preemption {
    let pod = state.pod;
    if let Some(reason) = ineligible_reason(snapshot, pod, rejections) {
        return Preemption {
            eligible: false,
            ineligible_reason: Some(reason.to_string()),
            potential_nodes: Vec::new(),
            num_potential_nodes: 0,
            nodes: BTreeMap::new(),
            candidates: Vec::new(),
            selected_tie_set: Vec::new(),
            upstream_select_candidate_picks: Vec::new(),
            post_filter: PostFilter {
                code: Code::Unschedulable.as_str().into(),
                message: Some(format!("{DRA_POST_FILTER_MESSAGE}, preemption: {reason}")),
                clears_nominated_node_name: None,
            },
        };
    }
    // In node order, so by name. A node's name is read only where it is reported.
    let potential: Vec<usize> = rejections
        .iter()
        .filter(|(_, s, _)| s.code == Code::Unschedulable)
        .map(|&(at, _, _)| at as usize)
        .collect();
    let name = |i: usize| &snapshot.nodes[i].node.name;
    let results: Box<dyn Iterator<Item = Option<DryRun>>> = match options.evaluation {
        Evaluation::Fast => Box::new(fast_dry_runs(snapshot, state, &potential, options.explain)),
        Evaluation::Straightforward => Box::new(potential.iter().map(|&i| {
            Some(
                match select_victims(snapshot, state, (&snapshot.nodes[i], i)) {
                    Ok(v) => DryRun::Candidate(v),
                    Err(status) => DryRun::Rejected(status),
                },
            )
        })),
    };
    // In potential order, so by name.
    let mut candidates: Vec<(&String, NodeVictims)> = Vec::new();
    // By place: named only when reported.
    let mut failures: Vec<(usize, Status)> = Vec::new();
    let mut unexplained = Vec::new();
    for (&i, result) in potential.iter().zip(results) {
        let Some(result) = result else { continue };
        match result {
            DryRun::Candidate(v) if v.victims.is_empty() => {
                let message = format!("expected at least one victim pod on node {:?}", name(i));
                failures.push((i, Status::new(Code::Error, message)));
            }
            DryRun::Candidate(v) => candidates.push((name(i), v)),
            DryRun::Rejected(status) => failures.push((i, status)),
            DryRun::DoesNotFit => unexplained.push(i),
        }
    }
    // The exact status of a node the shortcut ruled out is needed only to explain it,
    // or for the FitError when no node is a candidate.
    let failures: BTreeMap<String, Status> = if options.explain || candidates.is_empty() {
        for i in unexplained {
            // A node whose requests do not fit is never a candidate; the full run
            // only finds out which filter says so first.
            let status = select_victims(snapshot, state, (&snapshot.nodes[i], i))
                .err()
                .unwrap_or_else(|| {
                    let message = format!("node {:?} unexpectedly became a candidate", name(i));
                    Status::new(Code::Error, message)
                });
            failures.push((i, status));
        }
        failures
            .into_iter()
            .map(|(i, status)| (name(i).clone(), status))
            .collect()
    } else {
        BTreeMap::new()
    };
    let selected: Vec<String> = select_tie_set(&candidates).into_iter().cloned().collect();
    let post_filter = if candidates.is_empty() {
        let inner = fit_error::message(snapshot.nodes.len(), failures.values(), Some(NOT_HELPFUL));
        PostFilter {
            code: Code::Unschedulable.as_str().into(),
            message: Some(format!("{DRA_POST_FILTER_MESSAGE}, preemption: {inner}")),
            clears_nominated_node_name: Some(true),
        }
    } else {
        PostFilter {
            code: Code::Success.as_str().into(),
            message: None,
            clears_nominated_node_name: None,
        }
    };
    let chosen = selected.first();
    let reported = |node: &String| options.explain || Some(node) == chosen;
    let nodes = if options.explain {
        node_reports(&candidates, &failures)
    } else {
        BTreeMap::new()
    };
    Preemption {
        eligible: true,
        ineligible_reason: None,
        potential_nodes: if options.explain {
            potential.iter().map(|&i| name(i).clone()).collect()
        } else {
            Vec::new()
        },
        num_potential_nodes: potential.len(),
        nodes,
        candidates: candidates
            .iter()
            .filter(|(node, _)| reported(node))
            .map(|(node, v)| candidate_report(node, v))
            .collect(),
        upstream_select_candidate_picks: selected.clone(),
        selected_tie_set: selected,
        post_filter,
    }
}

fn candidate_report(node: &str, v: &NodeVictims) -> Candidate {
    let victim_details: Vec<Victim> = v
        .victims
        .iter()
        .map(|(p, pdbs)| Victim {
            pod: p.pod.key(),
            uid: p.pod.uid.clone(),
            priority: p.pod.priority,
            violated_pdbs: pdbs.iter().map(|b| b.key()).collect(),
        })
        .collect();
    Candidate {
        node: node.to_string(),
        victims: victim_details.iter().map(|d| d.pod.clone()).collect(),
        num_pdb_violations: v.num_pdb_violations,
        victim_details,
    }
}

/// Every potential node's dry-run result, for explanations.
fn node_reports(
    candidates: &[(&String, NodeVictims)],
    failures: &BTreeMap<String, Status>,
) -> BTreeMap<String, PreemptionNode> {
    let mut nodes = BTreeMap::new();
    for (name, v) in candidates {
        nodes.insert(
            (*name).clone(),
            PreemptionNode {
                candidate: true,
                victims: Some(v.victims.iter().map(|(p, _)| p.pod.key()).collect()),
                num_pdb_violations: v.num_pdb_violations,
                code: None,
                plugin: None,
                reasons: None,
            },
        );
    }
    for (name, status) in failures {
        nodes.insert(
            name.clone(),
            PreemptionNode {
                candidate: false,
                victims: None,
                num_pdb_violations: 0,
                code: Some(status.code.as_str().into()),
                plugin: status.plugin.map(str::to_string),
                reasons: Some(status.reason_strings()),
            },
        );
    }
    nodes
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::engine::decision::{Decision, Outcome, PlacementMode};
    use crate::engine::test_support::*;

    const T9: &str = "2024-05-01T09:00:00Z";
    const T10: &str = "2024-05-01T10:00:00Z";
    const T11: &str = "2024-05-01T11:00:00Z";
    const T12: &str = "2024-05-01T12:00:00Z";
    const T13: &str = "2024-05-01T13:00:00Z";

    /// A running pod on `node` with `cpu`, `priority` and start time.
    fn running(name: &str, node: &str, cpu: &str, priority: i32, start: &str) -> Value {
        started(prio(bound(pod(name, cpu, ""), node), priority), start)
    }

    fn incoming(cpu: &str) -> Value {
        prio(pod("pending", cpu, ""), 1000)
    }

    fn preemption(d: &Decision) -> &Preemption {
        d.preemption.as_ref().expect("preemption ran")
    }

    fn candidate<'a>(d: &'a Decision, node: &str) -> &'a Candidate {
        preemption(d)
            .candidates
            .iter()
            .find(|c| c.node == node)
            .unwrap_or_else(|| panic!("{node} is not a candidate"))
    }

    #[test]
    fn more_important_orders_by_priority_then_start() {
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![
                running("early", "n", "1", 10, T9),
                running("late", "n", "1", 10, T10),
                running("high", "n", "1", 20, T13),
                prio(bound(pod("unstarted", "1", ""), "n"), 10),
            ],
        );
        let importance = |n: &str| {
            s.nodes[0]
                .pods
                .iter()
                .find(|p| p.pod.name == n)
                .unwrap()
                .importance()
        };
        assert!(importance("high") < importance("early"));
        assert!(importance("early") < importance("late"));
        // A pod that has not started counts as starting now: after every recorded start.
        assert!(importance("late") < importance("unstarted"));
    }

    #[test]
    fn victims_are_listed_most_important_first() {
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![
                running("p10-late", "n", "1", 10, T12),
                running("p10-early", "n", "1", 10, T9),
                running("p20", "n", "1", 20, T13),
                prio(bound(pod("p5", "1", ""), "n"), 5),
            ],
        );
        let d = decide_json(&s, &incoming("4"));
        assert_eq!(d.outcome, Outcome::Preempts);
        assert_eq!(
            victims(&d, "n"),
            Some(strings(&[
                "default/p20",
                "default/p10-early",
                "default/p10-late",
                "default/p5"
            ]))
        );
        let details = &candidate(&d, "n").victim_details;
        assert_eq!(details[0].priority, 20);
        assert_eq!(details[0].uid, "uid-p20");
    }

    #[test]
    fn only_lower_priority_pods_are_victims() {
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![
                running("equal", "n", "2", 1000, T9),
                running("low", "n", "2", 999, T9),
            ],
        );
        let d = decide_json(&s, &incoming("2"));
        assert_eq!(victims(&d, "n"), Some(strings(&["default/low"])));
        // Nothing lower: no victims, unresolvable for preemption.
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![running("equal", "n", "4", 1000, T9)],
        );
        let d = decide_json(&s, &incoming("2"));
        assert_eq!(d.outcome, Outcome::Unschedulable);
        let n = &preemption(&d).nodes["n"];
        assert!(!n.candidate);
        assert_eq!(n.code.as_deref(), Some("UnschedulableAndUnresolvable"));
        assert_eq!(n.reasons, Some(strings(&[NO_VICTIMS])));
        assert_eq!(
            preemption(&d).post_filter.clears_nominated_node_name,
            Some(true)
        );
    }

    #[test]
    fn a_node_that_stays_full_reports_the_failing_filter() {
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![
                running("high", "n", "3", 2000, T9),
                running("low", "n", "1", 10, T9),
            ],
        );
        let d = decide_json(&s, &incoming("2"));
        let n = &preemption(&d).nodes["n"];
        assert!(!n.candidate);
        assert_eq!(n.code.as_deref(), Some("Unschedulable"));
        assert_eq!(n.plugin.as_deref(), Some("NodeResourcesFit"));
        assert_eq!(n.reasons, Some(strings(&["Insufficient cpu"])));
        assert_eq!(
            d.fit_error.as_deref(),
            Some(
                "0/1 nodes are available: 1 Insufficient cpu. no new claims to deallocate, \
                 preemption: 0/1 nodes are available: 1 Insufficient cpu."
            )
        );
    }

    /// Three 1-cpu pods on a 3-cpu node (priorities 100, 50, 10); the pod needs 2 cpu.
    fn reprieve_cluster(pdbs: Vec<Value>) -> crate::engine::Snapshot {
        cluster(
            vec![node("n", "3", "8Gi", 110)],
            vec![
                labeled(running("p100", "n", "1", 100, T9), json!({"app": "api"})),
                labeled(running("p50", "n", "1", 50, T9), json!({"app": "api"})),
                labeled(running("p10", "n", "1", 10, T9), json!({"app": "guarded"})),
            ],
            pdbs,
            vec![],
        )
    }

    #[test]
    fn pdb_violating_pods_are_reprieved_first() {
        // Without a PDB the most important pod is reprieved.
        let d = decide_json(&reprieve_cluster(vec![]), &incoming("2"));
        assert_eq!(
            victims(&d, "n"),
            Some(strings(&["default/p50", "default/p10"]))
        );
        // A PDB with no disruptions left puts p10 first in line to stay.
        let s = reprieve_cluster(vec![pdb("guard", "default", json!({"app": "guarded"}), 0)]);
        let d = decide_json(&s, &incoming("2"));
        assert_eq!(
            victims(&d, "n"),
            Some(strings(&["default/p100", "default/p50"]))
        );
        assert_eq!(candidate(&d, "n").num_pdb_violations, 0);
    }

    #[test]
    fn num_pdb_violations_and_violated_budgets() {
        // Budget of 1 over both api pods: p100 takes it, p50 would violate.
        let s = reprieve_cluster(vec![pdb("api", "default", json!({"app": "api"}), 1)]);
        let d = decide_json(&s, &incoming("3"));
        let c = candidate(&d, "n");
        // Mixed groups are re-sorted by importance.
        assert_eq!(
            c.victims,
            strings(&["default/p100", "default/p50", "default/p10"])
        );
        assert_eq!(c.num_pdb_violations, 1);
        let violated: Vec<(&str, Vec<String>)> = c
            .victim_details
            .iter()
            .map(|v| (v.pod.as_str(), v.violated_pdbs.clone()))
            .collect();
        assert_eq!(
            violated,
            vec![
                ("default/p100", vec![]),
                ("default/p50", strings(&["default/api"])),
                ("default/p10", vec![]),
            ]
        );
        assert_eq!(preemption(&d).nodes["n"].num_pdb_violations, 1);
    }

    #[test]
    fn disrupted_pods_do_not_consume_the_budget() {
        let budget = merge(
            pdb("api", "default", json!({"app": "api"}), 0),
            json!({"status": {"disruptedPods": {"p100": "2024-05-01T12:00:00Z"}}}),
        );
        let d = decide_json(&reprieve_cluster(vec![budget]), &incoming("3"));
        // p100 is already being disrupted; only p50 violates.
        assert_eq!(candidate(&d, "n").num_pdb_violations, 1);
    }

    #[test]
    fn pdbs_cover_only_their_namespace_and_need_a_selector() {
        let empty_selector = merge(
            pdb("all", "default", json!({}), 0),
            json!({"spec": {"selector": {"matchLabels": null}}}),
        );
        let s = reprieve_cluster(vec![
            pdb("elsewhere", "other", json!({"app": "api"}), 0),
            empty_selector,
        ]);
        let d = decide_json(&s, &incoming("3"));
        assert_eq!(candidate(&d, "n").num_pdb_violations, 0);
        assert!(
            candidate(&d, "n")
                .victim_details
                .iter()
                .all(|v| v.violated_pdbs.is_empty())
        );
    }

    /// Two one-node candidates a and b, each with the given victims (priority, start,
    /// cpu); each node has exactly the pod's 2 cpu once they are gone.
    fn two_candidates(a: &[(i32, &str)], b: &[(i32, &str)], pdbs: Vec<Value>) -> Decision {
        let mut pods = Vec::new();
        for (node_name, victims) in [("a", a), ("b", b)] {
            let cpu = format!("{}m", 2000 / victims.len());
            for (i, (p, t)) in victims.iter().enumerate() {
                pods.push(labeled(
                    running(&format!("{node_name}{i}"), node_name, &cpu, *p, t),
                    json!({"node": node_name}),
                ));
            }
        }
        let s = cluster(
            vec![node("a", "2", "8Gi", 110), node("b", "2", "8Gi", 110)],
            pods,
            pdbs,
            vec![],
        );
        decide_json(&s, &incoming("2"))
    }

    fn selected(d: &Decision) -> Vec<String> {
        preemption(d).selected_tie_set.clone()
    }

    #[test]
    fn selection_prefers_fewest_pdb_violations() {
        let d = two_candidates(
            &[(10, T9)],
            &[(500, T9)],
            vec![pdb("protect-a", "default", json!({"node": "a"}), 0)],
        );
        assert_eq!(candidate(&d, "a").num_pdb_violations, 1);
        assert_eq!(selected(&d), strings(&["b"]));
        assert_eq!(d.node.as_deref(), Some("b"));
    }

    #[test]
    fn selection_prefers_lowest_highest_victim_priority() {
        let d = two_candidates(&[(20, T9)], &[(10, T9), (10, T10)], vec![]);
        assert_eq!(selected(&d), strings(&["b"]));
    }

    #[test]
    fn selection_prefers_smallest_priority_sum() {
        let d = two_candidates(&[(50, T9), (40, T9)], &[(50, T9), (10, T9)], vec![]);
        assert_eq!(selected(&d), strings(&["b"]));
    }

    #[test]
    fn selection_prefers_fewest_victims() {
        // Sums offset by 2^31 tie: (10 + 2^31) + (MIN + 2^31) = 10 + 2^31.
        let s = snapshot(
            vec![node("a", "2", "8Gi", 110), node("b", "3", "8Gi", 110)],
            vec![
                running("a0", "a", "1", 10, T9),
                running("a1", "a", "1", i32::MIN, T9),
                running("b0", "b", "1", 10, T9),
                running("b-high", "b", "1", 5000, T9),
            ],
        );
        let d = decide_json(&s, &incoming("2"));
        assert_eq!(
            victims(&d, "a"),
            Some(strings(&["default/a0", "default/a1"]))
        );
        assert_eq!(victims(&d, "b"), Some(strings(&["default/b0"])));
        assert_eq!(selected(&d), strings(&["b"]));
    }

    #[test]
    fn selection_prefers_latest_start_of_the_highest_priority_victims() {
        let d = two_candidates(&[(10, T10)], &[(10, T11)], vec![]);
        assert_eq!(selected(&d), strings(&["b"]));
        // Only the highest-priority victims' start times count: a's 20 started at 12,
        // b's at 11, although b's low victim started last of all.
        let d = two_candidates(&[(20, T12), (10, T9)], &[(20, T11), (10, T13)], vec![]);
        assert_eq!(selected(&d), strings(&["a"]));
    }

    #[test]
    fn remaining_ties_are_reported_whole() {
        let d = two_candidates(&[(10, T9)], &[(10, T9)], vec![]);
        assert_eq!(selected(&d), strings(&["a", "b"]));
        assert_eq!(
            preemption(&d).upstream_select_candidate_picks,
            strings(&["a", "b"])
        );
        assert_eq!(d.node.as_deref(), Some("a"));
        assert_eq!(d.outcome, Outcome::Preempts);
        assert_eq!(preemption(&d).post_filter.code, "Success");
        assert_eq!(preemption(&d).potential_nodes, strings(&["a", "b"]));
        assert_eq!(d.chosen_candidate().map(|c| c.node.as_str()), Some("a"));
    }

    #[test]
    fn preemption_policy_never_is_not_eligible() {
        let mut never = priority_class("high-never", 1000);
        never["preemptionPolicy"] = json!("Never");
        let s = cluster(
            vec![node("n", "2", "8Gi", 110)],
            vec![running("low", "n", "2", 0, T9)],
            vec![],
            vec![never],
        );
        let d = decide_json(&s, &class(pod("pending", "1", ""), "high-never"));
        assert_eq!(d.outcome, Outcome::NotEligible);
        assert_eq!(d.preemption_policy, "Never");
        let p = preemption(&d);
        assert!(!p.eligible);
        assert_eq!(p.ineligible_reason.as_deref(), Some(INELIGIBLE_POLICY));
        assert!(p.candidates.is_empty() && p.potential_nodes.is_empty());
        assert_eq!(p.post_filter.code, "Unschedulable");
        assert_eq!(p.post_filter.clears_nominated_node_name, None);
        assert_eq!(
            d.fit_error.as_deref(),
            Some(
                "0/1 nodes are available: 1 Insufficient cpu. no new claims to deallocate, \
                 preemption: not eligible due to preemptionPolicy=Never."
            )
        );
        // An admitted pod (spec.priority set) carries its resolved preemptionPolicy.
        let d = decide_json(
            &s,
            &merge(
                incoming("1"),
                json!({"spec": {"preemptionPolicy": "Never"}}),
            ),
        );
        assert_eq!(d.outcome, Outcome::NotEligible);
    }

    fn terminating_cluster(victim: Value) -> crate::engine::Snapshot {
        snapshot(
            vec![node("a", "2", "8Gi", 110), node("b", "2", "8Gi", 110)],
            vec![victim, running("low-b", "b", "2", 0, T9)],
        )
    }

    #[test]
    fn terminating_victim_on_the_nominated_node_blocks_preemption() {
        let victim = preempted_terminating(running("evicted", "a", "2", 0, T9));
        let s = terminating_cluster(victim.clone());
        let d = decide_json(&s, &nominated(incoming("1"), "a"));
        assert_eq!(d.outcome, Outcome::NotEligible);
        assert_eq!(
            preemption(&d).ineligible_reason.as_deref(),
            Some(INELIGIBLE_TERMINATING)
        );
        assert_eq!(
            preemption(&d).post_filter.message.as_deref(),
            Some(
                "no new claims to deallocate, preemption: not eligible due to a terminating pod on the nominated node."
            )
        );
        // Not nominated: eligible, and the terminating pod is an ordinary victim.
        let d = decide_json(&s, &incoming("1"));
        assert_eq!(d.outcome, Outcome::Preempts);
        assert_eq!(victims(&d, "a"), Some(strings(&["default/evicted"])));
    }

    #[test]
    fn terminating_pods_that_do_not_block() {
        // Higher priority than the pod: not a pod it could have preempted.
        let higher = preempted_terminating(running("evicted", "a", "2", 2000, T9));
        let d = decide_json(&terminating_cluster(higher), &nominated(incoming("1"), "a"));
        assert_eq!(d.outcome, Outcome::Preempts);
        assert_eq!(d.node.as_deref(), Some("b"));
        // Deleted for another reason.
        let deleted = merge(
            running("evicted", "a", "2", 0, T9),
            json!({"metadata": {"deletionTimestamp": "2024-05-01T12:00:00Z"}}),
        );
        let d = decide_json(
            &terminating_cluster(deleted),
            &nominated(incoming("1"), "a"),
        );
        assert_eq!(d.outcome, Outcome::Preempts);
    }

    #[test]
    fn unresolvable_nominated_node_does_not_block() {
        let victim = preempted_terminating(running("evicted", "a", "2", 0, T9));
        let s = snapshot(
            vec![
                tainted(
                    node("a", "2", "8Gi", 110),
                    json!([{"key": "maintenance", "effect": "NoSchedule"}]),
                ),
                node("b", "2", "8Gi", 110),
            ],
            vec![victim, running("low-b", "b", "2", 0, T9)],
        );
        let d = decide_json(&s, &nominated(incoming("1"), "a"));
        assert_eq!(d.outcome, Outcome::Preempts);
        assert_eq!(selected(&d), strings(&["b"]));
    }

    #[test]
    fn nominated_pods_count_in_the_first_filter_pass() {
        let equal = prio(nominated(pod("waiting", "2", ""), "a"), 1000);
        let s = snapshot(
            vec![node("a", "4", "8Gi", 110)],
            vec![running("low", "a", "1", 10, T9), equal],
        );
        // 1 bound + 2 nominated + 2 incoming > 4.
        let d = decide_json(&s, &incoming("2"));
        assert_rejected(
            &d,
            "a",
            Code::Unschedulable,
            "NodeResourcesFit",
            &["Insufficient cpu"],
        );
        // Preemption also sees the nominated pod: the low pod must go.
        assert_eq!(victims(&d, "a"), Some(strings(&["default/low"])));
    }

    #[test]
    fn lower_priority_nominated_pods_are_ignored() {
        let lower = prio(nominated(pod("waiting", "2", ""), "a"), 999);
        let s = snapshot(
            vec![node("a", "4", "8Gi", 110)],
            vec![running("low", "a", "1", 10, T9), lower],
        );
        let d = decide_json(&s, &incoming("2"));
        assert_feasible(&d, "a");
        assert_eq!(d.outcome, Outcome::Scheduled);
    }

    #[test]
    fn the_pod_itself_is_not_counted_as_nominated() {
        // The cluster lists the pending pod itself, nominated to a by an earlier cycle.
        let me = nominated(incoming("3"), "a");
        let s = snapshot(vec![node("a", "4", "8Gi", 110)], vec![me.clone()]);
        let d = decide_json(&s, &me);
        assert_eq!(d.outcome, Outcome::Scheduled);
        assert_eq!(d.placement.mode, PlacementMode::NominatedNode);
    }

    #[test]
    fn the_second_pass_without_nominated_pods_must_also_pass() {
        // A nominated pod that the incoming pod has required affinity to: with it the
        // pod fits, without it (second pass) it does not.
        let db = labeled(
            prio(nominated(pod("db", "100m", ""), "a"), 2000),
            json!({"app": "db"}),
        );
        let s = snapshot(
            vec![
                labeled(node("a", "4", "8Gi", 110), json!({"zone": "z1"})),
                labeled(node("b", "4", "8Gi", 110), json!({"zone": "z1"})),
            ],
            vec![
                db,
                labeled(bound(pod("other", "100m", ""), "b"), json!({"app": "web"})),
            ],
        );
        let p = merge(
            incoming("1"),
            json!({"spec": {"affinity": {"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}
                ]
            }}}}),
        );
        let d = decide_json(&s, &p);
        assert_rejected(
            &d,
            "a",
            Code::UnschedulableAndUnresolvable,
            "InterPodAffinity",
            &["node(s) didn't match pod affinity rules"],
        );
        assert_rejected(
            &d,
            "b",
            Code::UnschedulableAndUnresolvable,
            "InterPodAffinity",
            &["node(s) didn't match pod affinity rules"],
        );
    }

    #[test]
    fn the_ladder_bounds_the_highest_victim() {
        let s = snapshot(
            vec![node("n", "3", "8Gi", 110)],
            vec![
                running("p10", "n", "1", 10, T9),
                running("p50", "n", "1", 50, T9),
                running("p100", "n", "1", 100, T9),
            ],
        );
        let screened = |cpu: &str| {
            let info = PodInfo::new(pending(&s, &incoming(cpu)), Vec::new());
            let pre = crate::engine::framework::run_pre_filter(&s, &info, Evaluation::Fast, None);
            match screen(&pre.state, &s.nodes[0]) {
                Ok(bound) => Some(bound),
                Err(Closed::DoesNotFit) => None,
                Err(Closed::NoVictims) => panic!("the node has lower-priority pods"),
            }
        };
        assert_eq!(screened("1"), Some(10));
        assert_eq!(screened("2"), Some(50));
        assert_eq!(screened("3"), Some(100));
        assert_eq!(screened("4"), None);
    }

    #[test]
    fn select_victims_directly() {
        let s = reprieve_cluster(vec![pdb("guard", "default", json!({"app": "guarded"}), 0)]);
        let p = pending(&s, &incoming("2"));
        let info = PodInfo::new(p, Vec::new());
        let pre = crate::engine::framework::run_pre_filter(
            &s,
            &info,
            crate::engine::Evaluation::Fast,
            None,
        );
        let v = select_victims(&s, &pre.state, (&s.nodes[0], 0)).expect("candidate");
        let names: Vec<&str> = v.victims.iter().map(|(p, _)| p.pod.name.as_str()).collect();
        assert_eq!(names, ["p100", "p50"]);
        assert_eq!(v.num_pdb_violations, 0);
        // The snapshot itself is untouched by the dry run.
        assert_eq!(s.nodes[0].pods.len(), 3);
        assert_eq!(s.nodes[0].requested.milli_cpu, 3000);
    }
}
