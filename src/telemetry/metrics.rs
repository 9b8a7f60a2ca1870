//! Prometheus metrics: their names, the functions that record them, and the exporter
//! that serves them on `serve --metrics-listen ADDR` (`GET /metrics`).
//!
//! Everything records through the `metrics` facade, so with no exporter installed
//! (the CLI, tests, benchmarks) recording costs next to nothing. Names and labels:
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `oracle_rpc_requests_total` | counter | `method`, `code` |
//! | `oracle_rpc_duration_seconds` | histogram | `method`, `code` |
//! | `oracle_ingest_batches_total` | counter | `cluster`, `result` (`applied` / `rejected`) |
//! | `oracle_ingest_objects_total` | counter | `cluster` |
//! | `oracle_objects` | gauge | `cluster`, `kind` |
//! | `oracle_snapshot_revision` | gauge | `cluster` |
//! | `oracle_snapshot_age_seconds` | gauge | `cluster` |
//! | `oracle_watch_relists_total` | counter | `cluster`, `kind` |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

use crate::store::Store;

const RPC_REQUESTS: &str = "oracle_rpc_requests_total";
const RPC_DURATION: &str = "oracle_rpc_duration_seconds";
const INGEST_BATCHES: &str = "oracle_ingest_batches_total";
const INGEST_OBJECTS: &str = "oracle_ingest_objects_total";
const OBJECTS: &str = "oracle_objects";
const SNAPSHOT_REVISION: &str = "oracle_snapshot_revision";
const SNAPSHOT_AGE: &str = "oracle_snapshot_age_seconds";
const WATCH_RELISTS: &str = "oracle_watch_relists_total";

/// Latency buckets, in seconds: answers take tens of microseconds to seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// How often the state gauges (objects held, revision, age) are refreshed.
pub const STATE_REFRESH: Duration = Duration::from_secs(1);

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(RPC_DURATION.to_string()), DURATION_BUCKETS)
        .expect("the bucket list is not empty")
}

/// Installs the global recorder and serves `GET /metrics` on `addr`. Call inside the
/// Tokio runtime (the listener runs on it).
pub fn install(addr: SocketAddr) -> Result<(), BuildError> {
    builder().with_http_listener(addr).install()?;
    describe();
    Ok(())
}

/// HELP text for every metric.
fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        RPC_REQUESTS,
        "gRPC calls finished, by method and gRPC status code"
    );
    describe_histogram!(
        RPC_DURATION,
        Unit::Seconds,
        "gRPC call latency until the status is sent, by method and gRPC status code"
    );
    describe_counter!(
        INGEST_BATCHES,
        "State batches received, by cluster and result (applied or rejected)"
    );
    describe_counter!(INGEST_OBJECTS, "Object changes applied, by cluster");
    describe_gauge!(OBJECTS, "Objects held, by cluster and kind");
    describe_gauge!(SNAPSHOT_REVISION, "Revision of the published snapshot");
    describe_gauge!(
        SNAPSHOT_AGE,
        Unit::Seconds,
        "Time since the published snapshot was published"
    );
    describe_counter!(
        WATCH_RELISTS,
        "Full re-lists by the cluster watcher, by cluster and kind"
    );
}

/// Records one finished gRPC call. `code` is the gRPC status code's name (`OK`,
/// `INVALID_ARGUMENT`, …).
pub fn record_rpc(method: &'static str, code: &'static str, elapsed: Duration) {
    let labels = [("method", method), ("code", code)];
    ::metrics::counter!(RPC_REQUESTS, &labels).increment(1);
    ::metrics::histogram!(RPC_DURATION, &labels).record(elapsed.as_secs_f64());
}

/// Records a state batch applied to `cluster` with `objects` changes.
pub fn record_batch_applied(cluster: &str, objects: usize) {
    let cluster = cluster.to_string();
    ::metrics::counter!(INGEST_BATCHES, "cluster" => cluster.clone(), "result" => "applied")
        .increment(1);
    ::metrics::counter!(INGEST_OBJECTS, "cluster" => cluster).increment(objects as u64);
}

/// Records a state batch for `cluster` rejected whole.
pub fn record_batch_rejected(cluster: &str) {
    ::metrics::counter!(INGEST_BATCHES, "cluster" => cluster.to_string(), "result" => "rejected")
        .increment(1);
}

/// Records a full re-list of `kind` objects (`Pod`, `Node`, …) by the watcher of
/// `cluster`.
pub fn record_relist(cluster: &str, kind: &str) {
    ::metrics::counter!(WATCH_RELISTS, "cluster" => cluster.to_string(), "kind" => kind.to_string())
        .increment(1);
}

