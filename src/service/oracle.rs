//! The `PreemptionOracle` gRPC service: proto ↔ model, store ↔ engine. No scheduling
//! rules live here.
//!
//! Each handler records the cluster, the revision, the nodes evaluated and the outcome
//! on the call's span (opened by `telemetry::rpc`), and opens the `snapshot` phase
//! span; the engine's phases run under it, on the calling thread for a `Place` on a
//! small cluster and as a job on rayon's pool otherwise.

use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::field::Empty;
use tracing::{Instrument, Span, debug_span, info_span};

use super::{decode, ingest, pb, response};
use crate::engine::decision::Outcome;
use crate::engine::sequence::{WhatIf, pending_in_queue_order, place_in_order};
use crate::engine::{Options, Snapshot, decide_on_this_thread};
use crate::store::{ClusterState, Published, Store};

/// The well-known label a what-if node copy gets its own name in.
const HOSTNAME: &str = "kubernetes.io/hostname";

/// How long `min_revision` waits when the call carries no deadline.
const DEFAULT_REVISION_WAIT: Duration = Duration::from_secs(10);

/// The service over a shared store.
#[derive(Debug, Clone)]
pub struct Oracle {
    store: Arc<Store>,
    /// Changes (its sender is dropped) when the server begins to shut down.
    shutdown: watch::Receiver<()>,
}

impl Oracle {
    /// The service over `store`; `shutdown` changes or closes when the server stops.
    pub fn new(store: Arc<Store>, shutdown: watch::Receiver<()>) -> Oracle {
        Oracle { store, shutdown }
    }

    fn cluster(&self, name: &str) -> Result<Arc<ClusterState>, Status> {
        self.store
            .cluster(name)
            .ok_or_else(|| Status::not_found(format!("cluster {name:?} not found")))
    }
}

/// The call's deadline from its `grpc-timeout` header.
fn deadline<T>(req: &Request<T>) -> Option<Duration> {
    super::grpc_timeout(req.metadata().get("grpc-timeout")?.to_str().ok()?)
}

/// A `snapshot` phase span for `cluster` (revision and nodes recorded when known). At
/// DEBUG, as the engine's phase spans: traces carry them, logs only when `RUST_LOG` asks.
fn snapshot_phase(cluster: &str) -> Span {
    debug_span!(
        "snapshot",
        cluster = crate::store::cluster_name(cluster),
        revision = Empty,
        nodes = Empty
    )
}

/// Records on the current span (the phase, then the call) the revision and the nodes a
/// query evaluates, and on the call's span the cluster. With the phase span off (DEBUG,
/// see `snapshot_phase`) the current span is the call's, recorded once.
fn record_snapshot(call: &Span, cluster: &ClusterState, revision: u64, nodes: usize) {
    let phase = Span::current();
    if phase != *call {
        phase.record("revision", revision);
        phase.record("nodes", nodes);
    }
    call.record("cluster", cluster.name());
    call.record("revision", revision);
    call.record("nodes", nodes);
}

async fn at_revision(
    cluster: &ClusterState,
    min_revision: u64,
    wait: Duration,
) -> Result<Arc<Published>, Status> {
    if min_revision > 0 {
        cluster
            .wait_for_revision(min_revision, wait)
            .await
            .map_err(|reached| {
                Status::deadline_exceeded(format!(
                    "state is at revision {reached}, not yet {min_revision}"
                ))
            })?;
    }
    Ok(cluster.published())
}

fn what_if(options: &pb::PlaceOptions) -> Result<WhatIf, Status> {
    let mut w = WhatIf {
        removed_nodes: options.removed_nodes.clone(),
        ..WhatIf::default()
    };
    for (i, r) in options.removed_pods.iter().enumerate() {
        if r.name.is_empty() {
            return Err(Status::invalid_argument(format!(
                "options.removed_pods[{i}].name: is required"
            )));
        }
        let ns = if r.namespace.is_empty() {
            "default"
        } else {
            &r.namespace
        };
        w.removed_pods.push(format!("{ns}/{}", r.name));
    }
    for (i, t) in options.extra_nodes.iter().enumerate() {
        let path = format!("options.extra_nodes[{i}]");
        let template = t
            .node
            .as_ref()
            .ok_or_else(|| Status::invalid_argument(format!("{path}.node: is required")))?;
        let node = decode::node(template, &format!("{path}.node"))?;
        let prefix = if t.name_prefix.is_empty() {
            format!("whatif-{}", node.name)
        } else {
            t.name_prefix.clone()
        };
        for k in 0..t.count {
            let mut copy = node.clone();
            copy.name = format!("{prefix}-{k}");
            if copy.labels.contains_key(HOSTNAME) {
                copy.labels = copy.labels.with(HOSTNAME, &copy.name);
            }
            w.extra_nodes.push(copy);
        }
    }
    Ok(w)
}

