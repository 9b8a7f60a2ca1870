//! Per-node counts of pod labels, hashed: for every (namespace, label key, value) and
//! every (namespace, label key), how many of a node's pods that are not terminating
//! carry it. The fast path asks a node's counts whether any of its pods could match a
//! selector before it visits the pods, so counting matching pods (PodTopologySpread)
//! costs a few lookups on nodes that hold none.
//!
//! The counts are keyed by a 64-bit hash and queries read a Bloom filter of those
//! hashes (one cache line per lookup), so they can only rule pods out: an absent hash
//! means no pod carries the label; a present one may be a collision, and the caller
//! still matches the pods themselves.

use std::sync::Arc;

use crate::model::Pod;
use crate::model::selector::{Operator, Selector};

/// FNV-1a over `parts`, each followed by a separator byte no label text contains.
fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Bits of a node's label filter: four 512-bit blocks.
const FILTER_WORDS: usize = 32;

/// The filter bits for hash `h`: three bits in one 512-bit block, so that a lookup reads
/// one cache line.
fn filter_bits(h: u64) -> [(usize, u64); 3] {
    // splitmix64's finaliser spreads FNV's bits.
    let mut m = h ^ (h >> 30);
    m = m.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    m ^= m >> 27;
    m = m.wrapping_mul(0x94d0_49bb_1331_11eb);
    m ^= m >> 31;
    let block = (m & 3) as usize * 8;
    [8, 17, 26].map(|shift| {
        let bit = (m >> shift) & 511;
        (block + (bit / 64) as usize, 1u64 << (bit % 64))
    })
}

/// A node's label counts, sorted by hash, and a Bloom filter of the hashes present (the
/// part a query reads). The counts are shared between a node's versions until its pods'
/// labels change: a pod replaced by a version with the same labels (most of a watch's
/// updates) leaves them alone, and copying the node does not copy them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelCounts {
    counts: Arc<Vec<(u64, u32)>>,
    filter: [u64; FILTER_WORDS],
    /// Terminating pods, whose labels are not counted.
    terminating: u32,
}

impl Default for LabelCounts {
    fn default() -> LabelCounts {
        LabelCounts {
            counts: Arc::new(Vec::new()),
            filter: [0; FILTER_WORDS],
            terminating: 0,
        }
    }
}

impl LabelCounts {
    /// Counts `pod` in (`sign` 1) or out (`sign` -1). Terminating pods are counted,
    /// but not their labels.
    pub fn update(&mut self, pod: &Pod, sign: i64) {
        if pod.terminating {
            self.terminating = self.terminating.saturating_add_signed(sign as i32);
            return;
        }
        let mut emptied = false;
        for (key, value) in &pod.labels {
            emptied |= self.bump(hash(&[&pod.namespace, key]), sign);
            emptied |= self.bump(hash(&[&pod.namespace, key, value]), sign);
        }
        // A filter cannot forget one hash: rebuild it when a count reached zero.
        if emptied {
            self.filter = [0; FILTER_WORDS];
            for i in 0..self.counts.len() {
                self.set(self.counts[i].0);
            }
        }
    }

    /// Adds `sign` to `h`'s count; true when the count reached zero.
    fn bump(&mut self, h: u64, sign: i64) -> bool {
        let counts = Arc::make_mut(&mut self.counts);
        match counts.binary_search_by_key(&h, |e| e.0) {
            Ok(i) if sign > 0 => counts[i].1 += 1,
            Ok(i) => {
                counts[i].1 -= 1;
                if counts[i].1 == 0 {
                    counts.remove(i);
                    return true;
                }
            }
            Err(i) => {
                debug_assert!(sign > 0, "removing a label that was never counted");
                counts.insert(i, (h, 1));
                self.set(h);
            }
        }
        false
    }

    /// Whether `self` and `other` share one list of counts (neither changed it since
    /// one was copied from the other).
    #[cfg(test)]
    pub fn shares_counts_with(&self, other: &LabelCounts) -> bool {
        Arc::ptr_eq(&self.counts, &other.counts)
    }

    fn set(&mut self, h: u64) {
        for (word, bit) in filter_bits(h) {
            self.filter[word] |= bit;
        }
    }

