//! Deterministic synthetic clusters, written as conformance-style scenario objects.
//!
//! [`generate_scenario`] builds a cluster that looks like a busy production cluster, as
//! `kubectl get -o json` would print it: node pools (general purpose, high-memory, GPU
//! nodes with an `nvidia.com/gpu` NoSchedule taint, a few cordoned nodes) spread over
//! three zones; DaemonSet pods on every node; Deployments, StatefulSets and Jobs across
//! several namespaces, filled so that nodes are about 70–95 % requested; PDBs by app;
//! five PriorityClasses (plus the two built-in ones); and a pending high-priority `pod`
//! that fits nowhere as the cluster is but can preempt lower-priority pods somewhere.
//!
//! The state is one the scheduler could have produced: no node is over-committed (cpu,
//! memory, GPUs, pod count), required anti-affinity and host ports hold on every node,
//! `DoNotSchedule` zone spread constraints are within their skew, tainted nodes only run
//! pods that tolerate their taints, and start times are unique per node.
//!
//! [`generate_objects`] gives the same cluster already decoded into model objects, one
//! node at a time, without holding the whole document (what `serve --demo` loads).
//!
//! Everything is drawn from a small self-contained PRNG (splitmix64) and only IEEE basic
//! arithmetic, so the same [`GeneratorConfig`] always gives byte-identical JSON, on any
//! platform and with any number of threads.

use std::io::{self, Write};

use rayon::prelude::*;
use serde_json::{Map, Value, json};

use crate::kube;
use crate::model::{Node, Pod};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// Number of nodes.
    pub nodes: usize,
    /// Pods bound to every node (DaemonSet pods included).
    pub pods_per_node: usize,
    /// Seed; the same seed and sizes give the same cluster.
    pub seed: u64,
    /// Extra pods waiting in the queue: neither `nodeName` nor `nominatedNodeName`.
    pub pending_pods: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            nodes: 1000,
            pods_per_node: 30,
            seed: 1,
            pending_pods: 0,
        }
    }
}

/// Generates the scenario object: `nodes`, `pdbs`, `pod`, `pods` (bound pods, node by
/// node, then the `pending_pods` queued ones) and `priorityClasses`.
///
/// Serialising it with `serde_json` gives exactly [`write_scenario`]'s bytes.
pub fn generate_scenario(cfg: &GeneratorConfig) -> Value {
    let plan = Plan::build(cfg);
    let nodes: Vec<Value> = (0..plan.nodes.len())
        .into_par_iter()
        .map(|i| plan.render_node(i))
        .collect();
    let per_node: Vec<Vec<Value>> = (0..plan.nodes.len())
        .into_par_iter()
        .map(|i| plan.node_pods(i))
        .collect();
    let mut pods = Vec::with_capacity(cfg.nodes * cfg.pods_per_node + cfg.pending_pods);
    for chunk in per_node {
        pods.extend(chunk);
    }
    pods.extend(plan.render_queue());
    // Keys in sorted order, as `write_scenario` writes them, whether or not serde_json
    // preserves insertion order.
    let mut doc = Map::new();
    doc.insert("nodes".into(), Value::Array(nodes));
    doc.insert("pdbs".into(), Value::Array(plan.render_pdbs()));
    doc.insert("pod".into(), plan.render_pending_pod());
    doc.insert("pods".into(), Value::Array(pods));
    doc.insert(
        "priorityClasses".into(),
        Value::Array(render_priority_classes()),
    );
    Value::Object(doc)
}

/// [`generate_scenario`]'s scenario, decoded: the same objects as
/// `kube::decode_scenario(&generate_scenario(cfg))`, without ever holding the whole
/// document (what `serve --demo` loads). Each node is rendered and decoded with its pods
/// in parallel, so only one node's JSON per thread exists at a time.
pub fn generate_objects(cfg: &GeneratorConfig) -> kube::Scenario {
    const VALID: &str = "the generator writes valid objects";
    let plan = Plan::build(cfg);
    // Everything but the nodes and their pods is small: decoded as one document.
    let head = json!({
        "pdbs": plan.render_pdbs(),
        "pod": plan.render_pending_pod(),
        "pods": plan.render_queue(),
        "priorityClasses": render_priority_classes(),
    });
    let kube::Scenario { mut cluster, pod } = kube::decode_scenario(&head).expect(VALID);
    let classes = &cluster.priority_classes;
    let per_node: Vec<(Node, Vec<Pod>)> = (0..plan.nodes.len())
        .into_par_iter()
        .map(|i| {
            let node = kube::decode_node(&plan.render_node(i)).expect(VALID);
            let pods = plan
                .node_pods(i)
                .iter()
                .filter(|p| !kube::pod_is_terminal(p))
                .map(|p| kube::decode_pod(p, classes).expect(VALID))
                .collect();
            (node, pods)
        })
        .collect();
    let bound: usize = per_node.iter().map(|(_, pods)| pods.len()).sum();
    let mut pods = Vec::with_capacity(bound + cluster.pods.len());
    let mut nodes = Vec::with_capacity(per_node.len());
    for (node, node_pods) in per_node {
        nodes.push(node);
        pods.extend(node_pods);
    }
    pods.append(&mut cluster.pods);
    cluster.nodes = nodes;
    cluster.pods = pods;
    kube::Scenario { cluster, pod }
}

/// Writes the scenario as compact JSON with every object's keys in sorted order (what
/// `serde_json::to_writer` prints for a [`Value`]), without holding the whole document in
/// memory: pods are written in parallel, a batch of nodes at a time, from pre-serialised
/// per-app fragments.
pub fn write_scenario<W: Write>(cfg: &GeneratorConfig, mut out: W) -> io::Result<()> {
    let plan = Plan::build(cfg);
    out.write_all(b"{\"nodes\":[")?;
    write_batched(&mut out, plan.nodes.len(), |i, buf| {
        serde_json::to_writer(buf, &plan.render_node(i)).map_err(io::Error::from)
    })?;
    out.write_all(b"],\"pdbs\":")?;
    serde_json::to_writer(&mut out, &Value::Array(plan.render_pdbs()))?;
    out.write_all(b",\"pod\":")?;
    serde_json::to_writer(&mut out, &plan.render_pending_pod())?;
    out.write_all(b",\"pods\":[")?;
    let wrote = write_batched(&mut out, plan.nodes.len(), |i, buf| {
        plan.write_node_pods(i, buf);
        Ok(())
    })?;
    for (k, pod) in plan.render_queue().iter().enumerate() {
        if wrote || k > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut out, pod)?;
    }
    out.write_all(b"],\"priorityClasses\":")?;
    serde_json::to_writer(&mut out, &Value::Array(render_priority_classes()))?;
    out.write_all(b"}")?;
    out.flush()
}

/// Renders items `0..n` in parallel batches into byte buffers and writes them in order,
/// comma-separated (empty renderings are skipped). Returns whether anything was written.
fn write_batched<W: Write>(
    out: &mut W,
    n: usize,
    render: impl Fn(usize, &mut Vec<u8>) -> io::Result<()> + Sync,
) -> io::Result<bool> {
    const BATCH: usize = 2048;
    let mut wrote = false;
    let mut start = 0;
    while start < n {
        let end = (start + BATCH).min(n);
        let bufs: Vec<Vec<u8>> = (start..end)
            .into_par_iter()
            .map(|i| {
                let mut buf = Vec::new();
                render(i, &mut buf).map(|()| buf)
            })
            .collect::<io::Result<_>>()?;
        for buf in bufs.iter().filter(|b| !b.is_empty()) {
            if wrote {
                out.write_all(b",")?;
            }
            out.write_all(buf)?;
            wrote = true;
        }
        start = end;
    }
    Ok(wrote)
}

// ---------------------------------------------------------------------------------------
// Randomness and formatting.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 finaliser: a bijection on u64.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64, one independent stream per (seed, stream) pair.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        Rng(mix(seed.wrapping_add(GOLDEN))
            ^ mix(stream.wrapping_mul(GOLDEN) ^ 0x632B_E59B_D9B4_E019))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

// RNG streams.
const STREAM_CATALOG: u64 = 1;
const STREAM_LAYOUT: u64 = 2;
const STREAM_FILL: u64 = 3;
const STREAM_QUEUE: u64 = 4;
const STREAM_PENDING: u64 = 5;
const STREAM_NODE: u64 = 1 << 40;
const STREAM_PODS: u64 = 2 << 40;
const STREAM_PDB: u64 = 3 << 40;

/// Disjoint ranges of unique ids (the last group of a UID is a bijection of them).
const UID_NODE: u64 = 1 << 44;
const UID_PDB: u64 = 2 << 44;
const UID_QUEUE: u64 = 3 << 44;
const UID_PENDING: u64 = 4 << 44;

/// A random-looking version-4 UUID whose last 48 bits are a bijection of `unique`, so
/// distinct `unique` values (< 2^48) give distinct UIDs.
fn uuid(rng: &mut Rng, unique: u64) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    // A bijection on 48 bits: odd multipliers and xor-shifts, each invertible mod 2^48.
    const M48: u64 = (1 << 48) - 1;
    let mut tail = unique.wrapping_mul(0x5851_F42D_4C95_7F2D) & M48;
    tail ^= tail >> 23;
    tail = tail.wrapping_mul(0x2545_F491_4F6C_DD1D) & M48;
    tail ^= tail >> 21;
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        8 | (b & 3),
        (b >> 2) & 0xfff,
        tail
    )
}

/// The alphabet of Kubernetes' generated name suffixes (no vowels, no look-alikes).
const SUFFIX_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

fn encode_suffix(mut x: u64, len: usize) -> String {
    let mut s = String::with_capacity(len);
    for _ in 0..len {
        s.push(SUFFIX_ALPHABET[(x % 27) as usize] as char);
        x /= 27;
    }
    s
}

/// A five-character pod suffix, distinct for distinct `ordinal` < 27^5 (an affine
/// bijection modulo 27^5 = 3^15; the multiplier is not divisible by 3).
fn pod_suffix(ordinal: u64, salt: u64) -> String {
    const M: u64 = 14_348_907;
    encode_suffix((ordinal % M * 7_340_033 + salt % M) % M, 5)
}

/// `2026-03-01T00:00:00Z`: the generated cluster's "now".
const NOW: i64 = 1_772_323_200;
const DAY: i64 = 86_400;

fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(DAY);
    let rem = secs.rem_euclid(DAY);
    // civil_from_days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Millicores as a quantity: `250m`, `2`.
