//! The scheduler's FitError message: `0/N nodes are available: <count> <reason>, … .`

use super::status::Status;

/// `FitError.Error()` without a PostFilter message: a histogram of every node's reasons,
/// sorted as strings; nodes without an explicit status count under `absent_reason`.
pub fn message<'s>(
    num_nodes: usize,
    statuses: impl IntoIterator<Item = &'s Status>,
    absent_reason: Option<&str>,
) -> String {
    let mut histogram = Histogram::default();
    let mut rejected = 0;
    for status in statuses {
        rejected += 1;
        for reason in &status.reasons {
            histogram.count(reason, 1);
        }
    }
    if let Some(reason) = absent_reason
        && rejected < num_nodes
    {
        histogram.count(reason, num_nodes - rejected);
    }
    let mut parts: Vec<String> = histogram
        .0
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

/// Counts of distinct reasons, in first-seen order. Thousands of nodes share a handful of
/// reasons, most of them the very same constant string, so a reason is first looked up
/// by address (a few pointer compares), and by text only when that fails.
#[derive(Default)]
struct Histogram<'s>(Vec<(&'s str, usize)>);

impl<'s> Histogram<'s> {
    fn count(&mut self, reason: &'s str, n: usize) {
        let entries = &mut self.0;
        let at = (entries.iter().position(|(r, _)| std::ptr::eq(*r, reason)))
            .or_else(|| entries.iter().position(|(r, _)| *r == reason));
        match at {
            Some(i) => entries[i].1 += n,
            None => entries.push((reason, n)),
        }
    }
}

/// `FitError.Error()` when a PreFilter plugin rejected the pod.
pub fn pre_filter_message(num_nodes: usize, status: &Status) -> String {
    format!("0/{num_nodes} nodes are available: {}.", status.message())
}

#[cfg(test)]
mod tests {
    use super::super::status::Code;
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

    #[test]
    fn equal_reasons_count_together_wherever_their_text_lives() {
        let owned = |text: &str| Status::unschedulable(text.to_string());
        let statuses = [
            owned("Insufficient example.com/gpu"),
            Status::unschedulable("Insufficient cpu"),
            owned("Insufficient example.com/gpu"),
            owned("Insufficient cpu"),
            Status::new(Code::Unschedulable, "Insufficient cpu"),
        ];
        assert_eq!(
            message(5, &statuses, None),
            "0/5 nodes are available: 2 Insufficient example.com/gpu, 3 Insufficient cpu."
        );
    }
}
