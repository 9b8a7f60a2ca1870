//! The built-in watcher against a test API server that speaks Kubernetes' list and
//! watch protocol (tests/apiserver): watched state converges, follows adds, updates and
//! deletes, survives dropped connections and 410 re-lists; `serve --kubeconfig` reports
//! NOT_SERVING until its first full sync; `feed` streams to a remote oracle and replays
//! after that oracle restarts; and the public conformance vectors, served by the API
//! server and watched, give the expected answers.

mod support;

use support::{Process, free_port};
mod apiserver;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::ApiServer;
use preemption_oracle::engine::{Options, Snapshot, decide_with};
use preemption_oracle::kube;
use preemption_oracle::service::pb::preemption_oracle_client::PreemptionOracleClient;
use preemption_oracle::service::{pb, response};
use preemption_oracle::store::Store;
use preemption_oracle::watch::sink::LocalSink;
use serde_json::{Value, json};
use tokio::sync::watch;

const CONVERGE_WITHIN: Duration = Duration::from_secs(30);

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oracle-watch-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture_objects() -> Vec<Value> {
    let text = std::fs::read_to_string("tests/fixtures/kubectl-list.json").unwrap();
    let list: Value = serde_json::from_str(&text).unwrap();
    list["items"].as_array().unwrap().clone()
}

fn pending_pod() -> Value {
    let text = std::fs::read_to_string("tests/fixtures/pending-pod.yaml").unwrap();
    kube::parse_document(&text).unwrap()
}

/// The snapshot the engine builds from `objects` directly.
fn snapshot_of(objects: &[Value]) -> Snapshot {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    Snapshot::build(kube::decode_cluster(&list).unwrap()).unwrap()
}

/// What a state holds, in a comparable form: nodes with their labels, taints and pods,
/// pending pods, budgets and priority classes.
fn digest(s: &Snapshot) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for n in &s.nodes {
        out.insert(format!(
            "node {} labels={:?} taints={:?}",
            n.name(),
            n.node.labels.iter().collect::<BTreeSet<_>>(),
            n.node.taints
        ));
        for p in &n.pods {
            out.insert(format!(
                "pod {} on {} priority={} terminating={}",
                p.pod.key(),
                n.name(),
                p.pod.priority,
                p.pod.terminating
            ));
        }
    }
    for p in s.pending_pods() {
        out.insert(format!("pending {}", p.pod.key()));
    }
    for b in s.pdbs() {
        out.insert(format!("pdb {}/{} {:?}", b.namespace, b.name, b.selector));
    }
    for c in s.priority_classes() {
        out.insert(format!("class {} {}", c.name, c.value));
    }
    out
}

/// The full answer for the fixture's pending pod on `s`.
fn decision(s: &Snapshot) -> Value {
    let pod = kube::decode_pod(&pending_pod(), &s.priority_classes()).unwrap();
    serde_json::to_value(decide_with(s, &pod, Options::EXPLAINED)).unwrap()
}

