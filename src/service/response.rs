//! Decisions → protobuf answers.

use super::pb;
use crate::engine::decision::{Candidate, Decision, Outcome, PlacementMode, Victim};

fn split_key(key: &str) -> (String, String) {
    match key.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (String::new(), key.to_string()),
    }
}

pub fn victim(v: &Victim) -> pb::Victim {
    let (namespace, name) = split_key(&v.pod);
    pb::Victim {
        namespace,
        name,
        uid: v.uid.clone(),
        priority: v.priority,
        violated_pdbs: v.violated_pdbs.clone(),
    }
}

fn candidate(c: &Candidate) -> pb::PreemptionCandidate {
    pb::PreemptionCandidate {
        node: c.node.clone(),
        victims: c.victim_details.iter().map(victim).collect(),
        num_pdb_violations: c.num_pdb_violations,
    }
}

pub fn outcome(o: Outcome) -> pb::Outcome {
    match o {
        Outcome::Scheduled => pb::Outcome::Scheduled,
        Outcome::Preempts => pb::Outcome::Preempts,
        Outcome::Unschedulable => pb::Outcome::Unschedulable,
        Outcome::NotEligible => pb::Outcome::NotEligible,
    }
}

fn mode(m: PlacementMode) -> pb::PlacementMode {
    match m {
        PlacementMode::Scored => pb::PlacementMode::Scored,
        PlacementMode::SingleFeasible => pb::PlacementMode::SingleFeasible,
        PlacementMode::NominatedNode => pb::PlacementMode::NominatedNode,
        PlacementMode::Unschedulable => pb::PlacementMode::Unschedulable,
    }
}

/// The answer to `Place` for one decision.
pub fn place(d: &Decision, revision: u64, explain: bool) -> pb::PlaceResponse {
    let chosen = d.chosen_candidate();
    let preemption = d.preemption.as_ref();
    let tie_set = match d.outcome {
        Outcome::Preempts => preemption
            .map(|p| p.selected_tie_set.clone())
            .unwrap_or_default(),
        _ => d.placement.tie_set.clone(),
    };
    let explanations = if explain {
        d.filter
            .iter()
            .map(|(node, v)| pb::NodeVerdict {
                node: node.clone(),
                feasible: v.feasible,
                code: v.code.clone().unwrap_or_default(),
                plugin: v.plugin.clone().unwrap_or_default(),
                reasons: v.reasons.clone().unwrap_or_default(),
                source: v.source.unwrap_or_default().to_string(),
                score: d.scores.get(node).map_or(0, |s| s.total),
            })
            .collect()
    } else {
        Vec::new()
    };
    pb::PlaceResponse {
        outcome: outcome(d.outcome) as i32,
        node: d.node.clone().unwrap_or_default(),
        tie_set,
        mode: mode(d.placement.mode) as i32,
        victims: chosen
            .map(|c| c.victim_details.iter().map(victim).collect())
            .unwrap_or_default(),
        num_pdb_violations: chosen.map_or(0, |c| c.num_pdb_violations),
        fit_error: d.fit_error.clone().unwrap_or_default(),
        nominated_node_name: if d.outcome == Outcome::Preempts {
            d.node.clone().unwrap_or_default()
        } else {
            String::new()
        },
        ineligible_reason: preemption
            .and_then(|p| p.ineligible_reason.clone())
            .unwrap_or_default(),
        pod_priority: d.pod_priority,
        explanations,
        candidates: if explain {
            preemption
                .map(|p| p.candidates.iter().map(candidate).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        },
        revision,
        num_nodes: d.num_nodes as i32,
    }
}
