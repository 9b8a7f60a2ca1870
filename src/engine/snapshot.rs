//! The immutable cluster snapshot queries run on (the scheduler cache's `Snapshot`).
//!
//! A [`Snapshot`] holds one [`NodeInfo`] per node, in node-name order (the order an API
//! server list returns them, which upstream's image summary depends on), with the pods
//! bound to it, their aggregated requests and host ports, the lists of those with pod
//! affinity and required anti-affinity, and their label counts (the fast path's
//! selector prefilter, [`super::label_counts`]) and priority ladder (preemption's fast
//! path, [`super::priority_ladder`]); the nominated pods per
//! node; the pods still waiting in the queue; PDBs (each pod knows the budgets covering
//! it); namespaces' labels; and the cluster-wide image summary used by ImageLocality.
//!
//! Snapshots are values: a new one is made from an old one with [`Snapshot::edit`],
//! which shares every untouched `NodeInfo` with the old snapshot and rebuilds only the
//! nodes a change touched, as kube-scheduler's cache does by node generation. The copy
//! itself does not grow with the cluster: the node list is a [`CowList`] (a changed node
//! copies its chunk of 64 pointers) and the maps of unbound pods, PDBs, classes and
//! namespaces are persistent (`imbl`), so a one-pod edit costs microseconds at any size.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, OnceLock};

mod pod_changes;

pub use pod_changes::PodChange;

use super::affinity_index::AffinityIndex;
use super::cow_list::CowList;
use super::label_counts::LabelCounts;
use super::node_label_index::NodeLabelIndex;
use super::priority_ladder::PriorityLadder;
use crate::hashing::{NameHasher, NameMap};
use crate::model::resources::Resources;
use crate::model::selector::Labels;
use crate::model::{
    ClusterObjects, HostPort, Namespace, Node, Pod, PodDisruptionBudget, PriorityClass,
};
use crate::{prefetch, reclaim};

/// A pod with what the scheduler precomputes for it (`framework.PodInfo`).
///
/// Laid out in declaration order, the pod first: a node's pods are found by the pod's
/// address ([`position_of`]) and then copied by reference, so the pointer shares the
/// cache line of the reference count (`Arc`'s header) instead of sitting in the next.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct PodInfo {
    /// The pod, shared with the ingest index that holds it.
    pub pod: Arc<Pod>,
    /// `PodRequests`, as `NodeInfo.Requested` counts it.
    pub requests: Resources,
    /// Requests with the scheduler's non-zero defaults, as `NodeInfo.NonZeroRequested`.
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    /// The budgets that cover this pod, matched once at ingest.
    pub pdbs: Vec<Arc<PodDisruptionBudget>>,
    /// Equal for pods with equal `pod_affinity` (replicas of one workload), so that a
    /// query matches each distinct set of terms once; 0 when the pod declares none.
    pub affinity_fingerprint: u128,
    /// A number from the pod's uid, the same for each of its versions: the order of
    /// pods equal in importance on a node's ladder ([`super::priority_ladder`]).
    pub tie: u64,
}

impl PodInfo {
    /// Precomputes a pod's requests; `pdbs` are the budgets covering it.
    pub fn new(pod: impl Into<Arc<Pod>>, pdbs: Vec<Arc<PodDisruptionBudget>>) -> PodInfo {
        let pod = pod.into();
        let requests = pod.requests();
        let (non_zero_cpu, non_zero_memory) = pod.resources.non_zero_requests();
        PodInfo {
            affinity_fingerprint: affinity_fingerprint(&pod),
            tie: tie(&pod),
            pod,
            requests,
            non_zero_cpu,
            non_zero_memory,
            pdbs,
        }
    }

    /// `pod`, a new version of the pod `prev` describes, precomputed as [`PodInfo::new`]
    /// would, but each part that depends only on fields the new version left as they
    /// were is taken from `prev`: the budgets (`covering` is asked only when the
    /// namespace or the labels changed), the requests (the resources), the affinity
    /// fingerprint (the pod affinity).
    pub fn renewed(
        prev: &PodInfo,
        pod: Arc<Pod>,
        covering: impl FnOnce(&Pod) -> Vec<Arc<PodDisruptionBudget>>,
    ) -> PodInfo {
        let was = &prev.pod;
        let pdbs = if was.namespace == pod.namespace && was.labels == pod.labels {
            prev.pdbs.clone()
        } else {
            covering(&pod)
        };
        let (requests, non_zero_cpu, non_zero_memory) = if was.resources == pod.resources {
            (
                prev.requests.clone(),
                prev.non_zero_cpu,
                prev.non_zero_memory,
            )
        } else {
            let (cpu, memory) = pod.resources.non_zero_requests();
            (pod.requests(), cpu, memory)
        };
        PodInfo {
            affinity_fingerprint: if was.pod_affinity == pod.pod_affinity {
                prev.affinity_fingerprint
            } else {
                affinity_fingerprint(&pod)
            },
            tie: if was.uid == pod.uid {
                prev.tie
            } else {
                tie(&pod)
            },
            pod,
            requests,
            non_zero_cpu,
            non_zero_memory,
            pdbs,
        }
    }

    /// The pod declares pod affinity or anti-affinity (`PodsWithAffinity`).
    pub fn has_affinity(&self) -> bool {
        self.pod.pod_affinity.declared
    }

    /// The pod has required anti-affinity terms (`PodsWithRequiredAntiAffinity`).
    pub fn has_required_anti_affinity(&self) -> bool {
        !self.pod.pod_affinity.required_anti_affinity.is_empty()
    }
}

/// [`PodInfo::affinity_fingerprint`]: `pod`'s pod affinity's fingerprint, 0 when it
/// declares none.
fn affinity_fingerprint(pod: &Pod) -> u128 {
    if pod.pod_affinity.declared {
        fingerprint(&pod.pod_affinity)
    } else {
        0
    }
}

