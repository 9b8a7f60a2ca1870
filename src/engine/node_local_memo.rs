//! What the node-local plugins concluded about each node for a pod template, kept across
//! the decisions of one sequence (`PlaceBatch`, `PendingPods`).
//!
//! Six filters (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
//! NodeResourcesFit) and six scores (TaintToleration, NodeAffinity, NodeResourcesFit,
//! DynamicResources, NodeResourcesBalancedAllocation, ImageLocality) read only the node
//! (and the image summary) and a few fields of the pod (`same_template`). Replicas share
//! those fields, and a placement changes one node; so a sequence remembers, per template and node, the first
//! rejecting node-local filter's status and the node-local raw scores, and reuses them
//! while the node is the very same `NodeInfo` (snapshots share untouched nodes, so
//! pointer identity is exact). PodTopologySpread and InterPodAffinity, which read other
//! nodes' pods, always run. A node with nominated pods that count is evaluated in full.
//!
//! A memo is only valid for snapshots with the same nodes in the same places and the
//! same image summary; [`NodeLocalMemo::for_pod`] starts over when they differ. It also
//! holds the sequence's [`KeptCounts`] (the cluster-wide plugins' counts, brought up
//! to date as they are read).
//!
//! The same holds across calls: a memo kept from one `Place` to the next on a cluster
//! (see [`super::memo_pool`]) reuses every node the writer has not touched since, and
//! recomputes the rest. Such a memo is [`NodeLocalMemo::bounded`]: it keeps the most
//! recently used templates only, and a few counts per template, since each remembered
//! row costs memory (and keeps the allocation of a node replaced since). It remembers a
//! template from its second call on: filling rows costs a first call about as much
//! again as the rows save (a reference to every node taken, and one dropped for the
//! template it replaces), which only a template that comes back repays.

use std::sync::{Arc, Weak};

use super::framework::MAX_SCORERS;
use super::plugins::inter_pod_affinity::TermTallies;
use super::plugins::pod_topology_spread::DomainTallies;
use super::snapshot::{NodeInfo, NodeSet, Snapshot};
use super::status::Status;
use crate::model::Pod;

/// Whether `a` and `b` look the same to the node-local plugins: every pod field they
/// read is equal (requests come from `resources`).
fn same_template(a: &Pod, b: &Pod) -> bool {
    a.node_name == b.node_name
        && a.resources == b.resources
        && a.host_ports == b.host_ports
        && a.tolerations == b.tolerations
        && a.node_selector == b.node_selector
        && a.node_affinity == b.node_affinity
        && a.images == b.images
}

/// One node's remembered results for one template. Kept small, since a template has
/// one per node and a decision from memory reads them all: a rejection is boxed (most
/// nodes pass), scores are `i32`.
struct Row {
    /// The node they were computed on. A weak reference keeps its allocation, so that
    /// no later `NodeInfo` takes its address, but not what it holds: a node the writer
    /// replaced since costs the memo the allocation's few hundred bytes, not its pods.
    node: Weak<NodeInfo>,
    /// The first rejecting node-local filter's status, `None` when all passed.
    filter: Option<Box<Status>>,
    /// The node-local scorers' raw scores, by place in the profile, once scored.
    scores: Option<[i32; MAX_SCORERS]>,
}

/// What is remembered of one node (by its place in the snapshot) for one template.
#[derive(Default)]
pub struct NodeMemo(Option<Row>);

impl NodeMemo {
    fn row(&self, node: &NodeInfo) -> Option<&Row> {
        self.0
            .as_ref()
            .filter(|r| std::ptr::eq(r.node.as_ptr(), node))
    }

    /// The node-local filters' verdict (the rejection, if any), if remembered for this
    /// very node.
    pub fn filter(&self, node: &NodeInfo) -> Option<Option<&Status>> {
        self.row(node).map(|r| r.filter.as_deref())
    }

    /// The node-local raw scores, if remembered for this very node.
    pub fn scores(&self, node: &NodeInfo) -> Option<&[i32; MAX_SCORERS]> {
        self.row(node).and_then(|r| r.scores.as_ref())
    }

    /// Remembers the node-local filters' verdict on `node` (forgetting its scores).
    pub fn remember_filter(&mut self, node: &Arc<NodeInfo>, filter: Option<Status>) {
        self.0 = Some(Row {
            node: Arc::downgrade(node),
            filter: filter.map(Box::new),
            scores: None,
        });
    }

