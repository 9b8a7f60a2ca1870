//! Cluster state as ingested: sharded concurrent indexes (DashMap) per cluster, a
//! revision counter, and the immutable snapshot queries read (published with
//! arc-swap). This is the scheduler cache's role: batches are applied one at a time,
//! atomically, and each produces a new snapshot that shares every untouched node with
//! the previous one.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::watch;

use crate::engine::Snapshot;
use crate::engine::memo_pool::MemoPool;
use crate::engine::snapshot::{PodChange, SnapshotEdit};
use crate::hashing::NameHasher;
use crate::model::{Namespace, Node, Pod, PodDisruptionBudget, PriorityClass};
use crate::reclaim;

/// The name used for requests that name no cluster.
pub const DEFAULT_CLUSTER: &str = "default";

/// Changes in a batch from which the snapshot it replaces is freed by the reclaimer
/// ([`reclaim::later`]) rather than by the writer: below it, waking the reclaimer's
/// thread costs about what freeing the few nodes the batch copied does.
const FREE_LATER_FROM: usize = 64;

/// One object to create or replace. Nodes and pods are shared, not copied, between the
/// ingest indexes and the snapshot.
#[derive(Debug, Clone)]
pub enum Object {
    Node(Arc<Node>),
    Pod(Arc<Pod>),
    PodDisruptionBudget(PodDisruptionBudget),
    PriorityClass(PriorityClass),
    Namespace(Namespace),
}

/// The kinds of object a cluster's state holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Node,
    Pod,
    PodDisruptionBudget,
    PriorityClass,
    Namespace,
}

impl Object {
    /// The object's identity.
    pub fn key(&self) -> ObjectKey {
        match self {
            Object::Node(n) => ObjectKey::Node(n.name.clone()),
            Object::Pod(p) => ObjectKey::Pod {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
            },
            Object::PodDisruptionBudget(b) => ObjectKey::PodDisruptionBudget {
                namespace: b.namespace.clone(),
                name: b.name.clone(),
            },
            Object::PriorityClass(c) => ObjectKey::PriorityClass(c.name.clone()),
            Object::Namespace(n) => ObjectKey::Namespace(n.name.clone()),
        }
    }
}

/// The identity of an object to delete.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectKey {
    Node(String),
    Pod { namespace: String, name: String },
    PodDisruptionBudget { namespace: String, name: String },
    PriorityClass(String),
    Namespace(String),
}

impl ObjectKey {
    /// The kind of object this key names.
    pub fn kind(&self) -> Kind {
        match self {
            ObjectKey::Node(_) => Kind::Node,
            ObjectKey::Pod { .. } => Kind::Pod,
            ObjectKey::PodDisruptionBudget { .. } => Kind::PodDisruptionBudget,
            ObjectKey::PriorityClass(_) => Kind::PriorityClass,
            ObjectKey::Namespace(_) => Kind::Namespace,
        }
    }
}

/// One change of a batch.
#[derive(Debug, Clone)]
pub enum Change {
    Upsert(Object),
    Delete(ObjectKey),
}

/// A validated batch, ready to apply.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The batch is the cluster's whole state.
    pub replace: bool,
    /// The batch holds every object of these kinds: the others of these kinds are
    /// deleted (a re-list of one kind).
    pub replace_kinds: Vec<Kind>,
    pub changes: Vec<Change>,
}

impl Batch {
    /// Whether applying the batch can change the cluster's priority classes.
    pub fn changes_priority_classes(&self) -> bool {
        self.replace
            || self.replace_kinds.contains(&Kind::PriorityClass)
            || self.changes.iter().any(|c| match c {
                Change::Upsert(object) => matches!(object, Object::PriorityClass(_)),
                Change::Delete(key) => key.kind() == Kind::PriorityClass,
            })
    }

    /// A replace batch holding every object of `objects`.
    pub fn replace_with(objects: crate::model::ClusterObjects) -> Batch {
        let crate::model::ClusterObjects {
            nodes,
            pods,
            pdbs,
            priority_classes,
            namespaces,
        } = objects;
        let changes = priority_classes
            .into_iter()
            .map(Object::PriorityClass)
            .chain(namespaces.into_iter().map(Object::Namespace))
            .chain(pdbs.into_iter().map(Object::PodDisruptionBudget))
            .chain(nodes.into_iter().map(|n| Object::Node(Arc::new(n))))
            .chain(pods.into_iter().map(|p| Object::Pod(Arc::new(p))))
            .map(Change::Upsert)
            .collect();
        Batch {
            replace: true,
            replace_kinds: Vec::new(),
            changes,
        }
    }
}