/// [`PodInfo::tie`]: a hash of `pod`'s uid, under a key fixed for the process.
fn tie(pod: &Pod) -> u64 {
    static KEY: OnceLock<NameHasher> = OnceLock::new();
    KEY.get_or_init(NameHasher::default).hash_one(&pod.uid)
}

/// A 128-bit fingerprint of `value`: two SipHash digests under keys drawn at random
/// once per process, so equal values share a fingerprint and distinct ones collide
/// with probability about 2^-128 per pair, beyond an input's power to arrange.
fn fingerprint(value: &impl Hash) -> u128 {
    static KEYS: OnceLock<[RandomState; 2]> = OnceLock::new();
    let [a, b] = KEYS.get_or_init(|| [RandomState::new(), RandomState::new()]);
    (u128::from(a.hash_one(value)) << 64) | u128::from(b.hash_one(value))
}

/// The host ports in use on a node: a set of (ip, protocol, port), as `HostPortInfo`.
/// Like upstream it is a set, so two pods binding the same port share one entry. The
/// set is shared between versions of the node until its ports change, so that a node
/// copied for an edit that leaves them alone copies no strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPortSet(Arc<BTreeSet<(String, String, i32)>>);

impl HostPortSet {
    pub fn add(&mut self, p: &HostPort) {
        Arc::make_mut(&mut self.0).insert((p.ip.clone(), p.protocol.clone(), p.port));
    }

    pub fn remove(&mut self, p: &HostPort) {
        Arc::make_mut(&mut self.0).remove(&(p.ip.clone(), p.protocol.clone(), p.port));
    }

    /// `HostPortInfo.CheckConflict`: a wildcard IP conflicts with the same port and
    /// protocol on any IP; a specific IP conflicts with itself and the wildcard.
    pub fn conflicts(&self, p: &HostPort) -> bool {
        self.0.iter().any(|(ip, protocol, port)| {
            *port == p.port
                && *protocol == p.protocol
                && (p.ip == "0.0.0.0" || ip == "0.0.0.0" || *ip == p.ip)
        })
    }
}

/// A node and the pods bound to it (`framework.NodeInfo`).
///
/// A batch spread over the cluster copies a node per event for the new snapshot, and
/// the reclaimer drops the version it replaced: both ask for the reference counts of
/// the node and its pods before touching them, and the drop for the blocks of the pods
/// it frees ([`crate::prefetch`]), lines seldom in cache by then.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub pods: Vec<Arc<PodInfo>>,
    pub requested: Resources,
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    pub used_ports: HostPortSet,
    /// Its pods that declare pod affinity or anti-affinity (`PodsWithAffinity`).
    pub pods_with_affinity: Vec<Arc<PodInfo>>,
    /// Its pods that have required anti-affinity terms (`PodsWithRequiredAntiAffinity`).
    pub pods_with_required_anti_affinity: Vec<Arc<PodInfo>>,
    /// Its pods' labels, counted for the fast path's selector prefilter.
    pub label_counts: LabelCounts,
    /// Its pods by importance with running request totals, for preemption's fast path.
    pub ladder: PriorityLadder,
}

impl Drop for NodeInfo {
    fn drop(&mut self) {
        if !reclaim::on_reclaimer() {
            return;
        }
        self.prefetch_counts();
        // The pods this drop frees (their last reference is ours; a count read here is a
        // hint, which another thread's clone may have outdated) have their blocks asked
        // for too, in two rounds: the pod's counts, then what it owns.
        let freed = || self.pods.iter().filter(|p| Arc::strong_count(p) == 1);
        for p in freed() {
            prefetch::counts_of(&p.pod);
        }
        for p in freed().filter(|p| Arc::strong_count(&p.pod) == 1) {
            p.pod.prefetch_heap();
        }
    }
}

/// Where the pod `pod` is among `pods`, by its uid. The version a snapshot holds is
/// usually the very allocation the caller has (the ingest index shares it), which is
/// found by its address alone, without reading each pod's uid: a batch of updates
/// spread over the cluster touches every pod of a node it changes, mostly cold.
fn position_of(pods: &[Arc<PodInfo>], pod: &Pod) -> Option<usize> {
    pods.iter()
        .position(|p| std::ptr::eq(&*p.pod, pod))
        .or_else(|| pods.iter().position(|p| p.pod.uid == pod.uid))
}

impl NodeInfo {
    /// Asks for the reference counts of the node and its pods ([`crate::prefetch`]), for
    /// a caller about to copy or drop it.
    pub(super) fn prefetch_counts(&self) {
        prefetch::counts_of(&self.node);
        for p in &self.pods {
            prefetch::counts_of(p);
        }
    }

