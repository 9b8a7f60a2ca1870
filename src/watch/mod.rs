//! The built-in cluster watcher: kube-rs watches of Nodes, Pods, PodDisruptionBudgets
//! (policy/v1) and PriorityClasses (scheduling.k8s.io/v1), fed through the same ingest
//! path as `SyncState` — the same decoding, validation, atomic batches and revisions.
//!
//! - [`edge`]: watched objects → stripped Kubernetes JSON changes;
//! - [`assemble`]: watch events → batches (the first full sync as one replace, a
//!   re-list as a replace of its kind, bursts of changes as one batch);
//! - [`sink`]: where batches go (this process's store, or — in `feed` — another oracle).
//!
//! kube-rs' watcher lists, then watches with bookmarks from the list's resourceVersion,
//! resumes a dropped watch where it stopped, and re-lists after a 410 Gone; API errors
//! are retried with its default backoff.

pub mod assemble;
pub mod edge;
pub mod sink;

use std::path::Path;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::runtime::{WatchStreamExt, watcher};
use tonic::Status;

use crate::service::{decode, pb};
use crate::telemetry::metrics;
use assemble::{Assembler, Step};
use edge::Watched;
use sink::{BatchSink, Delivery};

/// The kinds watched, in the order their objects enter a full sync (classes first, so
/// that pods' priorities resolve; then budgets, nodes and pods).
pub const KINDS: [pb::Kind; 4] = [
    pb::Kind::PriorityClass,
    pb::Kind::PodDisruptionBudget,
    pb::Kind::Node,
    pb::Kind::Pod,
];

/// The most watch events gathered into one batch.
const MAX_BURST: usize = 4096;

/// A Kubernetes client from a kubeconfig file, or — with no path — as kubectl would find
/// one: `KUBECONFIG`, `~/.kube/config`, or the pod's in-cluster service account.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| format!("no Kubernetes configuration found: {e}"))?,
    };
    kube::Client::try_from(config).map_err(|e| format!("cannot build a Kubernetes client: {e}"))
}

/// One kind's watch as steps. Errors are logged and retried after a backoff.
fn steps<K: Watched>(client: kube::Client) -> impl Stream<Item = (pb::Kind, Step)> + Send {
    let api = kube::Api::<K>::all(client);
    watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(|event| async move {
            let step = match event {
                Ok(watcher::Event::Init) => Step::Restart,
                Ok(watcher::Event::InitApply(o)) => Step::Listed(edge::upsert(o)?),
                Ok(watcher::Event::InitDone) => Step::ListDone,
                Ok(watcher::Event::Apply(o)) => Step::Changed(edge::upsert(o)?),
                Ok(watcher::Event::Delete(o)) => Step::Changed(edge::delete(&o)),
                Err(e) => {
                    tracing::warn!(kind = ?K::KIND, error = %e, "watch failed; retrying after a backoff");
                    return None;
                }
            };
            Some((K::KIND, step))
        })
}

/// Watches the cluster behind `client` and delivers its state to `sink` as the cluster
/// named `cluster`, until the sink is gone (its error is returned).
pub async fn run(
    client: kube::Client,
    cluster: &str,
    sink: &mut impl BatchSink,
) -> Result<(), Status> {
    let events = futures::stream::select_all([
        steps::<PriorityClass>(client.clone()).boxed(),
        steps::<PodDisruptionBudget>(client.clone()).boxed(),
        steps::<Node>(client.clone()).boxed(),
        steps::<Pod>(client).boxed(),
    ]);
    let mut bursts = events.ready_chunks(MAX_BURST);
    let mut assembler = Assembler::new(cluster, &KINDS);
    while let Some(burst) = bursts.next().await {
        for (kind, step) in burst {
            if matches!(step, Step::Restart) && assembler.synced() {
                tracing::info!(?kind, cluster, "re-listing");
                metrics::record_relist(crate::store::cluster_name(cluster), edge::kind_name(kind));
            }
            for batch in assembler.push(kind, step) {
                deliver(sink, batch).await?;
            }
        }
        if let Some(batch) = assembler.flush() {
            deliver(sink, batch).await?;
        }
    }
    Ok(())
}

/// Delivers `batch`; when it is refused for one object, drops that object (with a
/// warning) and delivers the rest.
async fn deliver(sink: &mut impl BatchSink, mut batch: pb::SyncStateRequest) -> Result<(), Status> {
    loop {
        match sink.deliver(batch).await? {
            Delivery::Applied(ack) => {
                tracing::debug!(
                    revision = ack.revision,
                    applied = ack.applied,
                    "watched batch applied"
                );
                return Ok(());
            }
            Delivery::Rejected(mut refused, status) => {
                match decode::rejected_change(&status).filter(|i| *i < refused.changes.len()) {
                    Some(i) => {
                        tracing::warn!(
                            error = status.message(),
                            "a watched object was refused; dropped"
                        );
                        refused.changes.remove(i);
                        batch = refused;
                    }
                    None => {
                        tracing::warn!(
                            error = status.message(),
                            "a watched batch was refused; dropped"
                        );
                        return Ok(());
                    }
                }
            }
        }
    }
}