/// A snapshot and the revision it reflects.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub revision: u64,
    pub snapshot: Arc<Snapshot>,
    /// When this snapshot was published (`None` before the first batch).
    pub published_at: Option<Instant>,
}

/// The ingest indexes of one cluster.
#[derive(Debug, Default)]
struct Indexes {
    nodes: DashMap<String, Arc<Node>, NameHasher>,
    /// Pods by `namespace/name`.
    pods: DashMap<String, Arc<Pod>, NameHasher>,
    /// Namespace → names of its PDBs.
    pdbs_by_namespace: DashMap<String, BTreeSet<String>, NameHasher>,
}

impl Indexes {
    fn clear(&self) {
        self.nodes.clear();
        self.pods.clear();
        self.pdbs_by_namespace.clear();
    }

    /// Indexes `node`, replacing the node of the same name, unless it equals the node
    /// held (a status heartbeat: nothing the scheduler reads changed), which stays.
    /// Returns whether it was taken.
    fn upsert_node(&self, node: &Arc<Node>) -> bool {
        match self.nodes.get_mut(&node.name) {
            Some(held) if **held == **node => false,
            Some(mut held) => {
                *held = Arc::clone(node);
                true
            }
            None => {
                self.nodes.insert(node.name.clone(), Arc::clone(node));
                true
            }
        }
    }

    /// Indexes `pod`, replacing the pod of the same key (a watch's MODIFIED event),
    /// unless it equals the pod held (nothing the scheduler reads changed: a kubelet's
    /// status update), which stays, so that the snapshot keeps its node as it is: then
    /// there is no change to make.
    fn upsert_pod(&self, pod: Arc<Pod>) -> Option<PodChange> {
        // One lookup whether the key is new or held; a pod sent again replaces the
        // value alone.
        match self.pods.entry(pod.key()) {
            Entry::Occupied(held) if **held.get() == *pod => None,
            Entry::Occupied(mut held) => {
                let old = held.insert(Arc::clone(&pod));
                Some(PodChange::Replaced { old, new: pod })
            }
            Entry::Vacant(slot) => {
                slot.insert(Arc::clone(&pod));
                Some(PodChange::Added(pod))
            }
        }
    }

    fn remove_pod(&self, key: &str) -> Option<PodChange> {
        self.pods
            .remove(key)
            .map(|(_, old)| PodChange::Removed(old))
    }
}

/// A snapshot being edited by a batch, and the batch's latest pod changes, which are
/// applied together ([`SnapshotEdit::apply_pod_changes`]) before any other change and
/// at the end.
struct BatchEdit {
    edit: SnapshotEdit,
    pods: Vec<PodChange>,
}

impl BatchEdit {
    /// The edit, with the pod changes so far applied.
    fn edit(&mut self) -> &mut SnapshotEdit {
        if !self.pods.is_empty() {
            self.edit.apply_pod_changes(std::mem::take(&mut self.pods));
        }
        &mut self.edit
    }

    fn finish(mut self) -> Snapshot {
        self.edit();
        self.edit.finish()
    }
}

/// One cluster's state.
#[derive(Debug)]
pub struct ClusterState {
    name: String,
    /// Batches are applied one at a time.
    writer: Mutex<()>,
    indexes: Indexes,
    published: ArcSwap<Published>,
    revisions: watch::Sender<u64>,
    /// What its calls' decisions remember of the node-local plugins' results.
    memos: MemoPool,
}

/// How many objects of each kind a cluster holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectCounts {
    pub nodes: usize,
    pub pods: usize,
    pub pdbs: usize,
    pub priority_classes: usize,
    pub namespaces: usize,
}