    /// An empty node.
    pub fn new(node: Arc<Node>) -> NodeInfo {
        NodeInfo {
            node,
            pods: Vec::new(),
            requested: Resources::default(),
            non_zero_cpu: 0,
            non_zero_memory: 0,
            used_ports: HostPortSet::default(),
            pods_with_affinity: Vec::new(),
            pods_with_required_anti_affinity: Vec::new(),
            label_counts: LabelCounts::default(),
            ladder: PriorityLadder::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// Adds a pod and its requests and ports.
    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.update(&p, 1, Counted::ALL);
        self.ladder.add(&p, self.pods.len());
        self.pods.push(p);
    }

    /// Removes the pod `pod` (by its uid), returning it. Like upstream, the last pod
    /// takes the removed one's place.
    pub fn remove_pod(&mut self, pod: &Pod) -> Option<Arc<PodInfo>> {
        let i = position_of(&self.pods, pod)?;
        let removed = self.take(i);
        self.update(&removed, -1, Counted::ALL);
        Some(removed)
    }

    /// Takes the pod at place `i` off the ladder and out of the list of pods, the last
    /// pod taking its place (on the ladder too).
    fn take(&mut self, i: usize) -> Arc<PodInfo> {
        self.ladder.remove(&self.pods[i], i);
        let removed = self.pods.swap_remove(i);
        if let Some(moved) = self.pods.get(i) {
            self.ladder.moved(moved, self.pods.len(), i);
        }
        removed
    }

    /// Removes the pod `pod` (by its uid) and adds `p` (a new version of it, e.g. a
    /// watch's MODIFIED event), as [`NodeInfo::remove_pod`] then [`NodeInfo::add_pod`]
    /// would; the label counts are left alone when the pod's labels did not change,
    /// and the ladder's rungs when its priority, start, requests and budgets did not.
    pub fn replace_pod(&mut self, pod: &Pod, p: Arc<PodInfo>) -> Option<Arc<PodInfo>> {
        let i = position_of(&self.pods, pod)?;
        let last = self.pods.len() - 1;
        let removed = if self
            .ladder
            .renew(&self.pods[i], i, &p, &self.pods[last], last)
        {
            self.pods.swap_remove(i)
        } else {
            let removed = self.take(i);
            self.ladder.add(&p, self.pods.len());
            removed
        };
        let (old, new) = (&removed.pod, &p.pod);
        let changed = Counted {
            labels: old.namespace != new.namespace
                || old.labels != new.labels
                || old.terminating != new.terminating,
            ports: old.host_ports != new.host_ports,
        };
        self.update(&removed, -1, changed);
        self.update(&p, 1, changed);
        self.pods.push(p);
        Some(removed)
    }

    /// Counts `p` in (`sign` 1) or out (-1) of everything but the pods and the ladder;
    /// its labels and host ports only as `parts` says.
    fn update(&mut self, p: &Arc<PodInfo>, sign: i64, parts: Counted) {
        let step = |list: &mut Vec<Arc<PodInfo>>, applies: bool| {
            if !applies {
                return;
            }
            if sign > 0 {
                list.push(Arc::clone(p));
            } else if let Some(i) = list.iter().position(|q| Arc::ptr_eq(q, p)) {
                list.swap_remove(i);
            }
        };
        step(&mut self.pods_with_affinity, p.has_affinity());
        step(
            &mut self.pods_with_required_anti_affinity,
            p.has_required_anti_affinity(),
        );
        if parts.labels {
            self.label_counts.update(&p.pod, sign);
        }
        self.requested.accumulate(&p.requests, sign);
        self.non_zero_cpu += sign * p.non_zero_cpu;
        self.non_zero_memory += sign * p.non_zero_memory;
        for port in p.pod.host_ports.iter().filter(|_| parts.ports) {
            if sign > 0 {
                self.used_ports.add(port);
            } else {
                self.used_ports.remove(port);
            }
        }
    }
}

/// Which of a pod's label and host-port counts [`NodeInfo::update`] changes: all of
/// them when a pod comes or goes; only those that differ when a pod is replaced by a
/// new version of itself (removing and re-adding equal labels or ports changes
/// nothing).
#[derive(Debug, Clone, Copy)]
struct Counted {
    labels: bool,
    ports: bool,
}

impl Counted {
    const ALL: Counted = Counted {
        labels: true,
        ports: true,
    };
}

/// ImageLocality's cluster-wide knowledge of one image name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// The size reported by the first node (in name order) that has the image.
    pub size: i64,
    /// The nodes that have it: their indices in the snapshot, ascending.
    pub nodes: Vec<u32>,
}

impl ImageSummary {
    /// How many nodes have it.
    pub fn num_nodes(&self) -> i64 {
        self.nodes.len() as i64
    }
}

/// Which nodes a snapshot has, in which places, and its image summary: equal for
/// snapshots that differ in pods only (by identity, as edits share them).
#[derive(Debug, Clone)]
pub struct NodeSet {
    index: Arc<NameMap<String, usize>>,
    images: Arc<HashMap<String, ImageSummary>>,
}

impl PartialEq for NodeSet {
    fn eq(&self, other: &NodeSet) -> bool {
        Arc::ptr_eq(&self.index, &other.index) && Arc::ptr_eq(&self.images, &other.images)
    }
}

/// Why a set of objects cannot form a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("duplicate node {0:?}")]
    DuplicateNode(String),
    #[error("duplicate pod {0:?}")]
    DuplicatePod(String),
}

/// The snapshot's nodes in name order; copies share the chunks they did not change.
pub type NodeList = CowList<Arc<NodeInfo>>;

/// PDBs by `namespace/name`.
type PdbMap = imbl::OrdMap<String, Arc<PodDisruptionBudget>>;

/// The budgets among `pdbs` that cover `pod`.
fn budgets_covering(pdbs: &PdbMap, pod: &Pod) -> Vec<Arc<PodDisruptionBudget>> {
    let prefix = format!("{}/", pod.namespace);
    pdbs.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter(|(_, b)| b.covers(pod))
        .map(|(_, b)| Arc::clone(b))
        .collect()
}

/// An immutable, consistent view of one cluster.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Nodes in name order.
    pub nodes: NodeList,
    node_index: Arc<NameMap<String, usize>>,
    // The maps below are persistent (`imbl`): a snapshot's copy shares them, and an
    // edit copies only the few tree nodes on the path to what it changes.
    /// Pods nominated to a node and not bound yet, by node name.
    nominated: imbl::HashMap<String, Vec<Arc<PodInfo>>>,
    /// Pods neither bound nor nominated (waiting in the queue), by `namespace/name`.
    pending: imbl::OrdMap<String, Arc<PodInfo>>,
    /// Pods bound to a node the snapshot does not have (yet), by node name.
    orphans: imbl::HashMap<String, Vec<Arc<PodInfo>>>,
    pdbs: PdbMap,
    priority_classes: imbl::OrdMap<String, PriorityClass>,
    namespaces: imbl::OrdMap<String, Namespace>,
    /// Image name → summary.
    images: Arc<HashMap<String, ImageSummary>>,
    /// Bound pods with pod (anti-)affinity, grouped by their terms.
    affinity: Arc<AffinityIndex>,
    /// The nodes' labels by key, interned.
    node_labels: Arc<NodeLabelIndex>,
}

