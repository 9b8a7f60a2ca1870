//! The `place --server` client: sends the pod to a running oracle and prints its answer.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use preemption_oracle::service::pb;
use preemption_oracle::service::pb::preemption_oracle_client::PreemptionOracleClient;
use serde_json::json;

/// Asks `server` where the pod in `pod_file` would land.
pub fn place(server: &str, cluster: &str, pod_file: &Path, as_json: bool) -> ExitCode {
    let text = match std::fs::read_to_string(pod_file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", pod_file.display());
            return ExitCode::from(2);
        }
    };
    let url = if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let mut client = PreemptionOracleClient::connect(url.clone())
            .await
            .map_err(|e| format!("cannot connect to {url}: {e}"))?;
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
