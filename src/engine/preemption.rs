//! DefaultPreemption (the PostFilter), evaluated on every potential node instead of
//! upstream's sample: eligibility, the per-node dry run with PDB-first reprieve, and the
//! candidate choice by upstream's five criteria, reported as the whole tie set.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;

use super::cycle_state::CycleState;
use super::decision::{Candidate, PostFilter, Preemption, PreemptionNode, Victim};
use super::fit_error;
use super::framework::run_filters_with_nominated;
use super::snapshot::{NodeInfo, PodInfo, Snapshot};
use super::status::{Code, Status};
use crate::model::{PodDisruptionBudget, PreemptionPolicy};

pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const INELIGIBLE_POLICY: &str = "not eligible due to preemptionPolicy=Never.";
pub const INELIGIBLE_TERMINATING: &str =
    "not eligible due to a terminating pod on the nominated node.";
/// The DynamicResources PostFilter runs first and always declines for a pod without claims.
pub const DRA_POST_FILTER_MESSAGE: &str = "no new claims to deallocate";

/// `util.MoreImportantPod`: higher priority, then earlier start (a pod that has not
/// started counts as starting now, i.e. after every recorded start).
pub fn more_important(a: &PodInfo, b: &PodInfo) -> Ordering {
    b.pod
        .priority
        .cmp(&a.pod.priority)
        .then_with(|| start_key(a).cmp(&start_key(b)))
}

fn start_key(p: &PodInfo) -> i64 {
    p.pod.start_time.unwrap_or(i64::MAX)
}

/// The dry run on one node: victims, most important first, each with the budgets its
/// eviction would violate.
#[derive(Debug, Clone)]
pub struct NodeVictims {
    pub victims: Vec<(Arc<PodInfo>, Vec<Arc<PodDisruptionBudget>>)>,
    pub num_pdb_violations: i64,
}

type Violations = Vec<Arc<PodDisruptionBudget>>;

/// `filterPodsWithPDBViolation`: splits `pods` (most important first) into those whose
/// eviction would exceed a budget (with the budgets it exceeds) and the others.
fn split_by_pdb(pods: Vec<Arc<PodInfo>>) -> (Vec<(Arc<PodInfo>, Violations)>, Vec<Arc<PodInfo>>) {
    let mut allowed: HashMap<String, i64> = HashMap::new();
    let mut violating = Vec::new();
    let mut others = Vec::new();
    for p in pods {
        let mut violated = Vec::new();
        for pdb in &p.pdbs {
            if pdb.disrupted_pods.contains(&p.pod.name) {
                continue;
            }
            let left = allowed
                .entry(pdb.key())
                .or_insert(i64::from(pdb.disruptions_allowed));
            *left -= 1;
            if *left < 0 {
                violated.push(Arc::clone(pdb));
            }
        }
        if violated.is_empty() {
            others.push(p);
        } else {
            violating.push((p, violated));
        }
    }
    (violating, others)
}

/// `SelectVictimsOnNode`.
pub fn select_victims(
    snapshot: &Snapshot,
    state: &CycleState,
    node: &NodeInfo,
) -> Result<NodeVictims, Status> {
    let incoming = &state.pod.pod;
    let mut node = node.clone();
    let mut state = state.clone();
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.pod.priority < incoming.priority)
        .cloned()
        .collect();
    for p in &potential {
        node.remove_pod(&p.pod.uid);
        state.remove_pod(p, &node.node);
    }
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS));
    }
    if let Some(status) = run_filters_with_nominated(snapshot, &state, &node) {
        return Err(status);
    }
    potential.sort_by(|a, b| more_important(a, b));
    let (violating, others) = split_by_pdb(potential);
    let has_both = !violating.is_empty() && !others.is_empty();
    let mut victims: Vec<(Arc<PodInfo>, Violations)> = Vec::new();
    let mut num_pdb_violations = 0;
    let candidates = violating
        .into_iter()
        .map(|(p, v)| (p, v, true))
        .chain(others.into_iter().map(|p| (p, Vec::new(), false)));
    for (p, violated, is_violating) in candidates {
        node.add_pod(Arc::clone(&p));
        state.add_pod(&p, &node.node);
        if run_filters_with_nominated(snapshot, &state, &node).is_some() {
            node.remove_pod(&p.pod.uid);
            state.remove_pod(&p, &node.node);
            if is_violating {
                num_pdb_violations += 1;
            }
            victims.push((p, violated));
        }
    }
    if has_both {
        victims.sort_by(|a, b| more_important(&a.0, &b.0));
    }
    Ok(NodeVictims {
        victims,
        num_pdb_violations,
    })
}

/// The candidate selection criteria, in order; each maps a candidate to a value to
/// maximise (`pickOneNodeForPreemption`).
fn selection_scores(c: &NodeVictims) -> [i64; 5] {
    let priorities = c.victims.iter().map(|(p, _)| i64::from(p.pod.priority));
    let highest = priorities.clone().max().unwrap_or(0);
    let sum: i64 = priorities.map(|p| p + i64::from(i32::MAX) + 1).sum();
    let earliest_of_highest = c
        .victims
        .iter()
        .filter(|(p, _)| i64::from(p.pod.priority) == highest)
        .map(|(p, _)| start_key(p))
        .min()
        .unwrap_or(i64::MIN);
    [
        -c.num_pdb_violations,
        -highest,
        -sum,
        -(c.victims.len() as i64),
        earliest_of_highest,
    ]
}