impl Snapshot {
    /// Builds a snapshot from normalised objects.
    pub fn build(objects: ClusterObjects) -> Result<Snapshot, SnapshotError> {
        let ClusterObjects {
            nodes,
            pods,
            pdbs,
            priority_classes,
            namespaces,
        } = objects;
        let mut names = BTreeSet::new();
        if let Some(dup) = nodes.iter().find(|n| !names.insert(n.name.as_str())) {
            return Err(SnapshotError::DuplicateNode(dup.name.clone()));
        }
        let mut keys = BTreeSet::new();
        if let Some(dup) = pods.iter().find(|p| !keys.insert(p.key())) {
            return Err(SnapshotError::DuplicatePod(dup.key()));
        }
        let mut edit = Snapshot::default().into_edit();
        for c in priority_classes {
            edit.upsert_priority_class(c);
        }
        for n in namespaces {
            edit.upsert_namespace(n);
        }
        for b in pdbs {
            edit.upsert_pdb(b);
        }
        for n in nodes {
            edit.upsert_node(n);
        }
        for p in pods {
            edit.add_pod(p);
        }
        Ok(edit.finish())
    }

    /// Starts a new snapshot from this one.
    pub fn edit(&self) -> SnapshotEdit {
        self.clone().into_edit()
    }

    /// Starts a new snapshot from this one, which it consumes: nothing is copied, and
    /// what only this snapshot held is changed in place.
    pub fn into_edit(self) -> SnapshotEdit {
        SnapshotEdit {
            snapshot: self,
            new_nodes: BTreeMap::new(),
            removed_nodes: BTreeSet::new(),
            node_set_changed: false,
            relabelled: false,
        }
    }

    /// The index of the node called `name`.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.node_index.get(name).copied()
    }

    /// Its nodes' places and image summary (see [`NodeSet`]).
    pub fn node_set(&self) -> NodeSet {
        NodeSet {
            index: Arc::clone(&self.node_index),
            images: Arc::clone(&self.images),
        }
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.node_index(name).map(|i| &self.nodes[i])
    }

    /// The labels of namespace `name` (empty when the namespace is unknown).
    pub fn namespace_labels(&self, name: &str) -> &Labels {
        static EMPTY: Labels = Labels::new();
        self.namespaces.get(name).map_or(&EMPTY, |n| &n.labels)
    }

    /// Every known namespace.
    pub fn namespaces(&self) -> impl Iterator<Item = &Namespace> {
        self.namespaces.values()
    }

    /// Pods nominated to node `name` (not bound).
    pub fn nominated_pods(&self, name: &str) -> &[Arc<PodInfo>] {
        self.nominated.get(name).map_or(&[], Vec::as_slice)
    }

    /// The indices of the nodes some pod is nominated to, ascending (few: a query
    /// asks this once instead of looking every node up by name).
    pub fn nodes_with_nominated_pods(&self) -> Vec<usize> {
        let mut at: Vec<usize> = self
            .nominated
            .keys()
            .filter_map(|name| self.node_index(name))
            .collect();
        at.sort_unstable();
        at
    }

    /// Pods neither bound nor nominated, by `namespace/name`.
    pub fn pending_pods(&self) -> impl Iterator<Item = &Arc<PodInfo>> {
        self.pending.values()
    }

    /// Every PodDisruptionBudget.
    pub fn pdbs(&self) -> impl Iterator<Item = &Arc<PodDisruptionBudget>> {
        self.pdbs.values()
    }

    /// Every PriorityClass, by name.
    pub fn priority_classes(&self) -> Vec<PriorityClass> {
        self.priority_classes.values().cloned().collect()
    }

    /// How many priority classes the snapshot holds.
    pub fn priority_class_count(&self) -> usize {
        self.priority_classes.len()
    }

    /// Bound pods with pod (anti-)affinity, grouped by their terms (the fast path's
    /// InterPodAffinity reads it instead of every node's lists).
    pub fn affinity_index(&self) -> &AffinityIndex {
        &self.affinity
    }

    /// The nodes' labels by key, interned (the fast path's topology domains).
    pub fn node_label_index(&self) -> &NodeLabelIndex {
        &self.node_labels
    }

    /// The node label index, shared: snapshots that hold the same one number label
    /// values alike (what a kept PodTopologySpread tally checks).
    pub fn node_labels_shared(&self) -> &Arc<NodeLabelIndex> {
        &self.node_labels
    }

    /// ImageLocality's summary of image `name`.
    pub fn image(&self, name: &str) -> Option<&ImageSummary> {
        self.images.get(name)
    }

    /// The budgets that cover `pod`.
    fn pdbs_covering(&self, pod: &Pod) -> Vec<Arc<PodDisruptionBudget>> {
        budgets_covering(&self.pdbs, pod)
    }

    /// The pod with `pod`'s namespace and name among the pods not bound to a node
    /// (waiting in the queue, or nominated to the node `pod` names).
    pub fn find_unbound_pod(&self, pod: &Pod) -> Option<&Arc<PodInfo>> {
        let same = |p: &&Arc<PodInfo>| p.pod.namespace == pod.namespace && p.pod.name == pod.name;
        self.pending.get(&pod.key()).or_else(|| {
            let node = pod.nominated_node_name.as_deref()?;
            self.nominated.get(node)?.iter().find(same)
        })
    }

    /// Finds a pod by `namespace/name`: bound, nominated or pending.
    pub fn find_pod(&self, key: &str) -> Option<&Arc<PodInfo>> {
        self.nodes
            .iter()
            .flat_map(|n| n.pods.iter())
            .chain(self.nominated.values().flatten())
            .chain(self.pending.values())
            .chain(self.orphans.values().flatten())
            .find(|p| p.pod.key() == key)
    }
}

