//! NodeAffinity: `nodeSelector` and required node affinity (Filter), the PreFilter
//! narrowing to the node names of `matchFields: metadata.name In`, and preferred node
//! affinity (Score).

use std::collections::BTreeSet;

use super::{FilterPlugin, NodeScorer, default_normalize};
use crate::engine::cycle_state::CycleState;
use crate::engine::snapshot::NodeInfo;
use crate::engine::status::Status;
use crate::model::Pod;
use crate::model::affinity::NodeAffinity as Affinity;
use crate::model::selector::{Labels, Operator};

pub const NAME: &str = "NodeAffinity";
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";
pub const REASON_CONFLICT: &str = "pod affinity terms conflict";

/// What PreFilter concluded.
pub enum PreFilter {
    /// No node selector and no required affinity: Filter is skipped.
    Skip,
    /// Filter runs; `Some(names)` restricts the candidate nodes.
    Run(Option<BTreeSet<String>>),
    Reject(Status),
}

/// PreFilter.
pub fn pre_filter(pod: &Pod) -> PreFilter {
    let required = pod.node_affinity.required.as_ref();
    if required.is_none() && pod.node_selector.is_none() {
        return PreFilter::Skip;
    }
    let Some(terms) = required.filter(|t| !t.is_empty()) else {
        return PreFilter::Run(None);
    };
    let mut names: BTreeSet<String> = BTreeSet::new();
    for term in terms {
        let mut term_names: Option<BTreeSet<String>> = None;
        for f in &term.match_fields {
            if f.key == "metadata.name" && f.operator == Operator::In {
                let s: BTreeSet<String> = f.values.iter().cloned().collect();
                term_names = Some(match term_names {
                    None => s,
                    Some(prev) => prev.intersection(&s).cloned().collect(),
                });
            }
        }
        match term_names {
            None => return PreFilter::Run(None),
            Some(t) => names.extend(t),
        }
    }
    if names.is_empty() {
        PreFilter::Reject(Status::unresolvable(REASON_CONFLICT))
    } else {
        PreFilter::Run(Some(names))
    }
}

/// Whether a node satisfies the pod's `nodeSelector` and required node affinity.
pub fn required_matches(pod: &Pod, name: &str, labels: &Labels) -> bool {
    if let Some(selector) = &pod.node_selector {
        if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    pod.node_affinity.required_matches(name, labels)
}

pub struct NodeAffinity;

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo) -> Option<Status> {
        if state.skip_node_affinity {
            return None;
        }
        (!required_matches(&state.pod.pod, node.name(), &node.node.labels))
            .then(|| Status::unresolvable(REASON))
    }
}

/// Score state: the preferred terms.
pub struct Scorer<'a> {
    affinity: &'a Affinity,
}

/// PreScore: skipped when the pod has no preferred node affinity.
pub fn pre_score<'a>(state: &CycleState<'a>) -> Option<Scorer<'a>> {
    let affinity = &state.pod.pod.node_affinity;
    affinity.preferred.as_ref()?;
    Some(Scorer { affinity })
}

impl NodeScorer for Scorer<'_> {
    fn score(&self, node: &NodeInfo) -> i64 {
        self.affinity
            .preferred_score(node.name(), &node.node.labels)
    }

    fn normalize(&self, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}
