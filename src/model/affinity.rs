//! Node affinity and pod (anti-)affinity terms.
//!
//! Node selector terms follow `component-helpers/scheduling/corev1/nodeaffinity`: terms
//! are ORed, a term's expressions are ANDed, an empty term matches nothing, and
//! `matchFields` only knows `metadata.name`. Pod affinity terms follow the scheduler's
//! `framework.AffinityTerm`: a label selector, the namespaces it applies to, and a
//! namespace selector.

use std::collections::BTreeSet;

use super::selector::{Labels, Requirement, Selector};

/// One `nodeSelectorTerm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSelectorTerm {
    pub match_expressions: Vec<Requirement>,
    /// `matchFields` on `metadata.name` (`In`/`NotIn` with exactly one value).
    pub match_fields: Vec<Requirement>,
    /// The term failed to parse (bad operator or values): it matches nothing.
    pub invalid: bool,
}

impl NodeSelectorTerm {
    /// True for a term with neither expressions nor fields: upstream drops it.
    pub fn is_empty(&self) -> bool {
        self.match_expressions.is_empty() && self.match_fields.is_empty() && !self.invalid
    }

    /// Whether a node with `name` and `labels` matches this term.
    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        self.matches_with(name, |_, r| r.matches(labels))
    }

    /// Whether a node with `name` matches this term, `expression(k, r)` telling whether
    /// it satisfies `r`, the `k`-th of `match_expressions`.
    pub fn matches_with(
        &self,
        name: &str,
        mut expression: impl FnMut(usize, &Requirement) -> bool,
    ) -> bool {
        if self.invalid || self.is_empty() {
            return false;
        }
        let mut expressions = self.match_expressions.iter().enumerate();
        if !expressions.all(|(k, r)| expression(k, r)) {
            return false;
        }
        self.match_fields.is_empty()
            || self
                .match_fields
                .iter()
                .all(|r| r.matches_value((r.key == "metadata.name").then_some(name)))
    }
}

/// A preferred node scheduling term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferredNodeTerm {
    pub weight: i32,
    pub term: NodeSelectorTerm,
}

/// A pod's node affinity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeAffinity {
    /// `requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`, when present.
    pub required: Option<Vec<NodeSelectorTerm>>,
    /// `preferredDuringSchedulingIgnoredDuringExecution`, when present.
    pub preferred: Option<Vec<PreferredNodeTerm>>,
}

impl NodeAffinity {
    /// Whether the required terms admit the node (true when there are none).
    pub fn required_matches(&self, name: &str, labels: &Labels) -> bool {
        match &self.required {
            None => true,
            Some(terms) => terms.iter().any(|t| t.matches(name, labels)),
        }
    }

    /// The sum of the weights of the preferred terms the node matches.
    pub fn preferred_score(&self, name: &str, labels: &Labels) -> i64 {
        self.preferred
            .iter()
            .flatten()
            .filter(|p| p.weight != 0 && p.term.matches(name, labels))
            .map(|p| i64::from(p.weight))
            .sum()
    }
}

/// A pod (anti-)affinity term, resolved against its owning pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodAffinityTerm {
    pub selector: Selector,
    /// Namespaces named by the term; the owner's namespace when it names none and has
    /// no namespace selector.
    pub namespaces: BTreeSet<String>,
    /// `namespaceSelector`; `Nothing` when absent.
    pub namespace_selector: Selector,
    pub topology_key: String,
}

impl PodAffinityTerm {
    /// `AffinityTerm.Matches`: the pod is in one of the namespaces (or its namespace's
    /// labels match the namespace selector) and its labels match the selector.
    pub fn matches(&self, namespace: &str, labels: &Labels, namespace_labels: &Labels) -> bool {
        (self.namespaces.contains(namespace) || self.namespace_selector.matches(namespace_labels))
            && self.selector.matches(labels)
    }
}

/// A weighted (preferred) pod affinity term.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WeightedPodAffinityTerm {
    pub weight: i32,
    pub term: PodAffinityTerm,
}
