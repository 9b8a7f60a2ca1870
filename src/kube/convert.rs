//! Kubernetes objects → model, with the API server's defaulting and admission.
//!
//! Every error names the field path inside the object (`spec.containers[0].resources
//! .requests.cpu`); callers prefix the object's own position.

use std::collections::BTreeSet;

use super::DecodeError;
use super::time::parse_rfc3339_nanos;
use super::wire::{self, Text};
use crate::model::affinity::{
    NodeAffinity, NodeSelectorTerm, PodAffinityTerm, PreferredNodeTerm, WeightedPodAffinityTerm,
};
use crate::model::quantity::Quantity;
use crate::model::resources::{
    ContainerResources, PodResourceSpec, ResourceList, ResourceName, Resources, allowed_pods,
};
use crate::model::selector::{Labels, Operator, Requirement, Selector};
use crate::model::taints::{Taint, TaintEffect, Toleration, TolerationOperator};
use crate::model::{
    HostPort, InclusionPolicy, Namespace, Node, NodeImage, Pod, PodAffinity, PodDisruptionBudget,
    PreemptionPolicy, PriorityClass, TopologySpreadConstraint, UnsatisfiableAction,
};

/// The built-in classes every API server knows.
pub const SYSTEM_PRIORITY_CLASSES: [(&str, i32); 2] = [
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

type Result<T> = std::result::Result<T, DecodeError>;

fn err(path: impl Into<String>, message: impl Into<String>) -> DecodeError {
    DecodeError {
        path: path.into(),
        message: message.into(),
    }
}

// Helpers convert one part of an object and name refused fields relative to that part;
// callers add where the part sits (`DecodeError::within`), so that a path is formatted
// only for a refused object.

/// Converts every item of the list `field`; a refusal names the item (`field[i]`).
fn each<W, T>(field: &str, items: &[W], convert: impl Fn(&W) -> Result<T>) -> Result<Vec<T>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| convert(item).map_err(|e| e.within(&format!("{field}[{i}]"))))
        .collect()
}

/// Owned copies of strings of the object.
fn owned(texts: &[Text]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

/// An optional string that counts as absent when empty.
fn non_empty<'t>(text: &'t Option<Text>) -> Option<&'t str> {
    text.as_deref().filter(|t| !t.is_empty())
}

fn required_name(meta: &wire::ObjectMeta) -> Result<String> {
    match meta.name.as_deref() {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => Err(err("metadata.name", "is required")),
    }
}