    /// Remembers the node-local raw scores of `node`, whose filter verdict is
    /// remembered (scores that do not fit an `i32` are not remembered, but computed
    /// each time).
    fn remember_scores(&mut self, node: &NodeInfo, scores: [i64; MAX_SCORERS]) {
        let mut narrow = [0; MAX_SCORERS];
        for (narrow, score) in narrow.iter_mut().zip(scores) {
            let Ok(score) = i32::try_from(score) else {
                return;
            };
            *narrow = score;
        }
        if let Some(row) = self.0.as_mut()
            && std::ptr::eq(row.node.as_ptr(), node)
        {
            row.scores = Some(narrow);
        }
    }
}

/// The remembered results of one template, by node index.
#[derive(Default)]
pub struct TemplateRows {
    rows: Vec<NodeMemo>,
}

impl TemplateRows {
    /// What is remembered of node `at`.
    pub fn node(&self, at: usize) -> Option<&NodeMemo> {
        self.rows.get(at)
    }

    /// Whether there is an entry per node of a snapshot of `nodes` nodes (the template
    /// was asked about on these nodes before).
    pub fn laid_out(&self, nodes: usize) -> bool {
        self.rows.len() == nodes
    }

    /// One entry per node of a snapshot of `nodes` nodes, to be filled in place (in
    /// parallel: each node's entry is its own).
    pub fn nodes_mut(&mut self, nodes: usize) -> &mut [NodeMemo] {
        self.rows.resize_with(nodes, NodeMemo::default);
        &mut self.rows
    }

    /// Remembers the node-local raw scores of `node` (at `at`), whose filter verdict
    /// is remembered.
    pub fn remember_scores(&mut self, at: usize, node: &NodeInfo, scores: [i64; MAX_SCORERS]) {
        if let Some(memo) = self.rows.get_mut(at) {
            memo.remember_scores(node, scores);
        }
    }
}

/// Every template's rows, and the spread tallies, for one sequence of decisions (or for
/// the calls on one cluster, [`NodeLocalMemo::bounded`]).
pub struct NodeLocalMemo {
    /// The nodes the rows are indexed by.
    nodes: Option<NodeSet>,
    /// In a bounded memo, least recently used first.
    templates: Vec<(Pod, TemplateRows)>,
    /// A bounded memo's templates seen once, without rows yet (oldest first).
    seen_once: Vec<Pod>,
    tallies: KeptCounts,
    /// How many templates a bounded memo keeps, `None`: every one (a sequence's memo,
    /// dropped with the sequence).
    budget: Option<TemplateBudget>,
    /// The most templates it keeps on the current nodes (the budget's share for them).
    max_templates: Option<usize>,
}

/// How many templates a bounded memo keeps: as many as `rows` rows allow on the
/// snapshot's nodes (a template has a row per node), but at least `fewest` and at
/// most `most`. A row costs 56 bytes, and keeps the allocation of a node replaced
/// since (about 500 bytes more) until the template is asked about again or forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateBudget {
    pub rows: usize,
    pub fewest: usize,
    pub most: usize,
}

impl TemplateBudget {
    /// A fixed number of templates, whatever the nodes.
    pub const fn templates(templates: usize) -> TemplateBudget {
        TemplateBudget {
            rows: 0,
            fewest: templates,
            most: templates,
        }
    }

    /// The templates it allows on `nodes` nodes (at least one).
    fn on(self, nodes: usize) -> usize {
        (self.rows / nodes.max(1))
            .clamp(self.fewest, self.most.max(self.fewest))
            .max(1)
    }
}

/// The cluster-wide plugins' counts a memo keeps, each brought up to date by recounting
/// the nodes that changed (see [`super::node_cells`]).
pub struct KeptCounts {
    /// PodTopologySpread's, per set of constraints.
    pub spread: DomainTallies,
    /// InterPodAffinity's, of the incoming pods' own terms.
    pub own_terms: TermTallies,
}

impl KeptCounts {
    /// Keeps `TALLIES_PER_TEMPLATE` of each kind per template.
    fn for_templates(templates: usize) -> KeptCounts {
        KeptCounts {
            spread: DomainTallies::new(templates * TALLIES_PER_TEMPLATE),
            own_terms: TermTallies::new(templates * TALLIES_PER_TEMPLATE),
        }
    }

    /// Forgets every count, and keeps `TALLIES_PER_TEMPLATE` of each kind per template
    /// for `templates` templates from now on.
    fn reset(&mut self, templates: usize) {
        self.spread.reset(templates * TALLIES_PER_TEMPLATE);
        self.own_terms.reset(templates * TALLIES_PER_TEMPLATE);
    }
}

