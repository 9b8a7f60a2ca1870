//! The fast path's PodTopologySpread counts: for one pod's constraints, each node's
//! matching pods and topology domain, summed per domain ([`Tally`]), and the tallies a
//! memo keeps across decisions ([`DomainTallies`]).
//!
//! A tally keeps the node list it was counted on. Brought to a later snapshot, it
//! recounts only the nodes that are not the very same `NodeInfo` (snapshots share
//! untouched nodes, and node lists share untouched chunks, so finding them costs a
//! pointer compare per chunk): it takes their old share off the sums and adds the new
//! one. A sequence that places replicas of a spread app thus pays for the node each
//! placement changed, not for the cluster. Domains are value ids of the snapshot's node
//! label index; a tally meeting another index (nodes relabelled or moved) counts afresh.

use std::sync::{Arc, Mutex, PoisonError};

use rayon::prelude::*;

use super::{count_matching, node_included};
use crate::engine::label_counts::Probe;
use crate::engine::node_label_index::NodeLabelIndex;
use crate::engine::plugins::node_affinity::RequiredOnIndex;
use crate::engine::snapshot::{NodeInfo, NodeList, Snapshot};
use crate::engine::{NODES_PER_TASK, task_len};
use crate::model::{Pod, TopologySpreadConstraint};

/// What one node holds for one constraint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cell {
    /// The node's domain (value id of the topology key) when the node counts for the
    /// constraint: it has every constraint's key and the inclusion policies keep it.
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
    /// even with no matching pod.
    pub nodes: u32,
}

/// Whether `a` and `b` are counted the same for `constraints`: the same namespace, and
/// the same fields the inclusion policies read.
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
    /// The index whose value ids the cells hold, and the nodes counted.
    index: Arc<NodeLabelIndex>,
    nodes: NodeList,
    /// Per node, per constraint (row-major).
    cells: Vec<Cell>,
    /// Per constraint: the sums by value id.
    domains: Vec<Vec<Domain>>,
}

impl Tally {
    /// An empty tally of `constraints` for `pod`; [`Tally::refresh`] counts.
    fn new(pod: &Pod, constraints: &[TopologySpreadConstraint]) -> Tally {
        Tally {
            pod: pod.clone(),
            constraints: constraints.to_vec(),
            index: Arc::default(),
            nodes: NodeList::default(),
            cells: Vec::new(),
            domains: Vec::new(),
        }
    }

    fn counts_for(&self, pod: &Pod, constraints: &[TopologySpreadConstraint]) -> bool {
        self.constraints == constraints && same_inputs(&self.pod, pod)
    }

    /// What node `node` (its index in the snapshot) holds for constraint `k`.
    pub fn cell(&self, node: usize, k: usize) -> Cell {
        self.cells[node * self.constraints.len() + k]
    }

    /// Constraint `k`'s sums by value id of its topology key.
    pub fn domains(&self, k: usize) -> &[Domain] {
        &self.domains[k]
    }

    /// Brings the tally to `snapshot`: recounts the nodes it did not count as they are.
    fn refresh(&mut self, snapshot: &Snapshot) {
        let width = self.constraints.len();
        let index = snapshot.node_labels_shared();
        let changed = if Arc::ptr_eq(&self.index, index) {
            snapshot.nodes.differing(&self.nodes, Arc::ptr_eq)
        } else {
            self.index = Arc::clone(index);
            self.nodes = NodeList::default();
            self.cells = vec![Cell::default(); snapshot.nodes.len() * width];
            self.domains = self
                .constraints
                .iter()
                .map(|c| {
                    let values = index.column(&c.topology_key).map_or(0, |c| c.distinct());
                    vec![Domain::default(); values]
                })
                .collect();
            (0..snapshot.nodes.len()).collect()
        };
        if changed.is_empty() {
            return;
        }
        let fresh = self.count(snapshot, &changed);
        for (&at, fresh) in changed.iter().zip(fresh.chunks(width)) {
            let cells = &mut self.cells[at * width..(at + 1) * width];
            for (k, (old, new)) in cells.iter_mut().zip(fresh).enumerate() {
                if let Some(d) = old.domain {
                    let domain = &mut self.domains[k][d as usize];
                    domain.pods -= i64::from(old.pods);
                    domain.nodes -= 1;
                }
                if let Some(d) = new.domain {
                    let domain = &mut self.domains[k][d as usize];
                    domain.pods += i64::from(new.pods);
                    domain.nodes += 1;
                }
                *old = *new;
            }
        }
        self.nodes = snapshot.nodes.clone();
    }