    fn may_contain(&self, h: u64) -> bool {
        filter_bits(h)
            .iter()
            .all(|(word, bit)| self.filter[*word] & bit != 0)
    }

    /// False when no pod, terminating ones included, can match `probe`'s selector.
    pub fn any_pod_may_match(&self, probe: &Probe) -> bool {
        self.terminating > 0 || self.may_match(probe)
    }

    /// False when no counted pod can match `probe`'s selector.
    pub fn may_match(&self, probe: &Probe) -> bool {
        match probe {
            Probe::Nothing => false,
            Probe::Required(required) => required
                .iter()
                .all(|any_of| any_of.iter().any(|h| self.may_contain(*h))),
        }
    }
}

/// A selector in one namespace, as the label hashes a matching pod must carry.
#[derive(Debug, Clone)]
pub enum Probe {
    /// The selector selects nothing.
    Nothing,
    /// For each `In` or `Exists` requirement: the hashes of which a matching pod carries
    /// at least one. Empty when no requirement names a label that must be present.
    Required(Vec<Vec<u64>>),
}

impl Probe {
    pub fn new(namespace: &str, selector: &Selector) -> Probe {
        let Selector::All(requirements) = selector else {
            return Probe::Nothing;
        };
        Probe::Required(
            requirements
                .iter()
                .filter_map(|r| match r.operator {
                    Operator::In => Some(
                        r.values
                            .iter()
                            .map(|v| hash(&[namespace, &r.key, v]))
                            .collect(),
                    ),
                    Operator::Exists => Some(vec![hash(&[namespace, &r.key])]),
                    _ => None,
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::Snapshot;
    use crate::engine::test_support::*;
    use crate::model::selector::Requirement;

    fn selector(key: &str, operator: Operator, values: &[&str]) -> Selector {
        Selector::All(vec![Requirement {
            key: key.into(),
            operator,
            values: strings(values),
        }])
    }

    fn pods() -> Vec<serde_json::Value> {
        let web = |name: &str| labeled(pod(name, "100m", ""), json!({"app": "web"}));
        vec![
            bound(web("w1"), "n"),
            bound(web("w2"), "n"),
            bound(in_namespace(web("o1"), "other"), "n"),
            bound(preempted_terminating(web("gone")), "n"),
        ]
    }

    #[test]
    fn probes_rule_out_only_what_no_pod_carries() {
        let s = snapshot(vec![node("n", "4", "8Gi", 110)], pods());
        let counts = &s.nodes[0].label_counts;
        let may = |ns: &str, sel: &Selector| counts.may_match(&Probe::new(ns, sel));
        assert!(may(
            "default",
            &selector("app", Operator::In, &["db", "web"])
        ));
        assert!(may("default", &selector("app", Operator::Exists, &[])));
        assert!(!may("default", &selector("app", Operator::In, &["db"])));
        assert!(!may("elsewhere", &selector("app", Operator::Exists, &[])));
        assert!(!may("default", &Selector::Nothing));
        // Requirements that name no present label cannot rule anything out.
        assert!(may("default", &selector("app", Operator::NotIn, &["web"])));
        // A terminating pod's labels are not counted, so any pod may match.
        let any = |ns: &str, sel: &Selector| counts.any_pod_may_match(&Probe::new(ns, sel));
        assert!(any("elsewhere", &selector("app", Operator::Exists, &[])));
    }

    #[test]
    fn edits_keep_the_counts_of_a_node_built_afresh() {
        let s = snapshot(vec![node("n", "4", "8Gi", 110)], pods());
        let mut edit = s.edit();
        for p in &s.nodes[0].pods {
            if ["w1", "o1", "gone"].contains(&p.pod.name.as_str()) {
                edit.remove_pod(&p.pod);
            }
        }
        let edited: Snapshot = edit.finish();
        let kept: Vec<_> = pods()
            .into_iter()
            .filter(|p| !["w1", "o1", "gone"].contains(&p["metadata"]["name"].as_str().unwrap()))
            .collect();
        let afresh = snapshot(vec![node("n", "4", "8Gi", 110)], kept);
        assert_eq!(edited.nodes[0].label_counts, afresh.nodes[0].label_counts);
        assert_ne!(edited.nodes[0].label_counts, s.nodes[0].label_counts);
    }
}
