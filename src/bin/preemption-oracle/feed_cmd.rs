//! `preemption-oracle feed --kubeconfig [PATH] --server ADDR --cluster NAME`: the built-in
//! watcher as a separate process, streaming a cluster's state to a remote oracle over
//! `SyncState`. When the oracle goes away (a restart), the feeder reconnects and replays
//! the full state: a fresh list of every kind, as one replace batch.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use preemption_oracle::service::pb;

use preemption_oracle::service::pb::preemption_oracle_client::PreemptionOracleClient;

use crate::remote::{self, ConnectArgs, OracleClient};
use preemption_oracle::watch::{self, sink::BatchSink, sink::Delivery};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

#[derive(clap::Args)]
pub struct Args {
    /// Kubeconfig of the cluster to watch. With no PATH: KUBECONFIG, ~/.kube/config, or
    /// the in-cluster service account, as kubectl finds them.
    #[arg(long, num_args = 0..=1, value_name = "PATH")]
    kubeconfig: Option<Option<PathBuf>>,
    /// The oracle to feed (host:port or URL).
    #[arg(long)]
    server: String,
    /// The name the cluster's state is stored under on the oracle.
    #[arg(long)]
    cluster: String,
    #[command(flatten)]
    connection: ConnectArgs,
}

/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Batches over a `SyncState` stream. A task reads the acknowledgements, so that a
/// stream that dies while the cluster is quiet is noticed at once (`lost`), not at the
/// next batch. A refused batch ends the stream on the server's side; the sink opens a
/// new one.
struct RemoteSink {
    client: OracleClient,
    requests: mpsc::Sender<pb::SyncStateRequest>,
    acks: mpsc::Receiver<Result<pb::SyncStateResponse, Status>>,
    lost: Arc<Notify>,
}

impl RemoteSink {
    async fn open(mut client: OracleClient, lost: Arc<Notify>) -> Result<RemoteSink, Status> {
        let (requests, rx) = mpsc::channel(1);
        let mut inbound = client
            .sync_state(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let (ack_tx, acks) = mpsc::channel(1);
        let notify = Arc::clone(&lost);
        tokio::spawn(async move {
            loop {
                let next = inbound.message().await;
                let ended = !matches!(next, Ok(Some(_)));
                let refused = matches!(&next, Err(s) if s.code() == tonic::Code::InvalidArgument);
                let forwarded = match next {
                    Ok(Some(ack)) => Ok(ack),
                    Ok(None) => Err(Status::unavailable("the oracle closed the stream")),
                    Err(s) => Err(s),
                };
                let _ = ack_tx.send(forwarded).await;
                if ended {
                    if !refused {
                        notify.notify_one();
                    }
                    return;
                }
            }
        });
        Ok(RemoteSink {
            client,
            requests,
            acks,
            lost,
        })
    }
}

impl BatchSink for RemoteSink {
    async fn deliver(&mut self, batch: pb::SyncStateRequest) -> Result<Delivery, Status> {
        // Kept to hand back if the oracle refuses it.
        let sent = batch.clone();
        if self.requests.send(batch).await.is_err() {
            return Err(Status::unavailable("the oracle closed the stream"));
        }
        match self.acks.recv().await {
            Some(Ok(ack)) => Ok(Delivery::Applied(ack)),
            Some(Err(s)) if s.code() == tonic::Code::InvalidArgument => {
                *self = RemoteSink::open(self.client.clone(), Arc::clone(&self.lost)).await?;
                Ok(Delivery::Rejected(sent, s))
            }
            Some(Err(s)) => Err(s),
            None => Err(Status::unavailable("the oracle closed the stream")),
        }
    }
}

pub fn run(args: Args) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = match crate::start_runtime(true) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let kube = match watch::client(args.kubeconfig.flatten().as_deref()).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let (endpoint, token) = match remote::endpoint(&args.server, &args.connection) {
            // Pings notice a dead peer while the cluster is quiet.
            Ok((e, token)) => (
                e.http2_keep_alive_interval(Duration::from_secs(10))
                    .keep_alive_timeout(Duration::from_secs(5))
                    .keep_alive_while_idle(true),
                token,
            ),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            match endpoint.connect().await {
                Ok(channel) => {
                    tracing::info!(server = %args.server, cluster = %args.cluster, "connected; sending the full state");
                    let client = PreemptionOracleClient::with_interceptor(channel, token.clone())
                        .max_encoding_message_size(usize::MAX);
                    let lost = Arc::new(Notify::new());
                    let outcome = match RemoteSink::open(client, Arc::clone(&lost)).await {
                        Ok(mut sink) => tokio::select! {
                            r = watch::run(kube.clone(), &args.cluster, &mut sink) => r,
                            _ = lost.notified() => Err(Status::unavailable("the oracle stream ended")),
                            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
                        },
                        Err(e) => Err(e),
                    };
                    if let Err(e) = outcome {
                        tracing::warn!(error = %e, "the oracle stream was lost; reconnecting to replay the full state");
                    }
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::warn!(server = %args.server, error = %e, "cannot reach the oracle; retrying");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}
