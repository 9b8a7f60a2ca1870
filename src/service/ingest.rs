//! The one ingest path. A `SyncStateRequest`, whether it came over a `SyncState` stream
//! or from the built-in cluster watcher, is decoded and validated whole, then applied
//! atomically to its cluster, producing a new revision. Every batch is counted here
//! (`oracle_ingest_batches_total`, `oracle_ingest_objects_total`).
//!
//! Decoding and applying are separate steps so that a stream can decode its next batch
//! while the previous one is applied ([`Decoded::changes_priority_classes`] says when it
//! must not: pods are decoded against the cluster's priority classes).

use tonic::Status;

use super::{decode, pb};
use crate::store::{Batch, Store, cluster_name};
use crate::telemetry::metrics;

/// A request decoded and validated, not applied yet.
pub struct Decoded {
    cluster: String,
    batch_id: String,
    batch: Batch,
}

impl Decoded {
    /// Whether applying this batch changes the cluster's priority classes, against which
    /// the pods of later batches are decoded.
    pub fn changes_priority_classes(&self) -> bool {
        self.batch.changes_priority_classes()
    }
}

/// Decodes and validates `req` against its cluster's current priority classes. When any
/// change is invalid the error is `INVALID_ARGUMENT` naming the field, and the batch is
/// counted as rejected.
pub fn decode_request(store: &Store, req: &pb::SyncStateRequest) -> Result<Decoded, Status> {
    let classes = store
        .cluster(&req.cluster)
        .map(|c| c.priority_classes())
        .unwrap_or_default();
    match decode::batch(req, classes) {
        Ok(batch) => Ok(Decoded {
            cluster: req.cluster.clone(),
            batch_id: req.batch_id.clone(),
            batch,
        }),
        Err(status) => {
            metrics::record_batch_rejected(cluster_name(&req.cluster));
            Err(status)
        }
    }
}

/// Applies a decoded batch to its cluster (created on first use).
pub fn apply_decoded(store: &Store, decoded: Decoded) -> pb::SyncStateResponse {
    let applied = decoded.batch.changes.len() as u32;
    let cluster = store.cluster_or_create(&decoded.cluster);
    let revision = cluster.apply(decoded.batch);
    metrics::record_batch_applied(cluster.name(), applied as usize);
    // The caller's span (SyncState's per-batch span) declares `revision`.
    tracing::Span::current().record("revision", revision);
    tracing::info!(revision, applied, "batch applied");
    pb::SyncStateResponse {
        revision,
        batch_id: decoded.batch_id,
        applied,
        cluster: cluster.name().to_string(),
    }
}

/// Decodes `req` and applies it: nothing is applied when any change is invalid.
pub fn apply_request(
    store: &Store,
    req: &pb::SyncStateRequest,
) -> Result<pb::SyncStateResponse, Status> {
    decode_request(store, req).map(|decoded| apply_decoded(store, decoded))
}
