//! Shared by the benches: cluster sizes, clusters built once per process from the
//! project's generator, the pods the queries ask about, and a simple timed loop that
//! gives percentiles (criterion reports means and medians of samples, not p99).
//!
//! Sizes: 500 and 5,000 nodes (30 pods per node); 15,000 as well with
//! `ORACLE_BENCH_LARGE=1`; or exactly the list in `ORACLE_BENCH_NODES` (e.g. `5000` or
//! `500,5000,15000`). Under `cargo test --benches` (criterion's test mode, no `--bench`
//! argument) a 60-node cluster only, and the timed loops run once, so the benches are
//! checked quickly.

#![allow(dead_code)] // each bench uses its own part

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use preemption_oracle::engine::Snapshot;
use preemption_oracle::generate::{GeneratorConfig, generate_scenario};
use preemption_oracle::kube;
use preemption_oracle::model::{ClusterObjects, Pod};
use preemption_oracle::service::pb;
use serde_json::{Value, json};

pub const PODS_PER_NODE: usize = 30;

/// True under `cargo bench` (cargo passes `--bench`); false under `cargo test`.
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Criterion options that take a value (so the value is not a filter).
const VALUE_OPTIONS: &[&str] = &[
    "--save-baseline",
    "-s",
    "--baseline",
    "-b",
    "--baseline-lenient",
    "--load-baseline",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--profile-time",
    "--plotting-backend",
    "--output-format",
    "--color",
    "-c",
    "--format",
];

/// Whether the benchmark `id` (e.g. `place-fit/5000`) is selected by the filter given on
/// the command line (`cargo bench --bench place -- place-fit/5000`: a substring, or the
/// whole id with `--exact`). The clusters and timed loops of benchmarks left out are
/// skipped too.
pub fn selected(id: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let exact = args.iter().any(|a| a == "--exact");
    let filter = args.iter().enumerate().find_map(|(i, a)| {
        let after_value_option = i > 0 && VALUE_OPTIONS.contains(&args[i - 1].as_str());
        (!a.starts_with('-') && !after_value_option).then_some(a.as_str())
    });
    match filter {
        None => true,
        Some(f) if exact => id == f,
        Some(f) => id.contains(f),
    }
}

/// The cluster sizes (nodes) to measure.
pub fn sizes() -> Vec<usize> {
    if !bench_mode() {
        return vec![60];
    }
    if let Ok(list) = std::env::var("ORACLE_BENCH_NODES") {
        let sizes: Vec<usize> = list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        if !sizes.is_empty() {
            return sizes;
        }
    }
    let mut sizes = vec![500, 5000];
    if std::env::var("ORACLE_BENCH_LARGE").is_ok_and(|v| v == "1") {
        sizes.push(15000);
    }
    sizes
}

/// A generated cluster, decoded and built once.
pub struct Cluster {
    pub config: GeneratorConfig,
    /// Every decoded object (for ingest benches: a replace batch is a clone of these).
    pub objects: ClusterObjects,
    pub snapshot: Arc<Snapshot>,
    /// The generator's pending `pod`: high priority, fits nowhere, must preempt.
    pub preempting_pod: Pod,
    /// The same pod with small requests (cpu 100m, memory 128Mi): fits.
    pub fitting_pod: Pod,
    /// The fitting pod's Kubernetes JSON.
    pub fitting_pod_json: Value,
    /// Kubernetes JSON text of the first bound pods (what a watch event carries), in
    /// the generator's order: a node's pods one after another.
    pub pod_json: Vec<String>,
    /// The same number of pods' JSON text in [`spread`] order: each on another node.
    pub pod_json_spread: Vec<String>,
}

impl Cluster {
    pub fn pods(&self) -> usize {
        self.objects.pods.len()
    }
}

/// Every index below `pods` once, in an order where each next pod is on another node
/// (the generator lists a node's pods one after another, `PODS_PER_NODE` of them), as
/// a watch's events arrive from a whole cluster: steps of `PODS_PER_NODE + 1` or more,
/// coprime with `pods`, modulo `pods`.
pub fn spread(pods: usize) -> impl Iterator<Item = usize> {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let step = (PODS_PER_NODE + 1..)
        .find(|&s| gcd(s, pods.max(1)) == 1)
        .expect("some step is coprime");
    (0..pods).map(move |i| i * step % pods)
}

/// The generator's pending pod with its requests shrunk to cpu 100m / memory 128Mi.
pub fn fitting_pod_json(pending: &Value) -> Value {
    let mut pod = pending.clone();
    pod["metadata"]["name"] = json!("bench-fits");
    pod["metadata"]["uid"] = json!("00000000-0000-4000-8000-00000000f175");
    for c in pod["spec"]["containers"]
        .as_array_mut()
        .expect("the generated pod has containers")
    {
        c["resources"] = json!({
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "128Mi"},
        });
    }
    pod
}

/// `n` copies of `pod_json` with distinct names and uids (a gang), decoded.
pub fn gang(pod_json: &Value, n: usize, objects: &ClusterObjects) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            let mut p = pod_json.clone();
            p["metadata"]["name"] = json!(format!("bench-gang-{i}"));
            p["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{i:012}"));
            kube::decode_pod(&p, &objects.priority_classes).expect("gang pod decodes")
        })
        .collect()
}

/// The cluster for `nodes` × 30 pods with `pending_pods` queued pods, built once per
/// process and shared by every bench that asks for it.
pub fn cluster(nodes: usize, pending_pods: usize) -> Arc<Cluster> {
    type Cache = Mutex<HashMap<(usize, usize), Arc<Cluster>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap();
    Arc::clone(
        map.entry((nodes, pending_pods))
            .or_insert_with(|| Arc::new(build(nodes, pending_pods))),
    )
}