/// How many counts of each kind a memo keeps per template it keeps (a sequence's memo:
/// for this many templates).
const TALLIES_PER_TEMPLATE: usize = 2;

/// How many templates' tallies a sequence's memo keeps.
const SEQUENCE_TEMPLATES: usize = 64;

impl Default for NodeLocalMemo {
    /// A sequence's memo: it keeps every template.
    fn default() -> NodeLocalMemo {
        NodeLocalMemo {
            nodes: None,
            templates: Vec::new(),
            seen_once: Vec::new(),
            tallies: KeptCounts::for_templates(SEQUENCE_TEMPLATES),
            budget: None,
            max_templates: None,
        }
    }
}

impl NodeLocalMemo {
    /// A memo that keeps the most recently used templates, as many as `budget` allows
    /// on the nodes it meets, and `TALLIES_PER_TEMPLATE` counts of each kind for each
    /// (both set when it first meets nodes, in [`NodeLocalMemo::for_pod`]).
    pub fn bounded(budget: TemplateBudget) -> NodeLocalMemo {
        NodeLocalMemo {
            budget: Some(budget),
            ..NodeLocalMemo::default()
        }
    }

    /// How many templates it remembers.
    pub fn templates(&self) -> usize {
        self.templates.len()
    }

    /// The rows for `pod`'s template on `snapshot` (empty for a template not seen
    /// before; `None` for a bounded memo's first sight of it), and the spread tallies;
    /// all forgotten when the snapshot's nodes moved.
    pub fn for_pod(
        &mut self,
        snapshot: &Snapshot,
        pod: &Pod,
    ) -> (Option<&mut TemplateRows>, &KeptCounts) {
        let nodes = snapshot.node_set();
        if self.nodes.as_ref() != Some(&nodes) {
            self.templates.clear();
            match self.budget {
                Some(budget) => {
                    let templates = budget.on(snapshot.nodes.len());
                    self.max_templates = Some(templates);
                    self.tallies.reset(templates);
                }
                None => self.tallies.reset(SEQUENCE_TEMPLATES),
            }
            self.nodes = Some(nodes);
        }
        let found = self
            .templates
            .iter()
            .position(|(t, _)| same_template(t, pod));
        let i = match found {
            // A bounded memo keeps its templates in the order they were last used.
            Some(i) if self.max_templates.is_some() => {
                let used = self.templates.remove(i);
                self.templates.push(used);
                self.templates.len() - 1
            }
            Some(i) => i,
            None if !self.takes_rows_for(pod) => return (None, &self.tallies),
            None => {
                self.templates.push((pod.clone(), TemplateRows::default()));
                if self
                    .max_templates
                    .is_some_and(|max| self.templates.len() > max)
                {
                    self.templates.remove(0);
                }
                self.templates.len() - 1
            }
        };
        (Some(&mut self.templates[i].1), &self.tallies)
    }

