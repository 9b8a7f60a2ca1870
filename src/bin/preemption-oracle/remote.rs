//! Talking to a running oracle: the connection flags every client command shares
//! ([`ConnectArgs`], [`connect`]: TLS, a client certificate, a bearer token), and the
//! `place --server` client, which sends the pod and prints the answer.

use std::collections::BTreeMap;
use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use preemption_oracle::service::auth::{CredentialFileError, read_token_file};
use preemption_oracle::service::pb;
use preemption_oracle::service::pb::preemption_oracle_client::PreemptionOracleClient;
use preemption_oracle::service::tls::{read_certificates, read_private_key};
use serde_json::json;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// How to reach a server: flattened into every command that has a `--server` flag.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Use TLS and verify the server against this CA (PEM).
    #[arg(long, value_name = "FILE", requires = "server")]
    tls_ca: Option<PathBuf>,
    /// Client certificate for mutual TLS (PEM); needs --tls-key and --tls-ca.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Send the token in this file (one line; # comments ignored) as
    /// `authorization: Bearer <token>`.
    #[arg(long, value_name = "FILE", requires = "server")]
    token_file: Option<PathBuf>,
    /// The name to verify the server's certificate against, instead of the host in
    /// --server.
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    tls_server_name: Option<String>,
}

/// Adds `authorization: Bearer <token>` to every call, when there is a token.
#[derive(Clone)]
pub struct BearerToken(Option<AsciiMetadataValue>);

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A connected client.
pub type OracleClient = PreemptionOracleClient<InterceptedService<Channel, BearerToken>>;

/// An error and its causes, on one line (tonic's own message is just "transport error").
fn with_causes(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text += &format!(": {c}");
        cause = c.source();
    }
    text
}

/// Prefixes a file error with the flag that named the file.
fn flag(name: &'static str) -> impl Fn(CredentialFileError) -> String {
    move |e| format!("{name} {e}")
}

fn bearer(token_file: &Path) -> Result<AsciiMetadataValue, String> {
    let tokens = read_token_file(token_file).map_err(flag("--token-file"))?;
    let [token] = tokens.as_slice() else {
        return Err(format!(
            "--token-file {}: expected one token, found {}",
            token_file.display(),
            tokens.len()
        ));
    };
    let mut value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
        format!(
            "--token-file {}: the token is not a valid header value",
            token_file.display()
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn client_tls(args: &ConnectArgs, ca: &Path) -> Result<ClientTlsConfig, String> {
    let ca = read_certificates(ca).map_err(flag("--tls-ca"))?;
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let cert = read_certificates(cert).map_err(flag("--tls-cert"))?;
        let key = read_private_key(key).map_err(flag("--tls-key"))?;
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    if let Some(name) = &args.tls_server_name {
        tls = tls.domain_name(name.clone());
    }
    Ok(tls)
}

/// The endpoint `server` names (`host:port`, or a URL whose scheme matches whether
/// --tls-ca is given), set up as `args` say, and the token to send. Every file is read
/// here; errors name the flag or file at fault.
pub fn endpoint(server: &str, args: &ConnectArgs) -> Result<(Endpoint, BearerToken), String> {
    let token = args.token_file.as_deref().map(bearer).transpose()?;
    let tls = args
        .tls_ca
        .as_deref()
        .map(|ca| client_tls(args, ca))
        .transpose()?;
    let url = match (server.split_once("://"), &tls) {
        (None, None) => format!("http://{server}"),
        (None, Some(_)) => format!("https://{server}"),
        (Some(("http", _)), None) | (Some(("https", _)), Some(_)) => server.to_string(),
        (Some(("https", _)), None) => {
            return Err(format!(
                "{server}: https needs --tls-ca FILE (the CA to verify the server with)"
            ));
        }
        (Some(_), _) => {
            return Err(format!(
                "{server}: use host:port, or http:// (plaintext) or https:// (with --tls-ca)"
            ));
        }
    };
    let mut endpoint = Endpoint::from_shared(url.clone()).map_err(|e| format!("{server}: {e}"))?;
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("--tls-ca/--tls-cert: {}", with_causes(&e)))?;
    }
    Ok((endpoint, BearerToken(token)))
}

/// Connects to `server` as `args` say.
pub async fn connect(server: &str, args: &ConnectArgs) -> Result<OracleClient, String> {
    let (endpoint, token) = endpoint(server, args)?;
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {}: {}", endpoint.uri(), with_causes(&e)))?;
    Ok(PreemptionOracleClient::with_interceptor(channel, token))
}

