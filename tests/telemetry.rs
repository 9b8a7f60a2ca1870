//! Telemetry end to end, against the real `preemption-oracle serve` binary:
//!
//! - a real Prometheus server scrapes `--metrics-listen`, and its query API returns the
//!   `Place` counter and latency histogram. CI installs Debian's `prometheus` package
//!   and sets ORACLE_REQUIRE_PROMETHEUS=1, so there the test cannot pass without it;
//! - an OTLP/gRPC receiver inside the test gets the spans of a `Place` call, under the
//!   trace id of the caller's `traceparent`, with their attributes, flushed at shutdown;
//!   with no collector listening the oracle answers as fast and still shuts down.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Process, free_port};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use preemption_oracle::service::pb;
use preemption_oracle::service::pb::preemption_oracle_client::PreemptionOracleClient;
use serde_json::{Value, json};
use tonic::transport::Channel;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oracle-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// `serve --demo` (50 nodes) on a free port, with `extra` arguments and `env`; its log
/// goes to `log`.
fn start_oracle(extra: &[&str], env: &[(&str, &str)], log: &Path) -> (Process, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_preemption-oracle"));
    cmd.args([
        "serve",
        "--demo",
        "--nodes",
        "50",
        "--pods-per-node",
        "5",
        "--listen",
        &addr,
    ])
    .args(extra)
    .env("RUST_LOG", "info")
    .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
    .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    .stdout(Stdio::null())
    .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    (Process(cmd.spawn().unwrap()), addr)
}

