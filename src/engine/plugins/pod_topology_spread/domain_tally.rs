//! The fast path's PodTopologySpread counts: for one pod's constraints, each node's
//! matching pods and topology domain, summed per domain ([`Tally`]), and the tallies a
//! memo keeps across decisions ([`DomainTallies`]).
//!
//! A kept tally is brought to a later snapshot by recounting the nodes that changed
//! ([`NodeCells`]), taking their old share off the sums and adding the new one: a
//! sequence that places replicas of a spread app pays for the node each placement
//! changed, not for the cluster. Domains are value ids of the snapshot's node label
//! index; a tally meeting another index (nodes relabelled or moved) counts afresh.

use std::sync::Arc;

use super::{count_matching, node_included};
use crate::engine::label_counts::Probe;
use crate::engine::node_cells::{Kept, NodeCells, with_kept};
use crate::engine::node_label_index::NodeLabelIndex;
use crate::engine::plugins::node_affinity::RequiredOnIndex;
use crate::engine::snapshot::{NodeInfo, Snapshot};
use crate::model::{Pod, TopologySpreadConstraint, UnsatisfiableAction};

/// What one node holds for one constraint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cell {
    /// The node's domain (value id of the topology key) when the node counts for the
    /// constraint: it has every constraint's key and the inclusion policies keep it.
    /// For soft constraints, whose domains matter by their counts only, also `None` on
    /// a node without matching pods (not looked at further).
    pub domain: Option<u32>,
    /// Pods on the node that the constraint selects (0 on a node lacking a key);
    /// counted whether or not the node counts, as Score's hostname counts are.
    pub pods: u32,
}

/// One domain's sums over the nodes that count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Domain {
    pub pods: i64,
    /// How many nodes count in it: a domain is present when some node counts in it,
    /// even with no matching pod (kept for hard constraints only).
    pub nodes: u32,
}

/// Whether `a` and `b` are counted the same: the same namespace, and the same fields
/// the inclusion policies read.
fn same_inputs(a: &Pod, b: &Pod) -> bool {
    a.namespace == b.namespace
        && a.node_selector == b.node_selector
        && a.node_affinity == b.node_affinity
        && a.tolerations == b.tolerations
}

/// One pod's constraints counted on one snapshot's nodes.
pub struct Tally {
    /// The pod it counts for (its namespace and inclusion fields) and the constraints.
    pod: Pod,
    constraints: Vec<TopologySpreadConstraint>,
    /// Whether which domains are present matters (hard constraints), not only counts.
    presence: bool,
    /// The index whose value ids the cells hold.
    index: Arc<NodeLabelIndex>,
    /// Per node, a cell per constraint.
    cells: NodeCells<Cell>,
    /// Per constraint: the sums by value id.
    domains: Vec<Vec<Domain>>,
}

impl Tally {
    /// An empty tally of `constraints` for `pod`; [`Tally::refresh`] counts.
    fn new(pod: &Pod, constraints: &[TopologySpreadConstraint], kept: bool) -> Tally {
        Tally {
            pod: pod.clone(),
            constraints: constraints.to_vec(),
            presence: constraints
                .iter()
                .any(|c| c.when_unsatisfiable == UnsatisfiableAction::DoNotSchedule),
            index: Arc::default(),
            cells: NodeCells::new(constraints.len(), kept),
            domains: Vec::new(),
        }
    }

    fn counts_for(&self, pod: &Pod, constraints: &[TopologySpreadConstraint]) -> bool {
        self.constraints == constraints && same_inputs(&self.pod, pod)
    }

    /// What node `node` (its index in the snapshot) holds for constraint `k`.
    pub fn cell(&self, node: usize, k: usize) -> Cell {
        self.cells.of(node)[k]
    }

    /// Constraint `k`'s sums by value id of its topology key.
    pub fn domains(&self, k: usize) -> &[Domain] {
        &self.domains[k]
    }