/// Labels (or a node selector) from a wire map, whose members are sorted by key, each
/// key once.
fn labels_from(map: &wire::Map<Text, Text>) -> Labels {
    Labels::from_sorted(map.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn labels_of(meta: &wire::ObjectMeta) -> Labels {
    meta.labels.as_ref().map(labels_from).unwrap_or_default()
}

fn namespace_of(meta: &wire::ObjectMeta) -> String {
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => ns.to_string(),
        _ => "default".to_string(),
    }
}

/// A resource list (limits, overhead, capacity, allocatable). Like the API server's
/// validation (`ValidateResourceQuantityValue`), a negative quantity is refused: the
/// scheduler's arithmetic assumes none.
fn resource_list(list: &Option<wire::WireResourceList>, path: &str) -> Result<ResourceList> {
    let mut entries = Vec::with_capacity(list.as_ref().map_or(0, wire::Map::len));
    push_quantities(
        &mut entries,
        list,
        |name| format!("{path}.{name}"),
        |_| true,
    )?;
    Ok(entries.into_iter().collect())
}

/// Validates `list` (see [`resource_list`]; `field` names an entry's path in errors)
/// and appends the entries that `wanted` names.
fn push_quantities(
    entries: &mut Vec<(ResourceName, Quantity)>,
    list: &Option<wire::WireResourceList>,
    field: impl Fn(&str) -> String,
    wanted: impl Fn(&str) -> bool,
) -> Result<()> {
    for (name, text) in list.iter().flatten() {
        let field = || field(name);
        let q = Quantity::parse(&text.0).map_err(|e| err(field(), e.to_string()))?;
        if q.is_negative() {
            return Err(err(field(), "must be greater than or equal to 0"));
        }
        if wanted(name) {
            entries.push((ResourceName::new(name), q));
        }
    }
    Ok(())
}

/// The requests of `r` (a container's `resources`, or the pod's `spec.resources`, at
/// `path`) after API-server defaulting: a resource with a limit and no request
/// requests its limit. Both lists are validated.
fn defaulted_requests(r: &wire::ResourceRequirements, path: &str) -> Result<ResourceList> {
    let requested = |name: &str| {
        r.requests
            .as_ref()
            .is_some_and(|list| list.iter().any(|(n, _)| n.as_str() == name))
    };
    let defaulted = |name: &str| !requested(name);
    // Sized exactly, so that the list keeps this allocation.
    let requests = r.requests.as_ref().map_or(0, wire::Map::len);
    let limits = r.limits.iter().flatten().filter(|(n, _)| defaulted(n));
    let mut entries = Vec::with_capacity(requests + limits.count());
    let requests_field = |name: &str| format!("{path}.requests.{name}");
    push_quantities(&mut entries, &r.requests, requests_field, |_| true)?;
    let limits_field = |name: &str| format!("{path}.limits.{name}");
    push_quantities(&mut entries, &r.limits, limits_field, defaulted)?;
    Ok(entries.into_iter().collect())
}

/// Converts a Node.
pub fn node(n: &wire::Node) -> Result<Node> {
    let name = required_name(&n.metadata)?;
    let allocatable_list = match &n.status.allocatable {
        Some(_) => resource_list(&n.status.allocatable, "status.allocatable")?,
        // A node that reports no allocatable is treated as having its capacity.
        None => resource_list(&n.status.capacity, "status.capacity")?,
    };
    let taints = n
        .spec
        .taints
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let effect = TaintEffect::parse(&t.effect).ok_or_else(|| {
                err(
                    format!("spec.taints[{i}].effect"),
                    format!("unknown taint effect {:?}", t.effect),
                )
            })?;
            Ok(Taint {
                key: t.key.to_string(),
                value: t.value.to_string(),
                effect,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Node {
        labels: labels_of(&n.metadata),
        taints,
        unschedulable: n.spec.unschedulable,
        allocatable: Resources::from_list(&allocatable_list),
        allowed_pods: allowed_pods(&allocatable_list),
        images: n
            .status
            .images
            .iter()
            .map(|i| NodeImage {
                names: owned(&i.names),
                size_bytes: i.size_bytes,
            })
            .collect(),
        name,
    })
}

/// Converts a PriorityClass.
pub fn priority_class(p: &wire::PriorityClass) -> Result<PriorityClass> {
    Ok(PriorityClass {
        name: required_name(&p.metadata)?,
        value: p.value,
        global_default: p.global_default,
        preemption_policy: p
            .preemption_policy
            .as_deref()
            .map(|s| preemption_policy(s, "preemptionPolicy"))
            .transpose()?,
    })
}

fn preemption_policy(s: &str, path: &str) -> Result<PreemptionPolicy> {
    match s {
        "PreemptLowerPriority" => Ok(PreemptionPolicy::PreemptLowerPriority),
        "Never" => Ok(PreemptionPolicy::Never),
        other => Err(err(path, format!("unknown preemption policy {other:?}"))),
    }
}

/// Converts a Namespace.
pub fn namespace(n: &wire::Namespace) -> Result<Namespace> {
    Ok(Namespace {
        name: required_name(&n.metadata)?,
        labels: labels_of(&n.metadata),
    })
}

/// Converts a PodDisruptionBudget.
pub fn pdb(p: &wire::PodDisruptionBudget) -> Result<PodDisruptionBudget> {
    Ok(PodDisruptionBudget {
        name: required_name(&p.metadata)?,
        namespace: namespace_of(&p.metadata),
        selector: label_selector(&p.spec.selector).map_err(|e| e.within("spec.selector"))?,
        disruptions_allowed: p.status.disruptions_allowed,
        disrupted_pods: p
            .status
            .disrupted_pods
            .keys()
            .map(|t| t.to_string())
            .collect(),
    })
}

fn operator(op: &str, node_selector: bool) -> Result<Operator> {
    Ok(match op {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" if node_selector => Operator::Gt,
        "Lt" if node_selector => Operator::Lt,
        other => return Err(err("", format!("unknown operator {other:?}"))),
    })
}

/// Validates a requirement's values the way `labels.NewRequirement` does.
fn requirement(r: &wire::SelectorRequirement, node_selector: bool) -> Result<Requirement> {
    let op = operator(&r.operator, node_selector).map_err(|e| e.within("operator"))?;
    let bad = match op {
        Operator::In | Operator::NotIn if r.values.is_empty() => {
            Some("must be non-empty for In and NotIn")
        }
        Operator::Exists | Operator::DoesNotExist if !r.values.is_empty() => {
            Some("must be empty for Exists and DoesNotExist")
        }
        Operator::Gt | Operator::Lt
            if r.values.len() != 1 || r.values[0].parse::<i64>().is_err() =>
        {
            Some("must be a single integer for Gt and Lt")
        }
        _ => None,
    };
    if let Some(why) = bad {
        return Err(err("values", why));
    }
    Ok(Requirement {
        key: r.key.to_string(),
        operator: op,
        values: owned(&r.values),
    })
}

/// `metav1.LabelSelectorAsSelector`: absent selects nothing, empty selects everything.
fn label_selector(s: &Option<wire::LabelSelector>) -> Result<Selector> {
    let Some(s) = s else {
        return Ok(Selector::Nothing);
    };
    let mut reqs: Vec<Requirement> = s
        .match_labels
        .iter()
        .map(|(k, v)| Requirement {
            key: k.to_string(),
            operator: Operator::In,
            values: vec![v.to_string()],
        })
        .collect();
    reqs.extend(each("matchExpressions", &s.match_expressions, |e| {
        requirement(e, false)
    })?);
    Ok(Selector::All(reqs))
}

/// A node selector term; malformed terms match nothing (upstream keeps the error
/// lazily), so they are kept but marked invalid.
fn node_selector_term(t: &wire::NodeSelectorTerm) -> NodeSelectorTerm {
    let mut term = NodeSelectorTerm {
        match_expressions: Vec::new(),
        match_fields: Vec::new(),
        invalid: false,
    };
    for e in &t.match_expressions {
        match requirement(e, true) {
            Ok(r) => term.match_expressions.push(r),
            Err(_) => term.invalid = true,
        }
    }
    for f in &t.match_fields {
        let ok_op = matches!(f.operator.as_str(), "In" | "NotIn");
        if !ok_op || f.values.len() != 1 {
            term.invalid = true;
            continue;
        }
        match requirement(f, false) {
            Ok(r) => term.match_fields.push(r),
            Err(_) => term.invalid = true,
        }
    }
    term
}

fn node_affinity(a: Option<&wire::NodeAffinity>) -> NodeAffinity {
    let Some(a) = a else {
        return NodeAffinity::default();
    };
    NodeAffinity {
        // Empty terms are kept: they match no node, and (as upstream) they switch off
        // NodeAffinity's PreFilter narrowing to node names.
        required: a
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .map(|ns| {
                ns.node_selector_terms
                    .iter()
                    .map(node_selector_term)
                    .collect()
            }),
        preferred: a
            .preferred_during_scheduling_ignored_during_execution
            .as_ref()
            .map(|terms| {
                terms
                    .iter()
                    .map(|p| PreferredNodeTerm {
                        weight: p.weight,
                        term: node_selector_term(&p.preference),
                    })
                    .filter(|p| p.weight != 0 && !p.term.is_empty())
                    .collect()
            }),
    }
}

fn pod_affinity_term(
    t: &wire::PodAffinityTerm,
    owner_namespace: &str,
    owner_labels: &Labels,
) -> Result<PodAffinityTerm> {
    let mut selector = label_selector(&t.label_selector).map_err(|e| e.within("labelSelector"))?;
    // matchLabelKeys / mismatchLabelKeys are merged into the selector at admission.
    let mut extra = Vec::new();
    for (keys, op) in [
        (&t.match_label_keys, Operator::In),
        (&t.mismatch_label_keys, Operator::NotIn),
    ] {
        for key in keys {
            if let Some(v) = owner_labels.get(key) {
                extra.push(Requirement {
                    key: key.to_string(),
                    operator: op,
                    values: vec![v.to_string()],
                });
            }
        }
    }
    if !extra.is_empty() {
        if selector == Selector::Nothing {
            selector = Selector::everything();
        }
        selector = selector.with_requirements(extra);
    }
    let namespaces: BTreeSet<String> = if t.namespaces.is_empty() && t.namespace_selector.is_none()
    {
        BTreeSet::from([owner_namespace.to_string()])
    } else {
        t.namespaces.iter().map(|t| t.to_string()).collect()
    };
    Ok(PodAffinityTerm {
        selector,
        namespaces,
        namespace_selector: label_selector(&t.namespace_selector)
            .map_err(|e| e.within("namespaceSelector"))?,
        topology_key: t.topology_key.to_string(),
    })
}

fn pod_affinity(
    affinity: &Option<wire::Affinity>,
    ns: &str,
    labels: &Labels,
) -> Result<PodAffinity> {
    let mut out = PodAffinity::default();
    let Some(a) = affinity else {
        return Ok(out);
    };
    out.declared = a.pod_affinity.is_some() || a.pod_anti_affinity.is_some();
    for (source, field, required, preferred) in [
        (
            &a.pod_affinity,
            "podAffinity",
            &mut out.required_affinity,
            &mut out.preferred_affinity,
        ),
        (
            &a.pod_anti_affinity,
            "podAntiAffinity",
            &mut out.required_anti_affinity,
            &mut out.preferred_anti_affinity,
        ),
    ] {
        let Some(source) = source else { continue };
        let within = |e: DecodeError| e.within(&format!("spec.affinity.{field}"));
        let terms = &source.required_during_scheduling_ignored_during_execution;
        required.extend(
            each(
                "requiredDuringSchedulingIgnoredDuringExecution",
                terms,
                |t| pod_affinity_term(t, ns, labels),
            )
            .map_err(within)?,
        );
        let weighted = &source.preferred_during_scheduling_ignored_during_execution;
        preferred.extend(
            each(
                "preferredDuringSchedulingIgnoredDuringExecution",
                weighted,
                |w| {
                    Ok(WeightedPodAffinityTerm {
                        weight: w.weight,
                        term: pod_affinity_term(&w.pod_affinity_term, ns, labels)
                            .map_err(|e| e.within("podAffinityTerm"))?,
                    })
                },
            )
            .map_err(within)?,
        );
    }
    Ok(out)
}

fn inclusion_policy(p: &Option<Text>, default: InclusionPolicy) -> Result<InclusionPolicy> {
    match p.as_deref() {
        None => Ok(default),
        Some("Honor") => Ok(InclusionPolicy::Honor),
        Some("Ignore") => Ok(InclusionPolicy::Ignore),
        Some(other) => Err(err("", format!("unknown inclusion policy {other:?}"))),
    }
}

fn topology_spread(
    c: &wire::TopologySpreadConstraint,
    labels: &Labels,
) -> Result<TopologySpreadConstraint> {
    let when_unsatisfiable = match c.when_unsatisfiable.as_str() {
        "DoNotSchedule" => UnsatisfiableAction::DoNotSchedule,
        "ScheduleAnyway" => UnsatisfiableAction::ScheduleAnyway,
        other => {
            return Err(err(
                "whenUnsatisfiable",
                format!("unknown action {other:?}"),
            ));
        }
    };
    if c.max_skew <= 0 {
        return Err(err("maxSkew", "must be greater than zero"));
    }
    if c.topology_key.is_empty() {
        return Err(err("topologyKey", "is required"));
    }
    let mut selector = label_selector(&c.label_selector).map_err(|e| e.within("labelSelector"))?;
    let extra: Vec<Requirement> = c
        .match_label_keys
        .iter()
        .filter_map(|k| {
            labels.get(k).map(|v| Requirement {
                key: k.to_string(),
                operator: Operator::In,
                values: vec![v.to_string()],
            })
        })
        .collect();
    if !extra.is_empty() {
        selector = selector.with_requirements(extra);
    }
    Ok(TopologySpreadConstraint {
        max_skew: c.max_skew,
        topology_key: c.topology_key.to_string(),
        when_unsatisfiable,
        selector,
        min_domains: c.min_domains.unwrap_or(1),
        node_affinity_policy: inclusion_policy(&c.node_affinity_policy, InclusionPolicy::Honor)
            .map_err(|e| e.within("nodeAffinityPolicy"))?,
        node_taints_policy: inclusion_policy(&c.node_taints_policy, InclusionPolicy::Ignore)
            .map_err(|e| e.within("nodeTaintsPolicy"))?,
    })
}

fn toleration(t: &wire::Toleration) -> Result<Toleration> {
    let operator = match t.operator.as_deref() {
        None | Some("") | Some("Equal") => TolerationOperator::Equal,
        Some("Exists") => TolerationOperator::Exists,
        Some("Lt") | Some("Gt") => TolerationOperator::Unsupported,
        Some(other) => {
            return Err(err("operator", format!("unknown operator {other:?}")));
        }
    };
    let effect = match t.effect.as_deref() {
        None | Some("") => None,
        Some(e) => Some(
            TaintEffect::parse(e)
                .ok_or_else(|| err("effect", format!("unknown taint effect {e:?}")))?,
        ),
    };
    Ok(Toleration {
        key: t.key.to_string(),
        operator,
        value: t.value.to_string(),
        effect,
    })
}

/// `normalizedImageName`: an image without a tag gets `:latest`.
pub fn normalized_image_name(image: &str) -> String {
    let colon = image.rfind(':').map_or(-1, |i| i as i64);
    let slash = image.rfind('/').map_or(-1, |i| i as i64);
    if colon <= slash {
        format!("{image}:latest")
    } else {
        image.to_string()
    }
}

fn container_resources(c: &wire::Container) -> Result<ContainerResources> {
    let requests = defaulted_requests(&c.resources, "resources")?;
    Ok(ContainerResources {
        requests,
        restartable: c.restart_policy.as_deref() == Some("Always"),
    })
}

/// Resolves priority and preemption policy as the Priority admission plugin does.
fn resolve_priority(
    spec: &wire::PodSpec,
    classes: &[PriorityClass],
) -> Result<(i32, PreemptionPolicy)> {
    let explicit_policy = spec
        .preemption_policy
        .as_deref()
        .map(|p| preemption_policy(p, "spec.preemptionPolicy"))
        .transpose()?;
    let class_policy =
        |c: Option<&PriorityClass>| c.and_then(|c| c.preemption_policy).unwrap_or_default();
    // Already admitted: the API server wrote spec.priority.
    if let Some(priority) = spec.priority {
        let class = spec
            .priority_class_name
            .as_deref()
            .and_then(|n| classes.iter().find(|c| c.name == n));
        return Ok((
            priority,
            explicit_policy.unwrap_or_else(|| class_policy(class)),
        ));
    }
    match spec
        .priority_class_name
        .as_deref()
        .filter(|n| !n.is_empty())
    {
        Some(name) => {
            if let Some(class) = classes.iter().find(|c| c.name == name) {
                let policy = class_policy(Some(class));
                // Admission refuses a pod whose own policy contradicts its class's.
                if explicit_policy.is_some_and(|p| p != policy) {
                    return Err(err(
                        "spec.preemptionPolicy",
                        format!(
                            "must not differ from PriorityClass {name:?}'s {}",
                            policy.as_str()
                        ),
                    ));
                }
                return Ok((class.value, policy));
            }
            if let Some((_, value)) = SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _)| *n == name) {
                return Ok((*value, explicit_policy.unwrap_or_default()));
            }
            Err(err(
                "spec.priorityClassName",
                format!("no PriorityClass with name {name:?} was found"),
            ))
        }
        None => {
            let default = classes
                .iter()
                .filter(|c| c.global_default)
                .min_by_key(|c| c.value);
            match default {
                Some(c) => {
                    let policy = class_policy(Some(c));
                    if explicit_policy.is_some_and(|p| p != policy) {
                        return Err(err(
                            "spec.preemptionPolicy",
                            format!(
                                "must not differ from the default PriorityClass {:?}'s {}",
                                c.name,
                                policy.as_str()
                            ),
                        ));
                    }
                    Ok((c.value, policy))
                }
                None => Ok((0, explicit_policy.unwrap_or_default())),
            }
        }
    }
}

