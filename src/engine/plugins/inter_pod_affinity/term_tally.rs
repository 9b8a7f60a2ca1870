//! The fast path's counts of the incoming pod's own terms: per node, how many of its
//! pods each selector (terms a pod must all match) selects ([`TermTally`]), and the
//! tallies a memo keeps across decisions ([`TermTallies`]), brought to a later snapshot
//! by recounting the nodes that changed ([`NodeCells`]).

use super::{OwnTerm, own_term_matches};
use crate::engine::node_cells::{Kept, NodeCells, with_kept};
use crate::engine::snapshot::{NodeInfo, Snapshot};
use crate::model::affinity::PodAffinityTerm;

/// Per node, the pods each selector selects.
pub struct TermTally {
    selectors: Vec<Vec<PodAffinityTerm>>,
    counts: NodeCells<u32>,
}

impl TermTally {
    fn new(selectors: &[Vec<PodAffinityTerm>], kept: bool) -> TermTally {
        TermTally {
            selectors: selectors.to_vec(),
            counts: NodeCells::new(selectors.len(), kept),
        }
    }

    /// Brings the counts to `snapshot`. A node whose label counts rule a selector's
    /// terms out is not visited pod by pod.
    fn refresh(&mut self, snapshot: &Snapshot) {
        let own = &self.selectors;
        // What counting a node needs, prepared only when some node changed.
        let make_count = || {
            let selectors: Vec<Vec<OwnTerm>> = own
                .iter()
                .map(|terms| terms.iter().map(OwnTerm::new).collect())
                .collect();
            move |_: usize, info: &NodeInfo, counts: &mut [u32]| {
                for (count, terms) in counts.iter_mut().zip(&selectors) {
                    if terms.iter().all(|t| t.may_select_on(info)) {
                        let selected = info
                            .pods
                            .iter()
                            .filter(|p| terms.iter().all(|t| own_term_matches(t.term, &p.pod)));
                        *count = selected.count() as u32;
                    }
                }
            }
        };
        self.counts.refresh(snapshot, make_count, |_, _, _| {});
    }

    /// Every node where some selector selects a pod: its place, and the counts by
    /// selector.
    pub fn selecting(&self) -> impl Iterator<Item = (usize, &[u32])> {
        let rows = self.counts.rows().enumerate();
        rows.filter(|(_, counts)| counts.iter().any(|n| *n > 0))
    }
}

/// The tallies a memo keeps.
pub type TermTallies = Kept<TermTally>;

/// Runs `read` on the tally of `selectors` (each non-empty) on `snapshot`: the one
/// `kept` holds, brought up to date, or (without `kept`) one counted afresh.
pub fn with_term_tally<T>(
    kept: Option<&TermTallies>,
    snapshot: &Snapshot,
    selectors: &[Vec<PodAffinityTerm>],
    read: impl FnOnce(&TermTally) -> T,
) -> T {
    with_kept(
        kept,
        |t: &TermTally| t.selectors == selectors,
        || TermTally::new(selectors, kept.is_some()),
        |tally| {
            tally.refresh(snapshot);
            read(tally)
        },
    )
}
