//! Native protobuf objects → the wire shapes their Kubernetes JSON decodes to
//! (`crate::kube::wire`), their strings borrowed from the message, so that both input
//! forms go through the same validation and reach the same model without building and
//! decoding JSON. An empty string is an absent field, as JSON omits it.

use serde::de::IgnoredAny;

use super::pb;
use crate::kube::wire;

/// A native Node in its wire shape.
pub fn node(n: &pb::Node) -> wire::Node<'_> {
    wire::Node {
        metadata: wire::ObjectMeta {
            name: Some(text(&n.name)),
            labels: Some(text_map(&n.labels)),
            ..wire::ObjectMeta::default()
        },
        spec: wire::NodeSpec {
            taints: n
                .taints
                .iter()
                .map(|t| wire::Taint {
                    key: text(&t.key),
                    value: text(&t.value),
                    effect: text(&t.effect),
                })
                .collect(),
            unschedulable: n.unschedulable,
        },
        status: wire::NodeStatus {
            allocatable: Some(quantities(&n.allocatable)),
            capacity: None,
            images: n
                .images
                .iter()
                .map(|i| wire::ContainerImage {
                    names: texts(&i.names),
                    size_bytes: i.size_bytes,
                })
                .collect(),
        },
        ..wire::Node::default()
    }
}

/// A native Pod in its wire shape.
pub fn pod(p: &pb::Pod) -> wire::Pod<'_> {
    let mut conditions = Vec::new();
    if p.preempted_by_scheduler {
        conditions.push(wire::PodCondition {
            type_: text("DisruptionTarget"),
            status: text("True"),
            reason: Some(text("PreemptionByScheduler")),
        });
    }
    wire::Pod {
        metadata: wire::ObjectMeta {
            name: Some(text(&p.name)),
            namespace: opt_text(&p.namespace),
            uid: opt_text(&p.uid),
            labels: Some(text_map(&p.labels)),
            creation_timestamp: opt_text(&p.creation_timestamp),
            deletion_timestamp: opt_text(&p.deletion_timestamp),
        },
        spec: wire::PodSpec {
            node_name: opt_text(&p.node_name),
            priority: p.priority,
            priority_class_name: opt_text(&p.priority_class_name),
            preemption_policy: opt_text(&p.preemption_policy),
            containers: p.containers.iter().map(container).collect(),
            init_containers: p.init_containers.iter().map(container).collect(),
            overhead: (!p.overhead.is_empty()).then(|| quantities(&p.overhead)),
            resources: None,
            node_selector: (!p.node_selector.is_empty()).then(|| text_map(&p.node_selector)),
            affinity: p.affinity.as_ref().map(|a| wire::Affinity {
                node_affinity: a.node_affinity.as_ref().map(node_affinity),
                pod_affinity: a.pod_affinity.as_ref().map(pod_affinity),
                pod_anti_affinity: a.pod_anti_affinity.as_ref().map(pod_affinity),
            }),
            tolerations: p
                .tolerations
                .iter()
                .map(|t| wire::Toleration {
                    key: text(&t.key),
                    operator: opt_text(&t.operator),
                    value: text(&t.value),
                    effect: opt_text(&t.effect),
                })
                .collect(),
            topology_spread_constraints: p
                .topology_spread_constraints
                .iter()
                .map(|c| wire::TopologySpreadConstraint {
                    max_skew: c.max_skew,
                    topology_key: text(&c.topology_key),
                    when_unsatisfiable: text(&c.when_unsatisfiable),
                    label_selector: c.label_selector.as_ref().map(label_selector),
                    min_domains: c.min_domains,
                    node_affinity_policy: opt_text(&c.node_affinity_policy),
                    node_taints_policy: opt_text(&c.node_taints_policy),
                    match_label_keys: texts(&c.match_label_keys),
                })
                .collect(),
        },
        status: wire::PodStatus {
            phase: opt_text(&p.phase),
            nominated_node_name: opt_text(&p.nominated_node_name),
            start_time: opt_text(&p.start_time),
            conditions,
        },
        ..wire::Pod::default()
    }
}

fn text(s: &str) -> wire::Text<'_> {
    wire::Text::from(s)
}

fn opt_text(s: &str) -> Option<wire::Text<'_>> {
    (!s.is_empty()).then(|| text(s))
}

fn texts(list: &[String]) -> Vec<wire::Text<'_>> {
    list.iter().map(|s| text(s)).collect()
}

fn text_map<'a>(
    map: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> wire::Map<wire::Text<'a>, wire::Text<'a>> {
    map.into_iter().map(|(k, v)| (text(k), text(v))).collect()
}

fn quantities<'a>(
    map: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> wire::WireResourceList<'a> {
    map.into_iter()
        .map(|(k, v)| (text(k), wire::QuantityText(text(v))))
        .collect()
}