fn cpu_qty(milli: i64) -> String {
    if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

/// MiB as a quantity: `512Mi`, `4Gi`.
fn mem_qty(mib: i64) -> String {
    if mib % 1024 == 0 {
        format!("{}Gi", mib / 1024)
    } else {
        format!("{mib}Mi")
    }
}

const MIB: i64 = 1 << 20;

/// Rounds a sampled cpu amount to the steps people write.
fn nice_cpu(m: i64) -> i64 {
    let step = match m {
        ..100 => 5,
        100..1000 => 50,
        1000..4000 => 250,
        _ => 500,
    };
    (m / step * step).max(5)
}

/// Rounds a sampled memory amount (MiB) to the steps people write.
fn nice_mem(mib: i64) -> i64 {
    let step = match mib {
        ..256 => 16,
        256..1024 => 64,
        1024..8192 => 256,
        _ => 1024,
    };
    (mib / step * step).max(16)
}

/// A value in `lo..=hi`, biased towards the low end (square of a uniform).
fn skewed(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    let u = rng.unit();
    lo + ((hi - lo) as f64 * u * u) as i64
}

// ---------------------------------------------------------------------------------------
// Priority classes.

const CLASS_CRITICAL: &str = "critical";
const CLASS_HIGH: &str = "high";
const CLASS_DEFAULT: &str = "default";
const CLASS_LOW: &str = "low";
const CLASS_BATCH: &str = "batch-preemptible";
const SYSTEM_NODE_CRITICAL: &str = "system-node-critical";
const SYSTEM_CLUSTER_CRITICAL: &str = "system-cluster-critical";

/// (name, value, globalDefault, preemptionPolicy, description).
const PRIORITY_CLASSES: [(&str, i32, bool, &str, &str); 7] = [
    (
        SYSTEM_CLUSTER_CRITICAL,
        2_000_000_000,
        false,
        "PreemptLowerPriority",
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
    (
        SYSTEM_NODE_CRITICAL,
        2_000_001_000,
        false,
        "PreemptLowerPriority",
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        CLASS_CRITICAL,
        100_000,
        false,
        "PreemptLowerPriority",
        "Cluster add-ons and ingress: evicts anything below it.",
    ),
    (
        CLASS_HIGH,
        10_000,
        false,
        "PreemptLowerPriority",
        "Customer-facing services.",
    ),
    (
        CLASS_DEFAULT,
        1_000,
        true,
        "PreemptLowerPriority",
        "Everything that does not ask for a class.",
    ),
    (
        CLASS_LOW,
        100,
        false,
        "Never",
        "Best-effort services: queue ahead of batch, never evict anyone.",
    ),
    (
        CLASS_BATCH,
        10,
        false,
        "PreemptLowerPriority",
        "Batch and ad-hoc jobs: first to be preempted.",
    ),
];

/// The resolved priority of a pod with `priorityClassName` `class` (None: the default).
fn class_value(class: Option<&str>) -> i32 {
    let name = class.unwrap_or(CLASS_DEFAULT);
    PRIORITY_CLASSES
        .iter()
        .find(|c| c.0 == name)
        .map_or(0, |c| c.1)
}

fn render_priority_classes() -> Vec<Value> {
    PRIORITY_CLASSES
        .iter()
        .enumerate()
        .map(|(i, &(name, value, global_default, policy, description))| {
            let mut v = json!({
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {
                    "name": name,
                    "uid": uuid(&mut Rng::new(0, 77 + i as u64), 1000 + i as u64),
                    "creationTimestamp": rfc3339(NOW - 700 * DAY + i as i64 * 60),
                },
                "value": value,
                "preemptionPolicy": policy,
                "description": description,
            });
            if global_default {
                v["globalDefault"] = Value::Bool(true);
            }
            v
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Node pools and instance types.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    General,
    HighMem,
    Gpu,
}

impl Pool {
    fn label(self) -> &'static str {
        match self {
            Pool::General => "general",
            Pool::HighMem => "highmem",
            Pool::Gpu => "gpu",
        }
    }
}

struct InstanceType {
    name: &'static str,
    pool: Pool,
    cores: i64,
    mem_gib: i64,
    gpus: i64,
    weight: u64,
}

const INSTANCE_TYPES: [InstanceType; 8] = [
    InstanceType {
        name: "m6i.xlarge",
        pool: Pool::General,
        cores: 4,
        mem_gib: 16,
        gpus: 0,
        weight: 3,
    },
    InstanceType {
        name: "m6i.2xlarge",
        pool: Pool::General,
        cores: 8,
        mem_gib: 32,
        gpus: 0,
        weight: 4,
    },
    InstanceType {
        name: "c6i.2xlarge",
        pool: Pool::General,
        cores: 8,
        mem_gib: 16,
        gpus: 0,
        weight: 2,
    },
    InstanceType {
        name: "m6i.4xlarge",
        pool: Pool::General,
        cores: 16,
        mem_gib: 64,
        gpus: 0,
        weight: 2,
    },
    InstanceType {
        name: "r6i.2xlarge",
        pool: Pool::HighMem,
        cores: 8,
        mem_gib: 64,
        gpus: 0,
        weight: 2,
    },
    InstanceType {
        name: "r6i.4xlarge",
        pool: Pool::HighMem,
        cores: 16,
        mem_gib: 128,
        gpus: 0,
        weight: 1,
    },
    InstanceType {
        name: "g5.4xlarge",
        pool: Pool::Gpu,
        cores: 16,
        mem_gib: 64,
        gpus: 1,
        weight: 2,
    },
    InstanceType {
        name: "g5.12xlarge",
        pool: Pool::Gpu,
        cores: 48,
        mem_gib: 192,
        gpus: 4,
        weight: 1,
    },
];

const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const REGION: &str = "us-east-1";
const GPU_TAINT: &str = "nvidia.com/gpu";
const GPU_RESOURCE: &str = "nvidia.com/gpu";
const POOL_LABEL: &str = "node-pool";
const GPU_PRESENT_LABEL: &str = "nvidia.com/gpu.present";

/// The resources a node of `t` offers, EKS-style: kube-reserved cpu by the 6/1/0.5/0.25 %
/// rule, memory minus 255 MiB + 11 MiB per pod and a 100 MiB eviction threshold.
struct NodeSize {
    cap_cpu: i64,
    alloc_cpu: i64,
    cap_mem_ki: i64,
    alloc_mem_ki: i64,
    max_pods: i64,
}

fn node_size(t: &InstanceType, max_pods: i64) -> NodeSize {
    let reserved_cpu = 60 + 10 + 5 * (t.cores.clamp(2, 4) - 2) + (t.cores - 4).max(0) * 5 / 2;
    let cap_mem_ki = t.mem_gib * 1024 * 1024 - t.mem_gib * 1024 * 40;
    let reserved_ki = (255 + 11 * max_pods) * 1024 + 100 * 1024;
    NodeSize {
        cap_cpu: t.cores * 1000,
        alloc_cpu: t.cores * 1000 - reserved_cpu,
        cap_mem_ki,
        alloc_mem_ki: cap_mem_ki - reserved_ki,
        max_pods,
    }
}

// ---------------------------------------------------------------------------------------
// Workload templates.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spread {
    None,
    /// Zone, maxSkew 1, ScheduleAnyway.
    ZoneSoft,
    /// Zone, maxSkew 1, DoNotSchedule (only for templates that may run on every node).
    ZoneHard,
    /// Hostname, maxSkew 2, ScheduleAnyway.
    HostSoft,
}

/// Which nodes a workload asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// No node selection.
    Any,
    /// `nodeSelector: {node-pool: ...}`.
    Pool(Pool),
    /// Required node affinity `nvidia.com/gpu.present In [true]`.
    GpuAffinity,
    /// DaemonSet on every node.
    EveryNode,
    /// DaemonSet on GPU nodes only (`nodeSelector`).
    GpuNodes,
}

struct Template {
    namespace: &'static str,
    name: &'static str,
    kind: Kind,
    tier: &'static str,
    class: Option<&'static str>,
    /// Main container requests: millicores and MiB, sampled per app in these ranges.
    cpu: (i64, i64),
    mem: (i64, i64),
    image: &'static str,
    image_mb: i64,
    target: Target,
    gpus: i64,
    host_ports: &'static [i32],
    container_port: i32,
    anti_affinity: bool,
    preferred_anti_affinity: bool,
    spread: Spread,
    /// A native sidecar (`istio-proxy`, an init container with restartPolicy Always).
    sidecar: bool,
    /// An ordinary init container that runs before the sidecar.
    init: bool,
    /// A second app container exporting metrics.
    exporter: bool,
    tolerates_gpu: bool,
    /// Limits equal to requests.
    guaranteed: bool,
    /// No resources at all.
    best_effort: bool,
    pdb: bool,
    weight: u64,
    /// Business namespaces are repeated per team in larger clusters.
    per_team: bool,
}

const BASE: Template = Template {
    namespace: "default",
    name: "app",
    kind: Kind::Deployment,
    tier: "backend",
    class: None,
    cpu: (100, 500),
    mem: (128, 512),
    image: "registry.example.com/app:1.0.0",
    image_mb: 150,
    target: Target::Any,
    gpus: 0,
    host_ports: &[],
    container_port: 8080,
    anti_affinity: false,
    preferred_anti_affinity: false,
    spread: Spread::None,
    sidecar: false,
    init: false,
    exporter: false,
    tolerates_gpu: false,
    guaranteed: false,
    best_effort: false,
    pdb: false,
    weight: 2,
    per_team: true,
};

const DAEMONS: &[Template] = &[
    Template {
        namespace: "kube-system",
        name: "kube-proxy",
        kind: Kind::DaemonSet,
        tier: "infra",
        class: Some(SYSTEM_NODE_CRITICAL),
        cpu: (100, 100),
        mem: (0, 0),
        image: "registry.k8s.io/kube-proxy:v1.35.0",
        image_mb: 30,
        target: Target::EveryNode,
        host_ports: &[10256],
        container_port: 10256,
        per_team: false,
        ..BASE
    },
    Template {
        namespace: "logging",
        name: "fluent-bit",
        kind: Kind::DaemonSet,
        tier: "infra",
        class: Some(SYSTEM_NODE_CRITICAL),
        cpu: (100, 100),
        mem: (128, 128),
        image: "cr.fluentbit.io/fluent/fluent-bit:3.2.4",
        image_mb: 35,
        target: Target::EveryNode,
        host_ports: &[2020],
        container_port: 2020,
        per_team: false,
        ..BASE
    },
    Template {
        namespace: "monitoring",
        name: "node-exporter",
        kind: Kind::DaemonSet,
        tier: "monitoring",
        class: Some(CLASS_CRITICAL),
        cpu: (50, 50),
        mem: (64, 64),
        image: "quay.io/prometheus/node-exporter:v1.8.2",
        image_mb: 12,
        target: Target::EveryNode,
        host_ports: &[9100],
        container_port: 9100,
        per_team: false,
        ..BASE
    },
    Template {
        namespace: "kube-system",
        name: "nvidia-device-plugin",
        kind: Kind::DaemonSet,
        tier: "infra",
        class: Some(SYSTEM_NODE_CRITICAL),
        cpu: (50, 50),
        mem: (64, 64),
        image: "nvcr.io/nvidia/k8s-device-plugin:v0.17.0",
        image_mb: 150,
        target: Target::GpuNodes,
        container_port: 0,
        per_team: false,
        ..BASE
    },
];

const WORKLOADS: &[Template] = &[
    // Cluster add-ons.
    Template {
        namespace: "kube-system",
        name: "coredns",
        tier: "infra",
        class: Some(SYSTEM_CLUSTER_CRITICAL),
        cpu: (100, 100),
        mem: (70, 70),
        image: "registry.k8s.io/coredns/coredns:v1.12.0",
        image_mb: 20,
        container_port: 53,
        anti_affinity: true,
        pdb: true,
        weight: 1,
        per_team: false,
        ..BASE
    },
    Template {
        namespace: "kube-system",
        name: "metrics-server",
        tier: "infra",
        class: Some(SYSTEM_CLUSTER_CRITICAL),
        cpu: (100, 100),
        mem: (200, 200),
        image: "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
        image_mb: 20,
        container_port: 10250,
        weight: 1,
        per_team: false,
        ..BASE
    },
    Template {
        namespace: "ingress-nginx",
        name: "ingress-nginx-controller",
        tier: "edge",
        class: Some(CLASS_CRITICAL),
        cpu: (200, 500),
        mem: (256, 512),
        image: "registry.k8s.io/ingress-nginx/controller:v1.12.0",
        image_mb: 110,
        host_ports: &[80, 443],
        container_port: 80,
        anti_affinity: true,
        spread: Spread::ZoneHard,
        pdb: true,
        weight: 1,
        per_team: false,
        ..BASE
    },
    Template {
        namespace: "monitoring",
        name: "prometheus",
        kind: Kind::StatefulSet,
        tier: "monitoring",
        class: Some(CLASS_CRITICAL),
        cpu: (1000, 4000),
        mem: (4096, 16384),
        image: "quay.io/prometheus/prometheus:v3.1.0",
        image_mb: 290,
        container_port: 9090,
        anti_affinity: true,
        pdb: true,
        weight: 1,
        per_team: false,
        ..BASE
    },
    Template {
        namespace: "monitoring",
        name: "alertmanager",
        kind: Kind::StatefulSet,
        tier: "monitoring",
        class: Some(CLASS_CRITICAL),
        cpu: (50, 100),
        mem: (128, 256),
        image: "quay.io/prometheus/alertmanager:v0.28.0",
        image_mb: 70,
        container_port: 9093,
        anti_affinity: true,
        pdb: true,
        weight: 1,
        per_team: false,
        ..BASE
    },
    Template {
        namespace: "monitoring",
        name: "kube-state-metrics",
        tier: "monitoring",
        class: Some(CLASS_CRITICAL),
        cpu: (100, 200),
        mem: (256, 512),
        image: "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.14.0",
        image_mb: 45,
        weight: 1,
        per_team: false,
        ..BASE
    },
    Template {
        namespace: "monitoring",
        name: "grafana",
        tier: "monitoring",
        cpu: (100, 250),
        mem: (256, 512),
        image: "docker.io/grafana/grafana:11.4.0",
        image_mb: 480,
        container_port: 3000,
        init: true,
        weight: 1,
        per_team: false,
        ..BASE
    },
    Template {
        namespace: "logging",
        name: "loki-ingester",
        kind: Kind::StatefulSet,
        tier: "logging",
        class: Some(CLASS_HIGH),
        cpu: (500, 2000),
        mem: (2048, 8192),
        image: "docker.io/grafana/loki:3.3.2",
        image_mb: 85,
        container_port: 3100,
        anti_affinity: true,
        spread: Spread::ZoneSoft,
        pdb: true,
        weight: 1,
        per_team: false,
        ..BASE
    },
    Template {
        namespace: "logging",
        name: "loki-querier",
        tier: "logging",
        cpu: (250, 1000),
        mem: (1024, 4096),
        image: "docker.io/grafana/loki:3.3.2",
        image_mb: 85,
        container_port: 3100,
        preferred_anti_affinity: true,
        weight: 1,
        per_team: false,
        ..BASE
    },
    // Shop.
    Template {
        namespace: "shop",
        name: "frontend",
        tier: "frontend",
        class: Some(CLASS_HIGH),
        cpu: (100, 500),
        mem: (256, 1024),
        image: "registry.example.com/shop/frontend:2.14.1",
        image_mb: 210,
        spread: Spread::ZoneSoft,
        sidecar: true,
        pdb: true,
        weight: 4,
        ..BASE
    },
    Template {
        namespace: "shop",
        name: "checkout-api",
        class: Some(CLASS_HIGH),
        cpu: (250, 1000),
        mem: (1024, 3072),
        image: "registry.example.com/shop/checkout-api:5.3.0",
        image_mb: 320,
        spread: Spread::ZoneHard,
        sidecar: true,
        init: true,
        pdb: true,
        weight: 3,
        ..BASE
    },
    Template {
        namespace: "shop",
        name: "cart",
        cpu: (100, 500),
        mem: (512, 1536),
        image: "registry.example.com/shop/cart:3.0.7",
        image_mb: 180,
        sidecar: true,
        pdb: true,
        weight: 3,
        ..BASE
    },
    Template {
        namespace: "shop",
        name: "catalog",
        cpu: (200, 1000),
        mem: (1024, 4096),
        image: "registry.example.com/shop/catalog:1.22.0",
        image_mb: 260,
        sidecar: true,
        exporter: true,
        spread: Spread::HostSoft,
        weight: 3,
        ..BASE
    },
    Template {
        namespace: "shop",
        name: "search-api",
        cpu: (500, 2000),
        mem: (2048, 8192),
        image: "registry.example.com/shop/search-api:4.1.2",
        image_mb: 540,
        sidecar: true,
        pdb: true,
        preferred_anti_affinity: true,
        weight: 2,
        ..BASE
    },
    Template {
        namespace: "shop",
        name: "recommendations",
        class: Some(CLASS_LOW),
        cpu: (500, 2000),
        mem: (2048, 6144),
        image: "registry.example.com/shop/recommendations:0.9.4",
        image_mb: 1250,
        exporter: true,
        weight: 2,
        ..BASE
    },
    Template {
        namespace: "shop",
        name: "redis-cache",
        kind: Kind::StatefulSet,
        tier: "data",
        class: Some(CLASS_HIGH),
        cpu: (250, 1000),
        mem: (1024, 8192),
        image: "docker.io/library/redis:7.4.2",
        image_mb: 45,
        container_port: 6379,
        anti_affinity: true,
        guaranteed: true,
        pdb: true,
        weight: 1,
        ..BASE
    },
    // Payments.
    Template {
        namespace: "payments",
        name: "payments-gateway",
        tier: "frontend",
        class: Some(CLASS_HIGH),
        cpu: (250, 1000),
        mem: (512, 2048),
        image: "registry.example.com/payments/gateway:7.0.3",
        image_mb: 190,
        anti_affinity: true,
        spread: Spread::ZoneHard,
        sidecar: true,
        guaranteed: true,
        pdb: true,
        weight: 2,
        ..BASE
    },
    Template {
        namespace: "payments",
        name: "ledger",
        kind: Kind::StatefulSet,
        class: Some(CLASS_HIGH),
        cpu: (1000, 2000),
        mem: (2048, 8192),
        image: "registry.example.com/payments/ledger:12.1.0",
        image_mb: 410,
        container_port: 5432,
        anti_affinity: true,
        guaranteed: true,
        pdb: true,
        weight: 1,
        ..BASE
    },
    Template {
        namespace: "payments",
        name: "fraud-scoring",
        cpu: (500, 2000),
        mem: (2048, 8192),
        image: "registry.example.com/payments/fraud-scoring:2.8.0",
        image_mb: 930,
        exporter: true,
        pdb: true,
        weight: 2,
        ..BASE
    },
    Template {
        namespace: "payments",
        name: "settlement-worker",
        tier: "worker",
        class: Some(CLASS_LOW),
        cpu: (100, 500),
        mem: (512, 2048),
        image: "registry.example.com/payments/settlement:3.3.1",
        image_mb: 170,
        init: true,
        weight: 2,
        ..BASE
    },
    // Data.
    Template {
        namespace: "data",
        name: "kafka-broker",
        kind: Kind::StatefulSet,
        tier: "data",
        class: Some(CLASS_HIGH),
        cpu: (1000, 4000),
        mem: (4096, 16384),
        image: "docker.io/bitnami/kafka:3.9.0",
        image_mb: 620,
        container_port: 9092,
        anti_affinity: true,
        pdb: true,
        weight: 1,
        ..BASE
    },
    Template {
        namespace: "data",
        name: "postgres",
        kind: Kind::StatefulSet,
        tier: "data",
        class: Some(CLASS_HIGH),
        cpu: (1000, 4000),
        mem: (8192, 32768),
        image: "docker.io/library/postgres:17.2",
        image_mb: 430,
        container_port: 5432,
        target: Target::Pool(Pool::HighMem),
        anti_affinity: true,
        guaranteed: true,
        pdb: true,
        weight: 1,
        ..BASE
    },
    Template {
        namespace: "data",
        name: "clickhouse",
        kind: Kind::StatefulSet,
        tier: "data",
        cpu: (2000, 6000),
        mem: (16384, 49152),
        image: "docker.io/clickhouse/clickhouse-server:24.12",
        image_mb: 780,
        container_port: 8123,
        target: Target::Pool(Pool::HighMem),
        anti_affinity: true,
        pdb: true,
        weight: 1,
        ..BASE
    },
    Template {
        namespace: "data",
        name: "spark-executor",
        tier: "batch",
        class: Some(CLASS_BATCH),
        cpu: (1000, 4000),
        mem: (4096, 16384),
        image: "docker.io/apache/spark:3.5.4",
        image_mb: 1020,
        tolerates_gpu: true,
        weight: 3,
        ..BASE
    },
    Template {
        namespace: "data",
        name: "airflow-worker",
        tier: "worker",
        cpu: (500, 2000),
        mem: (2048, 6144),
        image: "docker.io/apache/airflow:2.10.4",
        image_mb: 1480,
        init: true,
        weight: 2,
        ..BASE
    },
    Template {
        namespace: "data",
        name: "etl-runner",
        kind: Kind::Job,
        tier: "batch",
        class: Some(CLASS_BATCH),
        cpu: (250, 2000),
        mem: (1024, 8192),
        image: "registry.example.com/data/etl:2024.12.3",
        image_mb: 690,
        tolerates_gpu: true,
        weight: 3,
        ..BASE
    },
    // ML.
    Template {
        namespace: "ml",
        name: "trainer",
        kind: Kind::Job,
        tier: "ml",
        class: Some(CLASS_LOW),
        cpu: (4000, 8000),
        mem: (16384, 40960),
        image: "nvcr.io/nvidia/pytorch:24.12-py3",
        image_mb: 9800,
        target: Target::Pool(Pool::Gpu),
        gpus: 1,
        tolerates_gpu: true,
        weight: 3,
        ..BASE
    },
    Template {
        namespace: "ml",
        name: "inference",
        tier: "ml",
        class: Some(CLASS_HIGH),
        cpu: (2000, 4000),
        mem: (8192, 24576),
        image: "nvcr.io/nvidia/tritonserver:24.12-py3",
        image_mb: 7400,
        container_port: 8000,
        target: Target::GpuAffinity,
        gpus: 1,
        tolerates_gpu: true,
        pdb: true,
        weight: 3,
        ..BASE
    },
    Template {
        namespace: "ml",
        name: "feature-store",
        cpu: (500, 2000),
        mem: (4096, 12288),
        image: "registry.example.com/ml/feature-store:0.42.0",
        image_mb: 880,
        pdb: true,
        weight: 1,
        ..BASE
    },
    Template {
        namespace: "ml",
        name: "notebook",
        kind: Kind::StatefulSet,
        tier: "ml",
        class: Some(CLASS_LOW),
        cpu: (500, 4000),
        mem: (4096, 16384),
        image: "quay.io/jupyter/scipy-notebook:2024-12-23",
        image_mb: 2900,
        container_port: 8888,
        tolerates_gpu: true,
        weight: 1,
        ..BASE
    },
    // Batch.
    Template {
        namespace: "batch",
        name: "report-builder",
        kind: Kind::Job,
        tier: "batch",
        class: Some(CLASS_BATCH),
        cpu: (100, 1000),
        mem: (512, 4096),
        image: "registry.example.com/batch/reports:8.2.0",
        image_mb: 340,
        weight: 3,
        ..BASE
    },
    Template {
        namespace: "batch",
        name: "video-transcode",
        kind: Kind::Job,
        tier: "batch",
        class: Some(CLASS_BATCH),
        cpu: (1000, 4000),
        mem: (1024, 4096),
        image: "registry.example.com/batch/transcode:1.9.1",
        image_mb: 760,
        tolerates_gpu: true,
        weight: 3,
        ..BASE
    },
    Template {
        namespace: "batch",
        name: "crawler",
        tier: "worker",
        class: Some(CLASS_LOW),
        cpu: (50, 250),
        mem: (128, 512),
        image: "registry.example.com/batch/crawler:0.31.0",
        image_mb: 95,
        tolerates_gpu: true,
        weight: 3,
        ..BASE
    },
    Template {
        namespace: "batch",
        name: "image-resizer",
        tier: "worker",
        class: Some(CLASS_LOW),
        cpu: (100, 500),
        mem: (256, 1024),
        image: "registry.example.com/batch/resizer:2.0.5",
        image_mb: 130,
        weight: 2,
        ..BASE
    },
    Template {
        namespace: "batch",
        name: "queue-poller",
        tier: "worker",
        class: Some(CLASS_BATCH),
        cpu: (10, 50),
        mem: (32, 96),
        image: "registry.example.com/batch/poller:1.4.0",
        image_mb: 40,
        tolerates_gpu: true,
        weight: 2,
        ..BASE
    },
    Template {
        namespace: "batch",
        name: "sleeper",
        tier: "debug",
        class: Some(CLASS_BATCH),
        cpu: (0, 0),
        mem: (0, 0),
        image: "docker.io/library/busybox:1.37",
        image_mb: 4,
        tolerates_gpu: true,
        best_effort: true,
        weight: 1,
        per_team: false,
        ..BASE
    },
];

/// The smallest requests the filler leaves room for on every node: the sidecar-less
/// `queue-poller`-sized pod. Below that the BestEffort `sleeper` fills the slots.
const FILLER_CPU: i64 = 10;
const FILLER_MEM_MIB: i64 = 32;

const TEAMS: [&str; 8] = [
    "", "blue", "green", "amber", "teal", "coral", "slate", "olive",
];

const PAUSE_IMAGE: (&str, i64) = ("registry.k8s.io/pause:3.10", 1);
const BUSYBOX_IMAGE: (&str, i64) = ("docker.io/library/busybox:1.37", 4);
const ISTIO_IMAGE: (&str, i64) = ("docker.io/istio/proxyv2:1.24.2", 95);
const EXPORTER_IMAGE: (&str, i64) = ("quay.io/prometheus/statsd-exporter:v0.28.0", 18);
const PENDING_IMAGE: (&str, i64) = ("registry.example.com/payments/reconciler:1.0.0", 260);

// ---------------------------------------------------------------------------------------
// The catalog: images and apps.

struct Image {
    reference: String,
    digest_name: String,
    size: i64,
}

/// FNV-1a: a fixed hash of a text.
fn fnv(text: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

#[derive(Default)]
struct Images {
    list: Vec<Image>,
}

impl Images {
    fn intern(&mut self, reference: &str, mb: i64) -> usize {
        if let Some(i) = self.list.iter().position(|i| i.reference == reference) {
            return i;
        }
        let repo = reference.rsplit_once(':').map_or(reference, |(r, _)| r);
        // Digests and sizes are properties of the image, not of the seed.
        let h = fnv(reference);
        let digest: String = (0..4u64)
            .map(|i| format!("{:016x}", mix(h ^ mix(i))))
            .collect();
        self.list.push(Image {
            reference: reference.to_string(),
            digest_name: format!("{repo}@sha256:{digest}"),
            size: mb * 1_000_000 + (mix(!h) % 1_000_000) as i64,
        });
        self.list.len() - 1
    }
}

struct ContainerPlan {
    name: String,
    image: usize,
    cpu: i64,
    mem_mib: i64,
    gpus: i64,
    limit_cpu: Option<i64>,
    limit_mem_mib: Option<i64>,
    /// (containerPort, hostPort: 0 for none).
    port: Option<(i32, i32)>,
    extra_ports: Vec<(i32, i32)>,
    restart_always: bool,
}

impl ContainerPlan {
    fn render(&self, images: &Images) -> Value {
        let mut c = Map::new();
        c.insert("name".into(), Value::String(self.name.clone()));
        c.insert(
            "image".into(),
            Value::String(images.list[self.image].reference.clone()),
        );
        let mut requests = Map::new();
        let mut limits = Map::new();
        if self.cpu > 0 {
            requests.insert("cpu".into(), Value::String(cpu_qty(self.cpu)));
        }
        if self.mem_mib > 0 {
            requests.insert("memory".into(), Value::String(mem_qty(self.mem_mib)));
        }
        if self.gpus > 0 {
            requests.insert(GPU_RESOURCE.into(), Value::String(self.gpus.to_string()));
            limits.insert(GPU_RESOURCE.into(), Value::String(self.gpus.to_string()));
        }
        if let Some(l) = self.limit_cpu {
            limits.insert("cpu".into(), Value::String(cpu_qty(l)));
        }
        if let Some(l) = self.limit_mem_mib {
            limits.insert("memory".into(), Value::String(mem_qty(l)));
        }
        let mut resources = Map::new();
        if !limits.is_empty() {
            resources.insert("limits".into(), Value::Object(limits));
        }
        if !requests.is_empty() {
            resources.insert("requests".into(), Value::Object(requests));
        }
        c.insert("resources".into(), Value::Object(resources));
        let ports: Vec<Value> = self
            .port
            .iter()
            .chain(&self.extra_ports)
            .map(|&(container_port, host_port)| {
                let mut p = json!({"containerPort": container_port, "protocol": "TCP"});
                if host_port > 0 {
                    p["hostPort"] = json!(host_port);
                }
                p
            })
            .collect();
        if !ports.is_empty() {
            c.insert("ports".into(), Value::Array(ports));
        }
        if self.restart_always {
            c.insert("restartPolicy".into(), Value::String("Always".into()));
        }
        c.insert(
            "terminationMessagePolicy".into(),
            Value::String("File".into()),
        );
        Value::Object(c)
    }
}

struct App {
    t: &'static Template,
    namespace: String,
    name: String,
    /// pod-template-hash / controller-revision-hash.
    hash: String,
    salt: u64,
    containers: Vec<ContainerPlan>,
    init_containers: Vec<ContainerPlan>,
    /// Effective pod requests (`PodRequests`): millicores, bytes, GPUs.
    cpu: i64,
    mem: i64,
    gpus: i64,
    host_ports: Vec<i32>,
    priority: i32,
    pdb_allowed: i32,
    weight: u64,
}

impl App {
    fn new(t: &'static Template, team: &str, rng: &mut Rng, images: &mut Images) -> App {
        let namespace = if team.is_empty() || !t.per_team {
            t.namespace.to_string()
        } else {
            format!("{}-{team}", t.namespace)
        };
        let salt = rng.next_u64();
        let hash = encode_suffix(salt, 10);
        let cpu = if t.best_effort {
            0
        } else {
            nice_cpu(skewed(rng, t.cpu.0, t.cpu.1))
        };
        let mem = if t.best_effort || t.mem.1 == 0 {
            0
        } else {
            nice_mem(skewed(rng, t.mem.0, t.mem.1))
        };
        let main_image = images.intern(t.image, t.image_mb);
        let (limit_cpu, limit_mem) = if t.best_effort {
            (None, None)
        } else if t.guaranteed {
            (Some(cpu), Some(mem))
        } else if mem > 0 && rng.chance(70) {
            (None, Some(nice_mem(mem * 2)))
        } else {
            (None, None)
        };
        let port = (t.container_port > 0 && !t.best_effort).then(|| {
            let host = t.host_ports.first().copied().unwrap_or(0);
            (if host > 0 { host } else { t.container_port }, host)
        });
        let mut containers = vec![ContainerPlan {
            name: t.name.to_string(),
            image: main_image,
            cpu,
            mem_mib: mem,
            gpus: t.gpus,
            limit_cpu,
            limit_mem_mib: limit_mem,
            port,
            extra_ports: t.host_ports.iter().skip(1).map(|&p| (p, p)).collect(),
            restart_always: false,
        }];
        if t.exporter {
            containers.push(ContainerPlan {
                name: "metrics-exporter".into(),
                image: images.intern(EXPORTER_IMAGE.0, EXPORTER_IMAGE.1),
                cpu: 20,
                mem_mib: 32,
                gpus: 0,
                limit_cpu: t.guaranteed.then_some(20),
                limit_mem_mib: Some(64),
                port: Some((9102, 0)),
                extra_ports: Vec::new(),
                restart_always: false,
            });
        }
        let mut init_containers = Vec::new();
        if t.init {
            init_containers.push(ContainerPlan {
                name: if rng.chance(50) {
                    "migrate"
                } else {
                    "wait-for-deps"
                }
                .into(),
                image: images.intern(BUSYBOX_IMAGE.0, BUSYBOX_IMAGE.1),
                cpu: 50,
                mem_mib: 64,
                gpus: 0,
                limit_cpu: None,
                limit_mem_mib: None,
                port: None,
                extra_ports: Vec::new(),
                restart_always: false,
            });
        }
        if t.sidecar {
            init_containers.push(ContainerPlan {
                name: "istio-proxy".into(),
                image: images.intern(ISTIO_IMAGE.0, ISTIO_IMAGE.1),
                cpu: 100,
                mem_mib: 128,
                gpus: 0,
                limit_cpu: t.guaranteed.then_some(100),
                limit_mem_mib: Some(if t.guaranteed { 128 } else { 1024 }),
                port: Some((15090, 0)),
                extra_ports: Vec::new(),
                restart_always: true,
            });
        }
        // PodRequests: app containers plus sidecars, against each ordinary init
        // container with the sidecars started before it.
        let mut sum = [0i64; 3];
        for c in &containers {
            sum[0] += c.cpu;
            sum[1] += c.mem_mib;
            sum[2] += c.gpus;
        }
        let mut sidecars = [0i64; 3];
        let mut init_max = [0i64; 3];
        for c in &init_containers {
            let amounts = [c.cpu, c.mem_mib, c.gpus];
            for k in 0..3 {
                if c.restart_always {
                    sum[k] += amounts[k];
                    sidecars[k] += amounts[k];
                    init_max[k] = init_max[k].max(sidecars[k]);
                } else {
                    init_max[k] = init_max[k].max(amounts[k] + sidecars[k]);
                }
            }
        }
        let host_ports = t.host_ports.to_vec();
        let weight = (t.weight * 4).saturating_sub(rng.below(3)).max(1);
        App {
            t,
            name: t.name.to_string(),
            namespace,
            hash,
            salt,
            containers,
            init_containers,
            cpu: sum[0].max(init_max[0]),
            mem: sum[1].max(init_max[1]) * MIB,
            gpus: sum[2].max(init_max[2]),
            host_ports,
            priority: class_value(t.class),
            pdb_allowed: rng.range(0, 2) as i32,
            weight,
        }
    }

    fn fits_pool(&self, pool: Pool) -> bool {
        let target_ok = match self.t.target {
            Target::Any => true,
            Target::Pool(p) => p == pool,
            Target::GpuAffinity | Target::GpuNodes => pool == Pool::Gpu,
            Target::EveryNode => true,
        };
        target_ok && (pool != Pool::Gpu || self.t.tolerates_gpu || self.t.kind == Kind::DaemonSet)
    }

    fn pod_name(&self, ordinal: u64) -> String {
        match self.t.kind {
            Kind::Deployment => format!(
                "{}-{}-{}",
                self.name,
                self.hash,
                pod_suffix(ordinal, mix(self.salt))
            ),
            Kind::StatefulSet => format!("{}-{ordinal}", self.name),
            Kind::DaemonSet | Kind::Job => {
                format!("{}-{}", self.name, pod_suffix(ordinal, mix(self.salt)))
            }
        }
    }

    fn labels(&self, ordinal: u64) -> Value {
        let mut l = Map::new();
        l.insert("app".into(), Value::String(self.name.clone()));
        l.insert("tier".into(), Value::String(self.t.tier.into()));
        match self.t.kind {
            Kind::Deployment => {
                l.insert("pod-template-hash".into(), Value::String(self.hash.clone()));
            }
            Kind::StatefulSet => {
                l.insert(
                    "controller-revision-hash".into(),
                    Value::String(format!("{}-{}", self.name, self.hash)),
                );
                l.insert(
                    "statefulset.kubernetes.io/pod-name".into(),
                    Value::String(self.pod_name(ordinal)),
                );
            }
            Kind::DaemonSet => {
                l.insert(
                    "controller-revision-hash".into(),
                    Value::String(self.hash.clone()),
                );
            }
            Kind::Job => {
                l.insert(
                    "batch.kubernetes.io/job-name".into(),
                    Value::String(format!("{}-{}", self.name, &self.hash[..5])),
                );
            }
        }
        Value::Object(l)
    }

    /// The pod's spec without `nodeName`.
    fn spec(&self, images: &Images) -> Map<String, Value> {
        let t = self.t;
        let mut spec = Map::new();
        spec.insert(
            "containers".into(),
            Value::Array(self.containers.iter().map(|c| c.render(images)).collect()),
        );
        if !self.init_containers.is_empty() {
            spec.insert(
                "initContainers".into(),
                Value::Array(
                    self.init_containers
                        .iter()
                        .map(|c| c.render(images))
                        .collect(),
                ),
            );
        }
        if let Some(class) = t.class {
            spec.insert("priorityClassName".into(), Value::String(class.into()));
        }
        spec.insert(
            "restartPolicy".into(),
            Value::String(
                if t.kind == Kind::Job {
                    "Never"
                } else {
                    "Always"
                }
                .into(),
            ),
        );
        spec.insert(
            "schedulerName".into(),
            Value::String("default-scheduler".into()),
        );
        let selector = || json!({"matchLabels": {"app": self.name}});
        match t.target {
            Target::Pool(p) => {
                spec.insert("nodeSelector".into(), json!({ POOL_LABEL: p.label() }));
            }
            Target::GpuNodes => {
                spec.insert("nodeSelector".into(), json!({ GPU_PRESENT_LABEL: "true" }));
            }
            Target::Any | Target::EveryNode | Target::GpuAffinity => {}
        }
        let mut affinity = Map::new();
        if t.target == Target::GpuAffinity {
            affinity.insert(
                "nodeAffinity".into(),
                json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]}]}
                ]}}),
            );
        }
        if t.anti_affinity {
            affinity.insert(
                "podAntiAffinity".into(),
                json!({"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": selector(), "topologyKey": "kubernetes.io/hostname"}
                ]}),
            );
        } else if t.preferred_anti_affinity {
            affinity.insert(
                "podAntiAffinity".into(),
                json!({"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": {"labelSelector": selector(), "topologyKey": "topology.kubernetes.io/zone"}}
                ]}),
            );
        }
        if !affinity.is_empty() {
            spec.insert("affinity".into(), Value::Object(affinity));
        }
        let spread = match t.spread {
            Spread::None => None,
            Spread::ZoneSoft => Some(("topology.kubernetes.io/zone", 1, "ScheduleAnyway")),
            Spread::ZoneHard => Some(("topology.kubernetes.io/zone", 1, "DoNotSchedule")),
            Spread::HostSoft => Some(("kubernetes.io/hostname", 2, "ScheduleAnyway")),
        };
        if let Some((key, skew, action)) = spread {
            spec.insert(
                "topologySpreadConstraints".into(),
                json!([{"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": action, "labelSelector": selector()}]),
            );
        }
        if t.kind == Kind::DaemonSet {
            spec.insert("tolerations".into(), json!([{"operator": "Exists"}]));
        } else if t.tolerates_gpu {
            spec.insert(
                "tolerations".into(),
                json!([{"key": GPU_TAINT, "operator": "Exists", "effect": "NoSchedule"}]),
            );
        }
        spec
    }

    fn qos_class(&self) -> &'static str {
        if self.t.best_effort {
            "BestEffort"
        } else if self.t.guaranteed {
            "Guaranteed"
        } else {
            "Burstable"
        }
    }
}