/// Whether the pod is in a terminal phase (it then holds no resources).
pub fn is_terminal(p: &wire::Pod) -> bool {
    matches!(
        p.status.phase.as_deref(),
        Some("Succeeded") | Some("Failed")
    )
}

fn timestamp(t: &Option<Text>, path: &str) -> Result<Option<i64>> {
    t.as_deref()
        .map(|s| {
            parse_rfc3339_nanos(s)
                .ok_or_else(|| err(path, format!("{s:?} is not an RFC 3339 time")))
        })
        .transpose()
}

/// Converts a Pod, resolving its priority against `classes`.
pub fn pod(p: &wire::Pod, classes: &[PriorityClass]) -> Result<Pod> {
    let name = required_name(&p.metadata)?;
    let namespace = namespace_of(&p.metadata);
    let labels = labels_of(&p.metadata);
    let (priority, preemption_policy) = resolve_priority(&p.spec, classes)?;
    let spec = &p.spec;
    if spec.containers.is_empty() {
        return Err(err("spec.containers", "must have at least one container"));
    }
    let containers = each("spec.containers", &spec.containers, container_resources)?;
    let init_containers = each(
        "spec.initContainers",
        &spec.init_containers,
        container_resources,
    )?;
    let pod_level_requests = match &spec.resources {
        Some(r) => defaulted_requests(r, "spec.resources")?,
        None => ResourceList::default(),
    };
    let mut host_ports = Vec::new();
    let sidecars = spec
        .init_containers
        .iter()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    for c in sidecars.chain(spec.containers.iter()) {
        for port in c.ports.iter().filter(|port| port.host_port > 0) {
            host_ports.push(HostPort {
                ip: non_empty(&port.host_ip).unwrap_or("0.0.0.0").to_string(),
                protocol: non_empty(&port.protocol).unwrap_or("TCP").to_string(),
                port: port.host_port,
            });
        }
    }
    let tolerations = each("spec.tolerations", &spec.tolerations, toleration)?;
    let topology_spread_constraints = each(
        "spec.topologySpreadConstraints",
        &spec.topology_spread_constraints,
        |c| topology_spread(c, &labels),
    )?;
    let pod_affinity = pod_affinity(&spec.affinity, &namespace, &labels)?;
    let node_affinity = node_affinity(
        spec.affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref()),
    );
    let images = spec
        .init_containers
        .iter()
        .chain(spec.containers.iter())
        .map(|c| normalized_image_name(&c.image))
        .collect();
    let preempted_by_scheduler = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .is_some_and(|c| {
            c.status == "True" && c.reason.as_deref() == Some("PreemptionByScheduler")
        });
    Ok(Pod {
        uid: non_empty(&p.metadata.uid)
            .map_or_else(|| format!("{namespace}/{name}"), str::to_string),
        priority,
        preemption_policy,
        node_name: non_empty(&spec.node_name).map(str::to_string),
        nominated_node_name: non_empty(&p.status.nominated_node_name).map(str::to_string),
        terminating: p.metadata.deletion_timestamp.is_some(),
        preempted_by_scheduler: p.metadata.deletion_timestamp.is_some() && preempted_by_scheduler,
        start_time: timestamp(&p.status.start_time, "status.startTime")?,
        creation_time: timestamp(&p.metadata.creation_timestamp, "metadata.creationTimestamp")?,
        resources: PodResourceSpec {
            containers,
            init_containers,
            pod_level_requests,
            overhead: resource_list(&spec.overhead, "spec.overhead")?,
        },
        host_ports,
        tolerations,
        node_selector: spec.node_selector.as_ref().map(labels_from),
        node_affinity,
        pod_affinity,
        topology_spread_constraints,
        images,
        labels,
        namespace,
        name,
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[test]
    fn a_refused_field_is_named_by_its_whole_path() {
        let refusal = |spec: serde_json::Value| {
            let mut pod = serde_json::json!({"metadata": {"name": "p"}, "spec": spec});
            if pod["spec"]["containers"].is_null() {
                pod["spec"]["containers"] = serde_json::json!([{"name": "c"}]);
            }
            let wire = wire::Pod::deserialize(&pod).expect("well-typed");
            let e = self::pod(&wire, &[]).expect_err("refused");
            format!("{}: {}", e.path, e.message)
        };
        let bad_selector = serde_json::json!({"matchExpressions": [
            {"key": "a", "operator": "In", "values": ["x"]},
            {"key": "b", "operator": "Near", "values": ["x"]}]});
        let cases = [
            (
                serde_json::json!({"containers": [{"name": "a"},
                    {"name": "b", "resources": {"limits": {"cpu": "-1"}}}]}),
                "spec.containers[1].resources.limits.cpu: must be greater than or equal to 0",
            ),
            (
                serde_json::json!({"initContainers": [{"name": "i",
                    "resources": {"requests": {"memory": "lots"}}}]}),
                "spec.initContainers[0].resources.requests.memory: ",
            ),
            (
                serde_json::json!({"tolerations": [{"key": "k"}, {"key": "k", "effect": "Soon"}]}),
                "spec.tolerations[1].effect: unknown taint effect \"Soon\"",
            ),
            (
                serde_json::json!({"topologySpreadConstraints": [{"maxSkew": 1,
                    "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": bad_selector}]}),
                "spec.topologySpreadConstraints[0].labelSelector.matchExpressions[1].operator: unknown operator \"Near\"",
            ),
            (
                serde_json::json!({"topologySpreadConstraints": [{"maxSkew": 1,
                    "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                    "nodeTaintsPolicy": "Maybe"}]}),
                "spec.topologySpreadConstraints[0].nodeTaintsPolicy: unknown inclusion policy \"Maybe\"",
            ),
            (
                serde_json::json!({"affinity": {"podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1,
                        "podAffinityTerm": {"topologyKey": "zone",
                            "namespaceSelector": bad_selector}}]}}}),
                "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.namespaceSelector.matchExpressions[1].operator: unknown operator \"Near\"",
            ),
            (
                serde_json::json!({"affinity": {"podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone",
                        "labelSelector": {"matchExpressions": [
                            {"key": "a", "operator": "Exists", "values": ["x"]}]}}]}}}),
                "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].values: must be empty for Exists and DoesNotExist",
            ),
        ];
        for (spec, expected) in cases {
            let got = refusal(spec);
            assert!(got.starts_with(expected), "{got}");
        }
    }

    #[test]
    fn a_limit_without_a_request_is_requested_and_both_lists_are_checked() {
        let requests = |resources: serde_json::Value| {
            let wire = wire::ResourceRequirements::deserialize(&resources).expect("well-typed");
            defaulted_requests(&wire, "resources").map(|list| {
                list.iter()
                    .map(|(n, q)| format!("{n}={q:?}"))
                    .collect::<Vec<_>>()
            })
        };
        let q = |text: &str| format!("{:?}", Quantity::parse(text).unwrap());
        // A request stays; a limit with no request is requested; the list is in order.
        let merged = requests(serde_json::json!({
            "requests": {"memory": "1Gi", "cpu": "1"},
            "limits": {"memory": "2Gi", "example.com/gpu": "2", "cpu": "3"}}));
        assert_eq!(
            merged.expect("valid"),
            [
                format!("cpu={}", q("1")),
                format!("example.com/gpu={}", q("2")),
                format!("memory={}", q("1Gi")),
            ]
        );
        let limits_only = requests(serde_json::json!({"limits": {"cpu": "500m"}}));
        assert_eq!(limits_only.expect("valid"), [format!("cpu={}", q("500m"))]);
        assert_eq!(
            requests(serde_json::json!({})).expect("valid"),
            Vec::<String>::new()
        );
        // A limit that a request overrides is still validated, under its own path.
        let refused = requests(serde_json::json!({
            "requests": {"cpu": "1"}, "limits": {"cpu": "-1"}}));
        assert_eq!(refused.expect_err("negative").path, "resources.limits.cpu");
        let refused = requests(serde_json::json!({"requests": {"memory": "lots"}}));
        assert_eq!(
            refused.expect_err("not a quantity").path,
            "resources.requests.memory"
        );
    }

    #[test]
    fn image_names_get_latest() {
        assert_eq!(normalized_image_name("nginx"), "nginx:latest");
        assert_eq!(normalized_image_name("nginx:1.2"), "nginx:1.2");
        assert_eq!(
            normalized_image_name("registry:5000/app"),
            "registry:5000/app:latest"
        );
    }

    fn spec_with_class(name: Option<&str>) -> wire::PodSpec<'_> {
        wire::PodSpec {
            priority_class_name: name.map(Text::from),
            ..Default::default()
        }
    }

    #[test]
    fn priority_resolution() {
        let classes = vec![
            PriorityClass {
                name: "low".into(),
                value: 10,
                global_default: true,
                preemption_policy: None,
            },
            PriorityClass {
                name: "lower".into(),
                value: 5,
                global_default: true,
                preemption_policy: Some(PreemptionPolicy::Never),
            },
            PriorityClass {
                name: "high".into(),
                value: 1000,
                global_default: false,
                preemption_policy: Some(PreemptionPolicy::Never),
            },
        ];
        assert_eq!(
            resolve_priority(&spec_with_class(Some("high")), &classes).unwrap(),
            (1000, PreemptionPolicy::Never)
        );
        // Two global defaults: the lowest value wins, with its policy.
        assert_eq!(
            resolve_priority(&spec_with_class(None), &classes).unwrap(),
            (5, PreemptionPolicy::Never)
        );
        assert_eq!(
            resolve_priority(&spec_with_class(Some("system-node-critical")), &classes).unwrap(),
            (2_000_001_000, PreemptionPolicy::PreemptLowerPriority)
        );
        assert_eq!(
            resolve_priority(&spec_with_class(None), &[]).unwrap(),
            (0, PreemptionPolicy::PreemptLowerPriority)
        );
        let e = resolve_priority(&spec_with_class(Some("nope")), &classes).unwrap_err();
        assert_eq!(e.path, "spec.priorityClassName");
    }
}
