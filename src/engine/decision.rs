//! The answer to "where would this pod land, and whom would it preempt", with its
//! explanations. Serialises to the conformance vectors' `expected` shape (plus the
//! outcome and victim details), so the same JSON serves `--json`, the conformance
//! comparison and the service.

use std::collections::BTreeMap;

use serde::Serialize;

use super::status::Status;

/// The overall outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// The pod fits on a node as the cluster is.
    Scheduled,
    /// The pod fits after preempting victims.
    Preempts,
    /// No node fits, and preemption cannot make one fit.
    Unschedulable,
    /// No node fits and the pod may not preempt (policy `Never`, or a victim of an
    /// earlier preemption is still terminating on its nominated node).
    NotEligible,
}

impl Outcome {
    /// The outcome as the API spells it (`SCHEDULED`, `PREEMPTS`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Scheduled => "SCHEDULED",
            Outcome::Preempts => "PREEMPTS",
            Outcome::Unschedulable => "UNSCHEDULABLE",
            Outcome::NotEligible => "NOT_ELIGIBLE",
        }
    }
}

/// A node's filter verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeVerdict {
    pub feasible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
    /// `Filter`, `PreFilter` (the pod was rejected as a whole) or `PreFilterResult`
    /// (a PreFilter plugin excluded the node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
}

impl NodeVerdict {
    pub fn feasible() -> NodeVerdict {
        NodeVerdict {
            feasible: true,
            code: None,
            plugin: None,
            reasons: None,
            source: None,
        }
    }

    pub fn rejected(status: &Status, source: &'static str) -> NodeVerdict {
        NodeVerdict {
            feasible: false,
            code: Some(status.code.as_str().to_string()),
            plugin: status.plugin.map(str::to_string),
            reasons: Some(status.reason_strings()),
            source: Some(source),
        }
    }
}

/// A status as reported for the pod as a whole (`preFilter`) or a preemption node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    pub reasons: Vec<String>,
}

impl From<&Status> for StatusReport {
    fn from(s: &Status) -> Self {
        StatusReport {
            code: s.code.as_str().to_string(),
            plugin: s.plugin.map(str::to_string),
            reasons: s.reason_strings(),
        }
    }
}

/// A feasible node's score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeScore {
    pub total: i64,
    /// Plugin → normalised score × weight.
    pub plugins: BTreeMap<String, i64>,
}

/// How the node is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlacementMode {
    /// Two or more feasible nodes, chosen by score.
    Scored,
    /// Exactly one feasible node, taken without scoring.
    SingleFeasible,
    /// The pod's `nominatedNodeName` passes every filter and is taken directly.
    NominatedNode,
    /// No node is feasible.
    Unschedulable,
}

/// Where the pod lands without preemption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    pub mode: PlacementMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_score: Option<i64>,
    /// Every node the scheduler may pick.
    pub tie_set: Vec<String>,
}

/// One victim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Victim {
    /// `namespace/name`.
    pub pod: String,
    pub uid: String,
    pub priority: i32,
    /// The PodDisruptionBudgets (`namespace/name`) this eviction would violate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violated_pdbs: Vec<String>,
}

/// A node where preemption makes the pod fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub node: String,
    /// Victims' `namespace/name`, most important first.
    pub victims: Vec<String>,
    #[serde(rename = "numPDBViolations")]
    pub num_pdb_violations: i64,
    pub victim_details: Vec<Victim>,
}

/// The dry-run result on one potential node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreemptionNode {
    pub candidate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub victims: Option<Vec<String>>,
    /// Zero for a node that is not a candidate.
    #[serde(rename = "numPDBViolations")]
    pub num_pdb_violations: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
}

/// The PostFilter result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostFilter {
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// No candidate: any earlier nomination of the pod is cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clears_nominated_node_name: Option<bool>,
}

/// DefaultPreemption, evaluated on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preemption {
    pub eligible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ineligible_reason: Option<String>,
    /// Nodes whose filter status is `Unschedulable`, sorted; explained decisions only
    /// (a pod that fits nowhere may have thousands).
    pub potential_nodes: Vec<String>,
    /// How many potential nodes there are, explained or not.
    #[serde(skip)]
    pub num_potential_nodes: usize,
    pub nodes: BTreeMap<String, PreemptionNode>,
    /// Candidates sorted by node.
    pub candidates: Vec<Candidate>,
    /// Every candidate the final selection may return, sorted.
    pub selected_tie_set: Vec<String>,
    pub upstream_select_candidate_picks: Vec<String>,
    pub post_filter: PostFilter,
}

/// The full decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub outcome: Outcome,
    /// The node the pod goes to (or is nominated to, when it preempts): the first of
    /// the tie set by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub k8s_version: &'static str,
    /// `namespace/name` of the pod.
    pub pod: String,
    pub pod_priority: i32,
    pub preemption_policy: &'static str,
    pub num_nodes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_filter: Option<StatusReport>,
    pub filter: BTreeMap<String, NodeVerdict>,
    /// How many nodes passed every filter.
    #[serde(skip)]
    pub num_feasible: usize,
    /// The feasible nodes by name (an explanation: empty unless explained).
    pub feasible_nodes: Vec<String>,
    pub scores: BTreeMap<String, NodeScore>,
    pub placement: Placement,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preemption: Option<Preemption>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit_error: Option<String>,
}

impl Decision {
    /// Keeps the answer (outcome, node, tie sets, the chosen candidate, FitError) and
    /// drops the per-node explanations.
    pub fn drop_explanations(&mut self) {
        self.filter.clear();
        self.feasible_nodes.clear();
        self.scores.clear();
        if let Some(p) = self.preemption.as_mut() {
            p.nodes.clear();
            let chosen = self.node.as_deref();
            p.candidates.retain(|c| Some(c.node.as_str()) == chosen);
        }
    }

    /// The selected candidate, when the pod preempts.
    pub fn chosen_candidate(&self) -> Option<&Candidate> {
        let node = self.node.as_ref()?;
        self.preemption
            .as_ref()?
            .candidates
            .iter()
            .find(|c| &c.node == node)
    }
}
