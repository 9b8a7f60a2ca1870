//! The human-readable report of a [`Decision`]: where the pod lands or whom it preempts,
//! then why every other node was rejected, then the scores of the best feasible nodes.
//!
//! Nodes with identical verdicts are grouped on one line, and long lists are cut short
//! (`node-001, node-002, node-003, … +34`), so a 1,000-node cluster stays readable. The
//! full detail is in the decision's JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::engine::decision::{
    Candidate, Decision, NodeScore, NodeVerdict, Outcome, PlacementMode, PreemptionNode, Victim,
};

/// Node names shown per line before the rest is counted.
const NAMES_SHOWN: usize = 3;
/// Groups of rejected nodes shown before the rest is counted.
const GROUPS_SHOWN: usize = 20;
/// Feasible nodes whose scores are shown.
const SCORES_SHOWN: usize = 5;
/// Candidates other than the chosen one that are shown.
const OTHER_CANDIDATES_SHOWN: usize = 5;
/// Victims shown per other candidate.
const VICTIMS_SHOWN: usize = 3;

/// Renders `decision` as a plain-text report (several lines, ending in a newline).
pub fn render(decision: &Decision) -> String {
    let mut out = String::new();
    header(&mut out, decision);
    out.push('\n');
    match decision.outcome {
        Outcome::Scheduled => scheduled(&mut out, decision),
        Outcome::Preempts => preempts(&mut out, decision),
        Outcome::Unschedulable => unschedulable(&mut out, decision),
        Outcome::NotEligible => not_eligible(&mut out, decision),
    }
    out.push('\n');
    filter_section(&mut out, decision);
    if decision.placement.mode == PlacementMode::Scored && !decision.scores.is_empty() {
        out.push('\n');
        scores_section(&mut out, decision);
    }
    out
}

fn header(out: &mut String, d: &Decision) {
    let _ = writeln!(
        out,
        "Pod {} (priority {}, preemptionPolicy {}) on {} — kube-scheduler {} semantics",
        d.pod,
        d.pod_priority,
        d.preemption_policy,
        plural(d.num_nodes, "node", "nodes"),
        d.k8s_version
    );
}

fn scheduled(out: &mut String, d: &Decision) {
    let node = d.node.as_deref().unwrap_or("?");
    let _ = writeln!(out, "SCHEDULED on {node}");
    let p = &d.placement;
    match p.mode {
        PlacementMode::Scored => {
            let max = p.max_score.map_or_else(|| "?".into(), |m| m.to_string());
            let _ = writeln!(
                out,
                "  mode: scored — {} feasible, highest total score {max}",
                plural(d.num_feasible, "node", "nodes"),
            );
            if p.tie_set.len() > 1 {
                let _ = writeln!(
                    out,
                    "  tie set ({}, the scheduler picks any of them): {}",
                    p.tie_set.len(),
                    names(&p.tie_set, 10)
                );
            } else {
                let _ = writeln!(out, "  tie set: {}", names(&p.tie_set, 10));
            }
        }
        PlacementMode::SingleFeasible => {
            let _ = writeln!(
                out,
                "  mode: single-feasible — the only node that passes every filter, taken without scoring"
            );
        }
        PlacementMode::NominatedNode => {
            let _ = writeln!(
                out,
                "  mode: nominated-node — the pod's status.nominatedNodeName passes every filter and is taken directly"
            );
        }
        PlacementMode::Unschedulable => {
            let _ = writeln!(out, "  mode: unschedulable");
        }
    }
}

