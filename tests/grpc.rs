//! The service over real loopback gRPC: state streamed in, answers that follow it,
//! consistency under concurrent writes, the public vectors through the gRPC path,
//! PlaceBatch / PendingPods ordering, and errors.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use preemption_oracle::engine::{Snapshot, decide};
use preemption_oracle::kube;
use preemption_oracle::service::pb;
use preemption_oracle::service::pb::preemption_oracle_client::PreemptionOracleClient;
use preemption_oracle::service::server::{self, ServeConfig};
use preemption_oracle::store::Store;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tonic::transport::Channel;

struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    async fn start() -> TestServer {
        let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server::serve(
                listener,
                Arc::new(Store::new()),
                ServeConfig::default(),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap();
        });
        TestServer {
            addr,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    async fn client(&self) -> PreemptionOracleClient<Channel> {
        let url = format!("http://{}", self.addr);
        for _ in 0..50 {
            if let Ok(c) = PreemptionOracleClient::connect(url.clone()).await {
                return c
                    .max_decoding_message_size(256 << 20)
                    .max_encoding_message_size(256 << 20);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server did not come up");
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap();
    }
}

fn obj(v: &Value) -> pb::KubeObject {
    pb::KubeObject {
        object: Some(pb::kube_object::Object::Json(v.to_string())),
    }
}

fn upsert(v: &Value) -> pb::ObjectChange {
    pb::ObjectChange {
        change: Some(pb::object_change::Change::Upsert(obj(v))),
    }
}

fn delete(kind: pb::Kind, namespace: &str, name: &str) -> pb::ObjectChange {
    pb::ObjectChange {
        change: Some(pb::object_change::Change::Delete(pb::ObjectRef {
            kind: kind as i32,
            namespace: namespace.into(),
            name: name.into(),
        })),
    }
}

/// Sends batches on one stream and returns each acknowledgement (or the error).
async fn sync(
    client: &mut PreemptionOracleClient<Channel>,
    batches: Vec<pb::SyncStateRequest>,
) -> Vec<Result<pb::SyncStateResponse, tonic::Status>> {
    let n = batches.len();
    let mut stream = match client.sync_state(tokio_stream::iter(batches)).await {
        Ok(r) => r.into_inner(),
        Err(e) => return vec![Err(e)],
    };
    let mut out = Vec::new();
    while out.len() < n {
        match stream.message().await {
            Ok(Some(ack)) => out.push(Ok(ack)),
            Ok(None) => break,
            Err(e) => {
                out.push(Err(e));
                break;
            }
        }
    }
    out
}

fn batch(cluster: &str, replace: bool, changes: Vec<pb::ObjectChange>) -> pb::SyncStateRequest {
    pb::SyncStateRequest {
        cluster: cluster.into(),
        replace,
        changes,
        batch_id: String::new(),
        replace_kinds: Vec::new(),
    }
}

/// Every object of a scenario, kinds set, as upserts.
fn scenario_changes(scenario: &Value) -> Vec<pb::ObjectChange> {
    let mut changes = Vec::new();
    for (field, kind) in [
        ("priorityClasses", "PriorityClass"),
        ("pdbs", "PodDisruptionBudget"),
        ("nodes", "Node"),
        ("pods", "Pod"),
    ] {
        for o in scenario[field].as_array().into_iter().flatten() {
            let mut o = o.clone();
            o["kind"] = json!(kind);
            changes.push(upsert(&o));
        }
    }
    changes
}

fn pod_input(v: &Value) -> Option<pb::PodInput> {
    Some(pb::PodInput {
        pod: Some(pb::pod_input::Pod::Json(v.to_string())),
    })
}

async fn place(
    client: &mut PreemptionOracleClient<Channel>,
    cluster: &str,
    pod: &Value,
    options: pb::PlaceOptions,
) -> Result<pb::PlaceResponse, tonic::Status> {
    client
        .place(pb::PlaceRequest {
            cluster: cluster.into(),
            pod: pod_input(pod),
            options: Some(options),
        })
        .await
        .map(|r| r.into_inner())
}

fn public_cases() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/public.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn node(name: &str, cpu: &str) -> Value {
    json!({"kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
           "status": {"allocatable": {"cpu": cpu, "memory": "16Gi", "pods": "110"}}})
}

fn pod(name: &str, node: Option<&str>, cpu: &str, class: &str, start: &str) -> Value {
    json!({"kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": {"app": name}, "creationTimestamp": start},
           "spec": {"nodeName": node, "priorityClassName": class, "containers": [{"name": "c", "image": "app:1", "resources": {"requests": {"cpu": cpu}}}]},
           "status": {"phase": if node.is_some() { "Running" } else { "Pending" }, "startTime": start}})
}

fn classes() -> Vec<Value> {
    vec![
        json!({"kind": "PriorityClass", "metadata": {"name": "low"}, "value": 10}),
        json!({"kind": "PriorityClass", "metadata": {"name": "mid"}, "value": 100}),
        json!({"kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_follow_the_streamed_state() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let mut objects = classes();
    objects.push(node("n1", "4"));
    objects.push(pod("low-a", Some("n1"), "2", "low", "2024-01-01T00:00:00Z"));
    objects.push(pod("low-b", Some("n1"), "2", "low", "2024-01-01T00:01:00Z"));
    let acks = sync(
        &mut c,
        vec![batch("", true, objects.iter().map(upsert).collect())],
    )
    .await;
    let r1 = acks[0].as_ref().unwrap().revision;
    assert_eq!(acks[0].as_ref().unwrap().applied, 6);

    let pending = pod("web", None, "2", "high", "2024-02-01T00:00:00Z");
    let answer = place(
        &mut c,
        "",
        &pending,
        pb::PlaceOptions {
            explain: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(answer.outcome, pb::Outcome::Preempts as i32);
    assert_eq!(answer.node, "n1");
    assert_eq!(answer.nominated_node_name, "n1");
    assert_eq!(answer.revision, r1);
    // The later-started low pod is the less important one, so it goes.
    let victims: Vec<&str> = answer.victims.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(victims, ["low-b"]);
    assert!(
        answer
            .fit_error
            .starts_with("0/1 nodes are available: 1 Insufficient cpu."),
        "{}",
        answer.fit_error
    );
    assert_eq!(answer.explanations.len(), 1);
    assert_eq!(answer.explanations[0].plugin, "NodeResourcesFit");

    // Delete that victim: the pod now fits as things are.
    let acks = sync(
        &mut c,
        vec![batch(
            "",
            false,
            vec![delete(pb::Kind::Pod, "default", "low-b")],
        )],
    )
    .await;
    let r2 = acks[0].as_ref().unwrap().revision;
    assert_eq!(r2, r1 + 1);
    let answer = place(
        &mut c,
        "",
        &pending,
        pb::PlaceOptions {
            min_revision: r2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(answer.outcome, pb::Outcome::Scheduled as i32);
    assert_eq!(answer.node, "n1");
    assert!(answer.victims.is_empty());

    // Fill n1 again and add an empty node: the pod goes to the new node.
    let acks = sync(
        &mut c,
        vec![batch(
            "",
            false,
            vec![
                upsert(&pod(
                    "low-c",
                    Some("n1"),
                    "2",
                    "low",
                    "2024-01-01T00:02:00Z",
                )),
                upsert(&node("n2", "8")),
            ],
        )],
    )
    .await;
    let r3 = acks[0].as_ref().unwrap().revision;
    let answer = place(
        &mut c,
        "",
        &pending,
        pb::PlaceOptions {
            min_revision: r3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(answer.outcome, pb::Outcome::Scheduled as i32);
    assert_eq!(answer.node, "n2");

    // What-if: drain n2 → preemption on n1 again; an unknown node is NOT_FOUND.
    let drained = pb::PlaceOptions {
        removed_nodes: vec!["n2".into()],
        ..Default::default()
    };
    let answer = place(&mut c, "", &pending, drained).await.unwrap();
    assert_eq!(answer.outcome, pb::Outcome::Preempts as i32);
    let err = place(
        &mut c,
        "",
        &pending,
        pb::PlaceOptions {
            removed_nodes: vec!["nope".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = place(
        &mut c,
        "",
        &pending,
        pb::PlaceOptions {
            removed_pods: vec![pb::PodRef {
                namespace: "default".into(),
                name: "ghost".into(),
            }],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    // What-if: an autoscaler's two new nodes from a template.
    let grown = pb::PlaceOptions {
        removed_nodes: vec!["n2".into()],
        extra_nodes: vec![pb::NodeTemplate {
            node: Some(obj(&node("tmpl", "4"))),
            count: 2,
            name_prefix: "new".into(),
        }],
        ..Default::default()
    };
    let answer = place(&mut c, "", &pending, grown).await.unwrap();
    assert_eq!(answer.outcome, pb::Outcome::Scheduled as i32);
    assert!(
        answer.tie_set.iter().all(|n| n.starts_with("new-")),
        "{:?}",
        answer.tie_set
    );
    assert_eq!(answer.tie_set.len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_batch_is_rejected_whole() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let mut objects = classes();
    objects.push(node("n1", "4"));
    let acks = sync(
        &mut c,
        vec![batch("", true, objects.iter().map(upsert).collect())],
    )
    .await;
    let r1 = acks[0].as_ref().unwrap().revision;

    // A good node, then a pod with a bad quantity: neither lands.
    let mut bad = pod("bad", Some("n1"), "2", "low", "2024-01-01T00:00:00Z");
    bad["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("lots");
    let acks = sync(
        &mut c,
        vec![batch(
            "",
            false,
            vec![upsert(&node("n2", "4")), upsert(&bad)],
        )],
    )
    .await;
    let err = acks[0].as_ref().unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("changes[1].upsert"),
        "{}",
        err.message()
    );
    assert!(
        err.message()
            .contains("spec.containers[0].resources.requests.cpu"),
        "{}",
        err.message()
    );

    let probe = pod("probe", None, "1", "high", "2024-02-01T00:00:00Z");
    let answer = place(
        &mut c,
        "",
        &probe,
        pb::PlaceOptions {
            explain: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        answer.revision, r1,
        "the rejected batch must not produce a revision"
    );
    assert_eq!(answer.num_nodes, 1, "n2 must not have been added");

    // An unknown priority class is a bad object too; so is a missing kind.
    let acks = sync(
        &mut c,
        vec![batch(
            "",
            false,
            vec![upsert(&pod(
                "x",
                Some("n1"),
                "1",
                "nope",
                "2024-01-01T00:00:00Z",
            ))],
        )],
    )
    .await;
    let err = acks[0].as_ref().unwrap_err();
    assert!(
        err.message().contains("spec.priorityClassName"),
        "{}",
        err.message()
    );
    let acks = sync(
        &mut c,
        vec![batch(
            "",
            false,
            vec![upsert(&json!({"metadata": {"name": "x"}}))],
        )],
    )
    .await;
    assert_eq!(
        acks[0].as_ref().unwrap_err().code(),
        tonic::Code::InvalidArgument
    );

    // A bad pending pod, and an unknown cluster.
    let err = place(&mut c, "", &json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "1Qi"}}}]}}), Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message()
            .contains("pod: field `spec.containers[0].resources.limits.memory`"),
        "{}",
        err.message()
    );
    let err = place(&mut c, "elsewhere", &probe, Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    // Read-your-writes honours the deadline.
    let mut req = tonic::Request::new(pb::PlaceRequest {
        cluster: String::new(),
        pod: pod_input(&probe),
        options: Some(pb::PlaceOptions {
            min_revision: r1 + 100,
            ..Default::default()
        }),
    });
    req.set_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = c.place(req).await.unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_decodes_each_batch_against_the_classes_before_it() {
    // A stream decodes its next batch while the previous one is applied, except after
    // a batch that changes priority classes: the next one's pods resolve against them.
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let pending = |name: String| pod(&name, None, "1", "low", "2024-01-01T00:00:00Z");
    let mut define_gold = vec![upsert(&json!({"kind": "PriorityClass",
        "metadata": {"name": "gold"}, "value": 500}))];
    // Enough pods that applying the batch takes a while.
    define_gold.extend((0..3000).map(|i| upsert(&pending(format!("filler-{i}")))));
    let mut drop_gold = vec![delete(pb::Kind::PriorityClass, "", "gold")];
    drop_gold.extend((3000..6000).map(|i| upsert(&pending(format!("filler-{i}")))));
    let golden = |name: &str| upsert(&pod(name, Some("n1"), "1", "gold", "2024-01-01T00:00:00Z"));
    let mut objects = classes();
    objects.push(node("n1", "4"));
    let acks = sync(
        &mut c,
        vec![
            batch("", true, objects.iter().map(upsert).collect()),
            batch("", false, define_gold),
            batch("", false, vec![golden("gold-a")]),
            batch("", false, drop_gold),
            batch("", false, vec![golden("gold-b")]),
        ],
    )
    .await;
    assert_eq!(acks.len(), 5, "{acks:?}");
    let revisions: Vec<u64> = acks[..4]
        .iter()
        .map(|a| a.as_ref().expect("applied").revision)
        .collect();
    assert_eq!(
        revisions,
        (revisions[0]..revisions[0] + 4).collect::<Vec<_>>(),
        "answers in order"
    );
    let err = acks[4].as_ref().unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message()
            .contains("changes[0].upsert: field `spec.priorityClassName`"),
        "{}",
        err.message()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_vectors_through_grpc() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let mut failures = Vec::new();
    for case in public_cases() {
        let name = case["name"].as_str().unwrap().to_string();
        let scenario = &case["scenario"];
        let acks = sync(&mut c, vec![batch(&name, true, scenario_changes(scenario))]).await;
        let revision = acks[0]
            .as_ref()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .revision;
        let answer = place(
            &mut c,
            &name,
            &scenario["pod"],
            pb::PlaceOptions {
                min_revision: revision,
                explain: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let e = &case["expected"];
        let mut check = |what: &str, ok: bool| {
            if !ok {
                failures.push(format!("{name}: {what}"));
            }
        };
        let sorted = |v: &Value| {
            let mut s: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            s.sort();
            s
        };
        let mut tie = answer.tie_set.clone();
        tie.sort();
        let feasible: Vec<String> = answer
            .explanations
            .iter()
            .filter(|v| v.feasible)
            .map(|v| v.node.clone())
            .collect();
        check("feasibleNodes", feasible == sorted(&e["feasibleNodes"]));
        check(
            "podPriority",
            i64::from(answer.pod_priority) == e["podPriority"].as_i64().unwrap(),
        );
        match &e.get("preemption") {
            None => {
                check("outcome", answer.outcome == pb::Outcome::Scheduled as i32);
                check("tieSet", tie == sorted(&e["placement"]["tieSet"]));
            }
            Some(p) => {
                check(
                    "fitError",
                    Some(answer.fit_error.as_str()) == e["fitError"].as_str(),
                );
                let selected = sorted(&p["selectedTieSet"]);
                if !p["eligible"].as_bool().unwrap() {
                    check(
                        "outcome not eligible",
                        answer.outcome == pb::Outcome::NotEligible as i32,
                    );
                } else if selected.is_empty() {
                    check(
                        "outcome unschedulable",
                        answer.outcome == pb::Outcome::Unschedulable as i32,
                    );
                } else {
                    check(
                        "outcome preempts",
                        answer.outcome == pb::Outcome::Preempts as i32,
                    );
                    check("selectedTieSet", tie == selected);
                    let expected_victims: Vec<String> = p["nodes"][&answer.node]["victims"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect();
                    let got: Vec<String> = answer
                        .victims
                        .iter()
                        .map(|v| format!("{}/{}", v.namespace, v.name))
                        .collect();
                    check("victims", got == expected_victims);
                    let candidates: Vec<String> =
                        answer.candidates.iter().map(|c| c.node.clone()).collect();
                    let expected_candidates: Vec<String> = p["candidates"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c["node"].as_str().unwrap().to_string())
                        .collect();
                    check("candidates", candidates == expected_candidates);
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    server.stop().await;
}

/// Replays the first `revision` batches of `log` into a fresh snapshot.
fn snapshot_at(log: &[Vec<Value>], revision: usize) -> Snapshot {
    let mut objects: Vec<Value> = Vec::new();
    for b in &log[..revision] {
        for o in b {
            let key = |v: &Value| (v["kind"].clone(), v["metadata"]["name"].clone());
            objects.retain(|x| key(x) != key(o));
            objects.push(o.clone());
        }
    }
    let doc = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    Snapshot::build(kube::decode_cluster(&doc).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_consistent_while_a_writer_streams() {
    let server = TestServer::start().await;
    let mut writer = server.client().await;
    // Revision 1: classes and nodes; later batches add pods that fill the nodes.
    let mut log: Vec<Vec<Value>> = vec![{
        let mut v = classes();
        for i in 0..6 {
            v.push(node(&format!("n{i}"), "4"));
        }
        v
    }];
    for b in 0..40 {
        let i = b % 6;
        log.push(vec![pod(
            &format!("p{b}"),
            Some(&format!("n{i}")),
            "500m",
            if b % 3 == 0 { "mid" } else { "low" },
            &format!("2024-01-01T00:{:02}:00Z", b),
        )]);
    }
    let probe = pod("probe", None, "3500m", "high", "2024-02-01T00:00:00Z");
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let server_addr = server.addr;
            let probe = probe.clone();
            tokio::spawn(async move {
                let mut c = PreemptionOracleClient::connect(format!("http://{server_addr}"))
                    .await
                    .unwrap();
                let mut answers = Vec::new();
                for _ in 0..60 {
                    if let Ok(a) = place(&mut c, "", &probe, pb::PlaceOptions::default()).await {
                        answers.push(a);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                answers
            })
        })
        .collect();
    for b in &log {
        let acks = sync(
            &mut writer,
            vec![batch("", false, b.iter().map(upsert).collect())],
        )
        .await;
        acks[0].as_ref().unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let pod = kube::decode_pod(
        &probe,
        &kube::decode_cluster(&json!({"priorityClasses": classes()}))
            .unwrap()
            .priority_classes,
    )
    .unwrap();
    let mut checked = 0;
    for r in readers {
        for answer in r.await.unwrap() {
            let expected = decide(&snapshot_at(&log, answer.revision as usize), &pod);
            let expected_answer =
                preemption_oracle::service::response::place(&expected, answer.revision, false);
            assert_eq!(
                answer, expected_answer,
                "answer at revision {} differs from the engine's",
                answer.revision
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
    server.stop().await;
}

/// A cluster above the size decided on the receiving thread (1,024 nodes) is decided
/// on the pool with one of the cluster's memos: the same pod shape asked about again,
/// as the writer fills nodes and relabels one, gets the engine's fresh answer each time
/// (a spread constraint and preferred node affinity make the memo's rows and kept
/// counts both count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_clusters_place_remembers_nothing_stale() {
    let server = TestServer::start().await;
    let mut writer = server.client().await;
    let zoned = |i: usize, pool: &str| {
        let mut n = node(&format!("n{i}"), "4");
        n["metadata"]["labels"]["topology.kubernetes.io/zone"] = json!(format!("z{}", i % 3));
        n["metadata"]["labels"]["pool"] = json!(pool);
        n
    };
    let mut log: Vec<Vec<Value>> = vec![{
        let mut v = classes();
        v.extend((0..1100).map(|i| zoned(i, if i % 10 == 0 { "fast" } else { "slow" })));
        v
    }];
    let mut probe = pod("probe", None, "1", "high", "2024-02-01T00:00:00Z");
    probe["metadata"]["labels"] = json!({"app": "spread"});
    probe["spec"]["topologySpreadConstraints"] = json!([{
        "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": {"app": "spread"}}}]);
    probe["spec"]["affinity"] = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "preference": {"matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["fast"]}]}}]}});
    // Each round places a replica where the last answer said, and relabels a node.
    let decoded = kube::decode_pod(
        &probe,
        &kube::decode_cluster(&json!({"priorityClasses": classes()}))
            .unwrap()
            .priority_classes,
    )
    .unwrap();
    let acks = sync(
        &mut writer,
        vec![batch("", false, log[0].iter().map(upsert).collect())],
    )
    .await;
    acks[0].as_ref().unwrap();
    for round in 0..6 {
        let revision = log.len() as u64;
        let answer = place(
            &mut writer,
            "",
            &probe,
            pb::PlaceOptions {
                min_revision: revision,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(answer.revision, revision);
        let expected = decide(&snapshot_at(&log, revision as usize), &decoded);
        assert_eq!(
            answer,
            preemption_oracle::service::response::place(&expected, revision, false),
            "round {round}: the answer differs from the engine's"
        );
        let chosen = expected.node.clone().expect("the probe fits");
        let mut replica = pod(
            &format!("r{round}"),
            Some(&chosen),
            "1",
            "low",
            "2024-01-01T00:00:00Z",
        );
        replica["metadata"]["labels"] = json!({"app": "spread"});
        let relabelled = zoned(round * 7 + 1, "fast");
        let changes = vec![replica, relabelled];
        let acks = sync(
            &mut writer,
            vec![batch("", false, changes.iter().map(upsert).collect())],
        )
        .await;
        acks[0].as_ref().unwrap();
        log.push(changes);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn place_batch_and_pending_pods_account_for_order() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let mut objects = classes();
    objects.push(node("n1", "4"));
    objects.push(pod("low-a", Some("n1"), "3", "low", "2024-01-01T00:00:00Z"));
    // Pending pods: created in this order, with priorities that reorder them.
    objects.push(pod("q-mid", None, "1", "mid", "2024-03-01T00:00:00Z"));
    objects.push(pod("q-high", None, "2", "high", "2024-03-02T00:00:00Z"));
    objects.push(pod("q-high-2", None, "2", "high", "2024-03-03T00:00:00Z"));
    objects.push(pod("q-huge", None, "64", "high", "2024-03-04T00:00:00Z"));
    sync(
        &mut c,
        vec![batch("", true, objects.iter().map(upsert).collect())],
    )
    .await[0]
        .as_ref()
        .unwrap();

    // PendingPods: queue order is high (by creation), then mid; each sees the ones before.
    let r = c
        .pending_pods(pb::PendingPodsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = r.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["q-high", "q-high-2", "q-huge", "q-mid"]);
    // q-high preempts low-a (3 + 2 > 4); q-high-2 then fits in the freed space;
    // q-huge needs capacity; q-mid finds no room left and may not preempt the highs.
    let classes_seen: Vec<i32> = r.pods.iter().map(|p| p.class).collect();
    assert_eq!(
        classes_seen,
        [
            pb::PendingClass::Preempts as i32,
            pb::PendingClass::Fits as i32,
            pb::PendingClass::NeedsCapacity as i32,
            pb::PendingClass::NeedsCapacity as i32
        ]
    );
    assert_eq!(r.pods[0].victims[0].name, "low-a");
    assert!(
        r.pods[2].reason.contains("Insufficient cpu"),
        "{}",
        r.pods[2].reason
    );

    // PlaceBatch: the second pod sees the first one's space taken.
    let a = pod("a", None, "1", "low", "2024-04-01T00:00:00Z");
    let b = pod("b", None, "1", "low", "2024-04-01T00:00:00Z");
    let resp = c
        .place_batch(pb::PlaceBatchRequest {
            cluster: String::new(),
            pods: vec![pod_input(&a).unwrap(), pod_input(&b).unwrap()],
            all_or_nothing: false,
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.results.len(), 2);
    assert_eq!(resp.results[0].outcome, pb::Outcome::Scheduled as i32);
    assert_eq!(
        resp.results[1].outcome,
        pb::Outcome::Unschedulable as i32,
        "{:?}",
        resp.results[1]
    );
    assert!(!resp.admitted);
    // A gang: all or nothing stops at the first pod that cannot be placed.
    let resp = c
        .place_batch(pb::PlaceBatchRequest {
            cluster: String::new(),
            pods: vec![
                pod_input(&b).unwrap(),
                pod_input(&a).unwrap(),
                pod_input(&a).unwrap(),
            ],
            all_or_nothing: true,
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.results.len(), 2);
    assert!(!resp.admitted);
    // Nothing was committed: a single pod still fits.
    let answer = place(&mut c, "", &a, Default::default()).await.unwrap();
    assert_eq!(answer.outcome, pb::Outcome::Scheduled as i32);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_sync_streams() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut acks = c
        .sync_state(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(batch("", false, vec![upsert(&node("n1", "4"))]))
        .await
        .unwrap();
    assert!(acks.message().await.unwrap().is_some());
    // A feeder keeps its stream open for ever; shutdown must not wait for it.
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("the server drains while a SyncState stream is open");
    match acks.message().await {
        Err(s) => assert_eq!(s.code(), tonic::Code::Unavailable, "{s}"),
        Ok(other) => panic!("the stream should end with UNAVAILABLE, got {other:?}"),
    }
    drop(tx);
}