fn overlay(snapshot: &Arc<Snapshot>, w: &WhatIf) -> Result<Arc<Snapshot>, Status> {
    if w.is_empty() {
        return Ok(Arc::clone(snapshot));
    }
    w.apply(snapshot)
        .map(Arc::new)
        .map_err(|e| Status::not_found(e.to_string()))
}

/// A `Place` on a cluster of at most this many nodes is decided on the runtime thread
/// that received it, each pass whole (the pool would split it into at most four tasks
/// of `engine::NODES_PER_TASK`): at 1,000 nodes a fitting pod's decision takes about
/// 100 µs of CPU, while handing the query to the pool and the answer back costs tens
/// of µs of thread wake-ups, and parallel passes save nothing when other queries keep
/// every core busy. Bigger clusters, and the calls that decide many pods, go to the
/// pool (`evaluate`).
///
/// Either way a `Place` on the cluster as published borrows one of the cluster's memos
/// (`ClusterState::memos`): a pod shape asked about again reuses the node-local
/// plugins' results, and the cluster-wide plugins' counts, on every node the writer
/// has not changed since (about 1.5x less CPU per decision at 1,000 nodes, 3x at
/// 5,000). A memo's row holds a replaced node's allocation (about 500 bytes), not
/// its pods; each memo keeps as many templates as `MEMO_BUDGET` allows.
const DECIDE_INLINE_UP_TO_NODES: usize = 1024;

/// Runs a small decision on the calling thread (see `DECIDE_INLINE_UP_TO_NODES`), a
/// panic in the engine answered as `INTERNAL` as on the pool.
fn decide_inline<T>(decide: impl FnOnce() -> T) -> Result<T, Status> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decide)).map_err(engine_panicked)
}

/// The answer to a call whose decision panicked.
fn engine_panicked<E>(_panic: E) -> Status {
    Status::internal("evaluation failed: the engine panicked")
}

/// Runs a query's engine work once one of as many permits as rayon has threads is
/// free. Each decision already spreads over every thread, so more at once only share
/// the cores and stretch each other's latency; waiting calls queue fairly (first come,
/// first served) instead of being preempted by the OS and rayon's work stealing.
///
/// The work runs as a job on rayon's pool (`pool::spawn`), under the current span: its
/// parallel passes then fork and join among the pool's workers, with no thread in
/// between to hand each pass over and wait for it.
async fn evaluate<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
    static GATE: LazyLock<Semaphore> =
        LazyLock::new(|| Semaphore::new(rayon::current_num_threads()));
    let _permit = GATE
        .acquire()
        .await
        .map_err(|e| Status::internal(format!("evaluation gate closed: {e}")))?;
    crate::pool::spawn(f).await.map_err(engine_panicked)
}

/// Runs a step of a SyncState batch (decoding or applying it) on a blocking thread under
/// `span`, started now rather than when awaited. On a blocking thread rather than the
/// pool: applying waits for the cluster's writer lock, and a pool worker waiting there
/// would hold up queries.
fn ingest_off_runtime<T: Send + 'static>(
    span: Span,
    step: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    tokio::task::spawn_blocking(move || span.in_scope(step))
}

/// The SyncState batch being applied, and whether the next batch must wait for it.
struct Applying {
    /// The batch changes the priority classes that later batches' pods are decoded
    /// against.
    changes_priority_classes: bool,
    answer: JoinHandle<pb::SyncStateResponse>,
}

type Answers = mpsc::Sender<Result<pb::SyncStateResponse, Status>>;

/// The answer of the batch being applied, once it is applied; never, when none is.
async fn applied(applying: &mut Option<Applying>) -> Result<pb::SyncStateResponse, Status> {
    match applying {
        Some(applying) => (&mut applying.answer)
            .await
            .map_err(|e| Status::internal(format!("applying the batch failed: {e}"))),
        None => std::future::pending().await,
    }
}

/// Sends a batch's answer. False when the stream must end: the batch failed, or the
/// client is gone.
async fn send(answer: Result<pb::SyncStateResponse, Status>, answers: &Answers) -> bool {
    let failed = answer.is_err();
    answers.send(answer).await.is_ok() && !failed
}

