//! `oracle-load` end to end: a real `preemption-oracle serve --demo` (50 nodes × 10 pods)
//! on a free loopback port, loaded for about 2 s by 4 clients while a writer streams 200
//! updates/s; its closing line must parse, with qps > 0 and no errors. Also: `--rpc
//! health` measures health checks on the same server, and it refuses a non-loopback
//! target without `--allow-remote`.

mod support;

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Process, free_port};

const SERVER: &str = env!("CARGO_BIN_EXE_preemption-oracle");
const LOAD: &str = env!("CARGO_BIN_EXE_oracle-load");

/// Starts `serve --demo` and waits until a Place is answered (oracle-load with one
/// client and a tiny duration doubles as the probe).
fn start_server() -> (Process, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(SERVER)
        .args([
            "serve",
            "--demo",
            "--nodes",
            "50",
            "--pods-per-node",
            "10",
            "--listen",
            &addr,
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut server = Process(child);
    let started = Instant::now();
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            let mut err = String::new();
            let _ = server.0.stderr.take().unwrap().read_to_string(&mut err);
            panic!("serve exited early ({status}): {err}");
        }
        if std::net::TcpStream::connect(&addr).is_ok() {
            let probe = Command::new(LOAD)
                .args(["--server", &addr, "--clients", "1", "--duration", "0.05"])
                .output()
                .unwrap();
            if probe.status.success() {
                return (server, addr);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve did not answer within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs oracle-load with `args`; its stdout and stderr, once it has succeeded.
fn load(args: &[&str]) -> (String, String) {
    let out = Command::new(LOAD).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "oracle-load failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// `key=value` pairs of a line such as `place: qps=… p50_us=… p99_us=… errors=…`.
fn fields(line: &str) -> HashMap<&str, &str> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

/// [`load`] against `addr` with 2 clients for 1 s, and `extra` arguments.
fn load_briefly(addr: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["--server", addr, "--clients", "2", "--duration", "1"];
    args.extend_from_slice(extra);
    load(&args)
}

#[test]
fn oracle_load_runs_against_serve_demo_with_ingest() {
    let (_server, addr) = start_server();
    let (stdout, stderr) = load(&[
        "--server",
        &addr,
        "--clients",
        "4",
        "--duration",
        "2",
        "--ingest-rate",
        "200",
    ]);
    let lines: Vec<&str> = stdout.lines().collect();
    let last = *lines.last().expect("some output");
    assert!(last.starts_with("place: "), "last line: {last:?}\n{stdout}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("place: ")).count(),
        1,
        "exactly one place line:\n{stdout}"
    );
    let place = fields(last);
    let qps: f64 = place["qps"].parse().unwrap();
    let p50: u64 = place["p50_us"].parse().unwrap();
    let p99: u64 = place["p99_us"].parse().unwrap();
    let errors: u64 = place["errors"].parse().unwrap();
    assert!(qps > 0.0, "{last}");
    assert!(p50 > 0 && p99 >= p50, "{last}");
    assert_eq!(errors, 0, "{stdout}\n{stderr}");

    let ingest = lines
        .iter()
        .find(|l| l.starts_with("ingest: "))
        .unwrap_or_else(|| panic!("an ingest line:\n{stdout}"));
    let ingest = fields(ingest);
    let updates: u64 = ingest["updates"].parse().unwrap();
    let acked: u64 = ingest["acked"].parse().unwrap();
    let batches: u64 = ingest["batches"].parse().unwrap();
    assert!(
        updates >= 100,
        "about 400 updates in 2 s at 200/s: {stdout}"
    );
    assert_eq!(acked, batches, "every batch acknowledged: {stdout}");
    assert_eq!(ingest["errors"], "0", "{stdout}\n{stderr}");
}

#[test]
fn oracle_load_measures_the_transport_floor_with_health_checks() {
    let (_server, addr) = start_server();
    let (stdout, stderr) = load_briefly(&addr, &["--rpc", "health"]);
    let lines: Vec<&str> = stdout.lines().collect();
    let last = *lines.last().expect("some output");
    assert!(
        last.starts_with("health: "),
        "last line: {last:?}\n{stdout}"
    );
    assert!(
        !stdout.contains("place"),
        "no Place is timed with --rpc health:\n{stdout}"
    );
    let health = fields(last);
    assert!(health["qps"].parse::<f64>().unwrap() > 0.0, "{last}");
    assert_eq!(health["errors"], "0", "{stdout}\n{stderr}");
    let detail = lines
        .iter()
        .find(|l| l.starts_with("health-detail: "))
        .unwrap_or_else(|| panic!("a detail line:\n{stdout}"));
    let requests: u64 = fields(detail)["requests"].parse().unwrap();
    assert!(
        detail.contains(&format!("outcomes[Serving={requests}]")),
        "every check answered SERVING: {detail}"
    );
}

/// `--shapes`: every client's Place carries the synthetic pod in turn with cpu 100m,
/// 101m, …, each a valid pod the server places.
#[test]
fn oracle_load_takes_pod_shapes_in_turn() {
    let (_server, addr) = start_server();
    let (stdout, stderr) = load_briefly(&addr, &["--shapes", "40"]);
    let place = fields(stdout.lines().last().expect("some output"));
    assert_eq!(place["errors"], "0", "{stdout}\n{stderr}");
    assert!(place["qps"].parse::<f64>().unwrap() > 0.0, "{stdout}");
    assert!(stdout.contains("outcomes[SCHEDULED="), "{stdout}");
}

#[test]
fn oracle_load_refuses_shapes_it_cannot_make() {
    for args in [
        &["--shapes", "0"][..],
        &["--shapes", "2", "--pod", "loadtests/pods/demo-fits.json"][..],
    ] {
        let out = Command::new(LOAD).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--shapes"), "{args:?}: {stderr}");
    }
}

#[test]
fn oracle_load_refuses_remote_targets() {
    let out = Command::new(LOAD)
        .args(["--server", "192.0.2.1:50051", "--duration", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}
