//! Runs the built `preemption-oracle` binary: `place` on the kubectl fixture (answers
//! worked out by hand, below), `place` on a public conformance scenario, `conformance`
//! on the public vectors, and the input errors.
//!
//! The fixture `tests/fixtures/kubectl-list.json` is `kubectl get nodes,pods,pdb,
//! priorityclasses -A -o json` of a small cluster (allocatable cpu; requests in
//! millicores):
//!
//! | node     | allocatable | pods (priority, cpu request)                                   | free |
//! |----------|-------------|----------------------------------------------------------------|------|
//! | cp-1     | 2           | tainted control-plane:NoSchedule; etcd, apiserver, … (2000001000) | —  |
//! | worker-a | 4           | kube-proxy (2000001000, none), coredns (2000000000, 100), batch/report-gen (100, 1500), web/frontend (0, 500); a Succeeded db-migrate Job pod (1000) that holds nothing | 1900 |
//! | worker-b | 4           | kube-proxy, batch/etl-worker-0 (100, 2000, PDB etl-pdb with disruptionsAllowed 0), web/frontend (0, 500) | 1500 |
//! | worker-c | 4           | kube-proxy, monitoring/prometheus-k8s-0 (100000, 2000), web/frontend (0, 500) | 1500 |
//!
//! `pending-pod.yaml`: priorityClassName business-critical (100000), cpu 2500m. It fits
//! nowhere: cp-1 has an untolerated taint (UnschedulableAndUnresolvable, so it is no
//! potential node), every worker lacks cpu (Unschedulable). Preemption:
//! - worker-a: remove report-gen and frontend (both lower) → 3900 free. Reprieve, most
//!   important first: report-gen back → 2400 free < 2500, so it is a victim; frontend
//!   back → 3400 free, it stays. Victims [batch/report-gen-…], 0 PDB violations. (Had
//!   the Succeeded pod counted, it would be a second victim.)
//! - worker-b: remove etl-worker-0 and frontend → 4000 free. etl-worker-0 would exceed
//!   its PDB, so it is tried first: back → 2000 free < 2500, victim, 1 PDB violation;
//!   frontend (its PDB allows 1) stays. Victims [batch/etl-worker-0], 1 PDB violation.
//! - worker-c: only frontend is lower; without it 2000 free < 2500 → not a candidate,
//!   NodeResourcesFit "Insufficient cpu", Unschedulable.
//! - Selection: fewest PDB violations → worker-a alone.
//!
//! `pending-pod-fits.yaml`: priority 0, 500m / 512Mi. Feasible: the three workers.
//! Scores (TaintToleration 3 × 100 on every node, no PreferNoSchedule taints):
//! - NodeResourcesFit (LeastAllocated on non-zero requests, kube-proxy counting 100m /
//!   200Mi; memory allocatable 16272104Ki): worker-a cpu 2700 → 32, memory 2318Mi → 85,
//!   (32+85)/2 = 58; worker-b cpu 3100 → 22, memory 3272Mi → 79, 50; worker-c cpu 3100 →
//!   22, memory 5320Mi → 66, 44.
//! - BalancedAllocation (plain requests): worker-a 2600/4000 = 0.65 vs 2118Mi → 0.133,
//!   (1 - 0.258) → 74; worker-b 0.75 vs 0.193 → 72; worker-c 0.75 vs 0.322 → 78.
//! - ImageLocality: the frontend image (87341234 bytes) is on 3 of 4 nodes:
//!   65505925 scaled between 23 MiB and 1000 MiB → 4 on each worker.
//! - Totals: worker-a 436, worker-b 426, worker-c 426 → scored, worker-a alone.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_preemption-oracle");

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    manifest().join("tests/fixtures").join(name)
}

fn public_vectors() -> PathBuf {
    manifest().join("../shared/conformance/public.jsonl")
}

/// A fresh scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{test}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run the binary")
}

fn place(state: &Path, pod: &Path, json: bool) -> Output {
    let mut args = vec![
        "place",
        "--state",
        state.to_str().unwrap(),
        "--pod",
        pod.to_str().unwrap(),
    ];
    if json {
        args.push("--json");
    }
    run(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    assert!(stderr(o).is_empty(), "stderr: {}", stderr(o));
    stdout(o)
}

fn json_of(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).expect("--json prints JSON")
}

/// The first public case: (name, scenario, expected).
fn first_public_case() -> (String, Value, Value) {
    let text = fs::read_to_string(public_vectors()).expect("public.jsonl");
    let line = text.lines().next().expect("a first line");
    let case: Value = serde_json::from_str(line).unwrap();
    (
        case["name"].as_str().unwrap().to_string(),
        case["scenario"].clone(),
        case["expected"].clone(),
    )
}