fn build(nodes: usize, pending_pods: usize) -> Cluster {
    let config = GeneratorConfig {
        nodes,
        pods_per_node: PODS_PER_NODE,
        seed: 1,
        pending_pods,
    };
    let t = Instant::now();
    let doc = generate_scenario(&config);
    let generated = t.elapsed();
    let t = Instant::now();
    let scenario = kube::decode_scenario(&doc).expect("the generated scenario decodes");
    let decoded = t.elapsed();
    let objects = scenario.cluster;
    let preempting_pod = scenario.pod.expect("the generated scenario has a pod");
    let fitting = fitting_pod_json(&doc["pod"]);
    let fitting_pod =
        kube::decode_pod(&fitting, &objects.priority_classes).expect("fitting pod decodes");
    let all_pods = doc["pods"].as_array().expect("pods");
    let pod_json = all_pods.iter().take(2000).map(Value::to_string).collect();
    let pod_json_spread = spread(all_pods.len())
        .take(2000)
        .map(|i| all_pods[i].to_string())
        .collect();
    drop(doc);
    let t = Instant::now();
    let snapshot = Snapshot::build(objects.clone()).expect("the generated cluster builds");
    let built = t.elapsed();
    eprintln!(
        "cluster {nodes} nodes / {} pods / {pending_pods} pending: generated in {:.2} s, decoded (kube::decode_scenario) in {:.2} s, Snapshot::build in {:.2} s",
        objects.pods.len(),
        generated.as_secs_f64(),
        decoded.as_secs_f64(),
        built.as_secs_f64(),
    );
    Cluster {
        config,
        objects,
        snapshot: Arc::new(snapshot),
        preempting_pod,
        fitting_pod,
        fitting_pod_json: fitting,
        pod_json,
        pod_json_spread,
    }
}

/// An upsert of one object given as Kubernetes JSON text.
pub fn json_upsert(text: String) -> pb::ObjectChange {
    pb::ObjectChange {
        change: Some(pb::object_change::Change::Upsert(pb::KubeObject {
            object: Some(pb::kube_object::Object::Json(text)),
        })),
    }
}

/// `text`, a pod's Kubernetes JSON, its first image given the registry `g{n}.` (the
/// `n`th `kubectl set image`): an image is one of the few fields of a bound pod that
/// change, and ImageLocality reads it.
pub fn with_image_changed(text: &str, n: u32) -> String {
    text.replacen("\"image\":\"", &format!("\"image\":\"g{n}."), 1)
}

/// The CPU time this process has used so far, all its threads (user and system):
/// what a loop costs whatever else the machine runs, which its wall time is not.
pub fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Durations of the iterations of a timed loop, sorted.
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `q` quantile (nearest rank), e.g. 0.99.
    pub fn quantile(&self, q: f64) -> Duration {
        let n = self.0.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.0[rank - 1]
    }

    pub fn mean(&self) -> Duration {
        self.0.iter().sum::<Duration>() / self.0.len() as u32
    }

    /// `n=… mean=… p50=… p99=… max=…`, in the most readable unit.
    pub fn summary(&self) -> String {
        format!(
            "n={} mean={} p50={} p99={} max={}",
            self.len(),
            human(self.mean()),
            human(self.quantile(0.5)),
            human(self.quantile(0.99)),
            human(*self.0.last().unwrap()),
        )
    }
}

/// `1.23 ms`, `456 µs`, `2.10 s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// Runs `f` until `budget` has passed and at least `min_iters` ran (at most
/// `max_iters`), timing each call. In test mode, once.
pub fn timed<T>(
    budget: Duration,
    min_iters: usize,
    max_iters: usize,
    mut f: impl FnMut() -> T,
) -> Samples {
    let (min_iters, max_iters) = if bench_mode() {
        (min_iters.max(1), max_iters.max(1))
    } else {
        (1, 1)
    };
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < max_iters && (out.len() < min_iters || start.elapsed() < budget) {
        let t = Instant::now();
        black_box(f());
        out.push(t.elapsed());
    }
    out.sort();
    Samples(out)
}

/// The longest one iteration may take for a query to be measured by criterion too
/// (criterion takes at least 10 samples plus warm-up): `ORACLE_BENCH_MAX_ITER_S`,
/// default 1 s. Slower queries get the timed loop only.
pub fn criterion_fits(name: &str, one_iteration: Duration) -> bool {
    let max = std::env::var("ORACLE_BENCH_MAX_ITER_S")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(1.0);
    let fits = !bench_mode() || one_iteration.as_secs_f64() <= max;
    if !fits {
        println!(
            "skipped criterion for {name}: one iteration takes {} (> {max} s, ORACLE_BENCH_MAX_ITER_S); timed loop only",
            human(one_iteration)
        );
    }
    fits
}

/// Times the fast and the straightforward evaluation of the same query (each for
/// `budget` and at least `min_iters` times) and prints their percentiles and the ratio
/// of their medians: `ratio place-preempt/5000: straightforward/fast = 7.3x`. Returns
/// the fast path's samples.
pub fn compare<A, B>(
    name: &str,
    budget: Duration,
    min_iters: usize,
    fast: impl FnMut() -> A,
    straightforward: impl FnMut() -> B,
) -> Samples {
    let f = timed(budget, min_iters, 100_000, fast);
    println!("latency {name} fast: {}", f.summary());
    let s = timed(budget, min_iters, 100_000, straightforward);
    println!("latency {name} straightforward: {}", s.summary());
    let ratio = s.quantile(0.5).as_secs_f64() / f.quantile(0.5).as_secs_f64();
    println!("ratio {name}: straightforward/fast = {ratio:.1}x (p50 vs p50)");
    f
}

/// Criterion settings shared by the benches: few samples, short runs, on 2 cores.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .configure_from_args()
}