/// Objects the oracle refuses are named `refused-…`; the rest must all be there.
fn acceptable(objects: Vec<Value>) -> Vec<Value> {
    objects
        .into_iter()
        .filter(|o| {
            !o["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("refused-")
        })
        .collect()
}

/// Waits until the store's cluster holds exactly what the API server serves and answers
/// as the engine does on the same objects.
async fn converged(store: &Store, cluster: &str, api: &ApiServer, what: &str) {
    let start = Instant::now();
    loop {
        let expected = snapshot_of(&acceptable(api.objects()));
        if let Some(c) = store.cluster(cluster) {
            let got = Arc::clone(&c.published().snapshot);
            if digest(&got) == digest(&expected) {
                assert_eq!(
                    decision(&got),
                    decision(&expected),
                    "{what}: answers differ"
                );
                return;
            }
            if start.elapsed() > CONVERGE_WITHIN {
                let (e, g) = (digest(&expected), digest(&got));
                panic!(
                    "{what}: not converged\nmissing: {:#?}\nextra: {:#?}",
                    e.difference(&g).collect::<Vec<_>>(),
                    g.difference(&e).collect::<Vec<_>>()
                );
            }
        } else {
            assert!(start.elapsed() < CONVERGE_WITHIN, "{what}: no cluster");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pod(namespace: &str, name: &str, node: Option<&str>, cpu: &str, class: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}"),
                     "creationTimestamp": "2026-11-20T10:00:00Z", "labels": {"app": name},
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                     "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}]},
        "spec": {"nodeName": node, "priorityClassName": class,
                 "containers": [{"name": "main", "image": "registry.example.com/app:1",
                                 "resources": {"requests": {"cpu": cpu, "memory": "256Mi"}}}]},
        "status": {"phase": if node.is_some() { "Running" } else { "Pending" },
                   "startTime": "2026-11-20T10:00:05Z"}})
}

fn find(api: &ApiServer, kind: &str, name: &str) -> Value {
    api.objects()
        .into_iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// Runs the watcher into `store` as `cluster`, and waits for its first full sync.
async fn watch_until_synced(
    store: &Arc<Store>,
    kubeconfig: &Path,
    cluster: &str,
) -> tokio::task::JoinHandle<Result<(), tonic::Status>> {
    let (ready_tx, mut ready) = watch::channel(false);
    let client = preemption_oracle::watch::client(Some(kubeconfig))
        .await
        .unwrap();
    let watcher = tokio::spawn({
        let store = Arc::clone(store);
        let cluster = cluster.to_string();
        async move {
            let mut sink = LocalSink::new(store, ready_tx);
            preemption_oracle::watch::run(client, &cluster, &mut sink).await
        }
    });
    tokio::time::timeout(CONVERGE_WITHIN, ready.wait_for(|r| *r))
        .await
        .expect("the first full sync lands")
        .unwrap();
    watcher
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_state_follows_the_cluster_through_drops_and_relists() {
    let api = ApiServer::start(&fixture_objects()).await;
    let kubeconfig = api.kubeconfig(&scratch_dir("follow"));
    let store = Arc::new(Store::new());
    let watcher = watch_until_synced(&store, &kubeconfig, "watched").await;
    // The first full sync is one batch: at readiness the state is already whole.
    let first = store.cluster("watched").unwrap().published();
    assert_eq!(first.revision, 1, "one replace batch");
    assert_eq!(
        digest(&first.snapshot),
        digest(&snapshot_of(&api.objects()))
    );
    converged(&store, "watched", &api, "initial sync").await;

    // Adds, updates and deletes of every kind.
    api.apply(pod("batch", "train-0", Some("worker-b"), "1", "batch-low"));
    let mut tainted = find(&api, "Node", "worker-c");
    tainted["spec"]["taints"] = json!([{"key": "maintenance", "effect": "NoSchedule"}]);
    api.apply(tainted);
    api.delete("Pod", "batch", "etl-worker-0");
    api.delete("PodDisruptionBudget", "web", "frontend");
    let mut finished = find(&api, "Pod", "report-gen-29400480-hx7kq");
    finished["status"]["phase"] = json!("Succeeded");
    api.apply(finished); // finished pods leave the state
    let mut terminating = find(&api, "Pod", "frontend-6b8d9c7f5d-qv5tn");
    terminating["metadata"]["deletionTimestamp"] = json!("2026-11-26T12:00:00Z");
    api.apply(terminating); // kept, as terminating
    api.apply(
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": "research"}, "value": 5000}),
    );
    // One bad object is dropped (and logged); the rest of its batch still lands.
    api.apply(pod(
        "batch",
        "refused-0",
        Some("worker-a"),
        "lots",
        "batch-low",
    ));
    api.apply(pod(
        "batch",
        "train-00",
        Some("worker-a"),
        "100m",
        "batch-low",
    ));
    converged(&store, "watched", &api, "adds, updates and deletes").await;
    let state = store.cluster("watched").unwrap().published();
    assert!(
        digest(&state.snapshot)
            .iter()
            .any(|l| l.starts_with("pod web/frontend-6b8d9c7f5d-qv5tn")
                && l.ends_with("terminating=true"))
    );

    // A dropped connection: the watch resumes where it stopped.
    api.drop_watches();
    api.apply(pod(
        "batch",
        "train-1",
        Some("worker-a"),
        "500m",
        "batch-low",
    ));
    api.delete("Node", "", "worker-c");
    converged(&store, "watched", &api, "after a dropped connection").await;

    // 410 Gone: history is compacted while the watches are down; they must re-list.
    let lists = api.lists_served();
    api.compact();
    api.apply(pod(
        "batch",
        "train-2",
        Some("worker-b"),
        "250m",
        "batch-low",
    ));
    api.delete("Pod", "batch", "train-0");
    api.delete("PriorityClass", "", "research");
    converged(&store, "watched", &api, "after a 410 re-list").await;
    assert!(
        api.lists_served() > lists,
        "the 410 made the watcher re-list"
    );
    watcher.abort();
}

fn oracle(args: &[&str]) -> Process {
    Process(
        Command::new(env!("CARGO_BIN_EXE_preemption-oracle"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

async fn health(addr: &str, service: &str) -> Option<i32> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .ok()?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let answer = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()?;
    Some(answer.into_inner().status)
}

async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < CONVERGE_WITHIN,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The oracle's answer for the fixture's pending pod, without explanations or revision.
async fn remote_answer(addr: &str, cluster: &str) -> Option<pb::PlaceResponse> {
    let mut client = PreemptionOracleClient::connect(format!("http://{addr}"))
        .await
        .ok()?;
    let request = pb::PlaceRequest {
        cluster: cluster.into(),
        pod: Some(pb::PodInput {
            pod: Some(pb::pod_input::Pod::Json(pending_pod().to_string())),
        }),
        options: Some(pb::PlaceOptions::default()),
    };
    let mut answer = client.place(request).await.ok()?.into_inner();
    answer.revision = 0;
    Some(answer)
}

/// The answer the engine gives on the API server's objects, as the service shapes it.
fn expected_answer(api: &ApiServer) -> pb::PlaceResponse {
    let s = snapshot_of(&api.objects());
    let pod = kube::decode_pod(&pending_pod(), &s.priority_classes()).unwrap();
    response::place(&decide_with(&s, &pod, Options::ANSWER), 0, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_kubeconfig_is_ready_only_after_its_first_full_sync() {
    let api = ApiServer::start(&fixture_objects()).await;
    let kubeconfig = api.kubeconfig(&scratch_dir("serve"));
    api.hold_lists(true);
    let addr = format!("127.0.0.1:{}", free_port());
    let _server = oracle(&[
        "serve",
        "--listen",
        &addr,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    wait_for("the server to answer health checks", || async {
        health(&addr, "liveness").await.is_some()
    })
    .await;
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
    assert_eq!(health(&addr, "liveness").await, Some(serving));
    assert_eq!(health(&addr, "").await, Some(not_serving));
    assert_eq!(
        health(&addr, "preemption_oracle.v1.PreemptionOracle").await,
        Some(not_serving)
    );
    api.hold_lists(false);
    wait_for("SERVING after the first full sync", || async {
        health(&addr, "").await == Some(serving)
    })
    .await;
    assert_eq!(
        remote_answer(&addr, "").await.unwrap(),
        expected_answer(&api)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_streams_to_an_oracle_and_replays_after_it_restarts() {
    let api = ApiServer::start(&fixture_objects()).await;
    let kubeconfig = api.kubeconfig(&scratch_dir("feed"));
    let addr = format!("127.0.0.1:{}", free_port());
    let first = oracle(&["serve", "--listen", &addr]);
    let _feed = oracle(&[
        "feed",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--server",
        &addr,
        "--cluster",
        "fleet-a",
    ]);
    let expected = expected_answer(&api);
    wait_for("the fed state", || async {
        remote_answer(&addr, "fleet-a").await.as_ref() == Some(&expected)
    })
    .await;

    // The oracle restarts with nothing; the feeder reconnects and replays everything.
    drop(first);
    let _second = oracle(&["serve", "--listen", &addr]);
    wait_for("the replayed state", || async {
        remote_answer(&addr, "fleet-a").await.as_ref() == Some(&expected)
    })
    .await;

    // And it keeps following the cluster: the victims leave, so the pod now fits.
    let before = expected_answer(&api);
    for v in &before.victims {
        api.delete("Pod", &v.namespace, &v.name);
    }
    let after = expected_answer(&api);
    assert_ne!(before, after);
    wait_for("the change after the restart", || async {
        remote_answer(&addr, "fleet-a").await.as_ref() == Some(&after)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_vectors_from_watched_state() {
    let path = "../shared/conformance/public.jsonl";
    let lines = preemption_oracle::conformance::read_cases(path.as_ref()).unwrap();
    let dir = scratch_dir("vectors");
    let mut failures = Vec::new();
    for line in &lines {
        let case: Value = serde_json::from_str(line).unwrap();
        let scenario = &case["scenario"];
        let objects: Vec<Value> = ["nodes", "pods", "pdbs", "priorityClasses"]
            .iter()
            .flat_map(|k| scenario[*k].as_array().cloned().unwrap_or_default())
            .collect();
        let api = ApiServer::start(&objects).await;
        let kubeconfig = api.kubeconfig(&dir);
        let store = Arc::new(Store::new());
        let watcher = watch_until_synced(&store, &kubeconfig, "").await;
        watcher.abort();
        let snapshot = Arc::clone(&store.cluster("").unwrap().published().snapshot);
        failures.extend(preemption_oracle::conformance::check_against(
            &case, &snapshot,
        ));
    }
    assert!(
        failures.is_empty(),
        "{} mismatches, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(lines.len(), 300);
}
