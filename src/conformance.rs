//! Runs conformance vectors (JSON lines of `{name, scenario, expected}`, optionally
//! gzip-compressed) through the engine and compares every field the vectors' README
//! lists: exact values, with the tie sets and the potential nodes compared as sets.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use rayon::prelude::*;
use serde_json::Value;

use crate::engine::{Snapshot, decide};
use crate::kube;
use crate::model::Pod;

/// Fields compared as sets rather than lists.
const SET_FIELDS: [&str; 4] = [
    "tieSet",
    "selectedTieSet",
    "potentialNodes",
    "upstreamSelectCandidatePicks",
];
/// Object fields keyed by node name, where a node we report and upstream does not is a
/// mismatch too.
const NODE_MAPS: [&str; 3] = ["filter", "scores", "nodes"];

/// One disagreement.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub case: String,
    /// Dotted path into `expected`.
    pub field: String,
    pub expected: String,
    pub got: String,
}

/// The result of a conformance run.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    pub mismatches: Vec<Mismatch>,
}

impl Report {
    /// The closing line: `conformance: N passed, M failed`.
    pub fn summary(&self) -> String {
        format!(
            "conformance: {} passed, {} failed",
            self.passed, self.failed
        )
    }
}

/// Reads a `.jsonl` or `.jsonl.gz` file's lines.
pub fn read_cases(path: &Path) -> std::io::Result<Vec<String>> {
    let file = File::open(path)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    BufReader::new(reader)
        .lines()
        .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .collect()
}

/// Runs every case (in parallel) and compares.
pub fn run(lines: &[String]) -> Report {
    let results: Vec<(String, Vec<Mismatch>)> = lines
        .par_iter()
        .enumerate()
        .map(|(i, line)| run_case(i, line))
        .collect();
    let mut report = Report::default();
    for (_, mismatches) in results {
        if mismatches.is_empty() {
            report.passed += 1;
        } else {
            report.failed += 1;
            report.mismatches.extend(mismatches);
        }
    }
    report
}

fn run_case(index: usize, line: &str) -> (String, Vec<Mismatch>) {
    let fail = |case: String, field: &str, got: String| {
        let m = Mismatch {
            case: case.clone(),
            field: field.into(),
            expected: "a decision".into(),
            got,
        };
        (case, vec![m])
    };
    let case: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            return fail(
                format!("line {}", index + 1),
                "",
                format!("invalid JSON: {e}"),
            );
        }
    };
    let name = case
        .get("name")
        .and_then(Value::as_str)
        .map_or_else(|| format!("line {}", index + 1), str::to_string);
    let Some(expected) = case.get("expected") else {
        return fail(name, "expected", "missing".into());
    };
    let scenario = match case.get("scenario").map(kube::decode_scenario) {
        Some(Ok(s)) => s,
        Some(Err(e)) => return fail(name, "scenario", e.within("scenario").to_string()),
        None => return fail(name, "scenario", "missing".into()),
    };
    let Some(pod) = scenario.pod else {
        return fail(name, "scenario.pod", "missing".into());
    };
    let snapshot = match Snapshot::build(scenario.cluster) {
        Ok(s) => s,
        Err(e) => return fail(name, "scenario", e.to_string()),
    };
    let mismatches = compare_decision(&name, expected, &snapshot, &pod);
    (name, mismatches)
}

fn compare_decision(name: &str, expected: &Value, snapshot: &Snapshot, pod: &Pod) -> Vec<Mismatch> {
    let decision = decide(snapshot, pod);
    let got = serde_json::to_value(&decision).expect("a decision serialises");
    let mut mismatches = Vec::new();
    compare(name, "", expected, &got, &mut mismatches);
    mismatches
}

/// Compares the decision for a case's pending pod, taken on `snapshot` — a state built
/// some other way, e.g. by watching a cluster that serves the case's objects — with the
/// case's expected answer.
pub fn check_against(case: &Value, snapshot: &Snapshot) -> Vec<Mismatch> {
    let name = case.get("name").and_then(Value::as_str).unwrap_or("case");
    let pod = case
        .get("scenario")
        .map(kube::decode_scenario)
        .and_then(Result::ok)
        .and_then(|s| s.pod);
    match (pod, case.get("expected")) {
        (Some(pod), Some(expected)) => compare_decision(name, expected, snapshot, &pod),
        _ => vec![Mismatch {
            case: name.into(),
            field: "scenario.pod".into(),
            expected: "a pending pod and an expected answer".into(),
            got: "missing or invalid".into(),
        }],
    }
}

fn key_of(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// Compares `expected` against `got`: every expected field must be present and equal.
fn compare(case: &str, path: &str, expected: &Value, got: &Value, out: &mut Vec<Mismatch>) {
    let mut mismatch = || {
        out.push(Mismatch {
            case: case.into(),
            field: path.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        })
    };
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => {
            if NODE_MAPS.contains(&key_of(path)) {
                for extra in g.keys().filter(|k| !e.contains_key(*k)) {
                    out.push(Mismatch {
                        case: case.into(),
                        field: format!("{path}.{extra}"),
                        expected: "absent".into(),
                        got: g[extra].to_string(),
                    });
                }
            }
            for (k, ev) in e {
                if k == "warnings" || k == "error" {
                    continue;
                }
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match g.get(k) {
                    Some(gv) => compare(case, &child, ev, gv, out),
                    None => out.push(Mismatch {
                        case: case.into(),
                        field: child,
                        expected: ev.to_string(),
                        got: "absent".into(),
                    }),
                }
            }
        }
        (Value::Array(e), Value::Array(g)) if SET_FIELDS.contains(&key_of(path)) => {
            let mut e: Vec<String> = e.iter().map(Value::to_string).collect();
            let mut g: Vec<String> = g.iter().map(Value::to_string).collect();
            e.sort();
            g.sort();
            if e != g {
                mismatch();
            }
        }
        (Value::Array(e), Value::Array(g)) => {
            if e.len() != g.len() {
                mismatch();
                return;
            }
            for (i, (ev, gv)) in e.iter().zip(g).enumerate() {
                compare(case, &format!("{path}[{i}]"), ev, gv, out);
            }
        }
        (e, g) => {
            if e != g {
                mismatch();
            }
        }
    }
}
