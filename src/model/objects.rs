//! The cluster objects the engine reads, normalised the way the API server stores them.
//!
//! These are plain data: no Kubernetes wire types and no scheduling rules. `crate::kube`
//! builds them from Kubernetes JSON/YAML; `crate::engine` reads them.

use std::collections::BTreeSet;

use super::affinity::{NodeAffinity, PodAffinityTerm, WeightedPodAffinityTerm};
use super::resources::{PodResourceSpec, Resources};
use super::selector::{Labels, Selector};
use super::taints::{Taint, Toleration};

/// `preemptionPolicy` of a pod or PriorityClass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PreemptionPolicy {
    #[default]
    PreemptLowerPriority,
    Never,
}

impl PreemptionPolicy {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PreemptionPolicy::PreemptLowerPriority => "PreemptLowerPriority",
            PreemptionPolicy::Never => "Never",
        }
    }
}

/// A `scheduling.k8s.io/v1` PriorityClass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityClass {
    pub name: String,
    pub value: i32,
    pub global_default: bool,
    /// `None` when the class does not set it (then `PreemptLowerPriority`).
    pub preemption_policy: Option<PreemptionPolicy>,
}

/// A Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    /// `status.allocatable.pods`.
    pub allowed_pods: i64,
    /// `status.images`: each image's names and size.
    pub images: Vec<NodeImage>,
}

/// One entry of a node's `status.images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeImage {
    pub names: Vec<String>,
    pub size_bytes: i64,
}

/// One host port a pod's container binds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    /// `hostIP`, `0.0.0.0` when unset.
    pub ip: String,
    /// `TCP`, `UDP` or `SCTP` (TCP when unset).
    pub protocol: String,
    pub port: i32,
}

/// `whenUnsatisfiable` of a topology spread constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsatisfiableAction {
    DoNotSchedule,
    ScheduleAnyway,
}

/// `nodeAffinityPolicy` / `nodeTaintsPolicy` of a topology spread constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InclusionPolicy {
    Honor,
    Ignore,
}

/// A topology spread constraint, with `matchLabelKeys` already merged into `selector`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologySpreadConstraint {
    pub max_skew: i32,
    pub topology_key: String,
    pub when_unsatisfiable: UnsatisfiableAction,
    pub selector: Selector,
    /// Defaults to 1.
    pub min_domains: i32,
    /// Defaults to `Honor`.
    pub node_affinity_policy: InclusionPolicy,
    /// Defaults to `Ignore`.
    pub node_taints_policy: InclusionPolicy,
}

/// A Pod, normalised: namespace defaulted, priority and preemption policy resolved,
/// requests defaulted from limits, port protocols defaulted.
#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    /// `metadata.uid`, or `namespace/name` when the object carries none.
    pub uid: String,
    pub labels: Labels,
    pub priority: i32,
    pub preemption_policy: PreemptionPolicy,
    /// `spec.nodeName`: the node the pod is bound to.
    pub node_name: Option<String>,
    /// `status.nominatedNodeName`.
    pub nominated_node_name: Option<String>,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// A `DisruptionTarget` condition with reason `PreemptionByScheduler` is true.
    pub preempted_by_scheduler: bool,
    /// `status.startTime`, Unix nanoseconds.
    pub start_time: Option<i64>,
    /// `metadata.creationTimestamp`, Unix nanoseconds.
    pub creation_time: Option<i64>,
    pub resources: PodResourceSpec,
    pub host_ports: Vec<HostPort>,
    pub tolerations: Vec<Toleration>,
    pub node_selector: Option<Labels>,
    pub node_affinity: NodeAffinity,
    pub pod_affinity: PodAffinity,
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// Init container images, then app container images, normalised (`:latest` added).
    pub images: Vec<String>,
}

/// A pod's `podAffinity` and `podAntiAffinity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PodAffinity {
    /// `affinity.podAffinity` or `affinity.podAntiAffinity` is present.
    pub declared: bool,
    pub required_affinity: Vec<PodAffinityTerm>,
    pub preferred_affinity: Vec<WeightedPodAffinityTerm>,
    pub required_anti_affinity: Vec<PodAffinityTerm>,
    pub preferred_anti_affinity: Vec<WeightedPodAffinityTerm>,
}

