//! NodePorts: rejects nodes where a host port the pod wants is already bound.

use super::FilterPlugin;
use crate::engine::cycle_state::CycleState;
use crate::engine::snapshot::NodeInfo;
use crate::engine::status::Status;

pub const NAME: &str = "NodePorts";
pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, state: &CycleState, node: &NodeInfo, _at: usize) -> Option<Status> {
        // With no host ports PreFilter skips the plugin; the loop is then empty.
        state
            .pod
            .pod
            .host_ports
            .iter()
            .any(|p| node.used_ports.conflicts(p))
            .then(|| Status::unschedulable(REASON))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::engine::decision::Outcome;
    use crate::engine::status::Code;
    use crate::engine::test_support::*;

    /// A pod whose app container binds `ports` (objects as in `containerPort` lists).
    fn with_ports(name: &str, ports: Value) -> Value {
        merge(
            pod(name, "100m", ""),
            json!({"spec": {"containers": [{
                "name": "app",
                "image": APP_IMAGE,
                "resources": {"requests": {"cpu": "100m"}},
                "ports": ports,
            }]}}),
        )
    }

    fn host(port: i32, ip: Option<&str>, protocol: Option<&str>) -> Value {
        let mut p = json!({"containerPort": 80, "hostPort": port});
        if let Some(ip) = ip {
            p["hostIP"] = json!(ip);
        }
        if let Some(proto) = protocol {
            p["protocol"] = json!(proto);
        }
        p
    }

    /// Decodes the JSON, then sets each host port's IP on the decoded model: the
    /// wire decoder does not read Kubernetes' `hostIP` spelling (see the ignored test
    /// below), so the engine's conflict rule is exercised on the model directly.
    fn check(existing: Value, incoming: Value) -> Option<Status> {
        let ip_of = |p: &Value| p.get("hostIP").and_then(Value::as_str).map(str::to_string);
        let (existing_ip, incoming_ip) = (ip_of(&existing), ip_of(&incoming));
        let mut objects = crate::kube::decode_cluster(&json!({
            "nodes": [node("n", "4", "8Gi", 110)],
            "pods": [bound(with_ports("existing", json!([existing])), "n")],
        }))
        .unwrap();
        if let Some(ip) = existing_ip {
            objects.pods[0].host_ports[0].ip = ip;
        }
        let s = crate::engine::Snapshot::build(objects).unwrap();
        let mut p = pending(&s, &with_ports("p", json!([incoming])));
        if let Some(ip) = incoming_ip {
            p.host_ports[0].ip = ip;
        }
        let info = crate::engine::PodInfo::new(p, Vec::new());
        let pre = crate::engine::framework::run_pre_filter(
            &s,
            &info,
            crate::engine::Evaluation::Fast,
            None,
        );
        NodePorts.filter(&pre.state, &s.nodes[0], 0)
    }

    #[test]
    fn wildcard_and_specific_ip_conflicts() {
        let conflict = Some(Status::unschedulable(REASON));
        // Existing wildcard (hostIP unset = 0.0.0.0) blocks every IP on that port.
        assert_eq!(
            check(host(8080, None, None), host(8080, Some("10.0.0.1"), None)),
            conflict
        );
        assert_eq!(
            check(host(8080, None, None), host(8080, None, None)),
            conflict
        );
        // Existing specific IP blocks the same IP and the wildcard, not another IP.
        let specific = || host(8080, Some("10.0.0.1"), None);
        assert_eq!(
            check(specific(), host(8080, Some("10.0.0.1"), None)),
            conflict
        );
        assert_eq!(
            check(specific(), host(8080, Some("0.0.0.0"), None)),
            conflict
        );
        assert_eq!(check(specific(), host(8080, None, None)), conflict);
        assert_eq!(check(specific(), host(8080, Some("10.0.0.2"), None)), None);
        assert_eq!(check(host(8080, Some("10.0.0.2"), None), specific()), None);
        // Protocols and ports must both match; TCP is the default protocol.
        assert_eq!(
            check(host(8080, None, None), host(8080, None, Some("UDP"))),
            None
        );
        assert_eq!(check(specific(), host(8080, None, Some("UDP"))), None);
        assert_eq!(
            check(host(8080, None, Some("TCP")), host(8080, None, None)),
            conflict
        );
        assert_eq!(
            check(
                host(8080, None, Some("SCTP")),
                host(8080, None, Some("SCTP"))
            ),
            conflict
        );
        assert_eq!(check(host(8080, None, None), host(8081, None, None)), None);
    }

    /// `v1.ContainerPort` spells the field `hostIP`; the wire struct's camelCase rename
    /// reads `hostIp`, so a pod binding one specific IP is decoded as binding all of
    /// them and conflicts with a pod on another IP of the same port.
    #[test]
    fn host_ip_is_decoded_from_kubernetes_json() {
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![bound(
                with_ports("existing", json!([host(8080, Some("10.0.0.1"), None)])),
                "n",
            )],
        );
        assert_eq!(s.nodes[0].pods[0].pod.host_ports[0].ip, "10.0.0.1");
        let p = with_ports("p", json!([host(8080, Some("10.0.0.2"), None)]));
        assert_eq!(run_filter(&s, &p, &NodePorts, "n"), None);
    }

    #[test]
    fn container_ports_without_host_port_are_free() {
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![bound(
                with_ports("existing", json!([{"containerPort": 8080}])),
                "n",
            )],
        );
        let p = with_ports("p", json!([{"containerPort": 8080}]));
        assert_eq!(run_filter(&s, &p, &NodePorts, "n"), None);
    }

    #[test]
    fn decision_reports_the_conflict_as_unschedulable() {
        let s = snapshot(
            vec![node("a", "4", "8Gi", 110), node("b", "4", "8Gi", 110)],
            vec![bound(
                with_ports("web", json!([host(443, None, None)])),
                "a",
            )],
        );
        let d = decide_json(&s, &with_ports("p", json!([host(443, None, None)])));
        assert_rejected(&d, "a", Code::Unschedulable, NAME, &[REASON]);
        assert_feasible(&d, "b");
    }

    #[test]
    fn sidecar_ports_count_and_plain_init_container_ports_do_not() {
        let init = |restart: Option<&str>| {
            let mut c = json!({
                "name": "init",
                "image": "registry.example/init:1",
                "ports": [host(9000, None, None)],
            });
            if let Some(r) = restart {
                c["restartPolicy"] = json!(r);
            }
            c
        };
        let s = snapshot(
            vec![
                node("sidecar", "4", "8Gi", 110),
                node("plain", "4", "8Gi", 110),
            ],
            vec![
                bound(
                    merge(
                        pod("s", "100m", ""),
                        json!({"spec": {"initContainers": [init(Some("Always"))]}}),
                    ),
                    "sidecar",
                ),
                bound(
                    merge(
                        pod("i", "100m", ""),
                        json!({"spec": {"initContainers": [init(None)]}}),
                    ),
                    "plain",
                ),
            ],
        );
        let p = with_ports("p", json!([host(9000, None, None)]));
        assert_eq!(
            run_filter(&s, &p, &NodePorts, "sidecar"),
            Some(Status::unschedulable(REASON))
        );
        assert_eq!(run_filter(&s, &p, &NodePorts, "plain"), None);
        // The incoming pod's own sidecar ports are checked too.
        let s = snapshot(
            vec![node("n", "4", "8Gi", 110)],
            vec![bound(
                with_ports("web", json!([host(9000, None, None)])),
                "n",
            )],
        );
        let p = merge(
            pod("p", "100m", ""),
            json!({"spec": {"initContainers": [init(Some("Always"))]}}),
        );
        assert_eq!(
            run_filter(&s, &p, &NodePorts, "n"),
            Some(Status::unschedulable(REASON))
        );
    }

    #[test]
    fn preemption_evicts_the_lower_priority_port_holder() {
        let s = snapshot(
            vec![node("a", "4", "8Gi", 110)],
            vec![
                prio(
                    bound(with_ports("holder", json!([host(8080, None, None)])), "a"),
                    10,
                ),
                prio(bound(pod("bystander", "1", ""), "a"), 10),
            ],
        );
        let d = decide_json(
            &s,
            &prio(with_ports("p", json!([host(8080, None, None)])), 100),
        );
        assert_eq!(d.outcome, Outcome::Preempts);
        assert_eq!(victims(&d, "a"), Some(strings(&["default/holder"])));
    }
}
