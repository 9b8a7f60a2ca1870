//! The one ingest path. A `SyncStateRequest`, whether it came over a `SyncState` stream
//! or from the built-in cluster watcher, is decoded and validated whole, then applied
//! atomically to its cluster, producing a new revision. Every batch is counted here
//! (`oracle_ingest_batches_total`, `oracle_ingest_objects_total`).

use tonic::Status;

use super::{decode, pb};
use crate::store::{Store, cluster_name};
use crate::telemetry::metrics;

/// Decodes `req` and applies it to its cluster (created on first use). Nothing is applied
/// when any change is invalid: the error is `INVALID_ARGUMENT` naming the field.
pub fn apply_request(
    store: &Store,
    req: &pb::SyncStateRequest,
) -> Result<pb::SyncStateResponse, Status> {
    let classes = store
        .cluster(&req.cluster)
        .map(|c| c.priority_classes())
        .unwrap_or_default();
    let batch = match decode::batch(req, classes) {
        Ok(b) => b,
        Err(status) => {
            metrics::record_batch_rejected(cluster_name(&req.cluster));
            return Err(status);
        }
    };
    let applied = batch.changes.len() as u32;
    let cluster = store.cluster_or_create(&req.cluster);
    let revision = cluster.apply(batch);
    metrics::record_batch_applied(cluster.name(), applied as usize);
    // The caller's span (SyncState's per-batch span) declares `revision`.
    tracing::Span::current().record("revision", revision);
    tracing::info!(revision, applied, "batch applied");
    Ok(pb::SyncStateResponse {
        revision,
        batch_id: req.batch_id.clone(),
        applied,
        cluster: cluster.name().to_string(),
    })
}