/// Waits for the batch being applied, if any, and sends its answer; as [`send`].
async fn send_answer(applying: &mut Option<Applying>, answers: &Answers) -> bool {
    if applying.is_none() {
        return true;
    }
    let answer = applied(applying).await;
    *applying = None;
    send(answer, answers).await
}

type SyncStream = Pin<Box<dyn Stream<Item = Result<pb::SyncStateResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::preemption_oracle_server::PreemptionOracle for Oracle {
    type SyncStateStream = SyncStream;

    async fn sync_state(
        &self,
        request: Request<Streaming<pb::SyncStateRequest>>,
    ) -> Result<Response<SyncStream>, Status> {
        let mut inbound = request.into_inner();
        let store = Arc::clone(&self.store);
        let (tx, rx) = mpsc::channel(16);
        let call = Span::current();
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            // A batch is one message: a stream cut mid-batch never delivers it, so
            // nothing is half applied. While one batch is applied the next is received
            // and decoded; answers go out in order.
            let mut applying: Option<Applying> = None;
            loop {
                let req = tokio::select! {
                    next = inbound.next() => match next {
                        Some(Ok(req)) => req,
                        _ => break,
                    },
                    // A batch's answer goes out as soon as it is applied.
                    answer = applied(&mut applying) => {
                        applying = None;
                        if send(answer, &tx).await {
                            continue;
                        }
                        break;
                    }
                    _ = shutdown.changed() => {
                        if send_answer(&mut applying, &tx).await {
                            let bye = Status::unavailable("the server is shutting down; reconnect");
                            let _ = tx.send(Err(bye)).await;
                        }
                        break;
                    }
                };
                let span = info_span!(
                    parent: &call,
                    "sync_state",
                    cluster = %crate::store::cluster_name(&req.cluster),
                    changes = req.changes.len(),
                    revision = Empty
                );
                let must_wait = applying
                    .as_ref()
                    .is_some_and(|a| a.changes_priority_classes);
                if must_wait && !send_answer(&mut applying, &tx).await {
                    break;
                }
                let decoding = {
                    let store = Arc::clone(&store);
                    ingest_off_runtime(span.clone(), move || ingest::decode_request(&store, &req))
                };
                let decoded = decoding
                    .await
                    .map_err(|e| Status::internal(format!("decoding the batch failed: {e}")))
                    .and_then(|decoded| decoded);
                if !send_answer(&mut applying, &tx).await {
                    break;
                }
                match decoded {
                    Ok(decoded) => {
                        let store = Arc::clone(&store);
                        applying = Some(Applying {
                            changes_priority_classes: decoded.changes_priority_classes(),
                            answer: ingest_off_runtime(span, move || {
                                ingest::apply_decoded(&store, decoded)
                            }),
                        });
                    }
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        break;
                    }
                }
            }
            send_answer(&mut applying, &tx).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn place(
        &self,
        request: Request<pb::PlaceRequest>,
    ) -> Result<Response<pb::PlaceResponse>, Status> {
        let wait = deadline(&request).unwrap_or(DEFAULT_REVISION_WAIT);
        let req = request.into_inner();
        let call = Span::current();
        let options = req.options.unwrap_or_default();
        let (cluster, published, pod, snapshot) = async {
            let cluster = self.cluster(&req.cluster)?;
            let published = at_revision(&cluster, options.min_revision, wait).await?;
            let pod = decode::pod(&req.pod, &published.snapshot.priority_classes(), "pod")?;
            let snapshot = overlay(&published.snapshot, &what_if(&options)?)?;
            record_snapshot(&call, &cluster, published.revision, snapshot.nodes.len());
            Ok::<_, Status>((cluster, published, pod, snapshot))
        }
        .instrument(snapshot_phase(&req.cluster))
        .await?;
        let decide_options = if options.explain {
            Options::EXPLAINED
        } else {
            Options::ANSWER
        };
        // A what-if snapshot's changed nodes would only crowd the memos out.
        let remember = Arc::ptr_eq(&snapshot, &published.snapshot);
        let inline = snapshot.nodes.len() <= DECIDE_INLINE_UP_TO_NODES;
        // On this thread or a pool worker alike: on a worker the passes fork and join
        // among the pool's workers.
        let decide = move || {
            if remember {
                cluster.memos().with_memo(|memo| {
                    decide_on_this_thread(&snapshot, &pod, decide_options, Some(memo))
                })
            } else {
                decide_on_this_thread(&snapshot, &pod, decide_options, None)
            }
        };
        let decision = if inline {
            decide_inline(decide)?
        } else {
            evaluate(decide).await?
        };
        call.record("outcome", decision.outcome.as_str());
        Ok(Response::new(response::place(
            &decision,
            published.revision,
            options.explain,
        )))
    }

    async fn place_batch(
        &self,
        request: Request<pb::PlaceBatchRequest>,
    ) -> Result<Response<pb::PlaceBatchResponse>, Status> {
        let wait = deadline(&request).unwrap_or(DEFAULT_REVISION_WAIT);
        let req = request.into_inner();
        let call = Span::current();
        let options = req.options.unwrap_or_default();
        let (published, pods, snapshot) = async {
            let cluster = self.cluster(&req.cluster)?;
            let published = at_revision(&cluster, options.min_revision, wait).await?;
            let classes = published.snapshot.priority_classes();
            let pods = req
                .pods
                .iter()
                .enumerate()
                .map(|(i, p)| decode::pod(&Some(p.clone()), &classes, &format!("pods[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            let snapshot = overlay(&published.snapshot, &what_if(&options)?)?;
            record_snapshot(&call, &cluster, published.revision, snapshot.nodes.len());
            Ok::<_, Status>((published, pods, snapshot))
        }
        .instrument(snapshot_phase(&req.cluster))
        .await?;
        let count = pods.len();
        let all_or_nothing = req.all_or_nothing;
        let decide_options = if options.explain {
            Options::EXPLAINED
        } else {
            Options::ANSWER
        };
        let decisions =
            evaluate(move || place_in_order(&snapshot, &pods, all_or_nothing, decide_options))
                .await?;
        let admitted = decisions.len() == count
            && decisions
                .iter()
                .all(|d| matches!(d.outcome, Outcome::Scheduled | Outcome::Preempts));
        call.record(
            "outcome",
            if admitted { "ADMITTED" } else { "NOT_ADMITTED" },
        );
        Ok(Response::new(pb::PlaceBatchResponse {
            results: decisions
                .iter()
                .map(|d| response::place(d, published.revision, options.explain))
                .collect(),
            admitted,
            revision: published.revision,
        }))
    }

    async fn pending_pods(
        &self,
        request: Request<pb::PendingPodsRequest>,
    ) -> Result<Response<pb::PendingPodsResponse>, Status> {
        let wait = deadline(&request).unwrap_or(DEFAULT_REVISION_WAIT);
        let req = request.into_inner();
        let call = Span::current();
        let published = async {
            let cluster = self.cluster(&req.cluster)?;
            let published = at_revision(&cluster, req.min_revision, wait).await?;
            let nodes = published.snapshot.nodes.len();
            record_snapshot(&call, &cluster, published.revision, nodes);
            Ok::<_, Status>(published)
        }
        .instrument(snapshot_phase(&req.cluster))
        .await?;
        let snapshot = Arc::clone(&published.snapshot);
        let limit = req.limit as usize;
        let (pods, decisions) = evaluate(move || {
            let mut pods = pending_in_queue_order(&snapshot);
            if limit > 0 {
                pods.truncate(limit);
            }
            let decisions = place_in_order(&snapshot, &pods, false, Options::ANSWER);
            (pods, decisions)
        })
        .await?;
        let pods = pods
            .iter()
            .zip(&decisions)
            .map(|(p, d)| {
                let class = match d.outcome {
                    Outcome::Scheduled => pb::PendingClass::Fits,
                    Outcome::Preempts => pb::PendingClass::Preempts,
                    Outcome::Unschedulable | Outcome::NotEligible => {
                        pb::PendingClass::NeedsCapacity
                    }
                };
                pb::PendingPod {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    priority: p.priority,
                    class: class as i32,
                    node: d.node.clone().unwrap_or_default(),
                    victims: d
                        .chosen_candidate()
                        .map(|c| c.victim_details.iter().map(response::victim).collect())
                        .unwrap_or_default(),
                    reason: d.fit_error.clone().unwrap_or_default(),
                }
            })
            .collect::<Vec<_>>();
        let count =
            |class: pb::PendingClass| pods.iter().filter(|p| p.class == class as i32).count();
        call.record(
            "outcome",
            format!(
                "{} fit, {} preempt, {} need capacity",
                count(pb::PendingClass::Fits),
                count(pb::PendingClass::Preempts),
                count(pb::PendingClass::NeedsCapacity)
            ),
        );
        Ok(Response::new(pb::PendingPodsResponse {
            pods,
            revision: published.revision,
        }))
    }
}