// ---------------------------------------------------------------------------------------
// The plan: nodes, and which app's pods run where. Sequential and integer-only; the
// JSON is rendered from it afterwards, in parallel.

/// The parts of an app's pod JSON that are the same for every replica, serialised.
struct PodJson {
    /// The `labels` object; None when it differs per pod (StatefulSets).
    labels: Option<Vec<u8>>,
    /// The namespace as a JSON string.
    namespace: Vec<u8>,
    /// The spec's entries whose keys sort before `nodeName`, and after it.
    spec_head: Vec<u8>,
    spec_tail: Vec<u8>,
}

impl PodJson {
    fn new(app: &App, images: &Images) -> PodJson {
        let spec = app.spec(images);
        let mut keys: Vec<&String> = spec.keys().collect();
        keys.sort();
        let (mut spec_head, mut spec_tail) = (Vec::new(), Vec::new());
        for key in keys {
            let part = if key.as_str() < "nodeName" {
                &mut spec_head
            } else {
                &mut spec_tail
            };
            if !part.is_empty() {
                part.push(b',');
            }
            json_str(part, key);
            part.push(b':');
            json_value(part, &spec[key]);
        }
        // `containers` sorts before `nodeName`, `schedulerName` after it.
        assert!(!spec_head.is_empty() && !spec_tail.is_empty());
        let mut namespace = Vec::new();
        json_str(&mut namespace, &app.namespace);
        let labels = (app.t.kind != Kind::StatefulSet).then(|| {
            let mut l = Vec::new();
            json_value(&mut l, &app.labels(0));
            l
        });
        PodJson {
            labels,
            namespace,
            spec_head,
            spec_tail,
        }
    }
}