fn container(c: &pb::Container) -> wire::Container<'_> {
    wire::Container {
        name: text(&c.name),
        image: text(&c.image),
        resources: wire::ResourceRequirements {
            requests: Some(quantities(&c.requests)),
            limits: Some(quantities(&c.limits)),
        },
        ports: c
            .ports
            .iter()
            .map(|p| wire::ContainerPort {
                container_port: p.container_port,
                host_port: p.host_port,
                host_ip: opt_text(&p.host_ip),
                protocol: opt_text(&p.protocol),
            })
            .collect(),
        restart_policy: opt_text(&c.restart_policy),
    }
}

fn requirement(r: &pb::SelectorRequirement) -> wire::SelectorRequirement<'_> {
    wire::SelectorRequirement {
        key: text(&r.key),
        operator: text(&r.operator),
        values: texts(&r.values),
    }
}

fn label_selector(s: &pb::LabelSelector) -> wire::LabelSelector<'_> {
    wire::LabelSelector {
        match_labels: text_map(&s.match_labels),
        match_expressions: s.match_expressions.iter().map(requirement).collect(),
    }
}

fn node_selector_term(t: &pb::NodeSelectorTerm) -> wire::NodeSelectorTerm<'_> {
    wire::NodeSelectorTerm {
        match_expressions: t.match_expressions.iter().map(requirement).collect(),
        match_fields: t.match_fields.iter().map(requirement).collect(),
    }
}

fn node_affinity(a: &pb::NodeAffinity) -> wire::NodeAffinity<'_> {
    wire::NodeAffinity {
        required_during_scheduling_ignored_during_execution: a.required.as_ref().map(|r| {
            wire::NodeSelector {
                node_selector_terms: r
                    .node_selector_terms
                    .iter()
                    .map(node_selector_term)
                    .collect(),
            }
        }),
        preferred_during_scheduling_ignored_during_execution: (!a.preferred.is_empty()).then(
            || {
                a.preferred
                    .iter()
                    .map(|t| wire::PreferredSchedulingTerm {
                        weight: t.weight,
                        preference: t
                            .preference
                            .as_ref()
                            .map(node_selector_term)
                            .unwrap_or_default(),
                    })
                    .collect()
            },
        ),
    }
}

fn pod_affinity_term(t: &pb::PodAffinityTerm) -> wire::PodAffinityTerm<'_> {
    wire::PodAffinityTerm {
        label_selector: t.label_selector.as_ref().map(label_selector),
        namespaces: texts(&t.namespaces),
        namespace_selector: t.namespace_selector.as_ref().map(label_selector),
        topology_key: text(&t.topology_key),
        match_label_keys: texts(&t.match_label_keys),
        mismatch_label_keys: texts(&t.mismatch_label_keys),
    }
}

/// A weighted term without its `pod_affinity_term` is an empty one, refused for its
/// missing topology key like any other.
fn pod_affinity(a: &pb::PodAffinity) -> wire::PodAffinity<'_> {
    wire::PodAffinity {
        required_during_scheduling_ignored_during_execution: a
            .required
            .iter()
            .map(pod_affinity_term)
            .collect(),
        preferred_during_scheduling_ignored_during_execution: a
            .preferred
            .iter()
            .map(|w| wire::WeightedPodAffinityTerm {
                weight: w.weight,
                pod_affinity_term: w
                    .pod_affinity_term
                    .as_ref()
                    .map(pod_affinity_term)
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

/// A native PodDisruptionBudget in its wire shape.
pub fn pdb(b: &pb::PodDisruptionBudget) -> wire::PodDisruptionBudget<'_> {
    wire::PodDisruptionBudget {
        metadata: wire::ObjectMeta {
            name: Some(text(&b.name)),
            namespace: opt_text(&b.namespace),
            ..wire::ObjectMeta::default()
        },
        spec: wire::PdbSpec {
            selector: b.selector.as_ref().map(label_selector),
        },
        status: wire::PdbStatus {
            disruptions_allowed: b.disruptions_allowed,
            disrupted_pods: b
                .disrupted_pods
                .iter()
                .map(|p| (text(p), IgnoredAny))
                .collect(),
        },
        ..wire::PodDisruptionBudget::default()
    }
}

/// A native PriorityClass in its wire shape.
pub fn priority_class(c: &pb::PriorityClass) -> wire::PriorityClass<'_> {
    wire::PriorityClass {
        metadata: wire::ObjectMeta {
            name: Some(text(&c.name)),
            ..wire::ObjectMeta::default()
        },
        value: c.value,
        global_default: c.global_default,
        preemption_policy: opt_text(&c.preemption_policy),
        ..wire::PriorityClass::default()
    }
}

/// A native Namespace in its wire shape.
pub fn namespace(n: &pb::Namespace) -> wire::Namespace<'_> {
    wire::Namespace {
        metadata: wire::ObjectMeta {
            name: Some(text(&n.name)),
            labels: Some(text_map(&n.labels)),
            ..wire::ObjectMeta::default()
        },
        ..wire::Namespace::default()
    }
}
