//! Ingest, in process, on generated clusters (500 and 5,000 nodes × 30 pods by default;
//! see `common` for sizes):
//!
//! - `initial-sync/N`: `ClusterState::apply(Batch::replace_with(..))` of the whole
//!   decoded cluster into an empty store (objects/s). JSON decoding is timed once when
//!   the cluster is built and printed on stderr (`decoded … in … s`); after the group,
//!   the whole cluster as one replace message of Kubernetes JSON text (what a feeder's
//!   initial sync sends) is timed through `service::decode::batch`;
//! - `stream-apply/N/B`: batches of B pod upserts (existing pods sent again with their
//!   image changed, as a watch's MODIFIED events carry them: [`Resends`]; a pod sent
//!   again unchanged is not taken at all) applied to a loaded store (objects/s), the pods
//!   in the generator's order: a node's 30 pods one after another, so a batch of 1,000
//!   changes about 34 nodes;
//! - `stream-json/N/B`: the same batches as the SyncState handler sees them: Kubernetes
//!   JSON text decoded and validated by `service::decode::batch`, then applied;
//! - `stream-apply-spread/N/B`, `stream-json-spread/N/B`: the same with each next pod on
//!   another node (`common::spread`), as a watch's events come from a whole cluster: a
//!   batch changes as many nodes as it has pods, each node copied for the new snapshot;
//! - `refresh-1-pod/N`: one pod changes (a 1-pod batch, its image): the new snapshot published,
//!   on the cluster with 1,000 pending pods besides.
//!
//! After the groups timed loops print the sustained updates/s of the streams, each with
//! the CPU time an update took, all threads together (the JSON one also pipelined as a
//! SyncState stream runs it, the next batch decoded while the previous one is applied;
//! and status updates: the same pods as JSON sent again unchanged, decoded, compared
//! with the pods held and not taken), and p50/p99 of a one-object refresh: a bound pod,
//! a pending pod, a node sent again (a status heartbeat, not taken) and a node cordoned
//! or uncordoned.

mod common;

/// The allocator the service runs with (`src/bin/preemption-oracle/main.rs`), so the
/// bench measures what it serves.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use preemption_oracle::generate::generate_scenario;
use preemption_oracle::model::Pod;
use preemption_oracle::reclaim;
use preemption_oracle::service::decode;
use preemption_oracle::service::pb;
use preemption_oracle::store::{Batch, Change, ClusterState, Object, Store};

/// A store whose default cluster holds the whole cluster.
fn loaded(cl: &common::Cluster) -> (Store, Arc<ClusterState>) {
    let store = Store::new();
    let state = store.cluster_or_create("");
    state.apply(Batch::replace_with(cl.objects.clone()));
    (store, state)
}

/// The order a stream sends existing pods in.
#[derive(Clone, Copy)]
enum Order {
    /// The generator's: a node's pods one after another.
    ByNode,
    /// Each next pod on another node ([`common::spread`]).
    Spread,
}

impl Order {
    /// The benchmark ids' infix: `stream-apply{infix}/N/B`.
    fn infix(self) -> &'static str {
        match self {
            Order::ByNode => "",
            Order::Spread => "-spread",
        }
    }

    /// The positions in the cluster's pods that the stream sends, in order.
    fn positions(self, pods: usize) -> Vec<usize> {
        match self {
            Order::ByNode => (0..pods).collect(),
            Order::Spread => common::spread(pods).collect(),
        }
    }

    /// The JSON text of pods sent in this order.
    fn json(self, cl: &common::Cluster) -> &[String] {
        match self {
            Order::ByNode => &cl.pod_json,
            Order::Spread => &cl.pod_json_spread,
        }
    }
}

/// Existing pods sent again, each changed from the version the store holds: the pod's
/// first image gets a new registry every time it is sent (`kubectl set image`: an image
/// is one of the few fields of a bound pod that change, and ImageLocality reads it).
/// The store does not take a pod sent again with nothing the scheduler reads changed (a
/// kubelet's status update), so these are the updates that renew a node.
struct Resends<'a> {
    cl: &'a common::Cluster,
    /// How many times each of the cluster's pods has been sent.
    sent: Vec<u32>,
}