fn preempts(out: &mut String, d: &Decision) {
    let node = d.node.as_deref().unwrap_or("?");
    let chosen = d.chosen_candidate();
    let n_victims = chosen.map_or(0, |c| c.victim_details.len());
    let _ = writeln!(
        out,
        "PREEMPTS on {node} — evicts {} to make room; the pod is nominated to {node}",
        plural(n_victims, "pod", "pods")
    );
    let Some(pre) = &d.preemption else {
        return;
    };
    if let Some(c) = chosen {
        let _ = writeln!(
            out,
            "  victims on {} ({}, {}), most important first:",
            c.node,
            plural(c.victim_details.len(), "pod", "pods"),
            plural(
                c.num_pdb_violations.max(0) as usize,
                "PDB violation",
                "PDB violations"
            )
        );
        for v in &c.victim_details {
            let _ = writeln!(out, "    - {}", victim(v));
        }
    }
    if pre.selected_tie_set.len() > 1 {
        let _ = writeln!(
            out,
            "  selected tie set ({}, the scheduler may nominate any of them; the first by name is reported): {}",
            pre.selected_tie_set.len(),
            names(&pre.selected_tie_set, 10)
        );
    } else {
        let _ = writeln!(
            out,
            "  selected tie set: {}",
            names(&pre.selected_tie_set, 10)
        );
    }
    let mut others: Vec<&Candidate> = pre
        .candidates
        .iter()
        .filter(|c| !pre.selected_tie_set.contains(&c.node) && Some(&c.node) != d.node.as_ref())
        .collect();
    if !others.is_empty() {
        // In the order of the candidate selection's first four criteria: PDB violations,
        // highest victim priority, sum of victim priorities (each offset by 2^31, as
        // upstream does, so that more victims weigh more), number of victims.
        others.sort_by_key(|c| {
            let prios = c.victim_details.iter().map(|v| i64::from(v.priority));
            (
                c.num_pdb_violations,
                prios.clone().max().unwrap_or(i64::MIN),
                prios.map(|p| p + (1_i64 << 31)).sum::<i64>(),
                c.victim_details.len(),
                c.node.clone(),
            )
        });
        let _ = writeln!(
            out,
            "  other candidates, outside the tie set ({}), best first:",
            others.len()
        );
        for c in others.iter().take(OTHER_CANDIDATES_SHOWN) {
            let _ = writeln!(out, "    {}", candidate_summary(c));
        }
        if others.len() > OTHER_CANDIDATES_SHOWN {
            let _ = writeln!(out, "    … +{} more", others.len() - OTHER_CANDIDATES_SHOWN);
        }
    }
    non_candidates(out, &pre.nodes);
    if let Some(fe) = &d.fit_error {
        let _ = writeln!(out, "  fit error (before preemption): {fe}");
    }
}

fn unschedulable(out: &mut String, d: &Decision) {
    let _ = writeln!(
        out,
        "UNSCHEDULABLE — no node fits, and preemption cannot make one fit"
    );
    if let Some(pre) = &d.preemption {
        if pre.num_potential_nodes == 0 {
            let _ = writeln!(
                out,
                "  no potential node: every node's rejection is UnschedulableAndUnresolvable"
            );
        }
        non_candidates(out, &pre.nodes);
    }
    if let Some(fe) = &d.fit_error {
        let _ = writeln!(out, "  fit error: {fe}");
    }
}

fn not_eligible(out: &mut String, d: &Decision) {
    let reason = d
        .preemption
        .as_ref()
        .and_then(|p| p.ineligible_reason.as_deref())
        .unwrap_or("not eligible to preempt.");
    let _ = writeln!(
        out,
        "NOT ELIGIBLE — no node fits, and the pod may not preempt: {reason}"
    );
    if let Some(fe) = &d.fit_error {
        let _ = writeln!(out, "  fit error: {fe}");
    }
}

/// Potential nodes where preemption does not help, grouped by verdict.
fn non_candidates(out: &mut String, nodes: &BTreeMap<String, PreemptionNode>) {
    let failing: Vec<(&str, String)> = nodes
        .iter()
        .filter(|(_, n)| !n.candidate)
        .map(|(name, n)| {
            (
                name.as_str(),
                verdict_label(
                    n.plugin.as_deref(),
                    None,
                    n.reasons.as_deref().unwrap_or(&[]),
                    n.code.as_deref(),
                ),
            )
        })
        .collect();
    if failing.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  potential nodes where preemption does not help ({}):",
        failing.len()
    );
    grouped(out, "    ", failing);
}

fn filter_section(out: &mut String, d: &Decision) {
    let rejected: Vec<(&str, String)> = d
        .filter
        .iter()
        .filter(|(_, v)| !v.feasible)
        .map(|(name, v)| (name.as_str(), node_verdict_label(v)))
        .collect();
    let feasible = d.filter.len() - rejected.len();
    if rejected.is_empty() {
        let _ = writeln!(
            out,
            "Filter: all {} feasible",
            plural(d.filter.len(), "node", "nodes")
        );
        return;
    }
    let _ = writeln!(
        out,
        "Filter: {} of {} rejected, {} feasible",
        rejected.len(),
        plural(d.filter.len(), "node", "nodes"),
        feasible
    );
    if let Some(pf) = &d.pre_filter {
        let _ = writeln!(
            out,
            "  PreFilter rejected the pod on every node: {}",
            verdict_label(pf.plugin.as_deref(), None, &pf.reasons, Some(&pf.code))
        );
    }
    grouped(out, "  ", rejected);
}