/// Two pods are equal when every field is. The store compares each pod sent again with
/// the one it holds (most are equal: a kubelet's status updates), so the fields that
/// change in a pod's life come first, those held in the struct itself (numbers, and the
/// lengths of strings, which a different length settles) before those behind pointers:
/// deletion, conditions and start time, binding and nomination, then the few mutable
/// parts of the spec (images, tolerations, resources on resize) and the labels; what
/// cannot change (affinity, spreading, ports, identity) last.
impl PartialEq for Pod {
    fn eq(&self, other: &Pod) -> bool {
        // Destructured whole so that a new field must be placed here.
        let Pod {
            namespace,
            name,
            uid,
            labels,
            priority,
            preemption_policy,
            node_name,
            nominated_node_name,
            terminating,
            preempted_by_scheduler,
            start_time,
            creation_time,
            resources,
            host_ports,
            tolerations,
            node_selector,
            node_affinity,
            pod_affinity,
            topology_spread_constraints,
            images,
        } = self;
        *terminating == other.terminating
            && *preempted_by_scheduler == other.preempted_by_scheduler
            && *start_time == other.start_time
            && *priority == other.priority
            && *preemption_policy == other.preemption_policy
            && *creation_time == other.creation_time
            && *node_name == other.node_name
            && *nominated_node_name == other.nominated_node_name
            && *images == other.images
            && *tolerations == other.tolerations
            && *resources == other.resources
            && *labels == other.labels
            && *uid == other.uid
            && *node_selector == other.node_selector
            && *node_affinity == other.node_affinity
            && *pod_affinity == other.pod_affinity
            && *topology_spread_constraints == other.topology_spread_constraints
            && *host_ports == other.host_ports
            && *namespace == other.namespace
            && *name == other.name
    }
}

impl Pod {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        let mut key = String::with_capacity(self.namespace.len() + 1 + self.name.len());
        key.push_str(&self.namespace);
        key.push('/');
        key.push_str(&self.name);
        key
    }

    /// What the pod requests, as `NodeInfo.Requested` counts it.
    pub fn requests(&self) -> Resources {
        self.resources.pod_requests()
    }

    /// Asks for the heap blocks the pod owns, for a caller about to free it
    /// ([`crate::prefetch`]): its strings and lists first, then what those lists hold.
    /// Affinity and spreading terms, which few pods have, are left out.
    pub fn prefetch_heap(&self) {
        use crate::prefetch::buffer_of;
        let spec = &self.resources;
        for text in [&self.namespace, &self.name, &self.uid] {
            buffer_of(text.as_bytes());
        }
        for text in [&self.node_name, &self.nominated_node_name]
            .into_iter()
            .flatten()
        {
            buffer_of(text.as_bytes());
        }
        self.labels.prefetch_heap();
        if let Some(selector) = &self.node_selector {
            selector.prefetch_heap();
        }
        buffer_of(&spec.containers);
        buffer_of(&spec.init_containers);
        buffer_of(&self.images);
        buffer_of(&self.tolerations);
        buffer_of(&self.host_ports);
        for container in spec.containers.iter().chain(&spec.init_containers) {
            container.requests.prefetch_heap();
        }
        spec.pod_level_requests.prefetch_heap();
        spec.overhead.prefetch_heap();
        for image in &self.images {
            buffer_of(image.as_bytes());
        }
        for toleration in &self.tolerations {
            buffer_of(toleration.key.as_bytes());
            buffer_of(toleration.value.as_bytes());
        }
        for port in &self.host_ports {
            buffer_of(port.ip.as_bytes());
            buffer_of(port.protocol.as_bytes());
        }
    }
}

/// A `policy/v1` PodDisruptionBudget: the parts preemption reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDisruptionBudget {
    pub namespace: String,
    pub name: String,
    pub selector: Selector,
    pub disruptions_allowed: i32,
    /// Names of pods already being disrupted (`status.disruptedPods`).
    pub disrupted_pods: BTreeSet<String>,
}

impl PodDisruptionBudget {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether this budget covers `pod`, as preemption decides it: same namespace, a
    /// non-empty selector that matches the pod's (non-empty) labels.
    pub fn covers(&self, pod: &Pod) -> bool {
        self.namespace == pod.namespace
            && !pod.labels.is_empty()
            && !self.selector.is_empty()
            && self.selector.matches(&pod.labels)
    }
}

/// A Namespace: only its labels matter (affinity `namespaceSelector`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub labels: Labels,
}

/// Every object of one cluster, normalised.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterObjects {
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub pdbs: Vec<PodDisruptionBudget>,
    pub priority_classes: Vec<PriorityClass>,
    pub namespaces: Vec<Namespace>,
}
