//! The calling side of `deploy/sidecar`: an autoscaler or queue controller asking the
//! oracle in its own pod the autoscaler's question — which pending pods fit as the
//! cluster is, which get in by preempting, and which need new capacity.
//!
//! ```sh
//! cargo run --example sidecar_caller                    # 127.0.0.1:50051, the sidecar's loopback port
//! cargo run --example sidecar_caller -- 127.0.0.1:50051 # or an address as the first argument
//! ORACLE_ADDR=127.0.0.1:50051 ORACLE_TOKEN=… cargo run --example sidecar_caller
//! ```
//!
//! The address comes from the first argument, else `ORACLE_ADDR`, else `127.0.0.1:50051`.
//! `ORACLE_CLUSTER` names the cluster (default: the default cluster, `""`), and
//! `ORACLE_TOKEN`, when set, is sent as `authorization: Bearer <token>` (needed only
//! against an oracle serving with token files, such as `deploy/standalone` through
//! `kubectl port-forward`; the sidecar's loopback listener has no auth).

use std::process::ExitCode;
use std::time::Duration;

use preemption_oracle::service::pb;
use preemption_oracle::service::pb::preemption_oracle_client::PreemptionOracleClient;
use tonic::transport::Endpoint;

const DEFAULT_ADDR: &str = "127.0.0.1:50051";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ORACLE_ADDR").ok())
        .unwrap_or_else(|| DEFAULT_ADDR.to_string());
    let cluster = std::env::var("ORACLE_CLUSTER").unwrap_or_default();
    let token = std::env::var("ORACLE_TOKEN").ok();
    match pending_pods(&addr, &cluster, token.as_deref()).await {
        Ok(answer) => {
            print!("{}", render(&answer));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Asks the oracle at `addr` to classify every pending pod of `cluster`.
async fn pending_pods(
    addr: &str,
    cluster: &str,
    token: Option<&str>,
) -> Result<pb::PendingPodsResponse, String> {
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let channel = Endpoint::from_shared(url.clone())
        .map_err(|e| format!("{url}: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let mut client = PreemptionOracleClient::new(channel);
    let mut request = tonic::Request::new(pb::PendingPodsRequest {
        cluster: cluster.to_string(),
        // Every pending pod; an autoscaler sizing new capacity needs them all.
        limit: 0,
        min_revision: 0,
    });
    if let Some(token) = token {
        let value = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| "ORACLE_TOKEN is not a valid header value".to_string())?;
        request.metadata_mut().insert("authorization", value);
    }
    client
        .pending_pods(request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| format!("PendingPods: {:?}: {}", s.code(), s.message()))
}

/// One line per pending pod, in the oracle's scheduling-queue order, after a summary.
fn render(answer: &pb::PendingPodsResponse) -> String {
    let count = |class: pb::PendingClass| answer.pods.iter().filter(|p| p.class() == class).count();
    let mut out = format!(
        "revision {}: {} pending pod(s): {} fit, {} preempt, {} need new capacity\n",
        answer.revision,
        answer.pods.len(),
        count(pb::PendingClass::Fits),
        count(pb::PendingClass::Preempts),
        count(pb::PendingClass::NeedsCapacity),
    );
    for pod in &answer.pods {
        let who = format!("{}/{} (priority {})", pod.namespace, pod.name, pod.priority);
        out += &match pod.class() {
            pb::PendingClass::Fits => format!("fits            {who} on {}\n", pod.node),
            pb::PendingClass::Preempts => {
                let victims: Vec<String> = pod
                    .victims
                    .iter()
                    .map(|v| format!("{}/{}", v.namespace, v.name))
                    .collect();
                format!(
                    "preempts        {who} on {}, evicting {}\n",
                    pod.node,
                    victims.join(", ")
                )
            }
            pb::PendingClass::NeedsCapacity => {
                format!("needs capacity  {who}: {}\n", pod.reason)
            }
            pb::PendingClass::Unspecified => format!("unclassified    {who}\n"),
        };
    }
    out
}
