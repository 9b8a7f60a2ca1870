//! `oracle-load`: a closed-loop gRPC load generator for a running preemption-oracle.
//!
//! `--clients N` concurrent clients, each on its own connection, send `Place` requests
//! back to back for `--duration` seconds (at most `--max-requests` in all), and, with
//! `--ingest-rate R`, one more connection streams `SyncState` batches of pod upserts and
//! deletes at R updates/s to the same `--cluster`. Loopback targets only, unless
//! `--allow-remote`.
//!
//! With `--rpc health` the clients call `grpc.health.v1.Health/Check` instead: the same
//! connections, server layers and answer path without a decision, the floor that the
//! transport alone sets on the machine.
//!
//! The last line of its output is always
//! `place: qps=… p50_us=… p99_us=… errors=…` (`health: …` with `--rpc health`;
//! preceded, with ingest, by an `ingest: …` line). See `loadtests/README.md`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use preemption_oracle::service::pb;
use preemption_oracle::service::pb::preemption_oracle_client::PreemptionOracleClient;
use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The server's allocator. glibc's malloc and free took about 5% of the load
/// generator's CPU in a profile, on cores it shares with the server it measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The longest run accepted: a load test stops by itself.
const MAX_DURATION_S: f64 = 3600.0;
/// Errors whose message is printed (the rest are only counted).
const ERRORS_SHOWN: u64 = 5;

#[derive(Parser, Debug)]
#[command(
    name = "oracle-load",
    about = "Closed-loop Place load (and an optional SyncState writer) against a running preemption-oracle"
)]
struct Args {
    /// The server: `host:port` or `http://host:port`. Loopback only unless --allow-remote.
    #[arg(long, default_value = "127.0.0.1:50051")]
    server: String,
    /// The cluster to query and to stream updates to ("" is the default cluster).
    #[arg(long, default_value = "")]
    cluster: String,
    /// Concurrent clients, each with its own connection and one request in flight.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seconds to run (at most 3600).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many Place requests in all.
    #[arg(long, default_value_t = 100_000_000)]
    max_requests: u64,
    /// The pod to place (Kubernetes YAML or JSON, sent as `PodInput.json`). Without it, a
    /// small synthetic pod (cpu 100m, memory 128Mi) sent as a native message.
    #[arg(long)]
    pod: Option<PathBuf>,
    /// Ask for explanations (every node's verdict) in each answer.
    #[arg(long)]
    explain: bool,
    /// Per-request deadline, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Stream this many object updates per second through SyncState while the clients
    /// run (0: no writer).
    #[arg(long, default_value_t = 0.0)]
    ingest_rate: f64,
    /// Updates per SyncState batch (default: the rate / 100, at least 1: 100 batches/s).
    #[arg(long)]
    ingest_batch: Option<usize>,
    /// Churn pods the writer cycles through: each is added, sent again modified (a
    /// MODIFIED event, see --churn-modify), then deleted, bound round-robin to the
    /// cluster's nodes.
    #[arg(long, default_value_t = 1000)]
    churn_pods: usize,
    /// What a churn pod's MODIFIED event changes.
    #[arg(long, value_enum, default_value_t = Modify::Status)]
    churn_modify: Modify,
    /// Allow a server address that is not loopback.
    #[arg(long)]
    allow_remote: bool,
    /// Tokio worker threads for the load generator (default: the number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// What each client calls, back to back.
    #[arg(long, value_enum, default_value_t = Rpc::Place)]
    rpc: Rpc,
    /// Pod shapes the synthetic pod takes in turn, across all clients (its cpu request
    /// 100m, 101m, …): 1 asks about one shape, which the server's memo of node-local
    /// results serves after the first calls; more than the server's memo keeps (8
    /// templates per core) makes every call a new shape, decided without it.
    #[arg(long, default_value_t = 1)]
    shapes: u64,
}

/// What the writer's MODIFIED event changes in a churn pod.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Modify {
    /// Its status, as the kubelet reports it (pod IP, conditions): nothing the
    /// scheduler reads, so the server keeps the pod it holds.
    Status,
    /// Its container image (`kubectl set image`), which the scheduler reads: the
    /// server renews the pod's node.
    Image,
}

/// The call a client repeats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Rpc {
    /// `Place` with the pod.
    Place,
    /// `grpc.health.v1.Health/Check`: the transport's floor, no decision.
    Health,
}

