//! Turns the four kinds' watch events into `SyncState` batches, with no I/O:
//!
//! - until every kind has finished its first list, everything is held back, then lands
//!   as **one replace batch** (the first full sync);
//! - after that, a kind that re-lists (a 410 Gone, a desync) lands as one batch that
//!   replaces every object of that kind (`replace_kinds`);
//! - adds, updates and deletes in between are gathered and flushed as one batch per
//!   burst of ready events.

use std::collections::HashMap;

use crate::service::pb;

/// One step of one kind's watch.
#[derive(Debug, Clone)]
pub enum Step {
    /// The watch (re)started: a full list follows.
    Restart,
    /// One object of the list.
    Listed(pb::ObjectChange),
    /// The list is complete.
    ListDone,
    /// An add, update or delete after the list.
    Changed(pb::ObjectChange),
}

/// Assembles batches for one cluster.
#[derive(Debug)]
pub struct Assembler {
    cluster: String,
    /// The kinds watched, in the order their objects enter a replace batch.
    kinds: Vec<pb::Kind>,
    /// Lists in progress.
    listing: HashMap<pb::Kind, Vec<pb::ObjectChange>>,
    /// Before the first full sync: each kind's list and the changes that followed it.
    initial: HashMap<pb::Kind, Vec<pb::ObjectChange>>,
    /// After the first full sync: changes not yet flushed.
    live: Vec<pb::ObjectChange>,
    synced: bool,
    batches: u64,
}

impl Assembler {
    /// An assembler for `cluster` that waits for every kind of `kinds` before its first
    /// batch.
    pub fn new(cluster: &str, kinds: &[pb::Kind]) -> Assembler {
        Assembler {
            cluster: cluster.to_string(),
            kinds: kinds.to_vec(),
            listing: HashMap::new(),
            initial: HashMap::new(),
            live: Vec::new(),
            synced: false,
            batches: 0,
        }
    }

    /// Whether the first full sync has been emitted.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// Takes one step of `kind`'s watch; returns the batches it completes, in order.
    pub fn push(&mut self, kind: pb::Kind, step: Step) -> Vec<pb::SyncStateRequest> {
        match step {
            Step::Restart => {
                self.listing.insert(kind, Vec::new());
                Vec::new()
            }
            Step::Listed(change) => {
                self.listing.entry(kind).or_default().push(change);
                Vec::new()
            }
            Step::ListDone => {
                let listed = self.listing.remove(&kind).unwrap_or_default();
                if self.synced {
                    let mut out: Vec<_> = self.flush().into_iter().collect();
                    out.push(self.batch(false, vec![kind as i32], listed));
                    return out;
                }
                self.initial.insert(kind, listed);
                if self.kinds.iter().all(|k| self.initial.contains_key(k)) {
                    self.synced = true;
                    let mut changes = Vec::new();
                    for k in self.kinds.clone() {
                        changes.extend(self.initial.remove(&k).unwrap_or_default());
                    }
                    return vec![self.batch(true, Vec::new(), changes)];
                }
                Vec::new()
            }
            Step::Changed(change) => {
                if self.synced {
                    self.live.push(change);
                } else {
                    self.initial.entry(kind).or_default().push(change);
                }
                Vec::new()
            }
        }
    }

    /// Changes gathered since the last batch, as one batch; `None` when there are none.
    pub fn flush(&mut self) -> Option<pb::SyncStateRequest> {
        if self.live.is_empty() {
            return None;
        }
        let changes = std::mem::take(&mut self.live);
        Some(self.batch(false, Vec::new(), changes))
    }

