//! `preemption-oracle serve [--listen ADDR] [--metrics-listen ADDR] [--state FILE] [--demo]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use preemption_oracle::generate::{GeneratorConfig, generate_scenario};
use preemption_oracle::kube;
use preemption_oracle::service::server::{self, ServeConfig};
use preemption_oracle::store::{Batch, Store};
use preemption_oracle::telemetry::{metrics, traces};

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on. Loopback by default.
    #[arg(long, default_value = "127.0.0.1:50051", env = "ORACLE_LISTEN")]
    listen: SocketAddr,
    /// Serve Prometheus metrics on this address (`GET /metrics`). Off by default.
    #[arg(long, value_name = "ADDR", env = "ORACLE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Load this state into the default cluster at start: a conformance-style scenario
    /// or a kubectl `v1 List`, JSON or YAML.
    #[arg(long, conflicts_with = "demo")]
    state: Option<PathBuf>,
    /// Load an embedded, deterministic synthetic cluster into the default cluster.
    #[arg(long)]
    demo: bool,
    /// Demo size: nodes.
    #[arg(long, default_value_t = 1000, requires = "demo")]
    nodes: usize,
    /// Demo size: pods per node.
    #[arg(long, default_value_t = 30, requires = "demo")]
    pods_per_node: usize,
}

fn initial_state(args: &Args) -> Result<Option<Batch>, String> {
    if let Some(path) = &args.state {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let doc = kube::parse_document(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let cluster = kube::decode_cluster(&doc).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(Some(Batch::replace_with(cluster)));
    }
    if args.demo {
        let config = GeneratorConfig {
            nodes: args.nodes,
            pods_per_node: args.pods_per_node,
            seed: 1,
            pending_pods: args.nodes / 10,
        };
        let doc = generate_scenario(&config);
        let cluster = kube::decode_cluster(&doc).map_err(|e| format!("demo cluster: {e}"))?;
        return Ok(Some(Batch::replace_with(cluster)));
    }
    Ok(None)
}

pub fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The OTLP exporter's channel and the metrics listener run on the runtime.
    let _runtime = runtime.enter();
    let tracing = match traces::init() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(addr) = args.metrics_listen {
        if let Err(e) = metrics::install(addr) {
            eprintln!("error: metrics on {addr}: {e}");
            return ExitCode::FAILURE;
        }
        tracing::info!(%addr, "serving Prometheus metrics on /metrics");
    }
    let batch = match initial_state(&args) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let store = Arc::new(Store::new());
    if let Some(batch) = batch {
        let objects = batch.changes.len();
        let revision = store.cluster_or_create("").apply(batch);
        tracing::info!(objects, revision, "initial state loaded");
    }
    if args.metrics_listen.is_some() {
        runtime.spawn(metrics::refresh_state(Arc::clone(&store)));
    }
    runtime.block_on(async move {
        let listener = match server::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(addr = %args.listen, "serving preemption_oracle.v1.PreemptionOracle, grpc.health.v1.Health and reflection");
        let served = server::serve(listener, store, ServeConfig::default(), shutdown_signal()).await;
        tracing.shutdown().await;
        match served {
            Ok(()) => {
                tracing::info!("shut down");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received, draining");
}
