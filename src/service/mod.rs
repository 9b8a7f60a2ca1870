//! The gRPC service (tonic): state streamed in through `SyncState`, and the questions
//! users ask (`Place`, `PlaceBatch`, `PendingPods`), over consistent snapshots.
//!
//! - [`pb`]: the generated protobuf types and the descriptor set for reflection;
//! - [`decode`] / [`native`]: requests → model, through `crate::kube`;
//! - [`ingest`]: the one path by which state batches reach the store;
//! - [`response`]: decisions → answers;
//! - [`oracle`]: the service handlers;
//! - [`server`]: the server with health, reflection and tower layers;
//! - [`auth`]: who may read and who may write (a tower layer), and token files;
//! - [`tls`]: TLS material from PEM files.

pub mod auth;
pub mod decode;
pub mod ingest;
pub mod native;
pub mod oracle;
pub mod response;
pub mod server;
pub mod tls;

/// Generated protobuf and gRPC code for `preemption_oracle.v1`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("preemption_oracle.v1");

    /// The encoded descriptor set, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/oracle_descriptor.bin"));
}
