//! The gRPC server: the oracle, health and reflection (v1 and v1alpha, so grpcurl and
//! ghz work with no .proto file), with tracing, timeouts, concurrency and message size
//! limits as tower layers around the handlers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Server;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::trace::TraceLayer;

use super::oracle::Oracle;
use super::pb;
use crate::store::Store;

/// Server limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Per-request timeout (a shorter `grpc-timeout` from the caller wins).
    pub request_timeout: Duration,
    /// Requests in flight across all connections.
    pub max_concurrent_requests: usize,
    /// Largest request message (a full-cluster sync batch can be large).
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 1024,
            max_message_bytes: 512 * 1024 * 1024,
        }
    }
}

/// Serves `store` on `listener` until `shutdown` completes, then drains in-flight calls.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::preemption_oracle_server::PreemptionOracleServer<Oracle>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("descriptor sets are valid");
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("descriptor sets are valid");
    let oracle = pb::preemption_oracle_server::PreemptionOracleServer::new(Oracle::new(store))
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    // Small answers (SyncState acks) go out at once rather than behind Nagle's algorithm.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .timeout(limits.request_timeout)
        .layer(TraceLayer::new_for_grpc())
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(oracle)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
