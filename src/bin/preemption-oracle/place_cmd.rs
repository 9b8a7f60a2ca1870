//! `preemption-oracle place --state FILE --pod FILE [--json]`, or against a running
//! server: `preemption-oracle place --server ADDR --pod FILE [--cluster NAME] [--json]`
//! with the connection flags of [`crate::remote::ConnectArgs`] (`--tls-ca`, `--tls-cert`,
//! `--tls-key`, `--token-file`, `--tls-server-name`).
//!
//! Exit status: 0 with a decision (whatever its outcome), 2 for bad input (a file that
//! cannot be read, invalid JSON/YAML, a bad object or field, an inconsistent cluster),
//! 1 when the output cannot be written.

use std::fmt::Display;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use preemption_oracle::engine::{self, Snapshot};
use preemption_oracle::kube::{self, DecodeError};
use preemption_oracle::model::{ClusterObjects, Pod};
use preemption_oracle::report;

#[derive(clap::Args)]
pub struct Args {
    /// Cluster state: a conformance-style scenario object or a kubectl `v1 List`.
    #[arg(
        long,
        required_unless_present = "server",
        conflicts_with_all = ["server", "tls_ca", "tls_cert", "tls_key", "token_file", "tls_server_name"]
    )]
    state: Option<PathBuf>,
    /// Ask a running server (`host:port`, `http://host:port`, or `https://host:port` with
    /// --tls-ca) instead of a state file.
    #[arg(long)]
    server: Option<String>,
    /// With --server: the cluster to ask about ("" is the default cluster).
    #[arg(long, default_value = "", requires = "server")]
    cluster: String,
    /// The pending pod (YAML or JSON).
    #[arg(long)]
    pod: PathBuf,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: crate::remote::ConnectArgs,
}

/// An input problem, already phrased as `FILE: what is wrong`.
struct InputError(String);

impl InputError {
    fn new(file: &Path, what: impl Display) -> InputError {
        InputError(format!("{}: {what}", file.display()))
    }
}

pub fn run(args: Args) -> ExitCode {
    if let Some(server) = &args.server {
        return crate::remote::place(
            server,
            &args.connection,
            &args.cluster,
            &args.pod,
            args.json,
        );
    }
    let decision = match decide(&args) {
        Ok(d) => d,
        Err(InputError(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let text = if args.json {
        match serde_json::to_string_pretty(&decision) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => {
                eprintln!("error: cannot serialise the decision: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        report::render(&decision)
    };
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is not worth a message.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            ExitCode::FAILURE
        }
    }
}

fn decide(args: &Args) -> Result<engine::Decision, InputError> {
    let state = args
        .state
        .as_deref()
        .expect("clap requires --state without --server");
    let cluster = read_cluster(state)?;
    let pod = read_pod(&args.pod, &cluster)?;
    let snapshot = Snapshot::build(cluster).map_err(|e| InputError::new(state, e))?;
    Ok(engine::decide(&snapshot, &pod))
}

/// Reads and parses a JSON or YAML document; an empty one is an error.
fn read_document(file: &Path) -> Result<Value, InputError> {
    let text = std::fs::read_to_string(file).map_err(|e| InputError::new(file, e))?;
    let doc = kube::parse_document(&text).map_err(|e| InputError::new(file, e))?;
    if doc.is_null() {
        return Err(InputError::new(file, "the document is empty"));
    }
    Ok(doc)
}

fn read_cluster(file: &Path) -> Result<ClusterObjects, InputError> {
    let doc = read_document(file)?;
    kube::decode_cluster(&doc).map_err(|e| InputError::new(file, e))
}

fn read_pod(file: &Path, cluster: &ClusterObjects) -> Result<Pod, InputError> {
    let doc = read_document(file)?;
    let (value, prefix) = pod_object(&doc).map_err(|e| InputError::new(file, e))?;
    kube::decode_pod(value, &cluster.priority_classes)
        .map_err(|e| InputError::new(file, e.within(&prefix)))
}

/// The Pod in a pod document: the document itself, or the only Pod of a `v1 List`
/// (as `kubectl get pods -l … -o yaml` prints one). Returns it with its field path.
fn pod_object(doc: &Value) -> Result<(&Value, String), DecodeError> {
    let kind = doc.get("kind").and_then(Value::as_str);
    match kind {
        None | Some("Pod") => Ok((doc, String::new())),
        Some("List") => {
            let items = doc.get("items").and_then(Value::as_array);
            let pods: Vec<(usize, &Value)> = items
                .into_iter()
                .flatten()
                .enumerate()
                .filter(|(_, v)| v.get("kind").and_then(Value::as_str) == Some("Pod"))
                .collect();
            match pods.as_slice() {
                [(i, pod)] => Ok((pod, format!("items[{i}]"))),
                _ => Err(DecodeError {
                    path: "items".into(),
                    message: format!("expected exactly one Pod, found {}", pods.len()),
                }),
            }
        }
        Some(other) => Err(DecodeError {
            path: "kind".into(),
            message: format!("expected a Pod, found kind {other:?}"),
        }),
    }
}