/// Writes the scenario as the state file and its `pod` as the pod file.
fn write_scenario(dir: &Path, scenario: &Value) -> (PathBuf, PathBuf) {
    let state = dir.join("state.json");
    let pod = dir.join("pod.json");
    fs::write(&state, serde_json::to_string_pretty(scenario).unwrap()).unwrap();
    fs::write(
        &pod,
        serde_json::to_string_pretty(&scenario["pod"]).unwrap(),
    )
    .unwrap();
    (state, pod)
}

/// Every field of `expected` is in `got` with the same value; tie sets and potential
/// nodes compare as sets (as the vectors' README asks).
fn assert_subset(path: &str, expected: &Value, got: &Value) {
    const SETS: [&str; 4] = [
        "tieSet",
        "selectedTieSet",
        "potentialNodes",
        "upstreamSelectCandidatePicks",
    ];
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => {
            for (k, ev) in e {
                let gv = g
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k}: missing in {got}"));
                assert_subset(&format!("{path}.{k}"), ev, gv);
            }
        }
        (Value::Array(e), Value::Array(g)) if SETS.iter().any(|s| path.ends_with(s)) => {
            let mut e: Vec<String> = e.iter().map(Value::to_string).collect();
            let mut g: Vec<String> = g.iter().map(Value::to_string).collect();
            e.sort();
            g.sort();
            assert_eq!(e, g, "{path}");
        }
        (Value::Array(e), Value::Array(g)) => {
            assert_eq!(e.len(), g.len(), "{path}: {expected} vs {got}");
            for (i, (ev, gv)) in e.iter().zip(g).enumerate() {
                assert_subset(&format!("{path}[{i}]"), ev, gv);
            }
        }
        _ => assert_eq!(expected, got, "{path}"),
    }
}