async fn client(addr: &str) -> PreemptionOracleClient<Channel> {
    let started = Instant::now();
    loop {
        if let Ok(c) = PreemptionOracleClient::connect(format!("http://{addr}")).await {
            return c;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the oracle did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Place request for a pod asking for `cpu`.
fn place_request(cluster: &str, cpu: &str) -> pb::PlaceRequest {
    let pod = json!({
        "metadata": {"namespace": "default", "name": "probe"},
        "spec": {"containers": [{"name": "main", "resources": {"requests": {"cpu": cpu}}}]}
    });
    pb::PlaceRequest {
        cluster: cluster.into(),
        pod: Some(pb::PodInput {
            pod: Some(pb::pod_input::Pod::Json(pod.to_string())),
        }),
        options: None,
    }
}

// ---------------------------------------------------------------------------------
// Prometheus

/// A plain HTTP/1.0 GET; the body when the status is 200.
fn http_get(addr: &str, target: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {target} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.lines()
        .next()?
        .contains(" 200 ")
        .then(|| body.to_string())
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result vector of an instant query, `(labels, value)` per series.
fn prometheus_query(addr: &str, query: &str) -> Vec<(HashMap<String, String>, String)> {
    let Some(body) = http_get(addr, &format!("/api/v1/query?query={}", url_encode(query))) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{body}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let labels = serde_json::from_value(r["metric"].clone()).unwrap();
            (labels, r["value"][1].as_str().unwrap().to_string())
        })
        .collect()
}

fn prometheus_installed() -> bool {
    Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_place_counts_and_latency() {
    if !prometheus_installed() {
        assert!(
            std::env::var_os("ORACLE_REQUIRE_PROMETHEUS").is_none(),
            "prometheus is required but not installed"
        );
        eprintln!("prometheus not installed; skipping (CI installs it and requires it)");
        return;
    }
    let dir = temp_dir("prometheus");
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let oracle_log = dir.join("oracle.log");
    let (_oracle, addr) = start_oracle(&["--metrics-listen", &metrics_addr], &[], &oracle_log);
    let mut c = client(&addr).await;
    for _ in 0..3 {
        c.place(place_request("", "100m")).await.unwrap();
    }
    let missing = c.place(place_request("nowhere", "100m")).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: oracle\n    static_configs:\n      - targets: ['{metrics_addr}']\n"
        ),
    )
    .unwrap();
    let prometheus_addr = format!("127.0.0.1:{}", free_port());
    let prometheus_log = dir.join("prometheus.log");
    let _prometheus = Process(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={prometheus_addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&prometheus_log).unwrap())
            .spawn()
            .unwrap(),
    );

    let started = Instant::now();
    let (requests, buckets) = loop {
        let requests = prometheus_query(
            &prometheus_addr,
            r#"oracle_rpc_requests_total{method="Place"}"#,
        );
        let buckets = prometheus_query(
            &prometheus_addr,
            r#"oracle_rpc_duration_seconds_bucket{method="Place",code="OK"}"#,
        );
        if requests.len() == 2 && !buckets.is_empty() {
            break (requests, buckets);
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "Prometheus never returned the Place series (requests {requests:?}, buckets {buckets:?})\n\
             prometheus log:\n{}\noracle log:\n{}",
            tail(&prometheus_log),
            tail(&oracle_log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let by_code: HashMap<&str, &str> = requests
        .iter()
        .map(|(labels, value)| (labels["code"].as_str(), value.as_str()))
        .collect();
    assert_eq!(by_code.get("OK"), Some(&"3"), "{requests:?}");
    assert_eq!(by_code.get("NOT_FOUND"), Some(&"1"), "{requests:?}");
    let inf = buckets
        .iter()
        .find(|(labels, _)| labels["le"] == "+Inf")
        .unwrap_or_else(|| panic!("no +Inf bucket in {buckets:?}"));
    assert_eq!(inf.1, "3");
    assert!(buckets.len() > 10, "{buckets:?}");
    assert!(
        buckets.iter().all(|(labels, _)| labels["job"] == "oracle"),
        "{buckets:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------
// OTLP

/// An OTLP/gRPC trace receiver keeping every span it gets.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<OtlpSpan>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Sends SIGTERM and waits (at most `limit`) for the process to exit.
async fn terminate(process: &mut Process, limit: Duration) -> std::process::ExitStatus {
    let term = Command::new("kill")
        .args(["-TERM", &process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let started = Instant::now();
    loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < limit, "the oracle did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn attr(span: &OtlpSpan, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|a| a.key == key)?
        .value
        .as_ref()?;
    Some(match value.value.as_ref()? {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_receiver_gets_place_spans_under_the_callers_trace() {
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const CALLER_SPAN: &str = "00f067aa0ba902b7";

    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    let serving = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = temp_dir("otlp");
    let log = dir.join("oracle.log");
    let endpoint = format!("http://{collector}");
    let (mut oracle, addr) = start_oracle(&[], &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)], &log);
    let mut c = client(&addr).await;
    // Too large for any node, so every phase runs: snapshot, filter, score, preemption.
    let mut request = tonic::Request::new(place_request("", "1000"));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN}-01").parse().unwrap(),
    );
    let answer = c.place(request).await.unwrap().into_inner();
    assert_eq!(answer.outcome(), pb::Outcome::Unschedulable);

    // Shutdown flushes the spans still queued.
    let stopped = terminate(&mut oracle, Duration::from_secs(30)).await;
    assert!(stopped.success(), "{}", tail(&log));
    serving.abort();

    let spans = receiver.0.lock().unwrap().clone();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let log = tail(&log);
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span among {names:?}\noracle log:\n{log}"))
    };
    let rpc = find("preemption_oracle.v1.PreemptionOracle/Place");
    assert_eq!(hex(&rpc.trace_id), TRACE_ID);
    assert_eq!(hex(&rpc.parent_span_id), CALLER_SPAN);
    for (key, want) in [
        ("rpc.system", "grpc"),
        ("rpc.service", "preemption_oracle.v1.PreemptionOracle"),
        ("rpc.method", "Place"),
        ("rpc.grpc.status_code", "0"),
        ("cluster", "default"),
        ("revision", "1"),
        ("nodes", "50"),
        ("outcome", "UNSCHEDULABLE"),
    ] {
        assert_eq!(attr(rpc, key).as_deref(), Some(want), "{key} on {rpc:?}");
    }
    let phases = [
        (
            "snapshot",
            vec![("cluster", "default"), ("revision", "1"), ("nodes", "50")],
        ),
        ("filter", vec![("nodes", "50"), ("feasible", "0")]),
        ("score", vec![("nodes", "0")]),
        ("preemption", vec![("outcome", "UNSCHEDULABLE")]),
    ];
    for (name, attrs) in &phases {
        let span = find(name);
        assert_eq!(hex(&span.trace_id), TRACE_ID, "{name}");
        assert_eq!(
            span.parent_span_id, rpc.span_id,
            "{name} is a child of the call"
        );
        for (key, want) in attrs {
            assert_eq!(attr(span, key).as_deref(), Some(*want), "{key} on {span:?}");
        }
    }
    assert!(attr(find("preemption"), "nodes").is_some());
    // Only the oracle's own spans are exported: none from h2, hyper, tonic or tower, nor
    // from the exporter's own traffic.
    assert_eq!(spans.len(), 1 + phases.len(), "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_collector_does_not_hurt_serving() {
    let dir = temp_dir("otlp-down");
    let log = dir.join("oracle.log");
    // Nothing listens there.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let (mut oracle, addr) = start_oracle(&[], &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)], &log);
    let mut c = client(&addr).await;
    let started = Instant::now();
    for _ in 0..20 {
        let answer = c
            .place(place_request("", "100m"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.outcome(), pb::Outcome::Scheduled);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "20 answers took {:?}",
        started.elapsed()
    );
    let stopped = terminate(&mut oracle, Duration::from_secs(20)).await;
    assert!(stopped.success(), "{}", tail(&log));
    let _ = std::fs::remove_dir_all(&dir);
}