/// Sets the state gauges of every cluster: objects held by kind, the published
/// revision and its age.
pub fn record_state(store: &Store) {
    for name in store.cluster_names() {
        let Some(cluster) = store.cluster(&name) else {
            continue;
        };
        let counts = cluster.counts();
        for (kind, n) in [
            ("Node", counts.nodes),
            ("Pod", counts.pods),
            ("PodDisruptionBudget", counts.pdbs),
            ("PriorityClass", counts.priority_classes),
            ("Namespace", counts.namespaces),
        ] {
            ::metrics::gauge!(OBJECTS, "cluster" => name.clone(), "kind" => kind).set(n as f64);
        }
        let published = cluster.published();
        ::metrics::gauge!(SNAPSHOT_REVISION, "cluster" => name.clone())
            .set(published.revision as f64);
        if let Some(at) = published.published_at {
            ::metrics::gauge!(SNAPSHOT_AGE, "cluster" => name.clone())
                .set(at.elapsed().as_secs_f64());
        }
    }
}

/// Refreshes the state gauges every [`STATE_REFRESH`], forever.
pub async fn refresh_state(store: Arc<Store>) {
    let mut tick = tokio::time::interval(STATE_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        record_state(&store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ClusterObjects;
    use crate::store::Batch;

    fn rendered(f: impl FnOnce()) -> String {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        ::metrics::with_local_recorder(&recorder, f);
        handle.render()
    }

    #[test]
    fn relists_show_up_by_cluster_and_kind() {
        let out = rendered(|| {
            record_relist("prod", "Pod");
            record_relist("prod", "Pod");
            record_relist("prod", "Node");
        });
        assert!(
            out.contains(r#"oracle_watch_relists_total{cluster="prod",kind="Pod"} 2"#),
            "{out}"
        );
        assert!(
            out.contains(r#"oracle_watch_relists_total{cluster="prod",kind="Node"} 1"#),
            "{out}"
        );
    }

    #[test]
    fn rpc_latency_is_a_histogram_with_buckets() {
        let out = rendered(|| record_rpc("Place", "OK", Duration::from_millis(3)));
        assert!(
            out.contains(r#"oracle_rpc_requests_total{method="Place",code="OK"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(
                r#"oracle_rpc_duration_seconds_bucket{method="Place",code="OK",le="0.005"} 1"#
            ),
            "{out}"
        );
        assert!(
            out.contains(
                r#"oracle_rpc_duration_seconds_bucket{method="Place",code="OK",le="0.0025"} 0"#
            ),
            "{out}"
        );
    }

    #[test]
    fn ingest_counts_batches_objects_and_rejects() {
        let out = rendered(|| {
            record_batch_applied("default", 7);
            record_batch_applied("default", 3);
            record_batch_rejected("default");
        });
        for line in [
            r#"oracle_ingest_batches_total{cluster="default",result="applied"} 2"#,
            r#"oracle_ingest_batches_total{cluster="default",result="rejected"} 1"#,
            r#"oracle_ingest_objects_total{cluster="default"} 10"#,
        ] {
            assert!(out.contains(line), "{line} missing from\n{out}");
        }
    }

    #[test]
    fn state_gauges_follow_the_store() {
        let store = Store::new();
        let doc = crate::generate::generate_scenario(&crate::generate::GeneratorConfig {
            nodes: 4,
            pods_per_node: 2,
            seed: 1,
            pending_pods: 0,
        });
        let objects: ClusterObjects = crate::kube::decode_cluster(&doc).unwrap();
        let (nodes, pods) = (objects.nodes.len(), objects.pods.len());
        store
            .cluster_or_create("")
            .apply(Batch::replace_with(objects));
        store.cluster_or_create("idle");
        let out = rendered(|| record_state(&store));
        for line in [
            format!(r#"oracle_objects{{cluster="default",kind="Node"}} {nodes}"#),
            format!(r#"oracle_objects{{cluster="default",kind="Pod"}} {pods}"#),
            r#"oracle_snapshot_revision{cluster="default"} 1"#.to_string(),
            r#"oracle_snapshot_revision{cluster="idle"} 0"#.to_string(),
            r#"oracle_objects{cluster="idle",kind="Node"} 0"#.to_string(),
        ] {
            assert!(out.contains(&line), "{line} missing from\n{out}");
        }
        assert!(
            out.contains(r#"oracle_snapshot_age_seconds{cluster="default"}"#),
            "{out}"
        );
        assert!(
            !out.contains(r#"oracle_snapshot_age_seconds{cluster="idle"}"#),
            "a cluster never published has no age\n{out}"
        );
    }
}