fn json_str(buf: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(buf, s).expect("writing to memory cannot fail");
}

fn json_value(buf: &mut Vec<u8>, v: &Value) {
    serde_json::to_writer(buf, v).expect("writing to memory cannot fail");
}

struct NodePlan {
    name: String,
    ip: String,
    itype: usize,
    zone: usize,
    cordoned: bool,
    created: i64,
    pods: Vec<PodPlan>,
    cached_images: Vec<usize>,
}

#[derive(Clone, Copy)]
struct PodPlan {
    app: usize,
    ordinal: u64,
    start: i64,
}

struct Plan {
    seed: u64,
    pods_per_node: usize,
    max_pods: i64,
    images: Images,
    apps: Vec<App>,
    nodes: Vec<NodePlan>,
    /// Pods per app, bound ones only.
    replicas: Vec<u64>,
    /// Queued pods (app, ordinal).
    queue: Vec<PodPlan>,
    /// The pending pod's cpu (millicores) and memory (MiB).
    pending_cpu: i64,
    pending_mem_mib: i64,
    pending_image: usize,
    /// Each app's pre-serialised pod fragments.
    pod_json: Vec<PodJson>,
}

impl Plan {
    fn build(cfg: &GeneratorConfig) -> Plan {
        let seed = cfg.seed;
        let p = cfg.pods_per_node;
        let max_pods = (p as i64 + 10).max(110);

        // Catalog.
        let mut rng = Rng::new(seed, STREAM_CATALOG);
        let mut images = Images::default();
        images.intern(PAUSE_IMAGE.0, PAUSE_IMAGE.1);
        let pending_image = images.intern(PENDING_IMAGE.0, PENDING_IMAGE.1);
        let teams = (cfg.nodes / 100).clamp(1, TEAMS.len());
        let mut apps = Vec::new();
        for t in DAEMONS {
            apps.push(App::new(t, "", &mut rng, &mut images));
        }
        let num_daemons = apps.len();
        for team in &TEAMS[..teams] {
            for t in WORKLOADS.iter().filter(|t| t.per_team || team.is_empty()) {
                apps.push(App::new(t, team, &mut rng, &mut images));
            }
        }
        let sleeper = apps
            .iter()
            .position(|a| a.t.best_effort)
            .expect("the catalog has a BestEffort app");

        // Layout: pools by quota, shuffled; zones round-robin within each pool.
        let mut rng = Rng::new(seed, STREAM_LAYOUT);
        let n = cfg.nodes;
        let quota = |percent: usize, at_least: usize, from: usize| {
            ((n * percent + 50) / 100).max(if n >= from { at_least } else { 0 })
        };
        let n_gpu = quota(8, 1, 8);
        let n_high = quota(16, 1, 5).min(n - n_gpu);
        let mut pools: Vec<Pool> = (0..n)
            .map(|i| {
                if i < n_gpu {
                    Pool::Gpu
                } else if i < n_gpu + n_high {
                    Pool::HighMem
                } else {
                    Pool::General
                }
            })
            .collect();
        rng.shuffle(&mut pools);
        let mut cordon = vec![false; n];
        let mut cpu_nodes: Vec<usize> = (0..n).filter(|&i| pools[i] != Pool::Gpu).collect();
        rng.shuffle(&mut cpu_nodes);
        for &i in cpu_nodes.iter().take(quota(2, 1, 20)) {
            cordon[i] = true;
        }
        let mut pool_counter = [0usize; 3];
        let mut zone_counter = [0u64; 3];
        let mut nodes = Vec::with_capacity(n);
        for (i, &pool) in pools.iter().enumerate() {
            let types: Vec<usize> = (0..INSTANCE_TYPES.len())
                .filter(|&k| INSTANCE_TYPES[k].pool == pool)
                .collect();
            // Skip types too small for the requested pod density.
            let roomy: Vec<usize> = types
                .iter()
                .copied()
                .filter(|&k| {
                    let s = node_size(&INSTANCE_TYPES[k], max_pods);
                    s.alloc_cpu >= p as i64 * 60 && s.alloc_mem_ki * 1024 >= p as i64 * 128 * MIB
                })
                .collect();
            let types = if roomy.is_empty() {
                vec![*types.last().expect("every pool has a type")]
            } else {
                roomy
            };
            let total: u64 = types.iter().map(|&k| INSTANCE_TYPES[k].weight).sum();
            let mut pick = rng.below(total);
            let itype = *types
                .iter()
                .find(|&&k| {
                    let w = INSTANCE_TYPES[k].weight;
                    if pick < w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .expect("weighted pick");
            let slot = pool as usize;
            let zone = pool_counter[slot] % 3;
            pool_counter[slot] += 1;
            let addr = 10 + zone_counter[zone];
            zone_counter[zone] += 1;
            let ip = format!(
                "10.{}.{}.{}",
                zone as u64 * 64 + addr / 65_536,
                addr / 256 % 256,
                addr % 256
            );
            nodes.push(NodePlan {
                name: format!("ip-{}.ec2.internal", ip.replace('.', "-")),
                ip,
                itype,
                zone,
                cordoned: cordon[i],
                created: NOW - rng.range(20 * DAY, 400 * DAY),
                pods: Vec::with_capacity(p),
                cached_images: Vec::new(),
            });
        }

        let mut plan = Plan {
            seed,
            pods_per_node: p,
            max_pods,
            images,
            replicas: vec![0; apps.len()],
            apps,
            nodes,
            queue: Vec::new(),
            pending_cpu: 0,
            pending_mem_mib: 0,
            pending_image,
            pod_json: Vec::new(),
        };
        plan.fill(num_daemons, sleeper);
        plan.choose_queue(cfg.pending_pods, num_daemons);
        plan.choose_pending_pod();
        plan.pod_json = plan
            .apps
            .iter()
            .map(|a| PodJson::new(a, &plan.images))
            .collect();
        plan
    }

    /// Places exactly `pods_per_node` pods on every node.
    fn fill(&mut self, num_daemons: usize, sleeper: usize) {
        let mut rng = Rng::new(self.seed, STREAM_FILL);
        let p = self.pods_per_node;
        let zones_present: Vec<bool> = (0..3)
            .map(|z| self.nodes.iter().any(|n| n.zone == z))
            .collect();
        // Weighted candidate lists per pool: (app, cumulative weight).
        let eligible: Vec<Vec<(usize, u64)>> = [Pool::General, Pool::HighMem, Pool::Gpu]
            .iter()
            .map(|&pool| {
                let mut acc = 0;
                (num_daemons..self.apps.len())
                    .filter(|&a| a != sleeper && self.apps[a].fits_pool(pool))
                    .map(|a| {
                        acc += self.apps[a].weight;
                        (a, acc)
                    })
                    .collect()
            })
            .collect();
        let filler = (num_daemons..self.apps.len())
            .filter(|&a| {
                let app = &self.apps[a];
                app.t.tolerates_gpu
                    && app.t.target == Target::Any
                    && !app.t.anti_affinity
                    && app.t.spread != Spread::ZoneHard
                    && app.host_ports.is_empty()
                    && !app.t.best_effort
            })
            .min_by_key(|&a| (self.apps[a].cpu, self.apps[a].mem, a))
            .expect("the catalog has a small unconstrained app");
        let mut zone_counts: Vec<[u64; 3]> = vec![[0; 3]; self.apps.len()];
        const SAMPLES: usize = 16;

        for ni in 0..self.nodes.len() {
            let node = &self.nodes[ni];
            let t = &INSTANCE_TYPES[node.itype];
            let size = node_size(t, self.max_pods);
            let alloc_cpu = size.alloc_cpu;
            let alloc_mem = size.alloc_mem_ki * 1024;
            let zone = node.zone;
            let (lo, hi) = if node.cordoned { (45, 75) } else { (72, 94) };
            let target_cpu = alloc_cpu as f64 * rng.range(lo, hi) as f64 / 100.0;
            let target_mem = alloc_mem as f64 * rng.range(lo, hi) as f64 / 100.0;
            let slot_cpu = (target_cpu / p as f64).max(1.0);
            let slot_mem = (target_mem / p as f64).max(1.0);
            let mut used = (0i64, 0i64, 0i64);
            let mut ports: Vec<i32> = Vec::new();
            let mut placed: Vec<usize> = Vec::with_capacity(p);

            let fits = |app: &App, used: (i64, i64, i64), cap: (i64, i64)| {
                app.cpu <= cap.0 - used.0
                    && app.mem <= cap.1 - used.1
                    && app.gpus <= t.gpus - used.2
            };
            for a in 0..num_daemons {
                let app = &self.apps[a];
                if placed.len() < p
                    && app.fits_pool(t.pool)
                    && fits(app, used, (alloc_cpu, alloc_mem))
                {
                    used = (used.0 + app.cpu, used.1 + app.mem, used.2 + app.gpus);
                    ports.extend(&app.host_ports);
                    placed.push(a);
                }
            }
            let pool_list = &eligible[match t.pool {
                Pool::General => 0,
                Pool::HighMem => 1,
                Pool::Gpu => 2,
            }];
            let total_weight = pool_list.last().map_or(0, |&(_, w)| w);
            while placed.len() < p {
                let rem = (p - placed.len()) as i64;
                let reserve = ((rem - 1) * FILLER_CPU, (rem - 1) * FILLER_MEM_MIB * MIB);
                let cap = (alloc_cpu - reserve.0, alloc_mem - reserve.1);
                let want_cpu = ((target_cpu - used.0 as f64) / rem as f64).max(0.0);
                let want_mem = ((target_mem - used.1 as f64) / rem as f64).max(0.0);
                let mut best: Option<(f64, usize)> = None;
                for _ in 0..SAMPLES {
                    if total_weight == 0 {
                        break;
                    }
                    let r = rng.below(total_weight);
                    let a = pool_list[pool_list.partition_point(|&(_, w)| w <= r)].0;
                    let app = &self.apps[a];
                    if !fits(app, used, cap)
                        || (app.t.anti_affinity && placed.contains(&a))
                        || app.host_ports.iter().any(|hp| ports.contains(hp))
                    {
                        continue;
                    }
                    if app.t.spread == Spread::ZoneHard {
                        let c = &zone_counts[a];
                        let min = (0..3)
                            .filter(|&z| zones_present[z])
                            .map(|z| c[z])
                            .min()
                            .unwrap_or(0);
                        if c[zone] + 1 > min + 1 {
                            continue;
                        }
                    }
                    // Distance from this slot's share of what is left, in units of
                    // an average slot, so that a dimension already at its target
                    // keeps pulling towards apps that add little of it.
                    let mut score = (app.cpu as f64 - want_cpu).abs() / slot_cpu
                        + (app.mem as f64 - want_mem).abs() / slot_mem;
                    if app.gpus > 0 {
                        score -= 0.75;
                    }
                    if best.is_none_or(|(s, _)| score < s) {
                        best = Some((score, a));
                    }
                }
                let choice = match best {
                    Some((_, a)) => a,
                    None if fits(&self.apps[filler], used, (alloc_cpu, alloc_mem)) => filler,
                    None => sleeper,
                };
                let app = &self.apps[choice];
                used = (used.0 + app.cpu, used.1 + app.mem, used.2 + app.gpus);
                ports.extend(&app.host_ports);
                if app.t.spread == Spread::ZoneHard {
                    zone_counts[choice][zone] += 1;
                }
                placed.push(choice);
            }

            // Unique start times on this node: daemons first, then the rest in a
            // shuffled order.
            let created = self.nodes[ni].created;
            let span = (NOW - created - 600).max(p as i64 + 1);
            let mut times: Vec<i64> = (0..placed.len())
                .map(|_| created + 300 + rng.range(0, span))
                .collect();
            times.sort_unstable();
            for k in 1..times.len() {
                times[k] = times[k].max(times[k - 1] + 1);
            }
            let daemons_here = placed.iter().take_while(|&&a| a < num_daemons).count();
            rng.shuffle(&mut times[daemons_here..]);
            for (k, (&a, &start)) in placed.iter().zip(&times).enumerate() {
                let start = if k < daemons_here {
                    created + 60 + k as i64 * 7
                } else {
                    start
                };
                let ordinal = self.replicas[a];
                self.replicas[a] += 1;
                self.nodes[ni].pods.push(PodPlan {
                    app: a,
                    ordinal,
                    start,
                });
            }
            // Images left behind by earlier pods.
            let cached = rng.range(1, 4);
            let node = &mut self.nodes[ni];
            for _ in 0..cached {
                if total_weight > 0 {
                    let r = rng.below(total_weight);
                    let a = pool_list[pool_list.partition_point(|&(_, w)| w <= r)].0;
                    node.cached_images.push(self.apps[a].containers[0].image);
                }
            }
        }
    }

    fn choose_queue(&mut self, count: usize, num_daemons: usize) {
        let mut rng = Rng::new(self.seed, STREAM_QUEUE);
        let candidates: Vec<usize> = (num_daemons..self.apps.len())
            .filter(|&a| self.apps[a].t.kind != Kind::StatefulSet)
            .collect();
        let mut next = self.replicas.clone();
        for _ in 0..count {
            let a = candidates[rng.below(candidates.len() as u64) as usize];
            self.queue.push(PodPlan {
                app: a,
                ordinal: next[a],
                start: NOW - rng.range(5, 1800),
            });
            next[a] += 1;
        }
    }

    /// Sizes the pending pod so that it fits on no node as the cluster is, but fits on
    /// some general or high-memory node once that node's lower-priority pods are gone.
    fn choose_pending_pod(&mut self) {
        let priority = class_value(Some(CLASS_HIGH));
        let mut max_free_cpu = 0;
        let mut max_free_mem = 0;
        // Per eligible node: (free cpu, free mem, cpu and mem left after evicting every
        // pod below `priority`, pods left).
        let mut nodes = Vec::new();
        for node in &self.nodes {
            let t = &INSTANCE_TYPES[node.itype];
            if t.pool == Pool::Gpu || node.cordoned {
                continue;
            }
            let size = node_size(t, self.max_pods);
            let (mut cpu, mut mem, mut keep_cpu, mut keep_mem, mut kept) = (0, 0, 0, 0, 0);
            for pod in &node.pods {
                let app = &self.apps[pod.app];
                cpu += app.cpu;
                mem += app.mem;
                if app.priority >= priority {
                    keep_cpu += app.cpu;
                    keep_mem += app.mem;
                    kept += 1;
                }
            }
            let alloc_mem = size.alloc_mem_ki * 1024;
            max_free_cpu = max_free_cpu.max(size.alloc_cpu - cpu);
            max_free_mem = max_free_mem.max(alloc_mem - mem);
            nodes.push((
                size.alloc_cpu - keep_cpu,
                alloc_mem - keep_mem,
                kept < size.max_pods,
            ));
        }
        // Prefer exceeding every node's free cpu; otherwise every node's free memory.
        let round_up = |x: i64, step: i64| (x / step + 1) * step;
        let cpu_need = round_up(max_free_cpu, 250);
        let mem_need_mib = round_up(max_free_mem / MIB, 512);
        let fits = |cpu: i64, mem_mib: i64| {
            nodes
                .iter()
                .any(|&(c, m, room)| room && c >= cpu && m >= mem_mib * MIB)
        };
        let options = [
            (cpu_need, nice_mem(cpu_need * 2)),
            (cpu_need, 1024),
            (cpu_need, 256),
            (500, mem_need_mib),
            (100, mem_need_mib),
        ];
        let (cpu, mem) = options
            .iter()
            .copied()
            .find(|&(c, m)| fits(c, m))
            .unwrap_or(options[0]);
        self.pending_cpu = cpu;
        self.pending_mem_mib = mem;
    }

    // -----------------------------------------------------------------------------------
    // Rendering.

    fn render_node(&self, i: usize) -> Value {
        let node = &self.nodes[i];
        let t = &INSTANCE_TYPES[node.itype];
        let size = node_size(t, self.max_pods);
        let mut rng = Rng::new(self.seed, STREAM_NODE + i as u64);
        let uid = uuid(&mut rng, UID_NODE + i as u64);
        let zone = ZONES[node.zone];
        let mut labels = json!({
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": node.name,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": t.name,
            "topology.kubernetes.io/region": REGION,
            "topology.kubernetes.io/zone": zone,
            POOL_LABEL: t.pool.label(),
        });
        let mut capacity = json!({
            "cpu": cpu_qty(size.cap_cpu),
            "ephemeral-storage": "104845292Ki",
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
            "memory": format!("{}Ki", size.cap_mem_ki),
            "pods": size.max_pods.to_string(),
        });
        let mut allocatable = json!({
            "cpu": cpu_qty(size.alloc_cpu),
            "ephemeral-storage": "95551679124",
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
            "memory": format!("{}Ki", size.alloc_mem_ki),
            "pods": size.max_pods.to_string(),
        });
        let mut spec = json!({
            "providerID": format!("aws:///{zone}/i-0{:016x}", rng.next_u64() >> 4),
        });
        let mut taints = Vec::new();
        if t.gpus > 0 {
            labels[GPU_PRESENT_LABEL] = json!("true");
            labels["nvidia.com/gpu.product"] = json!("NVIDIA-A10G");
            capacity[GPU_RESOURCE] = json!(t.gpus.to_string());
            allocatable[GPU_RESOURCE] = json!(t.gpus.to_string());
            taints.push(json!({"key": GPU_TAINT, "value": "present", "effect": "NoSchedule"}));
        }
        if node.cordoned {
            spec["unschedulable"] = json!(true);
            taints.push(json!({
                "key": "node.kubernetes.io/unschedulable",
                "effect": "NoSchedule",
                "timeAdded": rfc3339(NOW - rng.range(600, 3 * DAY)),
            }));
        }
        if !taints.is_empty() {
            spec["taints"] = Value::Array(taints);
        }
        // Images: those of the pods here, plus pause and a few left behind; the kubelet
        // reports them largest first.
        let mut image_ids: Vec<usize> = vec![0];
        for pod in &node.pods {
            let app = &self.apps[pod.app];
            for c in app.init_containers.iter().chain(&app.containers) {
                image_ids.push(c.image);
            }
        }
        image_ids.extend(&node.cached_images);
        image_ids.sort_unstable();
        image_ids.dedup();
        image_ids.sort_by_key(|&k| (std::cmp::Reverse(self.images.list[k].size), k));
        image_ids.truncate(50);
        let images: Vec<Value> = image_ids
            .iter()
            .map(|&k| {
                let img = &self.images.list[k];
                json!({"names": [img.digest_name, img.reference], "sizeBytes": img.size})
            })
            .collect();
        let ready_since = rfc3339(node.created + 45);
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node.name,
                "uid": uid,
                "labels": labels,
                "creationTimestamp": rfc3339(node.created),
            },
            "spec": spec,
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": node.ip},
                    {"type": "Hostname", "address": node.name},
                ],
                "allocatable": allocatable,
                "capacity": capacity,
                "conditions": [
                    {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "lastTransitionTime": ready_since},
                    {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "lastTransitionTime": ready_since},
                    {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "lastTransitionTime": ready_since},
                    {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastTransitionTime": ready_since},
                ],
                "images": images,
                "nodeInfo": {
                    "architecture": "amd64",
                    "containerRuntimeVersion": "containerd://2.0.2",
                    "kernelVersion": "6.1.119-129.201.amzn2023.x86_64",
                    "kubeProxyVersion": "",
                    "kubeletVersion": "v1.35.0-eks-4f4795d",
                    "operatingSystem": "linux",
                    "osImage": "Amazon Linux 2023.6.20250107",
                },
            },
        })
    }

    /// A queued pod (no node), as a [`Value`].
    fn render_queued_pod(&self, pod: &PodPlan, unique: u64, rng: &mut Rng) -> Value {
        let app = &self.apps[pod.app];
        let created = pod.start - rng.range(1, 4);
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": app.pod_name(pod.ordinal),
                "namespace": app.namespace,
                "uid": uuid(rng, unique),
                "labels": app.labels(pod.ordinal),
                "creationTimestamp": rfc3339(created),
            },
            "spec": Value::Object(app.spec(&self.images)),
            "status": {
                "phase": "Pending",
                "qosClass": app.qos_class(),
                "conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "lastTransitionTime": rfc3339(pod.start),
                }],
            },
        })
    }

    /// Node `i`'s pods, from [`Plan::write_node_pods`] parsed back.
    fn node_pods(&self, i: usize) -> Vec<Value> {
        let mut buf = vec![b'['];
        self.write_node_pods(i, &mut buf);
        buf.push(b']');
        serde_json::from_slice(&buf).expect("the generator writes valid JSON")
    }

    /// Writes node `i`'s pods, comma-separated, keys sorted. The hot path: everything
    /// but the per-pod fields comes pre-serialised from [`PodJson`].
    fn write_node_pods(&self, i: usize, buf: &mut Vec<u8>) {
        let node = &self.nodes[i];
        let mut rng = Rng::new(self.seed, STREAM_PODS + i as u64);
        let mut node_name = Vec::new();
        json_str(&mut node_name, &node.name);
        let mut host_ip = Vec::new();
        json_str(&mut host_ip, &node.ip);
        for (k, pod) in node.pods.iter().enumerate() {
            let app = &self.apps[pod.app];
            let frag = &self.pod_json[pod.app];
            let unique = (i * self.pods_per_node + k) as u64;
            let created = pod.start - rng.range(1, 4);
            if k > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(
                b"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"creationTimestamp\":\"",
            );
            buf.extend_from_slice(rfc3339(created).as_bytes());
            buf.extend_from_slice(b"\",\"labels\":");
            match &frag.labels {
                Some(labels) => buf.extend_from_slice(labels),
                None => json_value(buf, &app.labels(pod.ordinal)),
            }
            buf.extend_from_slice(b",\"name\":");
            json_str(buf, &app.pod_name(pod.ordinal));
            buf.extend_from_slice(b",\"namespace\":");
            buf.extend_from_slice(&frag.namespace);
            buf.extend_from_slice(b",\"uid\":\"");
            buf.extend_from_slice(uuid(&mut rng, unique).as_bytes());
            buf.extend_from_slice(b"\"},\"spec\":{");
            buf.extend_from_slice(&frag.spec_head);
            buf.extend_from_slice(b",\"nodeName\":");
            buf.extend_from_slice(&node_name);
            buf.push(b',');
            buf.extend_from_slice(&frag.spec_tail);
            buf.extend_from_slice(b"},\"status\":{\"hostIP\":");
            buf.extend_from_slice(&host_ip);
            buf.extend_from_slice(b",\"phase\":\"Running\",\"qosClass\":\"");
            buf.extend_from_slice(app.qos_class().as_bytes());
            buf.extend_from_slice(b"\",\"startTime\":\"");
            buf.extend_from_slice(rfc3339(pod.start).as_bytes());
            buf.extend_from_slice(b"\"}}");
        }
    }

    fn render_queue(&self) -> Vec<Value> {
        let mut rng = Rng::new(self.seed, STREAM_QUEUE + 100);
        self.queue
            .iter()
            .enumerate()
            .map(|(k, pod)| self.render_queued_pod(pod, UID_QUEUE + k as u64, &mut rng))
            .collect()
    }

    fn render_pdbs(&self) -> Vec<Value> {
        self.apps
            .iter()
            .enumerate()
            .filter(|(a, app)| app.t.pdb && self.replicas[*a] > 0)
            .map(|(a, app)| {
                let mut rng = Rng::new(self.seed, STREAM_PDB + a as u64);
                let expected = self.replicas[a] as i64;
                let allowed = i64::from(app.pdb_allowed).min(expected);
                let max_unavailable = allowed.max(1);
                let desired = (expected - max_unavailable).max(0);
                json!({
                    "apiVersion": "policy/v1",
                    "kind": "PodDisruptionBudget",
                    "metadata": {
                        "name": app.name,
                        "namespace": app.namespace,
                        "uid": uuid(&mut rng, UID_PDB + a as u64),
                        "generation": 1,
                        "creationTimestamp": rfc3339(NOW - 500 * DAY + a as i64 * 3600),
                    },
                    "spec": {
                        "maxUnavailable": max_unavailable,
                        "selector": {"matchLabels": {"app": app.name}},
                    },
                    "status": {
                        "currentHealthy": desired + allowed,
                        "desiredHealthy": desired,
                        "disruptionsAllowed": allowed,
                        "expectedPods": expected,
                        "observedGeneration": 1,
                        "conditions": [{
                            "type": "DisruptionAllowed",
                            "status": if allowed > 0 { "True" } else { "False" },
                            "reason": if allowed > 0 { "SufficientPods" } else { "InsufficientPods" },
                            "lastTransitionTime": rfc3339(NOW - rng.range(DAY, 30 * DAY)),
                        }],
                    },
                })
            })
            .collect()
    }

    fn render_pending_pod(&self) -> Value {
        let mut rng = Rng::new(self.seed, STREAM_PENDING);
        let hash = encode_suffix(rng.next_u64(), 10);
        let name = format!(
            "ledger-reconciler-{hash}-{}",
            pod_suffix(rng.below(1 << 20), 0)
        );
        let selector = json!({"matchLabels": {"app": "ledger-reconciler"}});
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": "payments",
                "uid": uuid(&mut rng, UID_PENDING),
                "labels": {"app": "ledger-reconciler", "tier": "backend", "pod-template-hash": hash},
                "creationTimestamp": rfc3339(NOW - 30),
            },
            "spec": {
                "containers": [{
                    "name": "reconciler",
                    "image": self.images.list[self.pending_image].reference,
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {
                        "requests": {"cpu": cpu_qty(self.pending_cpu), "memory": mem_qty(self.pending_mem_mib)},
                        "limits": {"memory": mem_qty(self.pending_mem_mib)},
                    },
                    "terminationMessagePolicy": "File",
                }],
                "priorityClassName": CLASS_HIGH,
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 50, "preference": {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": ["general"]}]}}
                ]}},
                "topologySpreadConstraints": [{
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": selector,
                }],
            },
            "status": {
                "phase": "Pending",
                "qosClass": "Burstable",
                "conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "lastTransitionTime": rfc3339(NOW - 25),
                }],
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashSet};

    use super::*;
    use crate::engine::{self, Outcome, Snapshot};
    use crate::model::ClusterObjects;
    use crate::model::taints::{TaintEffect, tolerated};

    fn config(seed: u64) -> GeneratorConfig {
        GeneratorConfig {
            nodes: 50,
            pods_per_node: 30,
            seed,
            pending_pods: 7,
        }
    }

    fn cluster(cfg: &GeneratorConfig) -> kube::Scenario {
        kube::decode_scenario(&generate_scenario(cfg)).expect("the generated scenario decodes")
    }

    #[test]
    fn same_config_gives_the_same_bytes() {
        let cfg = config(7);
        let a = serde_json::to_vec(&generate_scenario(&cfg)).unwrap();
        let b = serde_json::to_vec(&generate_scenario(&cfg)).unwrap();
        assert!(a == b, "generate_scenario is not deterministic");
        let mut streamed = Vec::new();
        write_scenario(&cfg, &mut streamed).unwrap();
        assert!(
            streamed == a,
            "write_scenario differs from generate_scenario"
        );
        let other = serde_json::to_vec(&generate_scenario(&config(8))).unwrap();
        assert!(other != a, "different seeds give the same cluster");
    }

    #[test]
    fn generated_objects_are_the_decoded_scenario() {
        for cfg in [config(1), config(7)] {
            let (direct, decoded) = (generate_objects(&cfg), cluster(&cfg));
            assert!(direct.cluster == decoded.cluster, "seed {}", cfg.seed);
            assert!(direct.pod == decoded.pod, "seed {}", cfg.seed);
        }
    }

    #[test]
    fn sizes_match_the_config() {
        let cfg = config(1);
        let doc = generate_scenario(&cfg);
        assert_eq!(doc["nodes"].as_array().unwrap().len(), 50);
        let pods = doc["pods"].as_array().unwrap();
        assert_eq!(pods.len(), 50 * 30 + 7);
        let bound = pods
            .iter()
            .filter(|p| p["spec"]["nodeName"].is_string())
            .count();
        assert_eq!(bound, 50 * 30);
        assert!(doc["pod"].is_object());
        let classes = doc["priorityClasses"].as_array().unwrap();
        assert_eq!(classes.len(), 7);
        let defaults: Vec<_> = classes
            .iter()
            .filter(|c| c["globalDefault"] == json!(true))
            .collect();
        assert_eq!(defaults.len(), 1);

        let s = cluster(&cfg);
        assert_eq!(s.cluster.nodes.len(), 50);
        assert_eq!(s.cluster.pods.len(), 50 * 30 + 7);
        let snapshot = Snapshot::build(s.cluster).unwrap();
        assert_eq!(snapshot.pending_pods().count(), 7);
        assert!(
            snapshot
                .nodes
                .iter()
                .all(|n| snapshot.nominated_pods(n.name()).is_empty())
        );
        for node in &snapshot.nodes {
            assert_eq!(node.pods.len(), 30, "{}", node.name());
        }

        // Edge sizes do not panic.
        for (nodes, pods_per_node) in [(0, 30), (1, 0), (3, 2), (7, 120)] {
            let cfg = GeneratorConfig {
                nodes,
                pods_per_node,
                seed: 3,
                pending_pods: 2,
            };
            let s = cluster(&cfg);
            assert_eq!(s.cluster.pods.len(), nodes * pods_per_node + 2);
            Snapshot::build(s.cluster).unwrap();
        }
    }

    #[test]
    fn no_node_is_over_committed_and_nodes_are_busy() {
        for seed in [1, 2, 3] {
            let s = cluster(&config(seed));
            let snapshot = Snapshot::build(s.cluster).unwrap();
            let (mut cpu, mut mem, mut n) = (0.0, 0.0, 0.0);
            for node in &snapshot.nodes {
                let alloc = &node.node.allocatable;
                let used = &node.requested;
                let name = node.name();
                assert!(
                    used.milli_cpu <= alloc.milli_cpu,
                    "{name}: cpu over-committed"
                );
                assert!(used.memory <= alloc.memory, "{name}: memory over-committed");
                assert!(
                    node.pods.len() as i64 <= node.node.allowed_pods,
                    "{name}: pods"
                );
                assert!(
                    used.scalar(GPU_RESOURCE) <= alloc.scalar(GPU_RESOURCE),
                    "{name}: gpus over-committed"
                );
                if !node.node.unschedulable {
                    cpu += used.milli_cpu as f64 / alloc.milli_cpu as f64;
                    mem += used.memory as f64 / alloc.memory as f64;
                    n += 1.0;
                }
            }
            let (cpu, mem) = (cpu / n, mem / n);
            assert!((0.65..=0.96).contains(&cpu), "mean cpu utilisation {cpu}");
            assert!(
                (0.65..=0.96).contains(&mem),
                "mean memory utilisation {mem}"
            );
        }
    }

    #[test]
    fn the_pending_pod_preempts() {
        for seed in 1..=6 {
            let s = cluster(&config(seed));
            let pod = s.pod.expect("a pending pod");
            assert_eq!(pod.priority, 10_000);
            let snapshot = Snapshot::build(s.cluster).unwrap();
            let decision = engine::decide(&snapshot, &pod);
            assert_eq!(decision.outcome, Outcome::Preempts, "seed {seed}");
            assert!(decision.node.is_some());
        }
        // The demo's size as well.
        let s = cluster(&GeneratorConfig {
            nodes: 300,
            ..config(11)
        });
        let snapshot = Snapshot::build(s.cluster).unwrap();
        let decision = engine::decide(&snapshot, &s.pod.unwrap());
        assert_eq!(decision.outcome, Outcome::Preempts);
    }

    /// Every running pod would pass the filters on its own node if it were scheduled
    /// again onto the cluster without it.
    #[test]
    fn every_pod_could_have_been_scheduled_where_it_runs() {
        let s = cluster(&config(5));
        let objects = s.cluster;
        for i in (0..objects.pods.len()).step_by(9) {
            let Some(node) = objects.pods[i].node_name.clone() else {
                continue;
            };
            let mut pod = objects.pods[i].clone();
            pod.node_name = None;
            // Cordoned nodes were cordoned after their pods were scheduled.
            let nodes = objects
                .nodes
                .iter()
                .cloned()
                .map(|mut n| {
                    if n.name == node {
                        n.unschedulable = false;
                        n.taints
                            .retain(|t| t.key != "node.kubernetes.io/unschedulable");
                    }
                    n
                })
                .collect();
            let others = ClusterObjects {
                nodes,
                pods: objects
                    .pods
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k != i)
                    .map(|(_, p)| p.clone())
                    .collect(),
                ..objects.clone()
            };
            let snapshot = Snapshot::build(others).unwrap();
            let decision = engine::decide(&snapshot, &pod);
            let verdict = &decision.filter[&node];
            assert!(verdict.feasible, "{} on {node}: {verdict:?}", pod.key());
        }
    }

    #[test]
    fn the_cluster_looks_like_a_production_cluster() {
        let s = cluster(&config(2));
        let objects = &s.cluster;
        let pools: BTreeSet<&str> = objects
            .nodes
            .iter()
            .map(|n| &n.labels[POOL_LABEL])
            .collect();
        assert_eq!(pools, BTreeSet::from(["general", "gpu", "highmem"]));
        let zones: BTreeSet<&str> = objects
            .nodes
            .iter()
            .map(|n| &n.labels["topology.kubernetes.io/zone"])
            .collect();
        assert_eq!(zones.len(), 3);
        assert!(objects.nodes.iter().any(|n| n.unschedulable));
        let gpu_nodes: Vec<_> = objects
            .nodes
            .iter()
            .filter(|n| n.allocatable.scalar(GPU_RESOURCE) > 0)
            .collect();
        assert!(!gpu_nodes.is_empty());
        for n in &gpu_nodes {
            assert!(
                n.taints
                    .iter()
                    .any(|t| t.key == GPU_TAINT && t.effect == TaintEffect::NoSchedule)
            );
        }
        assert!(objects.nodes.iter().all(|n| !n.images.is_empty()));
        assert!(
            objects
                .nodes
                .iter()
                .all(|n| n.labels.contains_key("kubernetes.io/hostname"))
        );

        // Tainted nodes only run pods that tolerate their taints.
        let by_name: BTreeMap<&str, _> =
            objects.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
        for pod in &objects.pods {
            let Some(node) = pod.node_name.as_deref() else {
                continue;
            };
            for taint in &by_name[node].taints {
                if taint.key == GPU_TAINT {
                    assert!(tolerated(&pod.tolerations, taint), "{}", pod.key());
                }
            }
        }

        let pods = &objects.pods;
        assert!(
            pods.iter()
                .any(|p| p.resources.init_containers.iter().any(|c| c.restartable))
        );
        assert!(
            pods.iter()
                .any(|p| p.resources.init_containers.iter().any(|c| !c.restartable))
        );
        assert!(pods.iter().any(|p| !p.host_ports.is_empty()));
        assert!(
            pods.iter()
                .any(|p| !p.pod_affinity.required_anti_affinity.is_empty())
        );
        assert!(
            pods.iter()
                .any(|p| !p.topology_spread_constraints.is_empty())
        );
        assert!(pods.iter().any(|p| p.requests().scalar(GPU_RESOURCE) > 0));
        let namespaces: BTreeSet<&str> = pods.iter().map(|p| p.namespace.as_str()).collect();
        assert!(namespaces.len() >= 6, "{namespaces:?}");
        let priorities: BTreeSet<i32> = pods.iter().map(|p| p.priority).collect();
        assert!(priorities.len() >= 6, "{priorities:?}");
        assert!(!objects.pdbs.is_empty());
        assert!(
            objects
                .pdbs
                .iter()
                .all(|b| (0..=2).contains(&b.disruptions_allowed))
        );
        assert!(
            objects
                .priority_classes
                .iter()
                .any(|c| c.preemption_policy == Some(crate::model::PreemptionPolicy::Never))
        );

        // Unique UIDs; unique start times per node; phase Running for bound pods.
        let uids: HashSet<&str> = pods.iter().map(|p| p.uid.as_str()).collect();
        assert_eq!(uids.len(), pods.len());
        let mut starts: BTreeMap<&str, HashSet<i64>> = BTreeMap::new();
        for p in pods {
            if let Some(node) = p.node_name.as_deref() {
                let t = p.start_time.expect("running pods have a start time");
                assert!(starts.entry(node).or_default().insert(t), "{}", p.key());
            }
        }
    }

    #[test]
    fn formats() {
        assert_eq!(rfc3339(NOW), "2026-03-01T00:00:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 86_399), "2000-02-29T23:59:59Z");
        assert_eq!(cpu_qty(3800), "3800m");
        assert_eq!(cpu_qty(2000), "2");
        assert_eq!(mem_qty(15 * 1024), "15Gi");
        assert_eq!(mem_qty(768), "768Mi");
        let names: HashSet<String> = (0..20_000).map(|i| pod_suffix(i, 12_345)).collect();
        assert_eq!(names.len(), 20_000);
        let mut rng = Rng::new(1, 1);
        let uids: HashSet<String> = (0..20_000).map(|i| uuid(&mut rng, i)).collect();
        assert_eq!(uids.len(), 20_000);
    }
}