impl ClusterState {
    fn new(name: &str) -> ClusterState {
        ClusterState {
            name: name.to_string(),
            writer: Mutex::new(()),
            indexes: Indexes::default(),
            published: ArcSwap::from_pointee(Published::default()),
            revisions: watch::channel(0).0,
            memos: MemoPool::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            ),
        }
    }

    /// The memos its `Place` calls decide with, one per thread deciding at once.
    pub fn memos(&self) -> &MemoPool {
        &self.memos
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current snapshot and its revision. Never half of a batch.
    pub fn published(&self) -> Arc<Published> {
        self.published.load_full()
    }

    /// The priority classes in force, for resolving the priority of incoming pods.
    pub fn priority_classes(&self) -> Vec<PriorityClass> {
        self.published().snapshot.priority_classes()
    }

    /// Object counts: nodes, pods and PDBs from the ingest indexes, priority classes and
    /// namespaces from the published snapshot.
    pub fn counts(&self) -> ObjectCounts {
        let published = self.published();
        ObjectCounts {
            priority_classes: published.snapshot.priority_class_count(),
            namespaces: published.snapshot.namespaces().count(),
            nodes: self.indexes.nodes.len(),
            pods: self.indexes.pods.len(),
            pdbs: self
                .indexes
                .pdbs_by_namespace
                .iter()
                .map(|e| e.value().len())
                .sum(),
        }
    }

    /// Waits until the state reaches `revision`, or `timeout` passes. Returns the
    /// revision reached.
    pub async fn wait_for_revision(&self, revision: u64, timeout: Duration) -> Result<u64, u64> {
        let mut rx = self.revisions.subscribe();
        let wait = rx.wait_for(|r| *r >= revision);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(r)) => Ok(*r),
            _ => Err(*self.revisions.borrow()),
        }
    }

    /// Objects of the batch's `replace_kinds` that the batch does not upsert.
    fn stale_keys(&self, batch: &Batch, snapshot: &Snapshot) -> Vec<ObjectKey> {
        if batch.replace || batch.replace_kinds.is_empty() {
            return Vec::new();
        }
        let kept: HashSet<ObjectKey> = batch
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Upsert(o) => Some(o.key()),
                Change::Delete(_) => None,
            })
            .collect();
        let ix = &self.indexes;
        let mut held = Vec::new();
        for kind in &batch.replace_kinds {
            match kind {
                Kind::Node => {
                    held.extend(ix.nodes.iter().map(|e| ObjectKey::Node(e.key().clone())))
                }
                Kind::Pod => held.extend(ix.pods.iter().map(|e| ObjectKey::Pod {
                    namespace: e.value().namespace.clone(),
                    name: e.value().name.clone(),
                })),
                Kind::PodDisruptionBudget => {
                    for e in ix.pdbs_by_namespace.iter() {
                        held.extend(e.value().iter().map(|name| ObjectKey::PodDisruptionBudget {
                            namespace: e.key().clone(),
                            name: name.clone(),
                        }));
                    }
                }
                Kind::PriorityClass => held.extend(
                    snapshot
                        .priority_classes()
                        .into_iter()
                        .map(|c| ObjectKey::PriorityClass(c.name)),
                ),
                Kind::Namespace => held.extend(
                    snapshot
                        .namespaces()
                        .map(|n| ObjectKey::Namespace(n.name.clone())),
                ),
            }
        }
        held.retain(|k| !kept.contains(k));
        held
    }

    /// Applies a validated batch atomically and publishes the new snapshot. Returns
    /// the revision it produced. The snapshot it replaces goes to the reclaimer when
    /// the batch is big enough for that to pay ([`FREE_LATER_FROM`]).
    pub fn apply(&self, batch: Batch) -> u64 {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.published.load_full();
        let base = if batch.replace {
            self.indexes.clear();
            Snapshot::default()
        } else {
            (*current.snapshot).clone()
        };
        let stale = self.stale_keys(&batch, &current.snapshot);
        let freed_later = batch.replace || stale.len() + batch.changes.len() >= FREE_LATER_FROM;
        let mut edit = BatchEdit {
            edit: base.into_edit(),
            // Most batches are one run of pod changes: room for it at once.
            pods: Vec::with_capacity(batch.changes.len()),
        };
        let ix = &self.indexes;
        let changes = stale.into_iter().map(Change::Delete).chain(batch.changes);
        for change in changes {
            match change {
                Change::Upsert(Object::Node(n)) => {
                    if ix.upsert_node(&n) {
                        edit.edit().upsert_node(n);
                    }
                }
                Change::Delete(ObjectKey::Node(name)) => {
                    ix.nodes.remove(&name);
                    edit.edit().remove_node(&name);
                }
                Change::Upsert(Object::Pod(p)) => edit.pods.extend(ix.upsert_pod(p)),
                Change::Delete(ObjectKey::Pod { namespace, name }) => {
                    edit.pods
                        .extend(ix.remove_pod(&format!("{namespace}/{name}")));
                }
                Change::Upsert(Object::PodDisruptionBudget(b)) => {
                    ix.pdbs_by_namespace
                        .entry(b.namespace.clone())
                        .or_default()
                        .insert(b.name.clone());
                    edit.edit().upsert_pdb(b);
                }
                Change::Delete(ObjectKey::PodDisruptionBudget { namespace, name }) => {
                    if let Some(mut names) = ix.pdbs_by_namespace.get_mut(&namespace) {
                        names.remove(&name);
                    }
                    edit.edit().remove_pdb(&namespace, &name);
                }
                Change::Upsert(Object::PriorityClass(c)) => edit.edit().upsert_priority_class(c),
                Change::Delete(ObjectKey::PriorityClass(name)) => {
                    edit.edit().remove_priority_class(&name);
                }
                Change::Upsert(Object::Namespace(n)) => edit.edit().upsert_namespace(n),
                Change::Delete(ObjectKey::Namespace(name)) => {
                    edit.edit().remove_namespace(&name);
                }
            }
        }
        let revision = current.revision + 1;
        drop(current);
        let replaced = self.published.swap(Arc::new(Published {
            revision,
            snapshot: Arc::new(edit.finish()),
            published_at: Some(Instant::now()),
        }));
        self.revisions.send_replace(revision);
        if freed_later {
            reclaim::later(replaced);
        }
        revision
    }
}