/// Every candidate node the selection may return.
fn select_tie_set(candidates: &BTreeMap<String, NodeVictims>) -> Vec<String> {
    let mut remaining: Vec<(&String, [i64; 5])> = candidates
        .iter()
        .map(|(n, c)| (n, selection_scores(c)))
        .collect();
    for criterion in 0..5 {
        let best = remaining
            .iter()
            .map(|(_, s)| s[criterion])
            .max()
            .unwrap_or(0);
        remaining.retain(|(_, s)| s[criterion] == best);
    }
    remaining.into_iter().map(|(n, _)| n.clone()).collect()
}

/// `PodEligibleToPreemptOthers`.
fn ineligible_reason(
    snapshot: &Snapshot,
    pod: &PodInfo,
    statuses: &BTreeMap<String, Status>,
) -> Option<&'static str> {
    if pod.pod.preemption_policy == PreemptionPolicy::Never {
        return Some(INELIGIBLE_POLICY);
    }
    let nominated = pod.pod.nominated_node_name.as_ref()?;
    let unresolvable = statuses
        .get(nominated)
        .is_none_or(|s| s.code == Code::UnschedulableAndUnresolvable);
    if unresolvable {
        return None;
    }
    let node = snapshot.node(nominated)?;
    node.pods
        .iter()
        .any(|p| p.pod.priority < pod.pod.priority && p.pod.preempted_by_scheduler)
        .then_some(INELIGIBLE_TERMINATING)
}

/// Runs DefaultPreemption after the filter pass found no node. `statuses` holds every
/// node's filter status.
pub fn preempt(
    snapshot: &Snapshot,
    state: &CycleState,
    statuses: &BTreeMap<String, Status>,
) -> Preemption {
    let pod = state.pod;
    if let Some(reason) = ineligible_reason(snapshot, pod, statuses) {
        return Preemption {
            eligible: false,
            ineligible_reason: Some(reason.to_string()),
            potential_nodes: Vec::new(),
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
    let potential: Vec<(&String, usize)> = statuses
        .iter()
        .filter(|(_, s)| s.code == Code::Unschedulable)
        .filter_map(|(name, _)| snapshot.node_index(name).map(|i| (name, i)))
        .collect();
    let results: Vec<(String, Result<NodeVictims, Status>)> = potential
        .par_iter()
        .map(|(name, i)| {
            let result = select_victims(snapshot, state, &snapshot.nodes[*i]).and_then(|v| {
                if v.victims.is_empty() {
                    Err(Status::new(
                        Code::Error,
                        format!("expected at least one victim pod on node {name:?}"),
                    ))
                } else {
                    Ok(v)
                }
            });
            ((*name).clone(), result)
        })
        .collect();
    let mut nodes = BTreeMap::new();
    let mut candidates = BTreeMap::new();
    let mut failures = BTreeMap::new();
    for (name, result) in results {
        match result {
            Ok(v) => {
                nodes.insert(
                    name.clone(),
                    PreemptionNode {
                        candidate: true,
                        victims: Some(v.victims.iter().map(|(p, _)| p.pod.key()).collect()),
                        num_pdb_violations: v.num_pdb_violations,
                        code: None,
                        plugin: None,
                        reasons: None,
                    },
                );
                candidates.insert(name, v);
            }
            Err(status) => {
                nodes.insert(
                    name.clone(),
                    PreemptionNode {
                        candidate: false,
                        victims: None,
                        num_pdb_violations: 0,
                        code: Some(status.code.as_str().into()),
                        plugin: status.plugin.map(str::to_string),
                        reasons: Some(status.reasons.clone()),
                    },
                );
                failures.insert(name, status);
            }
        }
    }
    let selected = select_tie_set(&candidates);
    let post_filter = if candidates.is_empty() {
        let inner = fit_error::message(snapshot.nodes.len(), &failures, Some(NOT_HELPFUL));
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
    Preemption {
        eligible: true,
        ineligible_reason: None,
        potential_nodes: potential.iter().map(|(n, _)| (*n).clone()).collect(),
        nodes,
        candidates: candidates
            .iter()
            .map(|(node, v)| Candidate {
                node: node.clone(),
                victims: v.victims.iter().map(|(p, _)| p.pod.key()).collect(),
                num_pdb_violations: v.num_pdb_violations,
                victim_details: v
                    .victims
                    .iter()
                    .map(|(p, pdbs)| Victim {
                        pod: p.pod.key(),
                        uid: p.pod.uid.clone(),
                        priority: p.pod.priority,
                        violated_pdbs: pdbs.iter().map(|b| b.key()).collect(),
                    })
                    .collect(),
            })
            .collect(),
        upstream_select_candidate_picks: selected.clone(),
        selected_tie_set: selected,
        post_filter,
    }
}
