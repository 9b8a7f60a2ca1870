//! The immutable cluster snapshot queries run on (the scheduler cache's `Snapshot`).
//!
//! A [`Snapshot`] holds one [`NodeInfo`] per node, in node-name order (the order an API
//! server list returns them, which upstream's image summary depends on), with the pods
//! bound to it and their aggregated requests and host ports; the nominated pods per
//! node; PDBs (each pod knows the PDBs covering it); namespaces' labels; and the
//! cluster-wide image summary used by ImageLocality.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::model::resources::Resources;
use crate::model::{
    ClusterObjects, HostPort, Namespace, Node, Pod, PodDisruptionBudget, PriorityClass,
};

/// A pod with what the scheduler precomputes for it (`framework.PodInfo`).
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Pod,
    /// `PodRequests`, as `NodeInfo.Requested` counts it.
    pub requests: Resources,
    /// Requests with the scheduler's non-zero defaults, as `NodeInfo.NonZeroRequested`.
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    /// Indices into [`Snapshot::pdbs`] of the budgets that cover this pod.
    pub pdbs: Vec<usize>,
}

impl PodInfo {
    /// Precomputes a pod's requests; `pdbs` are the budgets covering it.
    pub fn new(pod: Pod, pdbs: Vec<usize>) -> PodInfo {
        let requests = pod.requests();
        let (non_zero_cpu, non_zero_memory) = pod.resources.non_zero_requests();
        PodInfo {
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

/// The host ports in use on a node: a set of (ip, protocol, port), as `HostPortInfo`.
/// Like upstream it is a set, so two pods binding the same port share one entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPortSet(BTreeSet<(String, String, i32)>);

impl HostPortSet {
    pub fn add(&mut self, p: &HostPort) {
        self.0.insert((p.ip.clone(), p.protocol.clone(), p.port));
    }

    pub fn remove(&mut self, p: &HostPort) {
        self.0.remove(&(p.ip.clone(), p.protocol.clone(), p.port));
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
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub pods: Vec<Arc<PodInfo>>,
    pub requested: Resources,
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    pub used_ports: HostPortSet,
}

impl NodeInfo {
    /// An empty node.
    pub fn new(node: Arc<Node>) -> NodeInfo {
        NodeInfo {
            node,
            pods: Vec::new(),
            requested: Resources::default(),
            non_zero_cpu: 0,
            non_zero_memory: 0,
            used_ports: HostPortSet::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// Adds a pod and its requests and ports.
    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.update(&p, 1);
        self.pods.push(p);
    }

    /// Removes the pod with `uid`, returning it. Like upstream, the last pod takes the
    /// removed one's place.
    pub fn remove_pod(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| p.pod.uid == uid)?;
        let removed = self.pods.swap_remove(i);
        self.update(&removed, -1);
        Some(removed)
    }

    fn update(&mut self, p: &PodInfo, sign: i64) {
        self.requested.accumulate(&p.requests, sign);
        self.non_zero_cpu += sign * p.non_zero_cpu;
        self.non_zero_memory += sign * p.non_zero_memory;
        for port in &p.pod.host_ports {
            if sign > 0 {
                self.used_ports.add(port);
            } else {
                self.used_ports.remove(port);
            }
        }
    }
}

/// ImageLocality's cluster-wide knowledge of one image name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSummary {
    /// The size reported by the first node (in name order) that has the image.
    pub size: i64,
    /// How many nodes have it.
    pub num_nodes: i64,
}

/// Why a set of objects cannot form a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("duplicate node {0:?}")]
    DuplicateNode(String),
    #[error("duplicate pod {0:?}")]
    DuplicatePod(String),
}

/// An immutable, consistent view of one cluster.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Nodes in name order.
    pub nodes: Vec<Arc<NodeInfo>>,
    node_index: HashMap<String, usize>,
    /// Pods nominated to a node and not bound yet, by node index.
    pub nominated: HashMap<usize, Vec<Arc<PodInfo>>>,
    /// Pods neither bound nor nominated: still waiting in the queue.
    pub pending: Vec<Arc<PodInfo>>,
    pub pdbs: Vec<PodDisruptionBudget>,
    pub priority_classes: Vec<PriorityClass>,
    namespace_labels: HashMap<String, crate::model::selector::Labels>,
    pub namespaces: Vec<Namespace>,
    /// Image name → summary.
    pub images: HashMap<String, ImageSummary>,
}

impl Snapshot {
    /// Builds a snapshot from normalised objects.
    pub fn build(objects: ClusterObjects) -> Result<Snapshot, SnapshotError> {
        let ClusterObjects {
            mut nodes,
            pods,
            pdbs,
            priority_classes,
            namespaces,
        } = objects;
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = nodes.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(SnapshotError::DuplicateNode(w[0].name.clone()));
        }
        let mut images: HashMap<String, ImageSummary> = HashMap::new();
        for n in &nodes {
            let mut seen = BTreeSet::new();
            for image in &n.images {
                for name in &image.names {
                    if !seen.insert(name.as_str()) {
                        continue;
                    }
                    images
                        .entry(name.clone())
                        .and_modify(|s| s.num_nodes += 1)
                        .or_insert(ImageSummary {
                            size: image.size_bytes,
                            num_nodes: 1,
                        });
                }
            }
        }
        let node_index: HashMap<String, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let mut infos: Vec<NodeInfo> = nodes
            .into_iter()
            .map(|n| NodeInfo::new(Arc::new(n)))
            .collect();
        let mut nominated: HashMap<usize, Vec<Arc<PodInfo>>> = HashMap::new();
        let mut pending = Vec::new();
        let mut seen_pods = BTreeSet::new();
        for pod in pods {
            if !seen_pods.insert(pod.key()) {
                return Err(SnapshotError::DuplicatePod(pod.key()));
            }
            let covering = pdbs
                .iter()
                .enumerate()
                .filter(|(_, b)| b.covers(&pod))
                .map(|(i, _)| i)
                .collect();
            let info = Arc::new(PodInfo::new(pod, covering));
            if let Some(node) = &info.pod.node_name {
                // Pods bound to an unknown node count nowhere, as in the scheduler's snapshot.
                if let Some(&i) = node_index.get(node) {
                    infos[i].add_pod(info);
                }
            } else if let Some(node) = &info.pod.nominated_node_name {
                if let Some(&i) = node_index.get(node) {
                    nominated.entry(i).or_default().push(info);
                }
            } else {
                pending.push(info);
            }
        }
        Ok(Snapshot {
            nodes: infos.into_iter().map(Arc::new).collect(),
            node_index,
            nominated,
            pending,
            pdbs,
            priority_classes,
            namespace_labels: namespaces
                .iter()
                .map(|n| (n.name.clone(), n.labels.clone()))
                .collect(),
            namespaces,
            images,
        })
    }

    /// The index of the node called `name`.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.node_index.get(name).copied()
    }

    /// The labels of namespace `name` (empty when the namespace is unknown).
    pub fn namespace_labels(&self, name: &str) -> &crate::model::selector::Labels {
        static EMPTY: crate::model::selector::Labels = crate::model::selector::Labels::new();
        self.namespace_labels.get(name).unwrap_or(&EMPTY)
    }

    /// Pods nominated to node `index` (not bound).
    pub fn nominated_pods(&self, index: usize) -> &[Arc<PodInfo>] {
        self.nominated.get(&index).map_or(&[], Vec::as_slice)
    }
}