    /// The cells of the nodes at `changed`, row-major; in parallel when there are many.
    fn count(&self, snapshot: &Snapshot, changed: &[usize]) -> Vec<Cell> {
        let width = self.constraints.len();
        let pod = &self.pod;
        let columns: Vec<_> = self
            .constraints
            .iter()
            .map(|c| self.index.column(&c.topology_key))
            .collect();
        let probes: Vec<Probe> = self
            .constraints
            .iter()
            .map(|c| Probe::new(&pod.namespace, &c.selector))
            .collect();
        let required = RequiredOnIndex::new(pod, &self.index);
        let node_cells = |at: usize, cells: &mut [Cell]| {
            let info: &NodeInfo = &snapshot.nodes[at];
            let ids: Option<Vec<u32>> = columns.iter().map(|c| c.and_then(|c| c.id(at))).collect();
            let Some(ids) = ids else {
                return;
            };
            for (k, c) in self.constraints.iter().enumerate() {
                let included =
                    node_included(c, pod, &info.node, || required.matches(at, info.name()));
                cells[k] = Cell {
                    domain: included.then_some(ids[k]),
                    pods: count_matching(info, c, &pod.namespace, Some(&probes[k])) as u32,
                };
            }
        };
        let mut cells = vec![Cell::default(); changed.len() * width];
        if width == 0 {
            return cells;
        }
        cells
            .par_chunks_mut(width)
            .zip(changed.par_iter())
            .with_min_len(task_len(NODES_PER_TASK))
            .for_each(|(cells, &at)| node_cells(at, cells));
        cells
    }
}

/// Runs `read` on the tally of `constraints` for `pod` on `snapshot`: the one `kept`
/// holds, brought up to date, or (without `kept`) one counted afresh.
pub fn with_tally<T>(
    kept: Option<&DomainTallies>,
    snapshot: &Snapshot,
    pod: &Pod,
    constraints: &[TopologySpreadConstraint],
    read: impl FnOnce(&Tally) -> T,
) -> T {
    match kept {
        Some(kept) => kept.with_tally(snapshot, pod, constraints, read),
        None => {
            let mut tally = Tally::new(pod, constraints);
            tally.refresh(snapshot);
            read(&tally)
        }
    }
}

/// The tallies kept for a sequence's decisions (or a cluster's calls): at most `max`,
/// the least recently used forgotten first. Each keeps the node list it counted, so
/// the bound also bounds the old nodes kept alive.
pub struct DomainTallies {
    /// Least recently used first.
    tallies: Mutex<Vec<Tally>>,
    max: usize,
}

impl DomainTallies {
    /// Keeps at most `max` tallies.
    pub fn new(max: usize) -> DomainTallies {
        DomainTallies {
            tallies: Mutex::new(Vec::new()),
            max: max.max(1),
        }
    }

    fn with_tally<T>(
        &self,
        snapshot: &Snapshot,
        pod: &Pod,
        constraints: &[TopologySpreadConstraint],
        read: impl FnOnce(&Tally) -> T,
    ) -> T {
        // One decision reads a memo at a time: the lock is never contended. A panic
        // while refreshing leaves a tally half-counted, so a poisoned list starts over.
        let mut tallies = self.tallies.lock().unwrap_or_else(|poisoned| {
            let mut tallies = poisoned.into_inner();
            tallies.clear();
            tallies
        });
        self.tallies.clear_poison();
        let found = tallies.iter().position(|t| t.counts_for(pod, constraints));
        let mut tally = match found {
            Some(i) => tallies.remove(i),
            None => Tally::new(pod, constraints),
        };
        tally.refresh(snapshot);
        let answer = read(&tally);
        if tallies.len() == self.max {
            tallies.remove(0);
        }
        tallies.push(tally);
        answer
    }

    /// How many tallies it keeps.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.tallies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Forgets every tally.
    pub fn clear(&mut self) {
        self.tallies
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
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
            let kept_view = kept.with_tally(&s, &incoming, &constraints, |t| read(t, &s));
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
