//! Where watched batches go. A sink applies a batch (into this process's store, or over
//! a `SyncState` stream to another oracle) and hands a rejected batch back with its
//! error, so that the watcher can drop the one bad object and deliver the rest.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tonic::Status;

use crate::service::{ingest, pb};
use crate::store::Store;

/// What became of a delivered batch.
#[derive(Debug)]
pub enum Delivery {
    Applied(pb::SyncStateResponse),
    /// The batch was refused whole (`INVALID_ARGUMENT` naming the change); it comes back
    /// unchanged.
    Rejected(pb::SyncStateRequest, Status),
}

/// A destination for watched batches. An `Err` means the destination is gone (the
/// connection dropped): the watcher stops, and its caller starts over with a full list.
pub trait BatchSink: Send {
    fn deliver(
        &mut self,
        batch: pb::SyncStateRequest,
    ) -> impl Future<Output = Result<Delivery, Status>> + Send;
}

/// Applies batches to a store in this process through the `SyncState` ingest path, and
/// raises `ready` once a full sync has landed.
#[derive(Debug)]
pub struct LocalSink {
    store: Arc<Store>,
    ready: watch::Sender<bool>,
}

impl LocalSink {
    pub fn new(store: Arc<Store>, ready: watch::Sender<bool>) -> LocalSink {
        LocalSink { store, ready }
    }
}

impl BatchSink for LocalSink {
    async fn deliver(&mut self, batch: pb::SyncStateRequest) -> Result<Delivery, Status> {
        let store = Arc::clone(&self.store);
        let (batch, result) = tokio::task::spawn_blocking(move || {
            let result = ingest::apply_request(&store, &batch);
            (batch, result)
        })
        .await
        .map_err(|e| Status::internal(format!("applying a watched batch failed: {e}")))?;
        match result {
            Ok(ack) => {
                if batch.replace {
                    self.ready.send_replace(true);
                }
                Ok(Delivery::Applied(ack))
            }
            Err(status) => Ok(Delivery::Rejected(batch, status)),
        }
    }
}
