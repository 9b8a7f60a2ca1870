//! `preemption-oracle serve [--listen ADDR] [--state FILE | --demo | --kubeconfig [PATH]]`,
//! with TLS (`--tls-cert`, `--tls-key`, `--client-ca`), access control
//! (`--writer-token-file`, `--reader-token-file`, `--writer-identity`), a plaintext
//! health port (`--health-listen`) and Prometheus metrics (`--metrics-listen`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use preemption_oracle::generate::{GeneratorConfig, generate_objects};
use preemption_oracle::kube;
use preemption_oracle::service::auth::{AuthConfig, CredentialFileError, Tokens, read_token_file};
use preemption_oracle::service::server::{self, ServeConfig};
use preemption_oracle::service::tls::{TlsConfig, read_certificates, read_private_key};
use preemption_oracle::store::{Batch, Store};
use preemption_oracle::telemetry::{metrics, traces};
use preemption_oracle::watch::{self, sink::LocalSink};

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
    /// Watch a Kubernetes cluster. With no PATH: KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account, as kubectl finds them. Health reports NOT_SERVING
    /// until the first full sync.
    #[arg(long, num_args = 0..=1, value_name = "PATH", conflicts_with_all = ["state", "demo"])]
    kubeconfig: Option<Option<PathBuf>>,
    /// The cluster name watched state is stored under (default: the default cluster).
    #[arg(long, default_value = "", requires = "kubeconfig")]
    cluster: String,
    /// Serve TLS with this certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require mutual TLS: client certificates must chain to this CA (PEM). A verified
    /// client certificate may read; see --writer-identity to let it write.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// Bearer tokens (one per line; blank lines and # comments ignored) that may call
    /// SyncState and the queries.
    #[arg(long, value_name = "FILE")]
    writer_token_file: Option<PathBuf>,
    /// Bearer tokens (same format) that may call the queries only.
    #[arg(long, value_name = "FILE")]
    reader_token_file: Option<PathBuf>,
    /// A client certificate identity (subject CN or DNS SAN) that may write. Repeatable.
    #[arg(long, value_name = "NAME", requires = "client_ca")]
    writer_identity: Vec<String>,
    /// Also serve grpc.health.v1.Health alone, in plaintext, on this address (for kubelet
    /// `grpc:` probes, which speak neither TLS nor tokens).
    #[arg(long, value_name = "ADDR")]
    health_listen: Option<SocketAddr>,
}

/// Prefixes a file error with the flag that named the file.
fn flag(name: &'static str) -> impl Fn(CredentialFileError) -> String {
    move |e| format!("{name} {e}")
}

/// The TLS and access-control settings the flags ask for, every file read and checked.
/// Auth is on when any token file or a client CA is given.
fn security(args: &Args) -> Result<(Option<TlsConfig>, Option<AuthConfig>), String> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsConfig::from_pem(
            read_certificates(cert).map_err(flag("--tls-cert"))?,
            read_private_key(key).map_err(flag("--tls-key"))?,
            args.client_ca
                .as_deref()
                .map(read_certificates)
                .transpose()
                .map_err(flag("--client-ca"))?,
        )),
        _ => None,
    };
    let tokens = |file: &Option<PathBuf>, name| -> Result<Tokens, String> {
        let tokens = file.as_deref().map(read_token_file).transpose();
        Ok(Tokens::new(tokens.map_err(flag(name))?.unwrap_or_default()))
    };
    let auth_on = args.writer_token_file.is_some()
        || args.reader_token_file.is_some()
        || args.client_ca.is_some();
    let auth = auth_on
        .then(|| -> Result<AuthConfig, String> {
            Ok(AuthConfig {
                writer_tokens: tokens(&args.writer_token_file, "--writer-token-file")?,
                reader_tokens: tokens(&args.reader_token_file, "--reader-token-file")?,
                writer_identities: args.writer_identity.clone(),
            })
        })
        .transpose()?;
    Ok((tls, auth))
}

/// The warning owed when anyone who can reach `listen` may read and write.
fn exposure_warning(listen: SocketAddr, auth_on: bool) -> Option<String> {
    (!auth_on && !listen.ip().is_loopback()).then(|| {
        format!(
            "serving on {listen}, which is not a loopback address, with no access control: \
             anyone who can reach it can replace the state (SyncState) and read it. \
             Use --writer-token-file / --reader-token-file or --client-ca"
        )
    })
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
        return Ok(Some(Batch::replace_with(generate_objects(&config).cluster)));
    }
    Ok(None)
}

pub fn run(args: Args) -> ExitCode {
    let runtime = match crate::start_runtime(true) {
        Ok(r) => r,
        Err(code) => return code,
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
    let (tls, auth) = match security(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(warning) = exposure_warning(args.listen, auth.is_some()) {
        tracing::warn!("{warning}");
        eprintln!("WARNING: {warning}");
    }
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
        let health_listener = match args.health_listen {
            Some(addr) => match server::bind(addr).await {
                Ok(l) => {
                    tracing::info!(%addr, "serving grpc.health.v1.Health in plaintext");
                    Some(l)
                }
                Err(e) => {
                    eprintln!("error: cannot listen on {addr} (--health-listen): {e}");
                    return ExitCode::FAILURE;
                }
            },
            None => None,
        };
        tracing::info!(
            addr = %args.listen,
            tls = tls.is_some(),
            mutual_tls = tls.as_ref().is_some_and(TlsConfig::requires_client_certificates),
            auth = auth.is_some(),
            "serving preemption_oracle.v1.PreemptionOracle, grpc.health.v1.Health and reflection"
        );
        let mut config = ServeConfig {
            tls,
            auth,
            health_listener,
            ..ServeConfig::default()
        };
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
            tokio::spawn(keep_watching(
                client,
                args.cluster.clone(),
                LocalSink::new(Arc::clone(&store), ready),
            ));
        }
        let served = server::serve(listener, store, config, shutdown_signal()).await;
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

#[cfg(test)]
mod tests {
    use super::exposure_warning;

    #[test]
    fn warns_only_off_loopback_without_auth() {
        for addr in ["127.0.0.1:50051", "[::1]:50051", "127.0.0.2:1"] {
            assert_eq!(
                exposure_warning(addr.parse().unwrap(), false),
                None,
                "{addr}"
            );
        }
        let warning = exposure_warning("0.0.0.0:50051".parse().unwrap(), false).unwrap();
        assert!(warning.contains("0.0.0.0:50051"), "{warning}");
        assert!(warning.contains("--writer-token-file"), "{warning}");
        assert!(exposure_warning("[::]:50051".parse().unwrap(), false).is_some());
        assert_eq!(
            exposure_warning("0.0.0.0:50051".parse().unwrap(), true),
            None
        );
    }
}