impl<'a> Resends<'a> {
    fn new(cl: &'a common::Cluster) -> Resends<'a> {
        Resends {
            cl,
            sent: vec![0; cl.pods()],
        }
    }

    /// The cluster's pod `i`, changed again.
    fn pod(&mut self, i: usize) -> Pod {
        self.sent[i] += 1;
        let mut pod = self.cl.objects.pods[i].clone();
        let image = pod
            .images
            .first_mut()
            .expect("generated pods have an image");
        *image = format!("g{}.{image}", self.sent[i]);
        pod
    }

    /// `text`, the Kubernetes JSON of the cluster's pod `i`, as last sent.
    fn json(&self, i: usize, text: &str) -> String {
        match self.sent[i] {
            0 => text.to_string(),
            n => common::with_image_changed(text, n),
        }
    }

    /// Upserts of `size` pods, the `*next`th position of `order` on (wrapping).
    fn batch(&mut self, order: &[usize], next: &mut usize, size: usize) -> Batch {
        let changes = (0..size)
            .map(|_| {
                let i = order[*next % order.len()];
                *next += 1;
                Change::Upsert(Object::Pod(Arc::new(self.pod(i))))
            })
            .collect();
        Batch {
            changes,
            ..Batch::default()
        }
    }

    /// A SyncState message of `size` pod upserts as Kubernetes JSON text, from `texts`
    /// (the JSON of `order`'s first pods) on at `*next` (wrapping): each pod changed
    /// again, or (`changed` false) as last sent, a status update the store does not take.
    fn request(
        &mut self,
        order: &[usize],
        texts: &[String],
        next: &mut usize,
        size: usize,
        changed: bool,
    ) -> pb::SyncStateRequest {
        let changes = (0..size)
            .map(|_| {
                let t = *next % texts.len();
                *next += 1;
                self.sent[order[t]] += u32::from(changed);
                common::json_upsert(self.json(order[t], &texts[t]))
            })
            .collect();
        pb::SyncStateRequest {
            changes,
            ..Default::default()
        }
    }
}

/// The whole cluster (regenerated from its config) as one replace SyncState message of
/// Kubernetes JSON text, each object with its `kind`: what a feeder's initial sync sends.
fn json_replace_request(cl: &common::Cluster) -> pb::SyncStateRequest {
    let doc = generate_scenario(&cl.config);
    let changes = ["priorityClasses", "namespaces", "nodes", "pods", "pdbs"]
        .iter()
        .flat_map(|field| doc[*field].as_array().into_iter().flatten())
        .map(|object| common::json_upsert(object.to_string()))
        .collect();
    pb::SyncStateRequest {
        replace: true,
        changes,
        ..Default::default()
    }
}

fn initial_sync(c: &mut Criterion) {
    for nodes in common::sizes() {
        if !common::selected(&format!("initial-sync/{nodes}")) {
            continue;
        }
        let cl = common::cluster(nodes, 0);
        let objects = cl.objects.nodes.len()
            + cl.objects.pods.len()
            + cl.objects.pdbs.len()
            + cl.objects.priority_classes.len()
            + cl.objects.namespaces.len();
        let mut group = c.benchmark_group("initial-sync");
        group.throughput(Throughput::Elements(objects as u64));
        group.bench_function(BenchmarkId::from_parameter(nodes), |b| {
            b.iter_batched(
                || (Store::new(), Batch::replace_with(cl.objects.clone())),
                |(store, batch)| {
                    store.cluster_or_create("").apply(batch);
                    // Dropped outside the timing.
                    store
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
        let mut applies = Vec::new();
        for _ in 0..if common::bench_mode() { 3 } else { 1 } {
            let store = Store::new();
            let batch = Batch::replace_with(cl.objects.clone());
            let t = std::time::Instant::now();
            store.cluster_or_create("").apply(batch);
            applies.push(t.elapsed());
        }
        applies.sort();
        println!(
            "initial-sync/{nodes}: {objects} objects applied in {} (median of {}), {:.0} objects/s",
            common::human(applies[applies.len() / 2]),
            applies.len(),
            objects as f64 / applies[applies.len() / 2].as_secs_f64(),
        );
        let request = json_replace_request(&cl);
        let mut decodes = Vec::new();
        for _ in 0..if common::bench_mode() { 3 } else { 1 } {
            let t = std::time::Instant::now();
            let batch = decode::batch(&request, Vec::new()).expect("the generated cluster decodes");
            decodes.push(t.elapsed());
            drop(black_box(batch));
        }
        decodes.sort();
        println!(
            "initial-sync/{nodes}: {} objects decoded from JSON text (decode::batch) in {} (median of {})",
            request.changes.len(),
            common::human(decodes[decodes.len() / 2]),
            decodes.len(),
        );
    }
}

fn stream(c: &mut Criterion) {
    for nodes in common::sizes() {
        for order in [Order::ByNode, Order::Spread] {
            stream_in_order(c, nodes, order);
        }
    }
}

fn stream_in_order(c: &mut Criterion, nodes: usize, order: Order) {
    let infix = order.infix();
    let wanted = |size: usize| {
        common::selected(&format!("stream-apply{infix}/{nodes}/{size}"))
            || common::selected(&format!("stream-json{infix}/{nodes}/{size}"))
    };
    if !wanted(100) && !wanted(1000) {
        return;
    }
    let cl = common::cluster(nodes, 0);
    let (_store, state) = loaded(&cl);
    let positions = order.positions(cl.pods());
    let texts = order.json(&cl);
    let mut resends = Resends::new(&cl);
    for size in [100, 1000] {
        if !wanted(size) {
            continue;
        }
        let mut group = c.benchmark_group(format!("stream-apply{infix}/{nodes}"));
        group.throughput(Throughput::Elements(size as u64));
        let mut next = 0;
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_batched(
                || resends.batch(&positions, &mut next, size),
                |batch| state.apply(batch),
                BatchSize::PerIteration,
            )
        });
        group.finish();

        let mut group = c.benchmark_group(format!("stream-json{infix}/{nodes}"));
        group.throughput(Throughput::Elements(size as u64));
        let mut next = 0;
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_batched(
                || resends.request(&positions, texts, &mut next, size, true),
                |req| {
                    let batch = decode::batch(&req, state.priority_classes())
                        .expect("generated pods decode");
                    state.apply(batch)
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();

        // Sustained rate, setup included in neither.
        let mut next = 0;
        let batches: Vec<Batch> = (0..if common::bench_mode() { 200 } else { 2 })
            .map(|_| resends.batch(&positions, &mut next, size))
            .collect();
        let n = batches.len();
        let t = Sustained::start();
        for batch in batches {
            state.apply(batch);
        }
        reclaim::settle();
        let apply = t.stop();
        // One batch decoded, then applied; or (`pipelined`) as a SyncState stream does
        // it: the next batch decoded while the previous one is applied, on a thread that
        // stays (SyncState's blocking threads are reused from batch to batch).
        let mut decode_and_apply = |changed: bool, pipelined: bool| {
            let mut next = 0;
            let requests: Vec<pb::SyncStateRequest> = (0..n)
                .map(|_| resends.request(&positions, texts, &mut next, size, changed))
                .collect();
            let t = Sustained::start();
            std::thread::scope(|threads| {
                let state = &state;
                // The applier: one thread from batch to batch, as SyncState's.
                let applier = pipelined.then(|| {
                    let (to_apply, batches) = std::sync::mpsc::sync_channel::<Batch>(1);
                    let (done, applied) = std::sync::mpsc::sync_channel::<()>(1);
                    threads.spawn(move || {
                        for batch in batches {
                            state.apply(batch);
                            done.send(()).expect("the stream waits for it");
                        }
                    });
                    (to_apply, applied)
                });
                let mut in_flight = false;
                for req in &requests {
                    let batch = decode::batch(req, state.priority_classes()).expect("decodes");
                    match &applier {
                        Some((to_apply, applied)) => {
                            if in_flight {
                                applied.recv().expect("applied");
                            }
                            to_apply.send(batch).expect("the applier runs");
                            in_flight = true;
                        }
                        None => {
                            state.apply(batch);
                        }
                    }
                }
                if let Some((_, applied)) = &applier
                    && in_flight
                {
                    applied.recv().expect("applied");
                }
            });
            reclaim::settle();
            t.stop()
        };
        let json = decode_and_apply(true, false);
        let pipelined = decode_and_apply(true, true);
        // The same pods again as the store holds them (status updates).
        let unchanged = decode_and_apply(false, false);
        let updates = n * size;
        println!(
            "updates/s{infix} {nodes} nodes, batches of {size}: apply {}, decode+apply (JSON) {}, pipelined as SyncState {}, status updates (JSON, sent again unchanged) {} ({n} batches each)",
            apply.rate(updates),
            json.rate(updates),
            pipelined.rate(updates),
            unchanged.rate(updates),
        );
    }
}

/// A sustained loop's wall time and the CPU time the process spent in it.
struct Sustained {
    wall: Duration,
    cpu: Duration,
}

impl Sustained {
    /// Starts timing; [`Started::stop`] ends it.
    fn start() -> Started {
        Started {
            wall: std::time::Instant::now(),
            cpu: common::process_cpu(),
        }
    }

    /// `updates` over the loop: per second of wall time, and the CPU time each took
    /// (all threads: the caller, the pool, the reclaimer), which a noisy machine moves
    /// less than the rate.
    fn rate(&self, updates: usize) -> String {
        format!(
            "{:.0}/s ({:.2} µs CPU each)",
            updates as f64 / self.wall.as_secs_f64(),
            self.cpu.as_secs_f64() * 1e6 / updates as f64,
        )
    }
}

struct Started {
    wall: std::time::Instant,
    cpu: Duration,
}

impl Started {
    fn stop(self) -> Sustained {
        Sustained {
            wall: self.wall.elapsed(),
            cpu: common::process_cpu().saturating_sub(self.cpu),
        }
    }
}

fn refresh(c: &mut Criterion) {
    for nodes in common::sizes() {
        if !common::selected(&format!("refresh-1-pod/{nodes}")) {
            continue;
        }
        let cl = common::cluster(nodes, PENDING_PODS);
        let (_store, state) = loaded(&cl);
        let mut resends = Resends::new(&cl);
        let mut group = c.benchmark_group("refresh-1-pod");
        let positions = Order::ByNode.positions(cl.pods());
        let mut next = 0;
        group.bench_function(BenchmarkId::from_parameter(nodes), |b| {
            b.iter_batched(
                || resends.batch(&positions, &mut next, 1),
                |batch| state.apply(black_box(batch)),
                BatchSize::SmallInput,
            )
        });
        group.finish();
        let upsert = |object: Object| Batch {
            changes: vec![Change::Upsert(object)],
            ..Batch::default()
        };
        let count = if common::bench_mode() { 20_000 } else { 1 };
        let (bound, pending): (Vec<usize>, Vec<usize>) =
            (0..cl.pods()).partition(|&i| cl.objects.pods[i].node_name.is_some());
        for (kind, pods) in [("pod", bound), ("pending-pod", pending)] {
            let mut batches = pods
                .iter()
                .cycle()
                .take(count)
                .map(|&i| upsert(Object::Pod(Arc::new(resends.pod(i)))))
                .collect::<Vec<_>>()
                .into_iter();
            let s = common::timed(Duration::from_secs(2), 100, count, || {
                batches.next().map(|b| state.apply(b))
            });
            println!("latency refresh-1-{kind}/{nodes}: {}", s.summary());
        }
        // A node sent again: a status heartbeat (nothing the scheduler reads changed, not
        // taken), or cordoned and uncordoned in turn (each send changes it).
        let held = &cl.objects.nodes;
        for (kind, cordon) in [("node", false), ("node-cordon", true)] {
            let mut batches = (0..count)
                .map(|k| {
                    let mut node = held[k % held.len()].clone();
                    node.unschedulable ^= cordon && (k / held.len()).is_multiple_of(2);
                    upsert(Object::Node(Arc::new(node)))
                })
                .collect::<Vec<_>>()
                .into_iter();
            let s = common::timed(Duration::from_secs(2), 100, count, || {
                batches.next().map(|b| state.apply(b))
            });
            println!("latency refresh-1-{kind}/{nodes}: {}", s.summary());
        }
    }
}

/// Pending pods in the refresh bench's cluster (as in the pending-pods bench).
const PENDING_PODS: usize = 1000;

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = initial_sync, stream, refresh
}
criterion_main!(benches);