    /// Brings the tally to `snapshot`: recounts the nodes it did not count as they are.
    fn refresh(&mut self, snapshot: &Snapshot) {
        let index = snapshot.node_labels_shared();
        if !Arc::ptr_eq(&self.index, index) || self.domains.is_empty() {
            self.index = Arc::clone(index);
            self.cells.forget();
            self.domains = self
                .constraints
                .iter()
                .map(|c| {
                    let values = index.column(&c.topology_key).map_or(0, |c| c.distinct());
                    vec![Domain::default(); values]
                })
                .collect();
        }
        let (pod, constraints, presence) = (&self.pod, &self.constraints, self.presence);
        // What counting a node needs, prepared only when some node changed.
        let make_count = || {
            let columns: Vec<_> = constraints
                .iter()
                .map(|c| index.column(&c.topology_key))
                .collect();
            let probes: Vec<Probe> = constraints
                .iter()
                .map(|c| Probe::new(&pod.namespace, &c.selector))
                .collect();
            let required = RequiredOnIndex::new(pod, index);
            move |at: usize, info: &NodeInfo, cells: &mut [Cell]| {
                let id = |k: usize| columns[k].and_then(|c| c.id(at));
                // A node without every key counts for no constraint.
                if (0..constraints.len()).any(|k| id(k).is_none()) {
                    return;
                }
                for (k, c) in constraints.iter().enumerate() {
                    let pods = count_matching(info, c, &pod.namespace, Some(&probes[k])) as u32;
                    let required = || required.matches(at, info.name());
                    let counts =
                        (presence || pods > 0) && node_included(c, pod, &info.node, required);
                    cells[k] = Cell {
                        domain: if counts { id(k) } else { None },
                        pods,
                    };
                }
            }
        };
        let domains = &mut self.domains;
        self.cells.refresh(snapshot, make_count, |_, old, new| {
            for (k, (old, new)) in old.iter().zip(new).enumerate() {
                if let Some(d) = old.domain {
                    let domain = &mut domains[k][d as usize];
                    domain.pods -= i64::from(old.pods);
                    domain.nodes -= 1;
                }
                if let Some(d) = new.domain {
                    let domain = &mut domains[k][d as usize];
                    domain.pods += i64::from(new.pods);
                    domain.nodes += 1;
                }
            }
        });
    }
}

/// The tallies a memo keeps.
pub type DomainTallies = Kept<Tally>;

/// Runs `read` on the tally of `constraints` for `pod` on `snapshot`: the one `kept`
/// holds, brought up to date, or (without `kept`) one counted afresh.
pub fn with_tally<T>(
    kept: Option<&DomainTallies>,
    snapshot: &Snapshot,
    pod: &Pod,
    constraints: &[TopologySpreadConstraint],
    read: impl FnOnce(&Tally) -> T,
) -> T {
    with_kept(
        kept,
        |t: &Tally| t.counts_for(pod, constraints),
        || Tally::new(pod, constraints, kept.is_some()),
        |tally| {
            tally.refresh(snapshot);
            read(tally)
        },
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::test_support::{bound, labeled, node, pending, pod, snapshot};

    const ZONE: &str = "topology.kubernetes.io/zone";

    fn web(name: &str) -> serde_json::Value {
        labeled(pod(name, "100m", ""), json!({"app": "web"}))
    }

    fn spreading() -> serde_json::Value {
        let constraint = json!({
            "maxSkew": 1,
            "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
        });
        let mut p = web("incoming");
        p["spec"]["topologySpreadConstraints"] = json!([constraint]);
        p
    }

    /// The sums by zone name, and every node's cell.
    fn read(tally: &Tally, snapshot: &Snapshot) -> (Vec<(String, Domain)>, Vec<Cell>) {
        let column = snapshot.node_label_index().column(ZONE).expect("zoned");
        let domains = tally
            .domains(0)
            .iter()
            .enumerate()
            .map(|(id, d)| (column.value(id as u32).to_string(), *d))
            .collect();
        let cells = (0..snapshot.nodes.len())
            .map(|i| tally.cell(i, 0))
            .collect();
        (domains, cells)
    }

    #[test]
    fn a_kept_tally_recounts_changed_nodes_to_the_same_sums_as_a_fresh_one() {
        let zoned =
            |name: &str, zone: &str| labeled(node(name, "4", "8Gi", 110), json!({ZONE: zone}));
        let nodes: Vec<_> = (0..150)
            .map(|i| zoned(&format!("n{i:03}"), ["a", "b", "c"][i % 3]))
            .collect();
        let mut s = snapshot(nodes, vec![bound(web("w0"), "n000")]);
        let incoming = pending(&s, &spreading());
        let constraints = incoming.topology_spread_constraints.clone();
        let kept = DomainTallies::new(4);
        for step in 0..6 {
            let kept_view = with_tally(Some(&kept), &s, &incoming, &constraints, |t| read(t, &s));
            let fresh = with_tally(None, &s, &incoming, &constraints, |t| read(t, &s));
            assert_eq!(kept_view, fresh, "step {step}");
            // Place another web pod, on a node in the second chunk of the list.
            let mut edit = s.edit();
            edit.add_pod(
                crate::kube::decode_pod(
                    &bound(
                        web(&format!("w{}", step + 1)),
                        &format!("n{:03}", 64 + step),
                    ),
                    &[],
                )
                .unwrap(),
            );
            s = edit.finish();
        }
        assert_eq!(kept.kept(), 1, "one tally for one set of constraints");
        let (domains, _) = with_tally(None, &s, &incoming, &constraints, |t| read(t, &s));
        let total: i64 = domains.iter().map(|(_, d)| d.pods).sum();
        assert_eq!(total, 7);
    }
}
