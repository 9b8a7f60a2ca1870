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

use std::time::Duration;

/// Parses a `grpc-timeout` header value (`100m`, `5S`, …).
pub fn grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Generated protobuf and gRPC code for `preemption_oracle.v1`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("preemption_oracle.v1");

    /// The encoded descriptor set, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/oracle_descriptor.bin"));
}