fn node_verdict_label(v: &NodeVerdict) -> String {
    let source = match v.source {
        Some("PreFilter") => Some("PreFilter"),
        Some("PreFilterResult") => Some("excluded by PreFilter"),
        _ => None,
    };
    verdict_label(
        v.plugin.as_deref(),
        source,
        v.reasons.as_deref().unwrap_or(&[]),
        v.code.as_deref(),
    )
}

/// `Plugin: reason, reason [Code]`.
fn verdict_label(
    plugin: Option<&str>,
    source: Option<&str>,
    reasons: &[String],
    code: Option<&str>,
) -> String {
    let mut s = String::new();
    match (plugin, source) {
        (Some(p), Some(src)) => {
            let _ = write!(s, "{p} ({src}): ");
        }
        (Some(p), None) => {
            let _ = write!(s, "{p}: ");
        }
        (None, Some(src)) => {
            let _ = write!(s, "{src}: ");
        }
        (None, None) => {}
    }
    if reasons.is_empty() {
        s.push_str("(no reason given)");
    } else {
        s.push_str(&reasons.join(", "));
    }
    if let Some(code) = code {
        let _ = write!(s, " [{code}]");
    }
    s
}

/// One line per distinct verdict, most common first.
fn grouped(out: &mut String, indent: &str, nodes: Vec<(&str, String)>) {
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (node, label) in nodes {
        groups.entry(label).or_default().push(node);
    }
    let mut groups: Vec<(String, Vec<&str>)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    for (label, nodes) in groups.iter().take(GROUPS_SHOWN) {
        let _ = if nodes.len() == 1 {
            writeln!(out, "{indent}{}: {label}", nodes[0])
        } else {
            writeln!(
                out,
                "{indent}{} nodes ({}): {label}",
                nodes.len(),
                names(nodes, NAMES_SHOWN)
            )
        };
    }
    if groups.len() > GROUPS_SHOWN {
        let rest = &groups[GROUPS_SHOWN..];
        let count: usize = rest.iter().map(|(_, n)| n.len()).sum();
        let _ = writeln!(
            out,
            "{indent}… +{} more verdicts on {}",
            rest.len(),
            plural(count, "node", "nodes")
        );
    }
}

