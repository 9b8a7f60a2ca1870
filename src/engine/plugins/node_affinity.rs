//! NodeAffinity: `nodeSelector` and required node affinity (Filter), the PreFilter
//! narrowing to the node names of `matchFields: metadata.name In`, and preferred node
//! affinity (Score).

use std::collections::BTreeSet;

use super::{FilterPlugin, NodeScorer, default_normalize};
use crate::engine::Evaluation;
use crate::engine::cycle_state::CycleState;
use crate::engine::framework::Feasible;
use crate::engine::node_label_index::{IndexedRequirement, NodeLabelIndex};
use crate::engine::snapshot::{NodeInfo, Snapshot};
use crate::engine::status::Status;
use crate::model::Pod;
use crate::model::affinity::{NodeAffinity as Affinity, NodeSelectorTerm};
use crate::model::selector::{Labels, Operator, Requirement};

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
    if let Some(selector) = &pod.node_selector
        && !selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    pod.node_affinity.required_matches(name, labels)
}

/// A node selector term with its expressions decided per label value of the snapshot's
/// node label index.
struct IndexedTerm<'a> {
    term: &'a NodeSelectorTerm,
    expressions: Vec<IndexedRequirement<'a>>,
}

impl<'a> IndexedTerm<'a> {
    fn new(term: &'a NodeSelectorTerm, index: &'a NodeLabelIndex) -> IndexedTerm<'a> {
        let expressions = term.match_expressions.iter();
        IndexedTerm {
            term,
            expressions: expressions.map(|r| index.requirement(r)).collect(),
        }
    }

    /// Whether node `at` (its index in the snapshot), called `name`, matches the term.
    fn matches(&self, at: usize, name: &str) -> bool {
        self.term
            .matches_with(name, |k, _| self.expressions[k].matches(at))
    }
}

/// [`required_matches`] for one pod on the snapshot's node label index: each
/// requirement decided once per distinct label value, each node's verdict lookups.
pub struct RequiredOnIndex<'a> {
    /// The node selector's pairs, as `key In (value)`.
    selector: Vec<IndexedRequirement<'a>>,
    /// The required terms.
    terms: Option<Vec<IndexedTerm<'a>>>,
}

impl<'a> RequiredOnIndex<'a> {
    pub fn new(pod: &'a Pod, index: &'a NodeLabelIndex) -> RequiredOnIndex<'a> {
        let selector = pod.node_selector.iter().flatten().map(|(key, value)| {
            index.requirement(&Requirement {
                key: key.to_string(),
                operator: Operator::In,
                values: vec![value.to_string()],
            })
        });
        let terms = pod
            .node_affinity
            .required
            .as_ref()
            .map(|terms| terms.iter().map(|t| IndexedTerm::new(t, index)).collect());
        RequiredOnIndex {
            selector: selector.collect(),
            terms,
        }
    }

    /// Whether node `at` (its index in the snapshot), called `name`, matches.
    pub fn matches(&self, at: usize, name: &str) -> bool {
        self.selector.iter().all(|r| r.matches(at))
            && self
                .terms
                .as_ref()
                .is_none_or(|terms| terms.iter().any(|t| t.matches(at, name)))
    }
}

pub struct NodeAffinity;

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo, _at: usize) -> Option<Status> {
        if state.skip_node_affinity {
            return None;
        }
        (!required_matches(&state.pod.pod, node.name(), &node.node.labels))
            .then(|| Status::unresolvable(REASON))
    }
}

/// Score state: the preferred terms, on the fast path with their expressions decided
/// per label value of the snapshot's node label index.
pub struct Scorer<'a> {
    affinity: &'a Affinity,
    indexed: Option<IndexedTerms<'a>>,
}

/// The preferred terms of non-zero weight, indexed, with their weights, and the
/// feasible nodes' places in the snapshot (what the index is read by).
struct IndexedTerms<'a> {
    terms: Vec<(i64, IndexedTerm<'a>)>,
    at: &'a [u32],
}

/// PreScore: skipped when the pod has no preferred node affinity. The fast path decides
/// each term's expressions once per distinct label value; a node's score is then the
/// sum of the weights of the terms its value ids satisfy, computed only for the nodes
/// that are scored (a sequence's remembered nodes are not).
pub fn pre_score<'a>(
    state: &CycleState<'a>,
    snapshot: &'a Snapshot,
    feasible: &'a Feasible,
) -> Option<Scorer<'a>> {
    let affinity = &state.pod.pod.node_affinity;
    let preferred = affinity.preferred.as_ref()?;
    let indexed = (state.evaluation == Evaluation::Fast).then(|| {
        let index = snapshot.node_label_index();
        let terms = preferred
            .iter()
            .filter(|p| p.weight != 0)
            .map(|p| (i64::from(p.weight), IndexedTerm::new(&p.term, index)))
            .collect();
        IndexedTerms {
            terms,
            at: &feasible.at,
        }
    });
    Some(Scorer { affinity, indexed })
}