fn assert_input_error(o: &Output, needles: &[&str]) {
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    assert!(stdout(o).is_empty(), "stdout: {}", stdout(o));
    let err = stderr(o);
    // One `error: FILE: …` line (a YAML error adds a snippet of the input below it).
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.lines().next().unwrap().contains(needles[0]), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

const VICTIM: &str = "batch/report-gen-29400480-hx7kq";

#[test]
fn place_kubectl_list_preempts_readable() {
    let out = ok(&place(
        &fixture("kubectl-list.json"),
        &fixture("pending-pod.yaml"),
        false,
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "Pod payments/checkout-api-5c7d8f9b6-zq4lm (priority 100000, preemptionPolicy PreemptLowerPriority) on 4 nodes — kube-scheduler v1.35.4 semantics"
    );
    assert_eq!(
        lines[2],
        "PREEMPTS on worker-a — evicts 1 pod to make room; the pod is nominated to worker-a"
    );
    assert_eq!(
        lines[3],
        "  victims on worker-a (1 pod, 0 PDB violations), most important first:"
    );
    assert_eq!(lines[4], format!("    - {VICTIM} (priority 100)"));
    assert_eq!(lines[5], "  selected tie set: worker-a");
    assert!(out.contains(
        "    worker-b: 1 victim (highest priority 100), 1 PDB violation: batch/etl-worker-0 (priority 100) — would violate PDB batch/etl-pdb\n"
    ), "{out}");
    assert!(out.contains(
        "  potential nodes where preemption does not help (1):\n    worker-c: NodeResourcesFit: Insufficient cpu [Unschedulable]\n"
    ), "{out}");
    assert!(out.contains(
        "fit error (before preemption): 0/4 nodes are available: 1 node(s) had untolerated taint(s), 3 Insufficient cpu.\n"
    ), "{out}");
    assert!(out.contains(
        "Filter: 4 of 4 nodes rejected, 0 feasible\n  3 nodes (worker-a, worker-b, worker-c): NodeResourcesFit: Insufficient cpu [Unschedulable]\n  cp-1: TaintToleration: node(s) had untolerated taint(s) [UnschedulableAndUnresolvable]\n"
    ), "{out}");
    assert!(!out.contains("Scores"), "{out}");
}

#[test]
fn place_kubectl_list_preempts_json() {
    let d = json_of(&place(
        &fixture("kubectl-list.json"),
        &fixture("pending-pod.yaml"),
        true,
    ));
    assert_eq!(d["outcome"], "PREEMPTS");
    assert_eq!(d["node"], "worker-a");
    assert_eq!(d["pod"], "payments/checkout-api-5c7d8f9b6-zq4lm");
    assert_eq!(d["podPriority"], 100000);
    assert_eq!(d["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(d["numNodes"], 4);
    assert_eq!(d["feasibleNodes"], json!([]));
    assert_eq!(
        d["placement"],
        json!({"mode": "unschedulable", "tieSet": []})
    );
    assert_eq!(
        d["filter"]["cp-1"],
        json!({"feasible": false, "code": "UnschedulableAndUnresolvable", "plugin": "TaintToleration",
               "reasons": ["node(s) had untolerated taint(s)"], "source": "Filter"})
    );
    for n in ["worker-a", "worker-b", "worker-c"] {
        assert_eq!(
            d["filter"][n],
            json!({"feasible": false, "code": "Unschedulable", "plugin": "NodeResourcesFit",
                   "reasons": ["Insufficient cpu"], "source": "Filter"}),
            "{n}"
        );
    }
    let p = &d["preemption"];
    assert_eq!(p["eligible"], true);
    assert_eq!(
        p["potentialNodes"],
        json!(["worker-a", "worker-b", "worker-c"])
    );
    assert_eq!(
        p["nodes"],
        json!({
            "worker-a": {"candidate": true, "victims": [VICTIM], "numPDBViolations": 0},
            "worker-b": {"candidate": true, "victims": ["batch/etl-worker-0"], "numPDBViolations": 1},
            "worker-c": {"candidate": false, "numPDBViolations": 0, "code": "Unschedulable",
                         "plugin": "NodeResourcesFit", "reasons": ["Insufficient cpu"]},
        })
    );
    assert_eq!(
        p["candidates"],
        json!([
            {"node": "worker-a", "victims": [VICTIM], "numPDBViolations": 0,
             "victimDetails": [{"pod": VICTIM, "uid": "1b2c3d4e-6001-4f3a-9b4c-7d8e9f0a1b01", "priority": 100}]},
            {"node": "worker-b", "victims": ["batch/etl-worker-0"], "numPDBViolations": 1,
             "victimDetails": [{"pod": "batch/etl-worker-0", "uid": "3d4e5f6a-7001-4b5c-8d6e-9f0a1b2c3d01",
                                "priority": 100, "violatedPdbs": ["batch/etl-pdb"]}]},
        ])
    );
    assert_eq!(p["selectedTieSet"], json!(["worker-a"]));
    assert_eq!(p["postFilter"], json!({"code": "Success"}));
    assert_eq!(
        d["fitError"],
        "0/4 nodes are available: 1 node(s) had untolerated taint(s), 3 Insufficient cpu."
    );
}

#[test]
fn place_kubectl_list_fits() {
    let state = fixture("kubectl-list.json");
    let pod = fixture("pending-pod-fits.yaml");
    let d = json_of(&place(&state, &pod, true));
    assert_eq!(d["outcome"], "SCHEDULED");
    assert_eq!(d["node"], "worker-a");
    assert_eq!(d["podPriority"], 0);
    assert_eq!(
        d["feasibleNodes"],
        json!(["worker-a", "worker-b", "worker-c"])
    );
    assert_eq!(
        d["placement"],
        json!({"mode": "scored", "maxScore": 436, "tieSet": ["worker-a"]})
    );
    assert_eq!(
        d["scores"]["worker-a"],
        json!({"total": 436, "plugins": {"TaintToleration": 300, "NodeResourcesFit": 58,
               "NodeResourcesBalancedAllocation": 74, "ImageLocality": 4, "DynamicResources": 0}})
    );
    assert_eq!(d["scores"]["worker-b"]["total"], 426);
    assert_eq!(d["scores"]["worker-b"]["plugins"]["NodeResourcesFit"], 50);
    assert_eq!(
        d["scores"]["worker-b"]["plugins"]["NodeResourcesBalancedAllocation"],
        72
    );
    assert_eq!(d["scores"]["worker-c"]["total"], 426);
    assert_eq!(d["scores"]["worker-c"]["plugins"]["NodeResourcesFit"], 44);
    assert_eq!(
        d["scores"]["worker-c"]["plugins"]["NodeResourcesBalancedAllocation"],
        78
    );
    assert!(d.get("preemption").is_none());
    assert!(d.get("fitError").is_none());

    let out = ok(&place(&state, &pod, false));
    assert!(out.contains("\nSCHEDULED on worker-a\n  mode: scored — 3 nodes feasible, highest total score 436\n  tie set: worker-a\n"), "{out}");
    assert!(
        out.contains("Filter: 1 of 4 nodes rejected, 3 feasible\n  cp-1: TaintToleration"),
        "{out}"
    );
    let scores: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Scores"))
        .collect();
    assert_eq!(
        scores[0],
        "Scores (top 3 of 3 feasible, * = in the tie set):"
    );
    assert!(scores[1].starts_with("  * worker-a   436"), "{out}");
    assert!(scores[2].starts_with("    worker-b   426"), "{out}");
    assert!(scores[3].starts_with("    worker-c   426"), "{out}");
}

#[test]
fn place_reads_yaml_scenarios() {
    let dir = scratch("yaml");
    let state = dir.join("state.yaml");
    fs::write(
        &state,
        r#"# a scenario object, in YAML
nodes:
  - metadata: {name: small}
    status: {allocatable: {cpu: "1", memory: 1Gi, pods: "10"}}
  - metadata: {name: big}
    status: {allocatable: {cpu: "8", memory: 16Gi, pods: "10"}}
pods:
  - metadata: {name: filler, namespace: default}
    spec:
      nodeName: big
      containers: [{name: c, resources: {requests: {cpu: "6"}}}]
"#,
    )
    .unwrap();
    let pod = dir.join("pod.yaml");
    fs::write(
        &pod,
        "metadata: {name: p}\nspec:\n  containers:\n  - name: c\n    resources: {requests: {cpu: 1500m}}\n",
    )
    .unwrap();
    // `small` can never hold 1.5 cpu; `big` has 2 free.
    let d = json_of(&place(&state, &pod, true));
    assert_eq!(d["outcome"], "SCHEDULED");
    assert_eq!(d["node"], "big");
    assert_eq!(d["pod"], "default/p");
    assert_eq!(
        d["placement"],
        json!({"mode": "single-feasible", "tieSet": ["big"]})
    );
    assert_eq!(d["filter"]["small"]["code"], "UnschedulableAndUnresolvable");
    let out = ok(&place(&state, &pod, false));
    assert!(
        out.contains("SCHEDULED on big\n  mode: single-feasible"),
        "{out}"
    );
    assert!(
        out.contains("small: NodeResourcesFit: Insufficient cpu [UnschedulableAndUnresolvable]"),
        "{out}"
    );
}

#[test]
fn place_on_a_public_scenario_matches_expected() {
    let (name, scenario, expected) = first_public_case();
    let dir = scratch("public");
    let (state, pod) = write_scenario(&dir, &scenario);
    let got = json_of(&place(&state, &pod, true));
    assert_subset(&name, &expected, &got);
    // The chosen node is in the expected tie set.
    let chosen = got["node"].as_str().expect("a node");
    let tie = if expected["preemption"].is_object() {
        &expected["preemption"]["selectedTieSet"]
    } else {
        &expected["placement"]["tieSet"]
    };
    assert!(
        tie.as_array().unwrap().iter().any(|n| n == chosen),
        "{chosen} not in {tie}"
    );

    // The readable report names the same node and victims.
    let out = ok(&place(&state, &pod, false));
    assert!(out.contains(&format!("on {chosen}")), "{out}");
    if let Some(victims) = expected["preemption"]["nodes"][chosen]["victims"].as_array() {
        for v in victims {
            assert!(out.contains(v.as_str().unwrap()), "{v} not in\n{out}");
        }
    }
}

#[test]
fn conformance_on_public_vectors_passes() {
    let o = run(&["conformance", public_vectors().to_str().unwrap()]);
    let out = ok(&o);
    assert_eq!(
        out.lines().last(),
        Some("conformance: 300 passed, 0 failed"),
        "{out}"
    );
}

#[test]
fn missing_file_is_an_input_error() {
    let o = place(
        Path::new("no-such-cluster.json"),
        &fixture("pending-pod.yaml"),
        false,
    );
    assert_input_error(&o, &["no-such-cluster.json"]);
    let o = place(
        &fixture("kubectl-list.json"),
        Path::new("no-such-pod.yaml"),
        true,
    );
    assert_input_error(&o, &["no-such-pod.yaml"]);
}

#[test]
fn invalid_documents_are_input_errors() {
    let dir = scratch("invalid");
    let bad_yaml = dir.join("broken.yaml");
    fs::write(&bad_yaml, "metadata:\n  name: [unclosed\n  spec: {\n").unwrap();
    let o = place(&fixture("kubectl-list.json"), &bad_yaml, false);
    assert_input_error(&o, &["broken.yaml", "invalid YAML"]);

    let bad_json = dir.join("broken.json");
    fs::write(&bad_json, "{\"items\": [").unwrap();
    let o = place(&bad_json, &fixture("pending-pod.yaml"), false);
    assert_input_error(&o, &["broken.json", "invalid JSON"]);

    let empty = dir.join("empty.yaml");
    fs::write(&empty, "").unwrap();
    let o = place(&empty, &fixture("pending-pod.yaml"), false);
    assert_input_error(&o, &["empty.yaml", "empty"]);

    // The cluster file given as the pod.
    let o = place(
        &fixture("kubectl-list.json"),
        &fixture("kubectl-list.json"),
        false,
    );
    assert_input_error(
        &o,
        &["kubectl-list.json", "field `items`", "exactly one Pod"],
    );
}

#[test]
fn bad_quantities_name_the_file_and_the_field() {
    let (_, mut scenario, _) = first_public_case();
    scenario["pods"][3]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("lots");
    let dir = scratch("quantity");
    let (state, pod) = write_scenario(&dir, &scenario);
    let o = place(&state, &pod, false);
    assert_input_error(
        &o,
        &[
            "state.json",
            "field `pods[3].spec.containers[0].resources.requests.cpu`",
            "\"lots\" is not a valid quantity",
        ],
    );

    // In a kubectl List the path runs through `items`.
    let mut list: Value =
        serde_json::from_str(&fs::read_to_string(fixture("kubectl-list.json")).unwrap()).unwrap();
    let items = list["items"].as_array_mut().unwrap();
    let i = items
        .iter()
        .position(|o| o["metadata"]["name"] == "etl-worker-0")
        .unwrap();
    items[i]["spec"]["containers"][0]["resources"]["requests"]["memory"] = json!("2 GiB");
    let state = dir.join("cluster.json");
    fs::write(&state, serde_json::to_string(&list).unwrap()).unwrap();
    let o = place(&state, &fixture("pending-pod.yaml"), false);
    assert_input_error(
        &o,
        &[
            "cluster.json",
            &format!("field `items[{i}].spec.containers[0].resources.requests.memory`"),
            "\"2 GiB\" is not a valid quantity",
        ],
    );

    // And in the pod file.
    let pod = dir.join("pod.yaml");
    fs::write(
        &pod,
        "metadata: {name: p}\nspec:\n  containers:\n  - name: c\n    resources: {limits: {cpu: two}}\n",
    )
    .unwrap();
    let o = place(&fixture("kubectl-list.json"), &pod, false);
    assert_input_error(
        &o,
        &[
            "pod.yaml",
            "field `spec.containers[0].resources.limits.cpu`",
            "\"two\" is not a valid quantity",
        ],
    );
}

#[test]
fn inconsistent_objects_are_input_errors() {
    let dir = scratch("inconsistent");
    // An unknown priority class in the pod file.
    let pod = dir.join("pod.yaml");
    fs::write(
        &pod,
        "metadata: {name: p}\nspec:\n  priorityClassName: platinum\n  containers: [{name: c}]\n",
    )
    .unwrap();
    let o = place(&fixture("kubectl-list.json"), &pod, false);
    assert_input_error(
        &o,
        &["pod.yaml", "field `spec.priorityClassName`", "platinum"],
    );

    // A node listed twice.
    let mut list: Value =
        serde_json::from_str(&fs::read_to_string(fixture("kubectl-list.json")).unwrap()).unwrap();
    let node = list["items"][1].clone();
    assert_eq!(node["kind"], "Node");
    list["items"].as_array_mut().unwrap().push(node);
    let state = dir.join("dup.json");
    fs::write(&state, serde_json::to_string(&list).unwrap()).unwrap();
    let o = place(&state, &fixture("pending-pod.yaml"), false);
    assert_input_error(&o, &["dup.json", "duplicate node \"worker-a\""]);

    // A Node given as the pod.
    let not_a_pod = dir.join("node.json");
    fs::write(
        &not_a_pod,
        serde_json::to_string(&list["items"][0]).unwrap(),
    )
    .unwrap();
    let o = place(&fixture("kubectl-list.json"), &not_a_pod, false);
    assert_input_error(&o, &["node.json", "field `kind`", "expected a Pod"]);
}

#[test]
fn a_bare_kubeconfig_flag_means_find_the_configuration_as_kubectl_does() {
    // `--kubeconfig` with no path, followed by another flag: the configuration is
    // looked for (and here not found), rather than `--listen` taken for a path.
    let home = scratch("bare-kubeconfig");
    for args in [
        &["serve", "--kubeconfig", "--listen", "127.0.0.1:0"][..],
        &[
            "feed",
            "--kubeconfig",
            "--server",
            "127.0.0.1:1",
            "--cluster",
            "c",
        ][..],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_preemption-oracle"))
            .args(args)
            .env("HOME", &home)
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("no Kubernetes configuration found"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}