/// A snapshot being changed. Untouched nodes stay shared with the snapshot it started
/// from; [`SnapshotEdit::finish`] merges new nodes in name order and refreshes the
/// node index and image summary only when the set of nodes changed.
pub struct SnapshotEdit {
    snapshot: Snapshot,
    /// Nodes added during this edit, merged in at `finish`.
    new_nodes: BTreeMap<String, NodeInfo>,
    /// Existing nodes removed during this edit.
    removed_nodes: BTreeSet<String>,
    node_set_changed: bool,
    /// An existing node's labels changed (the node label index is rebuilt).
    relabelled: bool,
}

/// A node of a snapshot being edited, whose pods change through it so that the
/// snapshot's affinity index follows them.
struct NodeMut<'a> {
    info: &'a mut NodeInfo,
    affinity: AffinityCounts<'a>,
    /// The snapshot's PDBs, which new versions of the node's pods are matched against.
    pdbs: &'a PdbMap,
}

/// How a node's pods with pod affinity are counted in and out of the snapshot's
/// affinity index as they come and go.
enum AffinityCounts<'a> {
    /// Not at all: the node was added in this edit, and the index is rebuilt when the
    /// set of nodes changes.
    Rebuilt,
    /// Into the index, now; the node's place.
    Now(usize, &'a mut Arc<AffinityIndex>),
    /// Noted, to count in the order of the changes once the nodes changed in parallel
    /// are done ([`pod_changes`]).
    Noted(pod_changes::AffinityNotes<'a>),
}

impl NodeMut<'_> {
    fn add_pod(mut self, p: Arc<PodInfo>) {
        self.count(&p, 1);
        self.info.add_pod(p);
    }

    fn remove_pod(mut self, pod: &Pod) -> Option<Arc<PodInfo>> {
        let removed = self.info.remove_pod(pod)?;
        self.count(&removed, -1);
        Some(removed)
    }

    fn replace_pod(mut self, pod: &Pod, p: Arc<PodInfo>) -> Option<Arc<PodInfo>> {
        let removed = self.info.replace_pod(pod, Arc::clone(&p))?;
        if removed.affinity_fingerprint != p.affinity_fingerprint {
            self.count(&removed, -1);
            self.count(&p, 1);
        }
        Some(removed)
    }

    /// Puts `new`, a version of the pod `old` bound to this node, in `old`'s place:
    /// precomputed from `old`'s [`PodInfo`] ([`PodInfo::renewed`]) and replaced as
    /// [`NodeMut::replace_pod`] does; added afresh when the node does not hold `old`.
    fn renew_pod(self, old: &Pod, new: Arc<Pod>) {
        let pdbs = self.pdbs;
        let covering = |p: &Pod| budgets_covering(pdbs, p);
        match position_of(&self.info.pods, old) {
            Some(i) => {
                let info = PodInfo::renewed(&self.info.pods[i], new, covering);
                self.replace_pod(old, Arc::new(info));
            }
            None => {
                let pdbs = covering(&new);
                self.add_pod(Arc::new(PodInfo::new(new, pdbs)));
            }
        }
    }

    /// Counts `p` into (`delta` 1) or out of (-1) the affinity index on this node.
    fn count(&mut self, p: &Arc<PodInfo>, delta: i32) {
        if !p.has_affinity() {
            return;
        }
        match &mut self.affinity {
            AffinityCounts::Rebuilt => {}
            AffinityCounts::Now(i, index) => Arc::make_mut(index).count(p, *i, delta),
            AffinityCounts::Noted(notes) => notes.note(p, delta),
        }
    }
}