impl Rpc {
    /// The name its result line starts with.
    fn name(self) -> &'static str {
        match self {
            Rpc::Place => "place",
            Rpc::Health => "health",
        }
    }
}

/// One client's connection, ready to repeat its call.
enum Caller {
    Place(
        PreemptionOracleClient<Channel>,
        Box<pb::PlaceRequest>,
        Shapes,
    ),
    Health(HealthClient<Channel>),
}

/// The synthetic pod's shapes, taken in turn by every client together.
#[derive(Clone)]
struct Shapes {
    count: u64,
    next: Arc<AtomicU64>,
}

impl Shapes {
    /// Gives the synthetic pod in `request` its next shape (one shape: left as is).
    fn apply(&self, request: &mut pb::PlaceRequest) {
        if self.count <= 1 {
            return;
        }
        let shape = self.next.fetch_add(1, Ordering::Relaxed) % self.count;
        if let Some(pb::PodInput {
            pod: Some(pb::pod_input::Pod::Native(pod)),
        }) = request.pod.as_mut()
            && let Some(container) = pod.containers.first_mut()
        {
            container
                .requests
                .insert("cpu".to_string(), format!("{}m", 100 + shape));
        }
    }
}

impl Caller {
    /// Makes the call once; the answer's outcome (a health check's serving status).
    async fn call(&mut self) -> Result<String, tonic::Status> {
        match self {
            Caller::Place(client, request, shapes) => {
                shapes.apply(request);
                client
                    .place(pb::PlaceRequest::clone(request))
                    .await
                    .map(|r| outcome_name(r.get_ref().outcome))
            }
            Caller::Health(client) => client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|r| format!("{:?}", r.get_ref().status())),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(args.duration > 0.0 && args.duration <= MAX_DURATION_S) {
        eprintln!("error: --duration must be in (0, {MAX_DURATION_S}] seconds");
        return ExitCode::from(2);
    }
    if args.clients == 0 || args.clients > 10_000 {
        eprintln!("error: --clients must be between 1 and 10000");
        return ExitCode::from(2);
    }
    if args.shapes == 0 || (args.shapes > 1 && args.pod.is_some()) {
        eprintln!("error: --shapes must be at least 1, and more than 1 only without --pod");
        return ExitCode::from(2);
    }
    if !(args.ingest_rate >= 0.0 && args.ingest_rate <= 10_000_000.0) {
        eprintln!("error: --ingest-rate must be between 0 and 10000000");
        return ExitCode::from(2);
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(t) = args.threads {
        builder.worker_threads(t.max(1));
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `http://host:port`, checked to be loopback unless `allow_remote`.
async fn target(server: &str, allow_remote: bool) -> Result<String, String> {
    let authority = server
        .strip_prefix("http://")
        .unwrap_or(server)
        .trim_end_matches('/');
    if authority.contains("://") {
        return Err(format!(
            "{server}: only http:// (plaintext) targets are supported"
        ));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(authority)
        .await
        .map_err(|e| format!("{server}: cannot resolve: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{server}: resolves to no address"));
    }
    if !allow_remote && let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "{server} resolves to {}, which is not a loopback address; pass --allow-remote to load a remote server",
            a.ip()
        ));
    }
    Ok(format!("http://{authority}"))
}

async fn connect(url: &str, timeout: Duration) -> Result<PreemptionOracleClient<Channel>, String> {
    Ok(oracle_client(channel(url, timeout).await?))
}

/// The oracle's client on `channel`, taking answers of any size.
fn oracle_client(channel: Channel) -> PreemptionOracleClient<Channel> {
    PreemptionOracleClient::new(channel)
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
}

/// A new connection to `url`, with `timeout` for each call.
async fn channel(url: &str, timeout: Duration) -> Result<Channel, String> {
    Endpoint::from_shared(url.to_string())
        .map_err(|e| format!("{url}: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))
}

/// The default pod: small requests, so it fits on most clusters.
fn synthetic_pod() -> pb::PodInput {
    let requests = BTreeMap::from([
        ("cpu".to_string(), "100m".to_string()),
        ("memory".to_string(), "128Mi".to_string()),
    ]);
    pb::PodInput {
        pod: Some(pb::pod_input::Pod::Native(pb::Pod {
            namespace: "default".into(),
            name: "oracle-load".into(),
            containers: vec![pb::Container {
                name: "main".into(),
                image: "registry.k8s.io/pause:3.10".into(),
                requests: requests.into_iter().collect(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    }
}

/// What one client (or all of them) measured.
struct Tally {
    latency_us: Histogram<u64>,
    ok: u64,
    errors: u64,
    outcomes: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            ok: 0,
            errors: 0,
            outcomes: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.latency_us.add(&other.latency_us).expect("same bounds");
        self.ok += other.ok;
        self.errors += other.errors;
        for (k, v) in &other.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += v;
        }
    }
}

fn outcome_name(o: i32) -> String {
    pb::Outcome::try_from(o)
        .map(|o| o.as_str_name().trim_start_matches("OUTCOME_").to_string())
        .unwrap_or_else(|_| format!("OUTCOME_{o}"))
}

async fn run(args: Args) -> Result<(), String> {
    let url = target(&args.server, args.allow_remote).await?;
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let pod = match &args.pod {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            pb::PodInput {
                pod: Some(pb::pod_input::Pod::Json(text)),
            }
        }
        None => synthetic_pod(),
    };
    let request = pb::PlaceRequest {
        cluster: args.cluster.clone(),
        pod: Some(pod),
        options: Some(pb::PlaceOptions {
            explain: args.explain,
            ..Default::default()
        }),
    };

    // Connect every client and send one untimed request each (connection set-up, and a
    // clear error when the pod or the cluster is wrong).
    let mut clients = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        clients.push(channel(&url, timeout).await?);
    }
    let first = oracle_client(clients[0].clone())
        .place(request.clone())
        .await
        .map_err(|s| format!("Place fails: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    eprintln!(
        "oracle-load: {url} cluster {:?}: the pod {} ({} nodes, revision {}); {} clients for {} s{}",
        args.cluster,
        match first.node.as_str() {
            "" => outcome_name(first.outcome),
            n => format!("{} on {n}", outcome_name(first.outcome)),
        },
        first.num_nodes,
        first.revision,
        args.clients,
        args.duration,
        if args.ingest_rate > 0.0 {
            format!(", ingest {} updates/s", args.ingest_rate)
        } else {
            String::new()
        },
    );

    let duration = Duration::from_secs_f64(args.duration);
    let sent = Arc::new(AtomicU64::new(0));
    let errors_seen = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;

    let ingest = if args.ingest_rate > 0.0 {
        let nodes = node_names(&url, &args.cluster, timeout).await?;
        let cfg = IngestConfig {
            cluster: args.cluster.clone(),
            rate: args.ingest_rate,
            batch: args
                .ingest_batch
                .unwrap_or_else(|| (args.ingest_rate / 100.0).round() as usize)
                .max(1),
            churn_pods: args.churn_pods.max(1),
            modify: args.churn_modify,
            nodes,
            deadline,
        };
        let client = connect(&url, Duration::from_secs(3600)).await?;
        Some(tokio::spawn(ingest(client, cfg)))
    } else {
        None
    };

    let shapes = Shapes {
        count: args.shapes,
        next: Arc::new(AtomicU64::new(0)),
    };
    let mut tasks = Vec::with_capacity(clients.len());
    for client in clients {
        let mut caller = match args.rpc {
            Rpc::Place => Caller::Place(
                oracle_client(client),
                Box::new(request.clone()),
                shapes.clone(),
            ),
            Rpc::Health => Caller::Health(HealthClient::new(client)),
        };
        let rpc = args.rpc.name();
        let sent = Arc::clone(&sent);
        let errors_seen = Arc::clone(&errors_seen);
        let max = args.max_requests;
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < max {
                let t = Instant::now();
                let result = caller.call().await;
                let us = (t.elapsed().as_micros() as u64).max(1);
                tally.latency_us.saturating_record(us);
                match result {
                    Ok(outcome) => {
                        tally.ok += 1;
                        *tally.outcomes.entry(outcome).or_default() += 1;
                    }
                    Err(s) => {
                        tally.errors += 1;
                        if errors_seen.fetch_add(1, Ordering::Relaxed) < ERRORS_SHOWN {
                            eprintln!("oracle-load: {rpc}: {:?}: {}", s.code(), s.message());
                        }
                    }
                }
            }
            tally
        }));
    }
    let mut total = Tally::new();
    for t in tasks {
        let tally = t.await.map_err(|e| format!("a client failed: {e}"))?;
        total.merge(&tally);
    }
    let elapsed = start.elapsed().as_secs_f64();

    let ingest_line = match ingest {
        Some(handle) => Some(
            handle
                .await
                .map_err(|e| format!("the writer failed: {e}"))?
                .line(),
        ),
        None => None,
    };

    let h = &total.latency_us;
    let outcomes: Vec<String> = total
        .outcomes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let rpc = args.rpc.name();
    println!(
        "{rpc}-detail: requests={} ok={} seconds={elapsed:.2} clients={} mean_us={:.0} p90_us={} p999_us={} max_us={} outcomes[{}]",
        total.ok + total.errors,
        total.ok,
        args.clients,
        h.mean(),
        h.value_at_quantile(0.90),
        h.value_at_quantile(0.999),
        h.max(),
        outcomes.join(" "),
    );
    if let Some(line) = ingest_line {
        println!("{line}");
    }
    println!(
        "{rpc}: qps={:.1} p50_us={} p99_us={} errors={}",
        total.ok as f64 / elapsed,
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
        total.errors,
    );
    Ok(())
}

/// The cluster's node names, from one explained Place (its verdicts name every node).
async fn node_names(url: &str, cluster: &str, timeout: Duration) -> Result<Vec<String>, String> {
    let mut client = connect(url, timeout).await?;
    let answer = client
        .place(pb::PlaceRequest {
            cluster: cluster.to_string(),
            pod: Some(synthetic_pod()),
            options: Some(pb::PlaceOptions {
                explain: true,
                ..Default::default()
            }),
        })
        .await
        .map_err(|s| format!("listing nodes: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    Ok(answer.explanations.into_iter().map(|v| v.node).collect())
}

struct IngestConfig {
    cluster: String,
    rate: f64,
    batch: usize,
    churn_pods: usize,
    modify: Modify,
    nodes: Vec<String>,
    deadline: Instant,
}

/// What the writer did.
struct IngestReport {
    target_rate: f64,
    updates: u64,
    batches: u64,
    acked: u64,
    errors: u64,
    seconds: f64,
    /// From the first batch sent to the last acknowledgement received.
    acked_seconds: f64,
    batch: usize,
    ack_us: Histogram<u64>,
    last_revision: u64,
}

impl IngestReport {
    fn line(&self) -> String {
        format!(
            "ingest: target_rate={} updates={} rate={:.1} applied_rate={:.1} batches={} acked={} ack_p50_us={} ack_p99_us={} last_revision={} errors={}",
            self.target_rate,
            self.updates,
            self.updates as f64 / self.seconds.max(1e-9),
            (self.acked * self.batch as u64) as f64 / self.acked_seconds.max(1e-9),
            self.batches,
            self.acked,
            self.ack_us.value_at_quantile(0.5),
            self.ack_us.value_at_quantile(0.99),
            self.last_revision,
            self.errors,
        )
    }
}

/// A churn pod as a watch event carries it: Kubernetes JSON, bound to `node`; `modified`
/// says what its MODIFIED event changed (`None`: as added).
fn churn_pod(k: usize, node: Option<&str>, modified: Option<Modify>) -> String {
    let image = match modified {
        Some(Modify::Image) => "registry.k8s.io/pause:3.9",
        _ => "registry.k8s.io/pause:3.10",
    };
    let mut spec = serde_json::json!({
        "containers": [{
            "name": "main",
            "image": image,
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
        }],
    });
    if let Some(n) = node {
        spec["nodeName"] = serde_json::json!(n);
    }
    let mut status =
        serde_json::json!({"phase": if node.is_some() { "Running" } else { "Pending" }});
    if modified == Some(Modify::Status) {
        status["podIP"] =
            serde_json::json!(format!("10.{}.{}.{}", k >> 16 & 255, k >> 8 & 255, k & 255));
        status["conditions"] = serde_json::json!([
            {"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:05Z"},
        ]);
    }
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("oracle-load-churn-{k}"),
            "namespace": "oracle-load",
            "uid": format!("0000000-load-4000-8000-{k:012}"),
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": spec,
        "status": status,
    })
    .to_string()
}

/// Streams batches at `cfg.rate` updates/s until the deadline: churn pod k is added
/// (pass 0), sent again modified (pass 1), deleted (pass 2), and so on.
async fn ingest(mut client: PreemptionOracleClient<Channel>, cfg: IngestConfig) -> IngestReport {
    // Each churn pod's JSON is rendered once: sending an update costs the writer a copy,
    // so that the server, not the writer, is what a high rate measures.
    let n = cfg.churn_pods;
    let texts: Vec<[String; 2]> = (0..n)
        .map(|k| {
            let node = (!cfg.nodes.is_empty()).then(|| cfg.nodes[k % cfg.nodes.len()].as_str());
            [
                churn_pod(k, node, None),
                churn_pod(k, node, Some(cfg.modify)),
            ]
        })
        .collect();
    let start = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::SyncStateRequest>(64);
    let sent_at: Arc<Mutex<VecDeque<(u64, Instant)>>> = Arc::default();
    let mut report = IngestReport {
        target_rate: cfg.rate,
        updates: 0,
        batches: 0,
        acked: 0,
        errors: 0,
        seconds: 0.0,
        acked_seconds: 0.0,
        batch: cfg.batch,
        ack_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
        last_revision: 0,
    };
    let response = client
        .sync_state(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await;
    let mut inbound = match response {
        Ok(r) => r.into_inner(),
        Err(s) => {
            eprintln!("oracle-load: SyncState: {:?}: {}", s.code(), s.message());
            report.errors += 1;
            return report;
        }
    };
    // Acknowledgements, in order.
    let acks = {
        let sent_at = Arc::clone(&sent_at);
        tokio::spawn(async move {
            let mut acked = 0u64;
            let mut last_ack = start;
            let mut last_revision = 0;
            let mut errors = 0u64;
            let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds");
            loop {
                match inbound.message().await {
                    Ok(Some(ack)) => {
                        acked += 1;
                        last_ack = Instant::now();
                        last_revision = ack.revision;
                        let id: u64 = ack.batch_id.parse().unwrap_or(u64::MAX);
                        let mut q = sent_at.lock().await;
                        while let Some(&(b, t)) = q.front() {
                            if b > id {
                                break;
                            }
                            q.pop_front();
                            if b == id {
                                hist.saturating_record((t.elapsed().as_micros() as u64).max(1));
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(s) => {
                        errors += 1;
                        eprintln!("oracle-load: SyncState: {:?}: {}", s.code(), s.message());
                        break;
                    }
                }
            }
            (acked, last_ack - start, last_revision, errors, hist)
        })
    };

    let period = Duration::from_secs_f64(cfg.batch as f64 / cfg.rate);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut i: usize = 0; // update counter: slot i % churn, pass i / churn
    loop {
        ticks.tick().await;
        if Instant::now() >= cfg.deadline {
            break;
        }
        let changes = (0..cfg.batch)
            .map(|_| {
                let k = i % n;
                let pass = i / n;
                i += 1;
                if pass % 3 == 2 {
                    pb::ObjectChange {
                        change: Some(pb::object_change::Change::Delete(pb::ObjectRef {
                            kind: pb::Kind::Pod as i32,
                            namespace: "oracle-load".into(),
                            name: format!("oracle-load-churn-{k}"),
                        })),
                    }
                } else {
                    pb::ObjectChange {
                        change: Some(pb::object_change::Change::Upsert(pb::KubeObject {
                            object: Some(pb::kube_object::Object::Json(texts[k][pass % 3].clone())),
                        })),
                    }
                }
            })
            .collect();
        let id = report.batches;
        sent_at.lock().await.push_back((id, Instant::now()));
        let req = pb::SyncStateRequest {
            cluster: cfg.cluster.clone(),
            replace: false,
            changes,
            batch_id: id.to_string(),
            replace_kinds: Vec::new(),
        };
        // The stream has back-pressure: a server that stops reading holds the writer
        // only until the deadline.
        match tokio::time::timeout_at(cfg.deadline.into(), tx.send(req)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                report.errors += 1;
                break;
            }
            Err(_) => break,
        }
        report.batches += 1;
        report.updates += cfg.batch as u64;
    }
    report.seconds = start.elapsed().as_secs_f64();
    drop(tx);
    // Outstanding acknowledgements get a few seconds.
    match tokio::time::timeout(Duration::from_secs(10), acks).await {
        Ok(Ok((acked, acked_for, last_revision, errors, hist))) => {
            report.acked = acked;
            report.acked_seconds = acked_for.as_secs_f64();
            report.last_revision = last_revision;
            report.errors += errors;
            report.ack_us = hist;
        }
        _ => report.errors += 1,
    }
    report
}
