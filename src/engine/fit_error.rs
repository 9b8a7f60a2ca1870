//! The scheduler's FitError message: `0/N nodes are available: <count> <reason>, … .`

use std::collections::BTreeMap;

use super::status::Status;

/// `FitError.Error()` without a PostFilter message: a histogram of every node's reasons,
/// sorted as strings; nodes without an explicit status count under `absent_reason`.
pub fn message<'s>(
    num_nodes: usize,
    statuses: impl IntoIterator<Item = &'s Status>,
    absent_reason: Option<&str>,
) -> String {
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rejected = 0;
    for status in statuses {
        rejected += 1;
        for reason in &status.reasons {
            *histogram.entry(reason.as_ref()).or_insert(0) += 1;
        }
    }
    if let Some(reason) = absent_reason
        && rejected < num_nodes
    {
        *histogram.entry(reason).or_insert(0) += num_nodes - rejected;
    }
    let mut parts: Vec<String> = histogram
        .into_iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    parts.sort();
    let mut out = format!("0/{num_nodes} nodes are available:");
    if !parts.is_empty() {
        out.push(' ');
        out.push_str(&parts.join(", "));
        out.push('.');
    }
    out
}

/// `FitError.Error()` when a PreFilter plugin rejected the pod.
pub fn pre_filter_message(num_nodes: usize, status: &Status) -> String {
    format!("0/{num_nodes} nodes are available: {}.", status.message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_sorted_as_strings() {
        let statuses = [
            Status::unschedulable("Insufficient cpu"),
            Status::unschedulable("Insufficient cpu"),
            Status::unresolvable("node(s) were unschedulable"),
        ];
        assert_eq!(
            message(
                13,
                &statuses,
                Some("Preemption is not helpful for scheduling")
            ),
            "0/13 nodes are available: 1 node(s) were unschedulable, 10 Preemption is not helpful for scheduling, 2 Insufficient cpu."
        );
    }
}
