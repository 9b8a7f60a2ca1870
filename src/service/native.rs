//! Native protobuf objects → Kubernetes JSON, so that both input forms go through the
//! same decoding and validation (`crate::kube`) and reach the same model.

use serde_json::{Map, Value, json};

use super::pb;

fn opt_str(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_string())
    }
}

fn requirement(r: &pb::SelectorRequirement) -> Value {
    json!({"key": r.key, "operator": r.operator, "values": r.values})
}

fn label_selector(s: &Option<pb::LabelSelector>) -> Value {
    match s {
        None => Value::Null,
        Some(s) => json!({
            "matchLabels": s.match_labels,
            "matchExpressions": s.match_expressions.iter().map(requirement).collect::<Vec<_>>(),
        }),
    }
}

fn node_selector_term(t: &pb::NodeSelectorTerm) -> Value {
    json!({
        "matchExpressions": t.match_expressions.iter().map(requirement).collect::<Vec<_>>(),
        "matchFields": t.match_fields.iter().map(requirement).collect::<Vec<_>>(),
    })
}

fn pod_affinity_term(t: &pb::PodAffinityTerm) -> Value {
    json!({
        "labelSelector": label_selector(&t.label_selector),
        "namespaces": t.namespaces,
        "namespaceSelector": label_selector(&t.namespace_selector),
        "topologyKey": t.topology_key,
        "matchLabelKeys": t.match_label_keys,
        "mismatchLabelKeys": t.mismatch_label_keys,
    })
}

fn pod_affinity(a: &Option<pb::PodAffinity>) -> Value {
    match a {
        None => Value::Null,
        Some(a) => json!({
            "requiredDuringSchedulingIgnoredDuringExecution": a.required.iter().map(pod_affinity_term).collect::<Vec<_>>(),
            "preferredDuringSchedulingIgnoredDuringExecution": a.preferred.iter().map(|w| json!({
                "weight": w.weight,
                "podAffinityTerm": w.pod_affinity_term.as_ref().map(pod_affinity_term).unwrap_or(Value::Null),
            })).collect::<Vec<_>>(),
        }),
    }
}

fn container(c: &pb::Container) -> Value {
    json!({
        "name": c.name,
        "image": c.image,
        "resources": {"requests": c.requests, "limits": c.limits},
        "ports": c.ports.iter().map(|p| json!({
            "containerPort": p.container_port,
            "hostPort": p.host_port,
            "hostIP": opt_str(&p.host_ip),
            "protocol": opt_str(&p.protocol),
        })).collect::<Vec<_>>(),
        "restartPolicy": opt_str(&c.restart_policy),
    })
}

/// A native Node as Kubernetes JSON.
pub fn node(n: &pb::Node) -> Value {
    json!({
        "kind": "Node",
        "metadata": {"name": n.name, "labels": n.labels},
        "spec": {
            "unschedulable": n.unschedulable,
            "taints": n.taints.iter().map(|t| json!({"key": t.key, "value": t.value, "effect": t.effect})).collect::<Vec<_>>(),
        },
        "status": {
            "allocatable": n.allocatable,
            "images": n.images.iter().map(|i| json!({"names": i.names, "sizeBytes": i.size_bytes})).collect::<Vec<_>>(),
        },
    })
}

/// A native Pod as Kubernetes JSON.
pub fn pod(p: &pb::Pod) -> Value {
    let affinity = p.affinity.as_ref().map(|a| {
        json!({
            "nodeAffinity": a.node_affinity.as_ref().map(|na| json!({
                "requiredDuringSchedulingIgnoredDuringExecution": na.required.as_ref().map(|r| json!({
                    "nodeSelectorTerms": r.node_selector_terms.iter().map(node_selector_term).collect::<Vec<_>>(),
                })),
                "preferredDuringSchedulingIgnoredDuringExecution": if na.preferred.is_empty() { Value::Null } else {
                    na.preferred.iter().map(|t| json!({
                        "weight": t.weight,
                        "preference": t.preference.as_ref().map(node_selector_term).unwrap_or(json!({})),
                    })).collect::<Value>()
                },
            })),
            "podAffinity": pod_affinity(&a.pod_affinity),
            "podAntiAffinity": pod_affinity(&a.pod_anti_affinity),
        })
    });
    let mut conditions = Vec::new();
    if p.preempted_by_scheduler {
        conditions.push(json!({"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}));
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(p.name));
    metadata.insert("namespace".into(), opt_str(&p.namespace));
    metadata.insert("uid".into(), opt_str(&p.uid));
    metadata.insert("labels".into(), json!(p.labels));
    metadata.insert("creationTimestamp".into(), opt_str(&p.creation_timestamp));
    metadata.insert("deletionTimestamp".into(), opt_str(&p.deletion_timestamp));
    json!({
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "nodeName": opt_str(&p.node_name),
            "priority": p.priority,
            "priorityClassName": opt_str(&p.priority_class_name),
            "preemptionPolicy": opt_str(&p.preemption_policy),
            "containers": p.containers.iter().map(container).collect::<Vec<_>>(),
            "initContainers": p.init_containers.iter().map(container).collect::<Vec<_>>(),
            "overhead": if p.overhead.is_empty() { Value::Null } else { json!(p.overhead) },
            "nodeSelector": if p.node_selector.is_empty() { Value::Null } else { json!(p.node_selector) },
            "tolerations": p.tolerations.iter().map(|t| json!({
                "key": t.key, "operator": opt_str(&t.operator), "value": t.value, "effect": opt_str(&t.effect),
            })).collect::<Vec<_>>(),
            "affinity": affinity,
            "topologySpreadConstraints": p.topology_spread_constraints.iter().map(|c| json!({
                "maxSkew": c.max_skew,
                "topologyKey": c.topology_key,
                "whenUnsatisfiable": c.when_unsatisfiable,
                "labelSelector": label_selector(&c.label_selector),
                "minDomains": c.min_domains,
                "nodeAffinityPolicy": opt_str(&c.node_affinity_policy),
                "nodeTaintsPolicy": opt_str(&c.node_taints_policy),
                "matchLabelKeys": c.match_label_keys,
            })).collect::<Vec<_>>(),
        },
        "status": {
            "phase": opt_str(&p.phase),
            "nominatedNodeName": opt_str(&p.nominated_node_name),
            "startTime": opt_str(&p.start_time),
            "conditions": conditions,
        },
    })
}

/// A native PodDisruptionBudget as Kubernetes JSON.
pub fn pdb(b: &pb::PodDisruptionBudget) -> Value {
    let disrupted: Map<String, Value> = b
        .disrupted_pods
        .iter()
        .map(|p| (p.clone(), json!("1970-01-01T00:00:00Z")))
        .collect();
    json!({
        "kind": "PodDisruptionBudget",
        "metadata": {"name": b.name, "namespace": opt_str(&b.namespace)},
        "spec": {"selector": label_selector(&b.selector)},
        "status": {"disruptionsAllowed": b.disruptions_allowed, "disruptedPods": disrupted},
    })
}

/// A native PriorityClass as Kubernetes JSON.
pub fn priority_class(c: &pb::PriorityClass) -> Value {
    json!({
        "kind": "PriorityClass",
        "metadata": {"name": c.name},
        "value": c.value,
        "globalDefault": c.global_default,
        "preemptionPolicy": opt_str(&c.preemption_policy),
    })
}

/// A native Namespace as Kubernetes JSON.
pub fn namespace(n: &pb::Namespace) -> Value {
    json!({"kind": "Namespace", "metadata": {"name": n.name, "labels": n.labels}})
}
