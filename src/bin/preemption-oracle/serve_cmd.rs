//! `preemption-oracle serve [--listen ADDR] [--state FILE | --demo | --kubeconfig [PATH]]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use preemption_oracle::generate::{GeneratorConfig, generate_scenario};
use preemption_oracle::kube;
use preemption_oracle::service::server::{self, ServeConfig};
use preemption_oracle::store::{Batch, Store};
use preemption_oracle::watch::{self, sink::LocalSink};

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on. Loopback by default.
    #[arg(long, default_value = "127.0.0.1:50051", env = "ORACLE_LISTEN")]
    listen: SocketAddr,
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
    /// Watch a Kubernetes cluster. With no PATH: KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account, as kubectl finds them. Health reports NOT_SERVING
    /// until the first full sync.
    #[arg(long, num_args = 0..=1, value_name = "PATH", conflicts_with_all = ["state", "demo"])]
    kubeconfig: Option<Option<PathBuf>>,
    /// The cluster name watched state is stored under (default: the default cluster).
    #[arg(long, default_value = "", requires = "kubeconfig")]
    cluster: String,
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
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
    runtime.block_on(async move {
        let listener = match server::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        let mut config = ServeConfig::default();
        if let Some(path) = &args.kubeconfig {
            let client = match watch::client(path.as_deref()).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let (ready, ready_rx) = tokio::sync::watch::channel(false);
            config.ready = Some(ready_rx);
            tokio::spawn(keep_watching(client, args.cluster.clone(), LocalSink::new(Arc::clone(&store), ready)));
        }
        tracing::info!(addr = %args.listen, "serving preemption_oracle.v1.PreemptionOracle, grpc.health.v1.Health and reflection");
        match server::serve(listener, store, config, shutdown_signal()).await {
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

/// Runs the watcher into this process's store for as long as the server runs.
async fn keep_watching(client: ::kube::Client, cluster: String, mut sink: LocalSink) {
    tracing::info!(cluster = %cluster, "watching nodes, pods, poddisruptionbudgets and priorityclasses");
    while let Err(e) = watch::run(client.clone(), &cluster, &mut sink).await {
        tracing::error!(error = %e, "the watcher stopped; restarting it");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
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