/// Asks `server` where the pod in `pod_file` would land.
pub fn place(
    server: &str,
    connection: &ConnectArgs,
    cluster: &str,
    pod_file: &Path,
    as_json: bool,
) -> ExitCode {
    let text = match std::fs::read_to_string(pod_file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", pod_file.display());
            return ExitCode::from(2);
        }
    };
    let runtime = match crate::start_runtime(false) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let mut client = connect(server, connection).await?;
        let request = pb::PlaceRequest {
            cluster: cluster.to_string(),
            pod: Some(pb::PodInput {
                pod: Some(pb::pod_input::Pod::Json(text)),
            }),
            options: Some(pb::PlaceOptions {
                explain: true,
                ..Default::default()
            }),
        };
        client
            .place(request)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| format!("{}: {:?}: {}", pod_file.display(), s.code(), s.message()))
    });
    match result {
        Ok(answer) => {
            let text = if as_json {
                serde_json::to_string_pretty(&to_json(&answer)).unwrap_or_default() + "\n"
            } else {
                render(&answer)
            };
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                // A closed pipe (`| head`) is not worth a message.
                Err(_) => ExitCode::FAILURE,
            }
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn outcome_name(o: i32) -> &'static str {
    match pb::Outcome::try_from(o).unwrap_or(pb::Outcome::Unspecified) {
        pb::Outcome::Scheduled => "SCHEDULED",
        pb::Outcome::Preempts => "PREEMPTS",
        pb::Outcome::Unschedulable => "UNSCHEDULABLE",
        pb::Outcome::NotEligible => "NOT_ELIGIBLE",
        pb::Outcome::Unspecified => "UNSPECIFIED",
    }
}

fn victims_json(victims: &[pb::Victim]) -> serde_json::Value {
    victims
        .iter()
        .map(|v| json!({"namespace": v.namespace, "name": v.name, "uid": v.uid, "priority": v.priority, "violatedPdbs": v.violated_pdbs}))
        .collect()
}

fn to_json(a: &pb::PlaceResponse) -> serde_json::Value {
    json!({
        "outcome": outcome_name(a.outcome),
        "node": a.node,
        "tieSet": a.tie_set,
        "victims": victims_json(&a.victims),
        "numPdbViolations": a.num_pdb_violations,
        "nominatedNodeName": a.nominated_node_name,
        "fitError": a.fit_error,
        "ineligibleReason": a.ineligible_reason,
        "podPriority": a.pod_priority,
        "revision": a.revision,
        "numNodes": a.num_nodes,
        "explanations": a.explanations.iter().map(|e| json!({
            "node": e.node, "feasible": e.feasible, "code": e.code, "plugin": e.plugin,
            "reasons": e.reasons, "source": e.source, "score": e.score,
        })).collect::<Vec<_>>(),
        "candidates": a.candidates.iter().map(|c| json!({
            "node": c.node, "victims": victims_json(&c.victims), "numPdbViolations": c.num_pdb_violations,
        })).collect::<Vec<_>>(),
    })
}

fn render(a: &pb::PlaceResponse) -> String {
    let mut out = format!(
        "{} (revision {}, {} nodes, pod priority {})\n",
        outcome_name(a.outcome),
        a.revision,
        a.num_nodes,
        a.pod_priority
    );
    if !a.node.is_empty() {
        out += &format!("  node: {}  (tie set: {})\n", a.node, a.tie_set.join(", "));
    }
    for v in &a.victims {
        let pdbs = if v.violated_pdbs.is_empty() {
            String::new()
        } else {
            format!("  violates {}", v.violated_pdbs.join(", "))
        };
        out += &format!(
            "  victim: {}/{} (priority {}){pdbs}\n",
            v.namespace, v.name, v.priority
        );
    }
    if !a.ineligible_reason.is_empty() {
        out += &format!("  {}\n", a.ineligible_reason);
    }
    if !a.fit_error.is_empty() {
        out += &format!("  {}\n", a.fit_error);
    }
    // Nodes with the same verdict share a line, most common first.
    let mut groups: BTreeMap<(String, String, String), Vec<&str>> = BTreeMap::new();
    for e in a.explanations.iter().filter(|e| !e.feasible) {
        let plugin = if e.plugin.is_empty() {
            "-".to_string()
        } else {
            e.plugin.clone()
        };
        groups
            .entry((plugin, e.reasons.join(", "), e.code.clone()))
            .or_default()
            .push(&e.node);
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|x, y| y.1.len().cmp(&x.1.len()).then_with(|| x.0.cmp(&y.0)));
    if !groups.is_empty() {
        out += "rejected nodes:\n";
    }
    for ((plugin, reasons, code), nodes) in groups {
        let shown: Vec<&str> = nodes.iter().take(3).copied().collect();
        let more = if nodes.len() > 3 {
            format!(", … +{}", nodes.len() - 3)
        } else {
            String::new()
        };
        out += &format!(
            "  {} node(s) ({}{more}): {plugin}: {reasons} [{code}]\n",
            nodes.len(),
            shown.join(", ")
        );
    }
    out
}