    fn batch(
        &mut self,
        replace: bool,
        replace_kinds: Vec<i32>,
        changes: Vec<pb::ObjectChange>,
    ) -> pb::SyncStateRequest {
        self.batches += 1;
        pb::SyncStateRequest {
            cluster: self.cluster.clone(),
            replace,
            changes,
            batch_id: format!("watch-{}", self.batches),
            replace_kinds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [pb::Kind; 2] = [pb::Kind::PriorityClass, pb::Kind::Pod];

    fn change(name: &str) -> pb::ObjectChange {
        pb::ObjectChange {
            change: Some(pb::object_change::Change::Delete(pb::ObjectRef {
                kind: pb::Kind::Pod as i32,
                namespace: String::new(),
                name: name.to_string(),
            })),
        }
    }

    fn names(req: &pb::SyncStateRequest) -> Vec<String> {
        req.changes
            .iter()
            .map(|c| match &c.change {
                Some(pb::object_change::Change::Delete(r)) => r.name.clone(),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn the_first_full_sync_waits_for_every_kind_and_is_one_replace() {
        let mut a = Assembler::new("c", &KINDS);
        assert!(a.push(pb::Kind::Pod, Step::Restart).is_empty());
        assert!(a.push(pb::Kind::Pod, Step::Listed(change("p1"))).is_empty());
        assert!(a.push(pb::Kind::Pod, Step::ListDone).is_empty());
        // A change after the pods' list, before the classes are listed, is held back.
        assert!(
            a.push(pb::Kind::Pod, Step::Changed(change("p2")))
                .is_empty()
        );
        assert!(a.flush().is_none());
        assert!(a.push(pb::Kind::PriorityClass, Step::Restart).is_empty());
        assert!(
            a.push(pb::Kind::PriorityClass, Step::Listed(change("pc")))
                .is_empty()
        );
        assert!(!a.synced());
        let out = a.push(pb::Kind::PriorityClass, Step::ListDone);
        assert!(a.synced());
        assert_eq!(out.len(), 1);
        assert!(out[0].replace);
        assert_eq!(out[0].cluster, "c");
        // Classes first (the kinds' order), then the pods' list and what followed it.
        assert_eq!(names(&out[0]), ["pc", "p1", "p2"]);
    }

    #[test]
    fn a_relist_before_the_first_sync_supersedes_the_earlier_list() {
        let mut a = Assembler::new("c", &KINDS);
        a.push(pb::Kind::Pod, Step::Restart);
        a.push(pb::Kind::Pod, Step::Listed(change("old")));
        a.push(pb::Kind::Pod, Step::ListDone);
        a.push(pb::Kind::Pod, Step::Changed(change("old-change")));
        a.push(pb::Kind::Pod, Step::Restart);
        a.push(pb::Kind::Pod, Step::Listed(change("new")));
        a.push(pb::Kind::Pod, Step::ListDone);
        a.push(pb::Kind::PriorityClass, Step::Restart);
        let out = a.push(pb::Kind::PriorityClass, Step::ListDone);
        assert_eq!(names(&out[0]), ["new"]);
    }

    #[test]
    fn after_the_sync_changes_flush_together_and_a_relist_replaces_its_kind() {
        let mut a = Assembler::new("c", &KINDS);
        for k in KINDS {
            a.push(k, Step::Restart);
            a.push(k, Step::ListDone);
        }
        assert!(a.push(pb::Kind::Pod, Step::Changed(change("a"))).is_empty());
        assert!(a.push(pb::Kind::Pod, Step::Changed(change("b"))).is_empty());
        let burst = a.flush().unwrap();
        assert!(!burst.replace && burst.replace_kinds.is_empty());
        assert_eq!(names(&burst), ["a", "b"]);
        assert!(a.flush().is_none());

        a.push(pb::Kind::Pod, Step::Changed(change("before-relist")));
        a.push(pb::Kind::Pod, Step::Restart);
        a.push(pb::Kind::Pod, Step::Listed(change("listed")));
        let out = a.push(pb::Kind::Pod, Step::ListDone);
        // Pending changes go first, then the re-list as a replace of its kind only.
        assert_eq!(out.len(), 2);
        assert_eq!(names(&out[0]), ["before-relist"]);
        assert!(!out[1].replace);
        assert_eq!(out[1].replace_kinds, [pb::Kind::Pod as i32]);
        assert_eq!(names(&out[1]), ["listed"]);
        assert_ne!(out[0].batch_id, out[1].batch_id);
    }
}