    /// Whether a template it does not remember gets rows now: always in a sequence's
    /// memo; in a bounded one, from its second call (the first is noted in `seen_once`).
    fn takes_rows_for(&mut self, pod: &Pod) -> bool {
        let Some(max) = self.max_templates else {
            return true;
        };
        if let Some(seen) = self.seen_once.iter().position(|t| same_template(t, pod)) {
            self.seen_once.remove(seen);
            return true;
        }
        self.seen_once.push(pod.clone());
        if self.seen_once.len() > max {
            self.seen_once.remove(0);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::{node, pending, pod, snapshot};

    fn shapes(snapshot: &Snapshot) -> Vec<Pod> {
        ["1", "2", "3"]
            .into_iter()
            .map(|cpu| pending(snapshot, &pod("p", cpu, "1Gi")))
            .collect()
    }

    /// Whether the template's rows for `pod` remember anything (`learn` makes rows).
    fn remembers(memo: &mut NodeLocalMemo, snapshot: &Snapshot, pod: &Pod) -> bool {
        memo.for_pod(snapshot, pod)
            .0
            .is_some_and(|rows| rows.node(0).is_some())
    }

    /// Asks `memo` about `pod` and fills a row, if it gives rows.
    fn learn(memo: &mut NodeLocalMemo, snapshot: &Snapshot, pod: &Pod) {
        if let Some(rows) = memo.for_pod(snapshot, pod).0 {
            rows.nodes_mut(1);
        }
    }

    #[test]
    fn a_budget_allows_fewer_templates_on_more_nodes() {
        let budget = TemplateBudget {
            rows: 4,
            fewest: 1,
            most: 3,
        };
        let allowed: Vec<usize> = [0, 1, 2, 4, 100].map(|n| budget.on(n)).to_vec();
        assert_eq!(allowed, [3, 3, 2, 1, 1]);
        let service = crate::engine::memo_pool::MEMO_BUDGET;
        let allowed: Vec<usize> = [1000, 2048, 5000, 15000].map(|n| service.on(n)).to_vec();
        assert_eq!(allowed, [32, 32, 13, 8]);
        assert_eq!(TemplateBudget::templates(0).on(10), 1);
    }

    #[test]
    fn a_bounded_memo_keeps_the_templates_its_budget_allows_on_the_nodes() {
        let one = snapshot(vec![node("a", "4", "8Gi", 110)], vec![]);
        let two = snapshot(
            vec![node("a", "4", "8Gi", 110), node("b", "4", "8Gi", 110)],
            vec![],
        );
        let budget = TemplateBudget {
            rows: 2,
            fewest: 1,
            most: 8,
        };
        for (s, kept) in [(&one, 2), (&two, 1)] {
            let mut memo = NodeLocalMemo::bounded(budget);
            for pod in shapes(s) {
                learn(&mut memo, s, &pod);
                learn(&mut memo, s, &pod);
            }
            assert_eq!(memo.templates(), kept);
        }
    }

    #[test]
    fn a_bounded_memo_remembers_a_template_from_its_second_call() {
        let s = snapshot(vec![node("a", "4", "8Gi", 110)], vec![]);
        let pod = pending(&s, &pod("p", "1", "1Gi"));
        let mut memo = NodeLocalMemo::bounded(TemplateBudget::templates(2));
        assert!(memo.for_pod(&s, &pod).0.is_none(), "first call: no rows");
        assert_eq!(memo.templates(), 0);
        learn(&mut memo, &s, &pod);
        assert_eq!(memo.templates(), 1);
        assert!(remembers(&mut memo, &s, &pod));
    }

    #[test]
    fn a_bounded_memo_forgets_the_least_recently_used_template() {
        let s = snapshot(vec![node("a", "4", "8Gi", 110)], vec![]);
        let [one, two, three] = <[Pod; 3]>::try_from(shapes(&s)).unwrap();
        let mut memo = NodeLocalMemo::bounded(TemplateBudget::templates(2));
        for pod in [&one, &one, &two, &two] {
            learn(&mut memo, &s, pod);
        }
        // `one` used again: `two` is now the least recently used.
        learn(&mut memo, &s, &one);
        learn(&mut memo, &s, &three);
        learn(&mut memo, &s, &three);
        assert_eq!(memo.templates(), 2);
        assert!(remembers(&mut memo, &s, &one));
        assert!(remembers(&mut memo, &s, &three));
        assert!(!remembers(&mut memo, &s, &two), "forgotten");
    }

    #[test]
    fn a_sequence_memo_keeps_every_template_from_its_first_call() {
        let s = snapshot(vec![node("a", "4", "8Gi", 110)], vec![]);
        let mut memo = NodeLocalMemo::default();
        for pod in shapes(&s) {
            learn(&mut memo, &s, &pod);
        }
        assert_eq!(memo.templates(), 3);
    }

    #[test]
    fn scores_are_remembered_only_when_they_fit_an_i32() {
        let s = snapshot(vec![node("a", "4", "8Gi", 110)], vec![]);
        let node = &s.nodes[0];
        let mut memo = NodeMemo::default();
        memo.remember_filter(node, None);
        let mut scores = [7; MAX_SCORERS];
        scores[1] = i64::from(i32::MAX) + 1;
        memo.remember_scores(node, scores);
        assert_eq!(memo.scores(node), None);
        scores[1] = i64::from(i32::MIN);
        memo.remember_scores(node, scores);
        let mut narrow = [7; MAX_SCORERS];
        narrow[1] = i32::MIN;
        assert_eq!(memo.scores(node), Some(&narrow));
    }

    #[test]
    fn a_memo_starts_over_when_the_nodes_move() {
        let s = snapshot(vec![node("a", "4", "8Gi", 110)], vec![]);
        let pod = pending(&s, &pod("p", "1", "1Gi"));
        let mut memo = NodeLocalMemo::default();
        learn(&mut memo, &s, &pod);
        assert!(remembers(&mut memo, &s, &pod));
        let moved = snapshot(
            vec![node("b", "4", "8Gi", 110), node("a", "4", "8Gi", 110)],
            vec![],
        );
        assert!(!remembers(&mut memo, &moved, &pod));
    }
}