impl NodeScorer for Scorer<'_> {
    fn score(&self, index: usize, node: &NodeInfo) -> i64 {
        match &self.indexed {
            Some(IndexedTerms { terms, at }) => {
                let at = at[index] as usize;
                terms
                    .iter()
                    .filter(|(_, term)| term.matches(at, node.name()))
                    .map(|(weight, _)| weight)
                    .sum()
            }
            None => self
                .affinity
                .preferred_score(node.name(), &node.node.labels),
        }
    }

    fn normalizes(&self) -> bool {
        true
    }

    fn normalize(&self, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::engine::decision::Outcome;
    use crate::engine::status::Code;
    use crate::engine::test_support::*;

    /// Nodes a (zone z1, gen 3), b (zone z1, gen 5), c (zone z2, no gen).
    fn nodes() -> Vec<Value> {
        vec![
            labeled(
                node("a", "4", "8Gi", 110),
                json!({"zone": "z1", "gen": "3"}),
            ),
            labeled(
                node("b", "4", "8Gi", 110),
                json!({"zone": "z1", "gen": "5"}),
            ),
            labeled(node("c", "4", "8Gi", 110), json!({"zone": "z2"})),
        ]
    }

    fn with_affinity(p: Value, node_affinity: Value) -> Value {
        merge(
            p,
            json!({"spec": {"affinity": {"nodeAffinity": node_affinity}}}),
        )
    }

    fn required(terms: Value) -> Value {
        json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}})
    }

    fn name_in(name: &str) -> Value {
        json!({"key": "metadata.name", "operator": "In", "values": [name]})
    }

    fn prefilter_result_reason() -> Vec<String> {
        strings(&["node(s) didn't satisfy plugin(s) [NodeAffinity]"])
    }

    #[test]
    fn node_selector_mismatch_is_unresolvable() {
        let s = snapshot(nodes(), vec![]);
        let p = merge(
            pod("p", "1", ""),
            json!({"spec": {"nodeSelector": {"zone": "z2"}}}),
        );
        let d = decide_json(&s, &p);
        for n in ["a", "b"] {
            assert_rejected(&d, n, Code::UnschedulableAndUnresolvable, NAME, &[REASON]);
        }
        assert_feasible(&d, "c");
        // An empty nodeSelector is present but selects every node.
        let p = merge(pod("p", "1", ""), json!({"spec": {"nodeSelector": {}}}));
        assert_eq!(decide_json(&s, &p).feasible_nodes.len(), 3);
    }

    #[test]
    fn pre_filter_skips_pods_without_requirements() {
        let s = snapshot(nodes(), vec![]);
        with_pre_filter(&s, &pod("p", "1", ""), |pre| {
            assert!(pre.state.skip_node_affinity);
            assert!(pre.node_names.is_none());
            assert!(pre.restricting_plugins.is_empty());
        });
        let p = merge(
            pod("p", "1", ""),
            json!({"spec": {"nodeSelector": {"zone": "z1"}}}),
        );
        with_pre_filter(&s, &p, |pre| {
            assert!(!pre.state.skip_node_affinity);
            assert!(pre.node_names.is_none());
        });
    }

    #[test]
    fn terms_are_ored_and_expressions_anded() {
        let s = snapshot(nodes(), vec![]);
        let p = with_affinity(
            pod("p", "1", ""),
            required(json!([
                {"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["z1"]},
                    {"key": "gen", "operator": "Gt", "values": ["4"]}
                ]},
                {"matchExpressions": [{"key": "gen", "operator": "DoesNotExist"}]}
            ])),
        );
        let d = decide_json(&s, &p);
        assert_rejected(&d, "a", Code::UnschedulableAndUnresolvable, NAME, &[REASON]);
        assert_feasible(&d, "b");
        assert_feasible(&d, "c");

        // Lt, and NotIn matching a node that lacks the label.
        let p = with_affinity(
            pod("p", "1", ""),
            required(json!([{"matchExpressions": [
                {"key": "gen", "operator": "Lt", "values": ["4"]}
            ]}, {"matchExpressions": [
                {"key": "gen", "operator": "NotIn", "values": ["3", "5"]}
            ]}])),
        );
        assert_eq!(decide_json(&s, &p).feasible_nodes, strings(&["a", "c"]));
    }

    #[test]
    fn node_selector_and_affinity_must_both_hold() {
        let s = snapshot(nodes(), vec![]);
        let p = with_affinity(
            merge(
                pod("p", "1", ""),
                json!({"spec": {"nodeSelector": {"zone": "z1"}}}),
            ),
            required(json!([{"matchExpressions": [{"key": "gen", "operator": "Exists"}]}])),
        );
        assert_eq!(decide_json(&s, &p).feasible_nodes, strings(&["a", "b"]));
        let p = with_affinity(
            merge(
                pod("p", "1", ""),
                json!({"spec": {"nodeSelector": {"zone": "z2"}}}),
            ),
            required(json!([{"matchExpressions": [{"key": "gen", "operator": "Exists"}]}])),
        );
        let d = decide_json(&s, &p);
        assert!(d.feasible_nodes.is_empty());
        assert_rejected(&d, "c", Code::UnschedulableAndUnresolvable, NAME, &[REASON]);
    }

    #[test]
    fn match_fields_narrow_the_candidate_nodes() {
        let s = snapshot(nodes(), vec![]);
        let p = with_affinity(
            pod("p", "1", ""),
            required(json!([{"matchFields": [name_in("b")]}])),
        );
        with_pre_filter(&s, &p, |pre| {
            assert_eq!(pre.node_names, Some(["b".to_string()].into()));
            assert_eq!(pre.restricting_plugins, vec![NAME]);
            assert!(pre.rejection.is_none());
        });
        let d = decide_json(&s, &p);
        assert_feasible(&d, "b");
        for n in ["a", "c"] {
            let v = verdict(&d, n);
            assert!(!v.feasible);
            assert_eq!(v.code.as_deref(), Some("UnschedulableAndUnresolvable"));
            assert_eq!(v.plugin, None);
            assert_eq!(v.reasons, Some(prefilter_result_reason()));
            assert_eq!(v.source, Some("PreFilterResult"));
        }
        assert_eq!(d.placement.tie_set, strings(&["b"]));
    }

    #[test]
    fn match_fields_of_several_terms_are_united() {
        let s = snapshot(nodes(), vec![]);
        let p = with_affinity(
            pod("p", "1", ""),
            required(json!([{"matchFields": [name_in("a")]}, {"matchFields": [name_in("c")]}])),
        );
        with_pre_filter(&s, &p, |pre| {
            assert_eq!(
                pre.node_names,
                Some(["a".to_string(), "c".to_string()].into())
            );
        });
        let d = decide_json(&s, &p);
        assert_eq!(d.feasible_nodes, strings(&["a", "c"]));
        assert_eq!(verdict(&d, "b").source, Some("PreFilterResult"));
    }

    #[test]
    fn a_term_without_match_fields_disables_narrowing() {
        let s = snapshot(nodes(), vec![]);
        let p = with_affinity(
            pod("p", "1", ""),
            required(json!([
                {"matchFields": [name_in("a")]},
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}
            ])),
        );
        with_pre_filter(&s, &p, |pre| assert!(pre.node_names.is_none()));
        let d = decide_json(&s, &p);
        assert_eq!(d.feasible_nodes, strings(&["a", "c"]));
        // b goes through Filter and fails there.
        assert_rejected(&d, "b", Code::UnschedulableAndUnresolvable, NAME, &[REASON]);
    }

    #[test]
    fn match_fields_narrowing_then_filter_on_labels() {
        let s = snapshot(nodes(), vec![]);
        // The term names a but also requires zone z2: a is in scope and fails Filter.
        let p = with_affinity(
            pod("p", "1", ""),
            required(json!([{
                "matchFields": [name_in("a")],
                "matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]
            }])),
        );
        let d = decide_json(&s, &p);
        assert_rejected(&d, "a", Code::UnschedulableAndUnresolvable, NAME, &[REASON]);
        assert_eq!(verdict(&d, "b").source, Some("PreFilterResult"));
        assert_eq!(verdict(&d, "c").source, Some("PreFilterResult"));
        assert_eq!(
            d.fit_error.as_deref(),
            Some(
                "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
                 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. \
                 no new claims to deallocate, preemption: 0/3 nodes are available: \
                 3 Preemption is not helpful for scheduling."
            )
        );
    }

    #[test]
    fn conflicting_match_fields_reject_the_pod_in_pre_filter() {
        let s = snapshot(nodes(), vec![]);
        let p = with_affinity(
            pod("p", "1", ""),
            required(json!([{"matchFields": [name_in("a"), name_in("b")]}])),
        );
        let d = decide_json(&s, &p);
        let pre = d.pre_filter.as_ref().expect("PreFilter rejection");
        assert_eq!(pre.code, "UnschedulableAndUnresolvable");
        assert_eq!(pre.plugin.as_deref(), Some(NAME));
        assert_eq!(pre.reasons, strings(&[REASON_CONFLICT]));
        for n in ["a", "b", "c"] {
            let v = verdict(&d, n);
            assert_eq!(v.source, Some("PreFilter"));
            assert_eq!(v.plugin.as_deref(), Some(NAME));
            assert_eq!(v.reasons, Some(strings(&[REASON_CONFLICT])));
        }
        assert_eq!(d.outcome, Outcome::Unschedulable);
        assert_eq!(
            d.fit_error.as_deref(),
            Some(
                "0/3 nodes are available: pod affinity terms conflict. \
                 no new claims to deallocate, preemption: 0/3 nodes are available: \
                 3 Preemption is not helpful for scheduling."
            )
        );
    }

    #[test]
    fn match_fields_naming_no_existing_node_leave_nothing() {
        let s = snapshot(nodes(), vec![]);
        let p = with_affinity(
            pod("p", "1", ""),
            required(json!([{"matchFields": [name_in("gone")]}])),
        );
        let d = decide_json(&s, &p);
        assert!(d.pre_filter.is_none());
        for n in ["a", "b", "c"] {
            assert_eq!(verdict(&d, n).source, Some("PreFilterResult"));
        }
    }

    #[test]
    fn nominated_node_outside_the_pre_filter_result_keeps_its_filter_status() {
        let s = snapshot(nodes(), vec![]);
        let p = nominated(
            with_affinity(
                pod("p", "1", ""),
                required(json!([{"matchFields": [name_in("a")]}])),
            ),
            "c",
        );
        let d = decide_json(&s, &p);
        assert_rejected(&d, "c", Code::UnschedulableAndUnresolvable, NAME, &[REASON]);
        assert_eq!(verdict(&d, "b").source, Some("PreFilterResult"));
        assert_feasible(&d, "a");
    }

    /// Upstream's PreFilter walks the raw terms: an empty term has no `metadata.name`
    /// field requirement, so it disables narrowing (`return nil, nil`), and the other
    /// nodes are rejected by Filter. The engine drops empty terms while decoding and
    /// narrows to the named node instead.
    #[test]
    fn empty_term_disables_narrowing_as_upstream() {
        let s = snapshot(nodes(), vec![]);
        let p = with_affinity(
            pod("p", "1", ""),
            required(json!([{}, {"matchFields": [name_in("a")]}])),
        );
        let d = decide_json(&s, &p);
        assert_feasible(&d, "a");
        assert_rejected(&d, "b", Code::UnschedulableAndUnresolvable, NAME, &[REASON]);
    }

    #[test]
    fn empty_terms_match_nothing() {
        let s = snapshot(nodes(), vec![]);
        let p = with_affinity(pod("p", "1", ""), required(json!([{}])));
        let d = decide_json(&s, &p);
        for n in ["a", "b", "c"] {
            assert_rejected(&d, n, Code::UnschedulableAndUnresolvable, NAME, &[REASON]);
        }
    }

    #[test]
    fn preferred_terms_score_by_weight_normalised_to_the_maximum() {
        let s = snapshot(nodes(), vec![]);
        let p = with_affinity(
            pod("p", "1", ""),
            json!({"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "gen", "operator": "In", "values": ["3"]}]}},
                {"weight": 30, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}},
                {"weight": 5, "preference": {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}}
            ]}),
        );
        let d = decide_json(&s, &p);
        // Raw: a 40, b 30, c 5; normalised 100, 75, 12; weight 2.
        assert_eq!(plugin_score(&d, "a", NAME), Some(200));
        assert_eq!(plugin_score(&d, "b", NAME), Some(150));
        assert_eq!(plugin_score(&d, "c", NAME), Some(24));
    }

    #[test]
    fn preferred_terms_matching_nothing_score_zero_and_absent_terms_skip() {
        let s = snapshot(nodes(), vec![]);
        let p = with_affinity(
            pod("p", "1", ""),
            json!({"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z9"]}]}}
            ]}),
        );
        let d = decide_json(&s, &p);
        for n in ["a", "b", "c"] {
            assert_eq!(plugin_score(&d, n, NAME), Some(0));
        }
        let d = decide_json(&s, &pod("p", "1", ""));
        assert_eq!(plugin_score(&d, "a", NAME), None);
    }
}