impl SnapshotEdit {
    /// The node called `name` as this edit has it, to change. An existing node is
    /// changed in place when no other snapshot shares it, and copied otherwise.
    fn node_mut(&mut self, name: &str) -> Option<NodeMut<'_>> {
        if self.new_nodes.contains_key(name) {
            return Some(NodeMut {
                info: self.new_nodes.get_mut(name).expect("just found"),
                affinity: AffinityCounts::Rebuilt,
                pdbs: &self.snapshot.pdbs,
            });
        }
        let i = self.existing_node(name)?;
        Some(NodeMut {
            info: Arc::make_mut(self.snapshot.nodes.make_mut(i)),
            affinity: AffinityCounts::Now(i, &mut self.snapshot.affinity),
            pdbs: &self.snapshot.pdbs,
        })
    }

    /// The place of the node called `name` when the snapshot being edited had it and
    /// still has it (not removed in this edit).
    fn existing_node(&self, name: &str) -> Option<usize> {
        if self.removed_nodes.contains(name) {
            return None;
        }
        self.snapshot.node_index(name)
    }

    /// Adds a node, or replaces it keeping the pods bound to it. Pods already bound to
    /// a node of that name attach to it.
    pub fn upsert_node(&mut self, node: impl Into<Arc<Node>>) {
        let node: Arc<Node> = node.into();
        let name = node.name.clone();
        if let Some(NodeMut { info: existing, .. }) = self.node_mut(&name) {
            let images_changed = existing.node.images != node.images;
            let relabelled = existing.node.labels != node.labels;
            existing.node = node;
            // The image summary lists the nodes holding each image.
            self.node_set_changed |= images_changed;
            self.relabelled |= relabelled;
            return;
        }
        let mut info = NodeInfo::new(node);
        for p in self.snapshot.orphans.remove(&name).unwrap_or_default() {
            info.add_pod(p);
        }
        // A node removed and re-added in one edit gets its pods back through the
        // orphans; its old slot is dropped at finish.
        self.new_nodes.insert(name, info);
        self.node_set_changed = true;
    }

    /// Removes a node. Its bound pods wait for a node of the same name.
    pub fn remove_node(&mut self, name: &str) -> bool {
        let pods = if let Some(mut info) = self.new_nodes.remove(name) {
            std::mem::take(&mut info.pods)
        } else if self.snapshot.node_index(name).is_some()
            && self.removed_nodes.insert(name.to_string())
        {
            let i = self.snapshot.node_index(name).expect("checked");
            self.snapshot.nodes[i].pods.clone()
        } else {
            return false;
        };
        if !pods.is_empty() {
            self.snapshot
                .orphans
                .entry(name.to_string())
                .or_default()
                .extend(pods);
        }
        self.node_set_changed = true;
        true
    }

    /// Adds a pod where it belongs: bound to its node, nominated, or pending.
    pub fn add_pod(&mut self, pod: impl Into<Arc<Pod>>) -> Arc<PodInfo> {
        let pod = pod.into();
        let pdbs = self.snapshot.pdbs_covering(&pod);
        let info = Arc::new(PodInfo::new(pod, pdbs));
        self.add_pod_info(Arc::clone(&info));
        info
    }

    fn add_pod_info(&mut self, info: Arc<PodInfo>) {
        if let Some(node) = info.pod.node_name.clone() {
            match self.node_mut(&node) {
                Some(n) => n.add_pod(info),
                None => self.snapshot.orphans.entry(node).or_default().push(info),
            }
        } else if let Some(node) = info.pod.nominated_node_name.clone() {
            self.snapshot.nominated.entry(node).or_default().push(info);
        } else {
            self.snapshot.pending.insert(info.pod.key(), info);
        }
    }

    /// Replaces the pod `old` (as it was added) with `new`, a version of the same pod:
    /// as [`SnapshotEdit::remove_pod`] then [`SnapshotEdit::add_pod`], cheaper when both
    /// are bound to the same node. What the new version did not change is taken from
    /// `old`'s [`PodInfo`] ([`PodInfo::renewed`]): a watch's MODIFIED events mostly
    /// carry status changes the scheduler does not read. Even a version equal to `old`
    /// moves to the end of its node's pods, as upstream's cache removes and re-adds it
    /// (the order ranks victims of equal importance).
    pub fn replace_pod(&mut self, old: &Pod, new: impl Into<Arc<Pod>>) {
        let new = new.into();
        let same_node = old.node_name.is_some() && old.node_name == new.node_name;
        if let Some(node) = old
            .node_name
            .as_deref()
            .filter(|_| same_node)
            .and_then(|name| self.node_mut(name))
        {
            node.renew_pod(old, new);
            return;
        }
        let info = Arc::new(match self.current_info(old) {
            Some(prev) => PodInfo::renewed(&prev, new, |p| self.snapshot.pdbs_covering(p)),
            None => {
                let pdbs = self.snapshot.pdbs_covering(&new);
                PodInfo::new(new, pdbs)
            }
        });
        self.remove_pod(old);
        self.add_pod_info(info);
    }

    /// The [`PodInfo`] this edit holds for `old`, when it is bound to a node still in
    /// the snapshot, nominated or pending.
    fn current_info(&self, old: &Pod) -> Option<Arc<PodInfo>> {
        let found = match old.node_name.as_deref() {
            Some(name) if self.removed_nodes.contains(name) => None,
            Some(name) => {
                let pods = self
                    .new_nodes
                    .get(name)
                    .map(|n| &n.pods)
                    .or_else(|| self.snapshot.node(name).map(|n| &n.pods))?;
                position_of(pods, old).map(|i| &pods[i])
            }
            None => self.snapshot.find_unbound_pod(old),
        };
        found.cloned()
    }

    /// Removes the pod `old` (as it was added), wherever it is.
    pub fn remove_pod(&mut self, old: &Pod) -> Option<Arc<PodInfo>> {
        let take = |v: &mut Vec<Arc<PodInfo>>| {
            v.iter()
                .position(|p| p.pod.namespace == old.namespace && p.pod.name == old.name)
                .map(|i| v.swap_remove(i))
        };
        if let Some(node) = &old.node_name {
            if let Some(n) = self.node_mut(node) {
                return n.remove_pod(old);
            }
            return self.snapshot.orphans.get_mut(node).and_then(take);
        }
        if let Some(node) = &old.nominated_node_name {
            let removed = self.snapshot.nominated.get_mut(node).and_then(take);
            if self.snapshot.nominated.get(node).is_some_and(Vec::is_empty) {
                self.snapshot.nominated.remove(node);
            }
            return removed;
        }
        self.snapshot.pending.remove(&old.key())
    }

    /// Adds or replaces a PDB. Pods it covers (or covered) in its namespace pick up the
    /// change.
    pub fn upsert_pdb(&mut self, pdb: PodDisruptionBudget) {
        let namespace = pdb.namespace.clone();
        self.snapshot.pdbs.insert(pdb.key(), Arc::new(pdb));
        self.refresh_pdbs(&namespace);
    }

    /// Removes a PDB.
    pub fn remove_pdb(&mut self, namespace: &str, name: &str) -> bool {
        let removed = self
            .snapshot
            .pdbs
            .remove(&format!("{namespace}/{name}"))
            .is_some();
        if removed {
            self.refresh_pdbs(namespace);
        }
        removed
    }

    /// Re-matches the budgets of every pod in `namespace`.
    fn refresh_pdbs(&mut self, namespace: &str) {
        let affected: Vec<Arc<PodInfo>> = {
            let s = &self.snapshot;
            s.nodes
                .iter()
                .flat_map(|n| n.pods.iter())
                .chain(self.new_nodes.values().flat_map(|n| n.pods.iter()))
                .chain(s.nominated.values().flatten())
                .chain(s.pending.values())
                .chain(s.orphans.values().flatten())
                .filter(|p| p.pod.namespace == namespace)
                .cloned()
                .collect()
        };
        for p in affected {
            let pdbs = self.snapshot.pdbs_covering(&p.pod);
            let same = pdbs.len() == p.pdbs.len()
                && pdbs.iter().zip(&p.pdbs).all(|(a, b)| Arc::ptr_eq(a, b));
            if same {
                continue;
            }
            self.remove_pod(&p.pod);
            self.add_pod_info(Arc::new(PodInfo {
                pdbs,
                ..(*p).clone()
            }));
        }
    }

    pub fn upsert_priority_class(&mut self, class: PriorityClass) {
        self.snapshot
            .priority_classes
            .insert(class.name.clone(), class);
    }

    pub fn remove_priority_class(&mut self, name: &str) -> bool {
        self.snapshot.priority_classes.remove(name).is_some()
    }

    pub fn upsert_namespace(&mut self, namespace: Namespace) {
        self.snapshot
            .namespaces
            .insert(namespace.name.clone(), namespace);
    }

    pub fn remove_namespace(&mut self, name: &str) -> bool {
        self.snapshot.namespaces.remove(name).is_some()
    }

    /// The priority classes as they stand in this edit (to resolve pods' priorities).
    pub fn priority_classes(&self) -> Vec<PriorityClass> {
        self.snapshot.priority_classes()
    }

    /// Finishes the edit.
    pub fn finish(self) -> Snapshot {
        let SnapshotEdit {
            mut snapshot,
            new_nodes,
            removed_nodes,
            node_set_changed,
            relabelled,
        } = self;
        let nodes_moved = !new_nodes.is_empty() || !removed_nodes.is_empty();
        if nodes_moved {
            let old = std::mem::take(&mut snapshot.nodes);
            let mut merged = Vec::with_capacity(old.len() + new_nodes.len());
            let mut new_iter = new_nodes.into_values().peekable();
            for n in old.iter().filter(|n| !removed_nodes.contains(n.name())) {
                while new_iter.peek().is_some_and(|m| m.name() < n.name()) {
                    merged.push(Arc::new(new_iter.next().expect("peeked")));
                }
                merged.push(Arc::clone(n));
            }
            merged.extend(new_iter.map(Arc::new));
            snapshot.node_index = Arc::new(
                merged
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.name().to_string(), i))
                    .collect(),
            );
            snapshot.nodes = NodeList::from(merged);
        }
        if node_set_changed {
            snapshot.images = Arc::new(image_summaries(&snapshot.nodes));
        }
        if nodes_moved || relabelled {
            snapshot.node_labels = Arc::new(NodeLabelIndex::build(&snapshot.nodes));
        }
        if nodes_moved {
            snapshot.affinity = Arc::new(AffinityIndex::build(&snapshot.nodes));
        }
        snapshot
    }
}