fn scores_section(out: &mut String, d: &Decision) {
    let mut ranked: Vec<(&String, &NodeScore)> = d.scores.iter().collect();
    ranked.sort_by(|a, b| b.1.total.cmp(&a.1.total).then_with(|| a.0.cmp(b.0)));
    let shown = ranked.len().min(SCORES_SHOWN);
    let _ = writeln!(
        out,
        "Scores (top {shown} of {} feasible, * = in the tie set):",
        ranked.len()
    );
    let width = ranked
        .iter()
        .take(shown)
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    for (node, score) in ranked.iter().take(shown) {
        let mark = if d.placement.tie_set.contains(node) {
            '*'
        } else {
            ' '
        };
        let plugins: Vec<String> = score
            .plugins
            .iter()
            .map(|(p, v)| format!("{p} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "  {mark} {node:<width$}  {:>4}  ({})",
            score.total,
            plugins.join(", ")
        );
    }
    if ranked.len() > shown {
        let _ = writeln!(out, "    … +{} more", ranked.len() - shown);
    }
}

fn victim(v: &Victim) -> String {
    let mut s = format!("{} (priority {})", v.pod, v.priority);
    if !v.violated_pdbs.is_empty() {
        let _ = write!(s, " — would violate PDB {}", v.violated_pdbs.join(", "));
    }
    s
}

fn candidate_summary(c: &Candidate) -> String {
    let highest = c.victim_details.iter().map(|v| v.priority).max();
    let mut s = format!(
        "{}: {}",
        c.node,
        plural(c.victim_details.len(), "victim", "victims")
    );
    if let Some(h) = highest {
        let _ = write!(s, " (highest priority {h})");
    }
    let _ = write!(
        s,
        ", {}",
        plural(
            c.num_pdb_violations.max(0) as usize,
            "PDB violation",
            "PDB violations"
        )
    );
    let listed: Vec<String> = c
        .victim_details
        .iter()
        .take(VICTIMS_SHOWN)
        .map(victim)
        .collect();
    if !listed.is_empty() {
        let _ = write!(s, ": {}", listed.join("; "));
        if c.victim_details.len() > VICTIMS_SHOWN {
            let _ = write!(s, "; … +{}", c.victim_details.len() - VICTIMS_SHOWN);
        }
    }
    s
}

/// `a, b, c, … +N`, or `(none)`.
fn names<S: AsRef<str>>(names: &[S], shown: usize) -> String {
    if names.is_empty() {
        return "(none)".into();
    }
    let mut s = names
        .iter()
        .take(shown)
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > shown {
        let _ = write!(s, ", … +{}", names.len() - shown);
    }
    s
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::decision::{Placement, PostFilter, Preemption, StatusReport};

    fn rejected(
        plugin: Option<&str>,
        code: &str,
        reasons: &[&str],
        source: &'static str,
    ) -> NodeVerdict {
        NodeVerdict {
            feasible: false,
            code: Some(code.into()),
            plugin: plugin.map(str::to_string),
            reasons: Some(reasons.iter().map(|r| r.to_string()).collect()),
            source: Some(source),
        }
    }

    fn base(outcome: Outcome, node: Option<&str>) -> Decision {
        Decision {
            outcome,
            node: node.map(str::to_string),
            k8s_version: "v1.35.4",
            pod: "default/web".into(),
            pod_priority: 1000,
            preemption_policy: "PreemptLowerPriority",
            num_nodes: 0,
            pre_filter: None,
            filter: BTreeMap::new(),
            num_feasible: 0,
            feasible_nodes: Vec::new(),
            scores: BTreeMap::new(),
            placement: Placement {
                mode: PlacementMode::Unschedulable,
                max_score: None,
                tie_set: Vec::new(),
            },
            preemption: None,
            fit_error: None,
        }
    }

    fn score(total: i64, plugins: &[(&str, i64)]) -> NodeScore {
        NodeScore {
            total,
            plugins: plugins.iter().map(|(p, v)| (p.to_string(), *v)).collect(),
        }
    }

    fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
    }

    #[test]
    fn scheduled_with_scores_and_a_tie() {
        let mut d = base(Outcome::Scheduled, Some("node-a"));
        d.num_nodes = 4;
        for n in ["node-a", "node-b", "node-c"] {
            d.filter.insert(n.into(), NodeVerdict::feasible());
        }
        d.filter.insert(
            "node-d".into(),
            rejected(
                Some("TaintToleration"),
                "UnschedulableAndUnresolvable",
                &["node(s) had untolerated taint(s)"],
                "Filter",
            ),
        );
        d.num_feasible = 3;
        d.feasible_nodes = vec!["node-a".into(), "node-b".into(), "node-c".into()];
        d.scores.insert(
            "node-a".into(),
            score(400, &[("TaintToleration", 300), ("NodeResourcesFit", 100)]),
        );
        d.scores.insert(
            "node-b".into(),
            score(400, &[("TaintToleration", 300), ("NodeResourcesFit", 100)]),
        );
        d.scores.insert(
            "node-c".into(),
            score(350, &[("TaintToleration", 300), ("NodeResourcesFit", 50)]),
        );
        d.placement = Placement {
            mode: PlacementMode::Scored,
            max_score: Some(400),
            tie_set: vec!["node-a".into(), "node-b".into()],
        };
        let r = render(&d);
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(
            lines[0],
            "Pod default/web (priority 1000, preemptionPolicy PreemptLowerPriority) on 4 nodes — kube-scheduler v1.35.4 semantics"
        );
        assert_eq!(lines[2], "SCHEDULED on node-a");
        assert!(lines[3].contains("mode: scored"), "{r}");
        assert!(
            lines[3].contains("3 nodes feasible, highest total score 400"),
            "{r}"
        );
        assert_eq!(
            lines[4],
            "  tie set (2, the scheduler picks any of them): node-a, node-b"
        );
        assert_eq!(
            line_with(&r, "Filter:"),
            "Filter: 1 of 4 nodes rejected, 3 feasible"
        );
        assert_eq!(
            line_with(&r, "node-d"),
            "  node-d: TaintToleration: node(s) had untolerated taint(s) [UnschedulableAndUnresolvable]"
        );
        assert_eq!(
            line_with(&r, "Scores"),
            "Scores (top 3 of 3 feasible, * = in the tie set):"
        );
        // Highest first; ties by name; tie-set members marked.
        let score_lines: Vec<&str> = r
            .lines()
            .skip_while(|l| !l.starts_with("Scores"))
            .skip(1)
            .collect();
        assert_eq!(score_lines.len(), 3, "{r}");
        assert!(
            score_lines[0]
                .starts_with("  * node-a   400  (NodeResourcesFit 100, TaintToleration 300)"),
            "{r}"
        );
        assert!(score_lines[1].starts_with("  * node-b   400"), "{r}");
        assert!(score_lines[2].starts_with("    node-c   350"), "{r}");
        // Scheduled: no preemption section.
        assert!(!r.contains("victim"), "{r}");
    }

    #[test]
    fn single_feasible_skips_scores() {
        let mut d = base(Outcome::Scheduled, Some("only"));
        d.num_nodes = 1;
        d.filter.insert("only".into(), NodeVerdict::feasible());
        d.num_feasible = 1;
        d.feasible_nodes = vec!["only".into()];
        d.scores.insert("only".into(), score(0, &[]));
        d.placement = Placement {
            mode: PlacementMode::SingleFeasible,
            max_score: None,
            tie_set: vec!["only".into()],
        };
        let r = render(&d);
        assert!(r.contains("on 1 node —"), "{r}");
        assert!(
            r.contains("SCHEDULED on only\n  mode: single-feasible"),
            "{r}"
        );
        assert!(r.contains("Filter: all 1 node feasible"), "{r}");
        assert!(!r.contains("Scores"), "{r}");
    }

    #[test]
    fn preemption_lists_victims_pdbs_and_other_candidates() {
        let mut d = base(Outcome::Preempts, Some("w-a"));
        d.num_nodes = 4;
        let insufficient = rejected(
            Some("NodeResourcesFit"),
            "Unschedulable",
            &["Insufficient cpu"],
            "Filter",
        );
        for n in ["w-a", "w-b", "w-c"] {
            d.filter.insert(n.into(), insufficient.clone());
        }
        d.filter.insert(
            "cp".into(),
            rejected(
                Some("TaintToleration"),
                "UnschedulableAndUnresolvable",
                &["node(s) had untolerated taint(s)"],
                "Filter",
            ),
        );
        let cand = |node: &str, victims: Vec<Victim>, pdb: i64| Candidate {
            node: node.into(),
            victims: victims.iter().map(|v| v.pod.clone()).collect(),
            num_pdb_violations: pdb,
            victim_details: victims,
        };
        let v = |pod: &str, priority: i32, pdbs: &[&str]| Victim {
            pod: pod.into(),
            uid: format!("uid-{pod}"),
            priority,
            violated_pdbs: pdbs.iter().map(|s| s.to_string()).collect(),
        };
        let candidates = vec![
            cand(
                "w-a",
                vec![v("batch/job-1", 100, &[]), v("web/fe-1", 0, &[])],
                0,
            ),
            cand("w-b", vec![v("batch/etl-0", 100, &["batch/etl-pdb"])], 1),
        ];
        d.preemption = Some(Preemption {
            eligible: true,
            ineligible_reason: None,
            potential_nodes: vec!["w-a".into(), "w-b".into(), "w-c".into()],
            num_potential_nodes: 3,
            nodes: BTreeMap::from([
                (
                    "w-a".into(),
                    PreemptionNode {
                        candidate: true,
                        victims: Some(candidates[0].victims.clone()),
                        num_pdb_violations: 0,
                        code: None,
                        plugin: None,
                        reasons: None,
                    },
                ),
                (
                    "w-b".into(),
                    PreemptionNode {
                        candidate: true,
                        victims: Some(candidates[1].victims.clone()),
                        num_pdb_violations: 1,
                        code: None,
                        plugin: None,
                        reasons: None,
                    },
                ),
                (
                    "w-c".into(),
                    PreemptionNode {
                        candidate: false,
                        victims: None,
                        num_pdb_violations: 0,
                        code: Some("Unschedulable".into()),
                        plugin: Some("NodeResourcesFit".into()),
                        reasons: Some(vec!["Insufficient cpu".into()]),
                    },
                ),
            ]),
            candidates,
            selected_tie_set: vec!["w-a".into()],
            upstream_select_candidate_picks: vec!["w-a".into()],
            post_filter: PostFilter {
                code: "Success".into(),
                message: None,
                clears_nominated_node_name: None,
            },
        });
        d.fit_error = Some(
            "0/4 nodes are available: 1 node(s) had untolerated taint(s), 3 Insufficient cpu."
                .into(),
        );
        let r = render(&d);
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(
            lines[2],
            "PREEMPTS on w-a — evicts 2 pods to make room; the pod is nominated to w-a"
        );
        assert_eq!(
            lines[3],
            "  victims on w-a (2 pods, 0 PDB violations), most important first:"
        );
        assert_eq!(lines[4], "    - batch/job-1 (priority 100)");
        assert_eq!(lines[5], "    - web/fe-1 (priority 0)");
        assert_eq!(lines[6], "  selected tie set: w-a");
        assert_eq!(
            lines[7],
            "  other candidates, outside the tie set (1), best first:"
        );
        assert_eq!(
            lines[8],
            "    w-b: 1 victim (highest priority 100), 1 PDB violation: batch/etl-0 (priority 100) — would violate PDB batch/etl-pdb"
        );
        assert_eq!(
            lines[9],
            "  potential nodes where preemption does not help (1):"
        );
        assert_eq!(
            lines[10],
            "    w-c: NodeResourcesFit: Insufficient cpu [Unschedulable]"
        );
        assert!(lines[11].starts_with("  fit error (before preemption): 0/4 nodes are available:"));
        assert_eq!(
            line_with(&r, "Filter:"),
            "Filter: 4 of 4 nodes rejected, 0 feasible"
        );
        assert_eq!(
            line_with(&r, "3 nodes ("),
            "  3 nodes (w-a, w-b, w-c): NodeResourcesFit: Insufficient cpu [Unschedulable]"
        );
        assert!(!r.contains("Scores"), "{r}");
    }

    #[test]
    fn large_clusters_are_grouped_and_cut_short() {
        let mut d = base(Outcome::Unschedulable, None);
        d.num_nodes = 1000;
        for i in 0..1000 {
            let v = if i < 37 {
                rejected(
                    Some("NodeResourcesFit"),
                    "Unschedulable",
                    &["Insufficient cpu"],
                    "Filter",
                )
            } else if i < 40 {
                rejected(
                    Some("NodeUnschedulable"),
                    "UnschedulableAndUnresolvable",
                    &["node(s) were unschedulable"],
                    "Filter",
                )
            } else {
                // Every other node has a distinct verdict: more groups than are shown.
                rejected(
                    Some("NodePorts"),
                    "Unschedulable",
                    &[&format!("reason {i:03}")],
                    "Filter",
                )
            };
            d.filter.insert(format!("node-{i:03}"), v);
        }
        d.preemption = Some(Preemption {
            eligible: true,
            ineligible_reason: None,
            potential_nodes: Vec::new(),
            num_potential_nodes: 0,
            nodes: BTreeMap::new(),
            candidates: Vec::new(),
            selected_tie_set: Vec::new(),
            upstream_select_candidate_picks: Vec::new(),
            post_filter: PostFilter {
                code: "Unschedulable".into(),
                message: Some("no new claims to deallocate, preemption: …".into()),
                clears_nominated_node_name: Some(true),
            },
        });
        d.fit_error = Some("0/1000 nodes are available: 37 Insufficient cpu, … .".into());
        let r = render(&d);
        assert!(
            r.contains("UNSCHEDULABLE — no node fits, and preemption cannot make one fit"),
            "{r}"
        );
        assert!(
            r.contains("  fit error: 0/1000 nodes are available: 37 Insufficient cpu"),
            "{r}"
        );
        assert_eq!(
            line_with(&r, "37 nodes"),
            "  37 nodes (node-000, node-001, node-002, … +34): NodeResourcesFit: Insufficient cpu [Unschedulable]"
        );
        assert_eq!(
            line_with(&r, "3 nodes ("),
            "  3 nodes (node-037, node-038, node-039): NodeUnschedulable: node(s) were unschedulable [UnschedulableAndUnresolvable]"
        );
        // Biggest group first.
        let filter_lines: Vec<&str> = r
            .lines()
            .skip_while(|l| !l.starts_with("Filter:"))
            .collect();
        assert_eq!(
            filter_lines[0],
            "Filter: 1000 of 1000 nodes rejected, 0 feasible"
        );
        assert!(filter_lines[1].starts_with("  37 nodes"));
        assert!(filter_lines[2].starts_with("  3 nodes"));
        // 2 big groups + 18 singletons shown, the remaining 942 verdicts summarised.
        assert_eq!(
            *filter_lines.last().unwrap(),
            "  … +942 more verdicts on 942 nodes"
        );
        assert_eq!(filter_lines.len(), 1 + GROUPS_SHOWN + 1);
        assert!(r.lines().count() < 40, "{r}");
    }

    #[test]
    fn not_eligible_and_pre_filter_rejection() {
        let mut d = base(Outcome::NotEligible, None);
        d.num_nodes = 2;
        d.preemption_policy = "Never";
        let status = StatusReport {
            code: "UnschedulableAndUnresolvable".into(),
            plugin: Some("NodeAffinity".into()),
            reasons: vec!["node(s) didn't match Pod's node affinity/selector".into()],
        };
        for n in ["a", "b"] {
            d.filter.insert(
                n.into(),
                rejected(
                    Some("NodeAffinity"),
                    "UnschedulableAndUnresolvable",
                    &["node(s) didn't match Pod's node affinity/selector"],
                    "PreFilter",
                ),
            );
        }
        d.pre_filter = Some(status);
        d.preemption = Some(Preemption {
            eligible: false,
            ineligible_reason: Some("not eligible due to preemptionPolicy=Never.".into()),
            potential_nodes: Vec::new(),
            num_potential_nodes: 0,
            nodes: BTreeMap::new(),
            candidates: Vec::new(),
            selected_tie_set: Vec::new(),
            upstream_select_candidate_picks: Vec::new(),
            post_filter: PostFilter {
                code: "Unschedulable".into(),
                message: None,
                clears_nominated_node_name: None,
            },
        });
        d.fit_error = Some(
            "0/2 nodes are available: node(s) didn't match Pod's node affinity/selector.".into(),
        );
        let r = render(&d);
        assert!(r.contains("preemptionPolicy Never"), "{r}");
        assert!(
            r.contains("NOT ELIGIBLE — no node fits, and the pod may not preempt: not eligible due to preemptionPolicy=Never.\n  fit error: 0/2 nodes are available: node(s) didn't match Pod's node affinity/selector."),
            "{r}"
        );
        assert!(r.contains("  PreFilter rejected the pod on every node: NodeAffinity: node(s) didn't match Pod's node affinity/selector [UnschedulableAndUnresolvable]"), "{r}");
        assert!(
            r.contains("  2 nodes (a, b): NodeAffinity (PreFilter): node(s) didn't match"),
            "{r}"
        );
    }

    #[test]
    fn pre_filter_result_exclusions_have_no_plugin() {
        let mut d = base(Outcome::Scheduled, Some("a"));
        d.num_nodes = 2;
        d.filter.insert("a".into(), NodeVerdict::feasible());
        d.filter.insert(
            "b".into(),
            NodeVerdict {
                feasible: false,
                code: Some("UnschedulableAndUnresolvable".into()),
                plugin: None,
                reasons: Some(vec![
                    "node(s) didn't satisfy plugin(s) [NodeAffinity]".into(),
                ]),
                source: Some("PreFilterResult"),
            },
        );
        d.num_feasible = 1;
        d.feasible_nodes = vec!["a".into()];
        d.placement = Placement {
            mode: PlacementMode::NominatedNode,
            max_score: None,
            tie_set: vec!["a".into()],
        };
        let r = render(&d);
        assert!(r.contains("mode: nominated-node"), "{r}");
        assert!(
            r.contains("  b: excluded by PreFilter: node(s) didn't satisfy plugin(s) [NodeAffinity] [UnschedulableAndUnresolvable]"),
            "{r}"
        );
    }

    #[test]
    fn names_are_cut_short() {
        assert_eq!(names::<&str>(&[], 3), "(none)");
        assert_eq!(names(&["a", "b"], 3), "a, b");
        assert_eq!(names(&["a", "b", "c", "d", "e"], 3), "a, b, c, … +2");
    }
}
