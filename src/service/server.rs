//! The gRPC server: the oracle, health and reflection (v1 and v1alpha, so grpcurl and
//! ghz work with no .proto file), with telemetry (a span, a count and a latency per call:
//! `telemetry::rpc`), timeouts, concurrency and message size limits as tower layers
//! around the handlers.
//!
//! Health: the overall service (`""`) and `preemption_oracle.v1.PreemptionOracle` report
//! SERVING once the state is ready (at once, unless [`ServeConfig::ready`] says to wait
//! for a watcher's first full sync); `liveness` reports SERVING while the process runs,
//! for a liveness probe that must not fail during a long first sync.
//!
//! Security: [`ServeConfig::tls`] serves TLS (mutual TLS with a client CA) and
//! [`ServeConfig::auth`] admits callers by role (see [`super::auth`]); health stays open.
//! [`ServeConfig::health_listener`] adds a plaintext port serving only health, from the
//! same reporter, for kubelet probes that speak neither TLS nor tokens.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tonic::transport::Server;
use tower::limit::GlobalConcurrencyLimitLayer;

use super::auth::{AuthConfig, AuthLayer};
use super::oracle::Oracle;
use super::pb;
use super::tls::TlsConfig;
use crate::store::Store;
use crate::telemetry::rpc::RpcLayer;

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

/// How to serve.
#[derive(Debug, Default)]
pub struct ServeConfig {
    pub limits: Limits,
    /// When set, health reports NOT_SERVING until this turns `true` (a watcher's first
    /// full sync), and follows it afterwards.
    pub ready: Option<watch::Receiver<bool>>,
    /// Serve TLS; with a client CA, every client must present a certificate it verifies.
    pub tls: Option<TlsConfig>,
    /// Admit only callers with a reader or writer credential (health stays open). Mutual
    /// TLS turns this on by itself: without it, a verified client certificate is a reader.
    pub auth: Option<AuthConfig>,
    /// A second, plaintext listener serving only `grpc.health.v1.Health`, reporting
    /// exactly what the main listener's health reports.
    pub health_listener: Option<tokio::net::TcpListener>,
}

/// The health service name a liveness probe asks for.
pub const LIVENESS_SERVICE: &str = "liveness";

/// Sets the readiness-bearing health entries: the overall service and the oracle.
async fn set_readiness(reporter: &tonic_health::server::HealthReporter, ready: bool) {
    type OracleServer = pb::preemption_oracle_server::PreemptionOracleServer<Oracle>;
    let status = if ready {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    reporter.set_service_status("", status).await;
    if ready {
        reporter.set_serving::<OracleServer>().await;
    } else {
        reporter.set_not_serving::<OracleServer>().await;
    }
}

/// Serves `store` on `listener` until `shutdown` completes, then drains in-flight calls.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let ServeConfig {
        limits,
        ready,
        tls,
        auth,
        health_listener,
    } = config;
    let auth = auth.or_else(|| {
        tls.as_ref()
            .filter(|t| t.requires_client_certificates())
            .map(|_| AuthConfig::default())
    });
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(LIVENESS_SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    set_readiness(&health_reporter, ready.as_ref().is_none_or(|r| *r.borrow())).await;
    let readiness = ready.map(|mut ready| {
        tokio::spawn(async move {
            while ready.changed().await.is_ok() {
                let now = *ready.borrow_and_update();
                set_readiness(&health_reporter, now).await;
            }
        })
    });
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
    // Shutdown drops `stop`: the health port stops, and open SyncState streams end (a
    // feeder's stream never ends by itself, and draining would wait for it).
    let (stop, stopped) = watch::channel(());
    let oracle = pb::preemption_oracle_server::PreemptionOracleServer::new(Oracle::new(
        store,
        stopped.clone(),
    ))
    .max_decoding_message_size(limits.max_message_bytes)
    .max_encoding_message_size(limits.max_message_bytes);
    // Small answers (SyncState acks) go out at once rather than behind Nagle's algorithm.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut builder = Server::builder();
    if let Some(tls) = &tls {
        builder = builder.tls_config(tls.server_config())?;
    }
    let main = builder
        .timeout(limits.request_timeout)
        .layer(RpcLayer::new(limits.request_timeout))
        .layer(tower::util::option_layer(auth.map(AuthLayer::new)))
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .add_service(health_service.clone())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(oracle)
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            drop(stop);
        });
    let health_only = async move {
        let Some(listener) = health_listener else {
            return Ok(());
        };
        let mut stopped = stopped;
        Server::builder()
            .layer(RpcLayer::new(limits.request_timeout))
            .add_service(health_service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async move {
                    let _ = stopped.changed().await;
                },
            )
            .await
    };
    let served = tokio::try_join!(main, health_only).map(|_| ());
    if let Some(follower) = readiness {
        follower.abort();
    }
    served
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