/// Every image name's size (from the first node, in name order) and the nodes that
/// hold it.
fn image_summaries(nodes: &NodeList) -> HashMap<String, ImageSummary> {
    let mut images: HashMap<String, ImageSummary> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let at = u32::try_from(i).expect("fewer than 2^32 nodes");
        let mut seen = BTreeSet::new();
        for image in &n.node.images {
            for name in &image.names {
                if !seen.insert(name.as_str()) {
                    continue;
                }
                let summary = images.entry(name.clone()).or_insert(ImageSummary {
                    size: image.size_bytes,
                    nodes: Vec::new(),
                });
                summary.nodes.push(at);
            }
        }
    }
    images
}

/// A node's pods in order and what they add up to, comparable across snapshots.
#[cfg(test)]
fn node_contents(n: &NodeInfo) -> impl PartialEq + std::fmt::Debug + use<> {
    let names = |pods: &[Arc<PodInfo>]| -> Vec<String> {
        pods.iter().map(|p| p.pod.name.clone()).collect()
    };
    (
        n.name().to_string(),
        names(&n.pods),
        n.requested.clone(),
        (n.non_zero_cpu, n.non_zero_memory),
        n.used_ports.clone(),
        names(&n.pods_with_affinity),
        names(&n.pods_with_required_anti_affinity),
        n.label_counts.clone(),
        n.ladder.clone(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::engine::test_support::*;

    #[test]
    fn replacing_a_pod_on_its_node_counts_as_removing_and_adding_it() {
        let web = |name: &str, cpu: &str| {
            bound(labeled(pod(name, cpu, "64Mi"), json!({"app": "web"})), "n")
        };
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110), node("m", "4", "8Gi", 110)],
            vec![web("a", "100m"), web("b", "200m"), web("c", "300m")],
        );
        let old = Arc::clone(&s.node("n").unwrap().pods[0].pod);
        // The same version in another allocation: found by its uid.
        let old_copy = Arc::new((*old).clone());
        let versions = [
            // Sent again unchanged; with new labels and requests; moved to another
            // node; with a host port; unchanged, named by a copy of the old version.
            web("a", "100m"),
            labeled(web("a", "500m"), json!({"app": "db", "tier": "x"})),
            bound(
                labeled(pod("a", "100m", "64Mi"), json!({"app": "web"})),
                "m",
            ),
            with_host_port(web("a", "100m"), 8080),
            web("a", "100m"),
        ];
        for (i, version) in versions.into_iter().enumerate() {
            let new = pending(&s, &version);
            let old = if i == 4 { &old_copy } else { &old };
            let mut replaced = s.edit();
            replaced.replace_pod(old, new.clone());
            let replaced = replaced.finish();
            let mut readded = s.edit();
            readded.remove_pod(old);
            readded.add_pod(new);
            let readded = readded.finish();
            for (r, a) in replaced.nodes.iter().zip(&readded.nodes) {
                assert_eq!(node_contents(r), node_contents(a), "node {}", r.name());
            }
            assert_eq!(
                replaced.node("n").unwrap().pods.len(),
                if i == 2 { 2 } else { 3 }
            );
            // A version with the same requests keeps the node's rungs (the places of
            // its pods change: it goes last, the last pod takes its place).
            let (before, after) = (s.node("n").unwrap(), replaced.node("n").unwrap());
            assert_eq!(
                after.ladder.shares_rungs_with(&before.ladder),
                [0, 3, 4].contains(&i),
                "version {i}"
            );
        }
    }

    /// `pod` with a container port bound to `host_port` on the node.
    fn with_host_port(pod: Value, host_port: i32) -> Value {
        let mut pod = pod;
        pod["spec"]["containers"][0]["ports"] =
            json!([{"containerPort": 80, "hostPort": host_port}]);
        pod
    }

    /// `s` with the first pod of node `n` replaced by `version`.
    fn first_pod_replaced(s: &Snapshot, version: Value) -> Snapshot {
        let old = Arc::clone(&s.node("n").unwrap().pods[0].pod);
        let mut edit = s.edit();
        edit.replace_pod(&old, pending(s, &version));
        edit.finish()
    }

    #[test]
    fn a_nodes_host_ports_are_shared_by_its_versions_until_they_change() {
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![
                bound(with_host_port(pod("a", "100m", ""), 8080), "n"),
                bound(pod("b", "100m", ""), "n"),
            ],
        );
        let ports = |s: &Snapshot| s.node("n").unwrap().used_ports.clone();
        let replaced = |version: Value| first_pod_replaced(&s, version);
        let same = replaced(bound(with_host_port(pod("a", "200m", ""), 8080), "n"));
        assert!(
            Arc::ptr_eq(&ports(&s).0, &ports(&same).0),
            "unchanged ports shared"
        );
        let moved = replaced(bound(with_host_port(pod("a", "100m", ""), 9090), "n"));
        let port = |port: i32| HostPort {
            ip: "0.0.0.0".to_string(),
            protocol: "TCP".to_string(),
            port,
        };
        assert!(ports(&moved).conflicts(&port(9090)));
        assert!(!ports(&moved).conflicts(&port(8080)));
        assert!(
            ports(&s).conflicts(&port(8080)),
            "the old version keeps its own"
        );
        assert!(!ports(&s).conflicts(&port(9090)));
    }

    #[test]
    fn a_nodes_label_counts_are_shared_by_its_versions_until_labels_change() {
        use crate::engine::label_counts::Probe;
        use crate::model::selector::Selector;

        let app = |name: &str| labeled(pod("a", "100m", ""), json!({ "app": name }));
        let s = snapshot(vec![node("n", "4", "8Gi", 110)], vec![bound(app("x"), "n")]);
        let counts = |s: &Snapshot| s.node("n").unwrap().label_counts.clone();
        let replaced = |version: Value| first_pod_replaced(&s, version);
        let probe = |name: &str| {
            Probe::new(
                "default",
                &Selector::from_set(&Labels::new().with("app", name)),
            )
        };
        let resized = replaced(bound(
            labeled(pod("a", "200m", ""), json!({ "app": "x" })),
            "n",
        ));
        assert!(
            counts(&s).shares_counts_with(&counts(&resized)),
            "unchanged labels shared"
        );
        let relabelled = replaced(bound(app("y"), "n"));
        assert!(!counts(&s).shares_counts_with(&counts(&relabelled)));
        assert!(counts(&relabelled).may_match(&probe("y")));
        assert!(!counts(&relabelled).may_match(&probe("x")));
        assert!(
            counts(&s).may_match(&probe("x")),
            "the old version keeps its own"
        );
        assert!(!counts(&s).may_match(&probe("y")));
    }

    #[test]
    fn a_renewed_pod_info_is_what_a_new_one_would_be() {
        let web = bound(
            labeled(pod("a", "100m", "64Mi"), json!({"app": "web"})),
            "n",
        );
        let s = cluster(
            vec![node("n", "4", "8Gi", 110)],
            vec![web.clone()],
            vec![
                pdb("web", "default", json!({"app": "web"}), 1),
                pdb("db", "default", json!({"app": "db"}), 1),
            ],
            Vec::new(),
        );
        let prev = Arc::clone(&s.node("n").unwrap().pods[0]);
        let anti_affinity = json!({"spec": {"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"app": "web"}},
                "topologyKey": "kubernetes.io/hostname"}]}}}});
        let versions = [
            // Only the start time; new labels; new requests; new pod affinity.
            started(web.clone(), "2026-01-01T00:00:00Z"),
            labeled(web.clone(), json!({"app": "db"})),
            bound(labeled(pod("a", "500m", "1Gi"), json!({"app": "web"})), "n"),
            merge(web, anti_affinity),
        ];
        let names =
            |p: &PodInfo| -> Vec<String> { p.pdbs.iter().map(|b| b.name.clone()).collect() };
        for version in versions {
            let new = Arc::new(pending(&s, &version));
            let renewed = PodInfo::renewed(&prev, Arc::clone(&new), |p| s.pdbs_covering(p));
            let fresh = PodInfo::new(Arc::clone(&new), s.pdbs_covering(&new));
            assert_eq!(names(&renewed), names(&fresh), "{version}");
            assert_eq!(renewed.requests, fresh.requests, "{version}");
            assert_eq!(
                (renewed.non_zero_cpu, renewed.non_zero_memory),
                (fresh.non_zero_cpu, fresh.non_zero_memory),
                "{version}"
            );
            assert_eq!(
                renewed.affinity_fingerprint, fresh.affinity_fingerprint,
                "{version}"
            );
        }
    }
}