/// Every cluster's state, keyed by cluster name.
#[derive(Debug, Default)]
pub struct Store {
    clusters: DashMap<String, Arc<ClusterState>>,
}

/// The canonical name of a requested cluster (`""` is the default cluster).
pub fn cluster_name(requested: &str) -> &str {
    if requested.is_empty() {
        DEFAULT_CLUSTER
    } else {
        requested
    }
}

impl Store {
    pub fn new() -> Store {
        let store = Store::default();
        store.cluster_or_create(DEFAULT_CLUSTER);
        store
    }

    /// The cluster called `name`, if any state was ever pushed for it (the default
    /// cluster always exists).
    pub fn cluster(&self, name: &str) -> Option<Arc<ClusterState>> {
        self.clusters
            .get(cluster_name(name))
            .map(|c| Arc::clone(&c))
    }

    /// The cluster called `name`, created empty when new.
    pub fn cluster_or_create(&self, name: &str) -> Arc<ClusterState> {
        let name = cluster_name(name);
        Arc::clone(
            &self
                .clusters
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(ClusterState::new(name))),
        )
    }

    /// Names of every cluster.
    pub fn cluster_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.clusters.iter().map(|e| e.key().clone()).collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::kube;

    fn objects(doc: serde_json::Value) -> Vec<Change> {
        let mut batch = Batch::replace_with(kube::decode_cluster(&doc).unwrap());
        std::mem::take(&mut batch.changes)
    }

    fn node(name: &str) -> serde_json::Value {
        serde_json::json!({"metadata": {"name": name}, "status": {"allocatable": {"cpu": "4", "pods": "110"}}})
    }

    fn pod(name: &str, node: &str) -> serde_json::Value {
        serde_json::json!({"metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"nodeName": node, "containers": [{"name": "c"}]}})
    }

    /// Applies the objects of `doc` as one batch of upserts; returns what it published.
    fn upsert(cluster: &ClusterState, doc: serde_json::Value) -> Arc<Published> {
        cluster.apply(Batch {
            changes: objects(doc),
            ..Batch::default()
        });
        cluster.published()
    }

    #[test]
    fn replacing_a_kind_deletes_its_unlisted_objects_and_keeps_other_kinds() {
        let store = Store::new();
        let cluster = store.cluster_or_create("c");
        cluster.apply(Batch {
            replace: true,
            replace_kinds: Vec::new(),
            changes: objects(serde_json::json!({
                "nodes": [node("n1"), node("n2")],
                "pods": [pod("a", "n1"), pod("b", "n2"), pod("c", "n2")],
            })),
        });
        // A re-list of pods that now finds only `b` and a new `d`.
        cluster.apply(Batch {
            replace: false,
            replace_kinds: vec![Kind::Pod],
            changes: objects(serde_json::json!({"pods": [pod("b", "n2"), pod("d", "n1")]})),
        });
        let published = cluster.published();
        let snapshot = &published.snapshot;
        let pods: BTreeSet<String> = snapshot
            .nodes
            .iter()
            .flat_map(|n| n.pods.iter().map(|p| p.pod.key()))
            .collect();
        assert_eq!(
            pods,
            BTreeSet::from(["default/b".to_string(), "default/d".to_string()])
        );
        assert_eq!(snapshot.nodes.len(), 2, "nodes are not re-listed");
        assert_eq!(cluster.counts().pods, 2);
    }

    #[test]
    fn a_replaced_snapshot_is_freed_once_settled_unless_a_reader_holds_it() {
        let store = Store::new();
        let cluster = store.cluster_or_create("c");
        let sync = |pods: serde_json::Value| {
            cluster.apply(Batch {
                replace: true,
                replace_kinds: Vec::new(),
                changes: objects(serde_json::json!({"nodes": [node("n1")], "pods": pods})),
            })
        };
        sync(serde_json::json!([pod("a", "n1")]));
        let first = Arc::downgrade(&cluster.published().snapshot);
        let read = cluster.published();
        sync(serde_json::json!([pod("b", "n1")]));
        crate::reclaim::settle();
        assert!(first.upgrade().is_some(), "a reader still holds it");
        drop(read);
        assert!(first.upgrade().is_none(), "the reader freed it");

        let second = Arc::downgrade(&cluster.published().snapshot);
        sync(serde_json::json!([pod("c", "n1")]));
        crate::reclaim::settle();
        assert!(second.upgrade().is_none(), "the reclaimer freed it");
        let published = cluster.published();
        let pods: Vec<String> = published.snapshot.nodes[0]
            .pods
            .iter()
            .map(|p| p.pod.key())
            .collect();
        assert_eq!(pods, ["default/c"]);
    }

    #[test]
    fn objects_sent_again_unchanged_leave_the_snapshot_as_it_was() {
        let store = Store::new();
        let cluster = store.cluster_or_create("c");
        let upsert = |doc| upsert(&cluster, doc);
        let mut status_update = pod("a", "n1");
        let first =
            upsert(serde_json::json!({"nodes": [node("n1")], "pods": [status_update.clone()]}));
        // A kubelet's status update: nothing the scheduler reads changed.
        status_update["metadata"]["resourceVersion"] = serde_json::json!("2");
        status_update["status"] = serde_json::json!({"phase": "Running", "podIP": "10.0.0.9"});
        let second = upsert(serde_json::json!({"pods": [status_update.clone()]}));
        assert_eq!(second.revision, first.revision + 1);
        assert!(Arc::ptr_eq(
            &first.snapshot.nodes[0],
            &second.snapshot.nodes[0]
        ));
        assert!(Arc::ptr_eq(
            &first.snapshot.nodes[0].pods[0].pod,
            &cluster.indexes.pods.get("default/a").unwrap()
        ));
        // A label is read (selectors, spreading): the node is renewed with the pod.
        status_update["metadata"]["labels"] = serde_json::json!({"app": "web"});
        let third = upsert(serde_json::json!({"pods": [status_update]}));
        assert!(!Arc::ptr_eq(
            &second.snapshot.nodes[0],
            &third.snapshot.nodes[0]
        ));
        let held = &third.snapshot.nodes[0].pods[0].pod;
        assert_eq!(held.labels.get("app"), Some("web"));
        assert!(Arc::ptr_eq(
            held,
            &cluster.indexes.pods.get("default/a").unwrap()
        ));
        // A node's heartbeat (its conditions) is not taken either; a new label is.
        let mut heartbeat = node("n1");
        heartbeat["status"]["conditions"] = serde_json::json!([
            {"type": "Ready", "status": "True", "lastHeartbeatTime": "2025-01-01T00:00:10Z"}
        ]);
        let fourth = upsert(serde_json::json!({"nodes": [heartbeat.clone()]}));
        assert!(Arc::ptr_eq(
            &third.snapshot.nodes[0],
            &fourth.snapshot.nodes[0]
        ));
        heartbeat["metadata"]["labels"] = serde_json::json!({"zone": "a"});
        let fifth = upsert(serde_json::json!({"nodes": [heartbeat]}));
        assert_eq!(fifth.snapshot.nodes[0].node.labels.get("zone"), Some("a"));
        assert_eq!(fifth.snapshot.nodes[0].pods.len(), 1);
    }

    /// Where a cluster's snapshot holds each pod: per node, its pods' keys and uids.
    fn placement(cluster: &ClusterState) -> BTreeMap<String, BTreeSet<(String, String)>> {
        let published = cluster.published();
        published
            .snapshot
            .nodes
            .iter()
            .map(|n| {
                let pods = n.pods.iter().map(|p| (p.pod.key(), p.pod.uid.clone()));
                (n.name().to_string(), pods.collect())
            })
            .collect()
    }

    /// A big batch (its nodes changed in parallel, the snapshot it replaces freed by the
    /// reclaimer) is taken as its changes one batch each would be: a pod changed twice
    /// in it is compared the second time with its first new version, not with the one
    /// held before the batch; a pod deleted and sent again is added afresh.
    #[test]
    fn a_big_batch_takes_its_pods_as_one_change_at_a_time_would() {
        let nodes: Vec<_> = ["n1", "n2", "n3"].into_iter().map(node).collect();
        let held: Vec<_> = (0..80).map(|k| pod(&format!("p{k}"), "n1")).collect();
        let mut batch = Vec::new();
        batch.extend((0..30).map(|k| pod(&format!("p{k}"), "n1"))); // sent again unchanged
        batch.extend((30..60).map(|k| pod(&format!("p{k}"), "n2"))); // moved
        batch.push(pod("p60", "n2")); // moved, then back where it was held
        batch.push(pod("p60", "n1"));
        batch.push(pod("p61", "n1")); // unchanged, then moved
        batch.push(pod("p61", "n3"));
        batch.extend((80..90).map(|k| pod(&format!("p{k}"), "n3"))); // new
        let mut changes = objects(serde_json::json!({"pods": batch}));
        // Deleted, then sent again as it was held: added afresh.
        changes.insert(
            40,
            Change::Delete(ObjectKey::Pod {
                namespace: "default".into(),
                name: "p70".into(),
            }),
        );
        changes.extend(objects(serde_json::json!({"pods": [pod("p70", "n1")]})));
        assert!(changes.len() >= FREE_LATER_FROM);
        let loaded = || {
            let cluster = Store::new().cluster_or_create("");
            upsert(
                &cluster,
                serde_json::json!({"nodes": nodes.clone(), "pods": held.clone()}),
            );
            cluster
        };
        let whole = loaded();
        let before = whole.published().revision;
        whole.apply(Batch {
            changes: changes.clone(),
            ..Batch::default()
        });
        let one_at_a_time = loaded();
        for change in changes {
            one_at_a_time.apply(Batch {
                changes: vec![change],
                ..Batch::default()
            });
        }
        assert_eq!(whole.published().revision, before + 1);
        assert_eq!(placement(&whole), placement(&one_at_a_time));
        let on = |node: &str, key: &str| placement(&whole)[node].iter().any(|(k, _)| k == key);
        assert!(on("n1", "default/p60") && on("n3", "default/p61") && on("n1", "default/p70"));
        assert_eq!(whole.counts().pods, 90);
    }

    #[test]
    fn a_pod_sent_again_lands_with_its_latest_node_and_uid() {
        let store = Store::new();
        let cluster = store.cluster_or_create("c");
        let upsert = |doc| {
            upsert(&cluster, doc);
        };
        // Where the snapshot holds each pod: (node, key, uid).
        let placed = || -> Vec<(String, String, String)> {
            let published = cluster.published();
            published
                .snapshot
                .nodes
                .iter()
                .flat_map(|n| {
                    n.pods
                        .iter()
                        .map(|p| (n.name().to_string(), p.pod.key(), p.pod.uid.clone()))
                })
                .collect()
        };
        let on = |node: &str, uid: &str| {
            vec![(node.to_string(), "default/a".to_string(), uid.to_string())]
        };
        upsert(serde_json::json!({"nodes": [node("n1"), node("n2")], "pods": [pod("a", "n1")]}));
        // Sent again unchanged, then moved to another node, then with a new uid.
        upsert(serde_json::json!({"pods": [pod("a", "n1")]}));
        assert_eq!(placed(), on("n1", "a"));
        upsert(serde_json::json!({"pods": [pod("a", "n2")]}));
        assert_eq!(placed(), on("n2", "a"));
        let mut renewed = pod("a", "n2");
        renewed["metadata"]["uid"] = serde_json::json!("a-2");
        upsert(serde_json::json!({"pods": [renewed]}));
        assert_eq!(placed(), on("n2", "a-2"));
        assert_eq!(cluster.counts().pods, 1);
    }
}
