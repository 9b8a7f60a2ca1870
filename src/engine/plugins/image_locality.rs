//! ImageLocality: favours nodes that already hold the pod's images, scaled by how widely
//! each image is spread across the cluster.

use std::sync::OnceLock;

use super::{MAX_NODE_SCORE, NodeScorer};
use crate::engine::Evaluation;
use crate::engine::framework::Feasible;
use crate::engine::snapshot::{ImageSummary, NodeInfo, Snapshot};
use crate::model::Pod;

pub const NAME: &str = "ImageLocality";

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub struct Scorer<'a> {
    snapshot: &'a Snapshot,
    pod: &'a Pod,
    /// The fast path's: the feasible nodes' places in the snapshot, and per feasible
    /// node the contributions of the pod's images it holds, summed when the first node
    /// is scored (a memo may answer for every node, and then none is).
    fast: Option<(&'a [u32], OnceLock<Vec<i64>>)>,
}

/// PreScore (ImageLocality has none; it always scores). The fast path looks each image
/// up in the summary once instead of on every node, and adds its contribution to the
/// feasible nodes its summary lists, walking both lists in node order.
pub fn pre_score<'a>(
    snapshot: &'a Snapshot,
    pod: &'a Pod,
    feasible: &'a Feasible,
    evaluation: Evaluation,
) -> Scorer<'a> {
    Scorer {
        snapshot,
        pod,
        fast: (evaluation == Evaluation::Fast).then(|| (feasible.at.as_slice(), OnceLock::new())),
    }
}

/// Per feasible node (`at`: their places in the snapshot), the contributions of the
/// pod's images it holds.
fn sums(snapshot: &Snapshot, pod: &Pod, at: &[u32]) -> Vec<i64> {
    let mut sums = vec![0; at.len()];
    for summary in pod.images.iter().filter_map(|image| snapshot.image(image)) {
        let bytes = contribution(snapshot, summary);
        let mut holders = summary.nodes.iter().peekable();
        for (sum, at) in sums.iter_mut().zip(at) {
            while holders.next_if(|h| *h < at).is_some() {}
            if holders.peek() == Some(&at) {
                *sum += bytes;
            }
        }
    }
    sums
}

/// The image's size scaled by the share of nodes that hold it.
fn contribution(snapshot: &Snapshot, summary: &ImageSummary) -> i64 {
    let spread = summary.num_nodes() as f64 / snapshot.nodes.len() as f64;
    (summary.size as f64 * spread) as i64
}

fn on_node(node: &NodeInfo, image: &str) -> bool {
    node.node
        .images
        .iter()
        .any(|i| i.names.iter().any(|n| n == image))
}

impl NodeScorer for Scorer<'_> {
    fn score(&self, index: usize, node: &NodeInfo) -> i64 {
        let sum: i64 = match &self.fast {
            Some((at, made)) => made.get_or_init(|| sums(self.snapshot, self.pod, at))[index],
            None => self
                .pod
                .images
                .iter()
                .filter(|image| on_node(node, image))
                .filter_map(|image| self.snapshot.image(image))
                .map(|summary| contribution(self.snapshot, summary))
                .sum(),
        };
        let max_threshold = MAX_CONTAINER_THRESHOLD * self.pod.images.len() as i64;
        let clamped = sum.clamp(MIN_THRESHOLD, max_threshold.max(MIN_THRESHOLD));
        if max_threshold <= MIN_THRESHOLD {
            return 0;
        }
        MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::engine::test_support::*;

    fn with_images(n: Value, images: Value) -> Value {
        merge(n, json!({"status": {"images": images}}))
    }

    fn image(names: &[&str], mb: i64) -> Value {
        json!({"names": names, "sizeBytes": mb * MB})
    }

    fn running(img: &str) -> Value {
        merge(
            pod("p", "100m", ""),
            json!({"spec": {"containers": [{"name": "app", "image": img}]}}),
        )
    }

    #[test]
    fn score_scales_with_size_and_spread() {
        let big = image(&["registry.example/big:1.0"], 500);
        let s = snapshot(
            vec![
                with_images(node("a", "4", "8Gi", 110), json!([big])),
                with_images(node("b", "4", "8Gi", 110), json!([big])),
                node("c", "4", "8Gi", 110),
            ],
            vec![],
        );
        let d = decide_json(&s, &running("registry.example/big:1.0"));
        // 500 MiB × 2/3 nodes = 349525333 bytes; 100 × (that − 23 MiB) / (1000 MiB − 23 MiB) = 31.
        assert_eq!(plugin_score(&d, "a", NAME), Some(31));
        assert_eq!(plugin_score(&d, "b", NAME), Some(31));
        assert_eq!(plugin_score(&d, "c", NAME), Some(0));
    }

    #[test]
    fn untagged_images_match_latest() {
        let s = snapshot(
            vec![
                with_images(
                    node("a", "4", "8Gi", 110),
                    json!([image(&["nginx:latest"], 2000)]),
                ),
                node("b", "4", "8Gi", 110),
            ],
            vec![],
        );
        let d = decide_json(&s, &running("nginx"));
        // 2000 MiB × 1/2 = 1000 MiB: the top of the range.
        assert_eq!(plugin_score(&d, "a", NAME), Some(100));
        assert_eq!(plugin_score(&d, "b", NAME), Some(0));
        // A different tag does not match.
        let d = decide_json(&s, &running("nginx:1.27"));
        assert_eq!(plugin_score(&d, "a", NAME), Some(0));
    }

    #[test]
    fn scores_are_clamped_to_the_thresholds() {
        let s = snapshot(
            vec![
                with_images(
                    node("a", "4", "8Gi", 110),
                    json!([image(&["huge:1"], 5000), image(&["tiny:1"], 10)]),
                ),
                with_images(
                    node("b", "4", "8Gi", 110),
                    json!([image(&["huge:1"], 5000)]),
                ),
            ],
            vec![],
        );
        assert_eq!(
            plugin_score(&decide_json(&s, &running("huge:1")), "a", NAME),
            Some(100)
        );
        // 10 MiB × 1/2 is below the 23 MiB floor.
        assert_eq!(
            plugin_score(&decide_json(&s, &running("tiny:1")), "a", NAME),
            Some(0)
        );
    }

    #[test]
    fn init_containers_count_towards_the_maximum() {
        let s = snapshot(
            vec![
                with_images(node("a", "4", "8Gi", 110), json!([image(&["app:2"], 1000)])),
                with_images(node("b", "4", "8Gi", 110), json!([image(&["app:2"], 1000)])),
            ],
            vec![],
        );
        let p = merge(
            running("app:2"),
            json!({"spec": {"initContainers": [{"name": "init", "image": "busybox:1"}]}}),
        );
        // 1000 MiB of 2 × 1000 MiB: 100 × (1000 − 23) / (2000 − 23) = 49.
        assert_eq!(plugin_score(&decide_json(&s, &p), "a", NAME), Some(49));
        with_pre_filter(&s, &p, |pre| {
            for evaluation in [Evaluation::Fast, Evaluation::Straightforward] {
                let feasible = Feasible::all(&s);
                let scorer = pre_score(&s, &pre.state.pod.pod, &feasible, evaluation);
                assert_eq!(scorer.score(1, &s.nodes[1]), 49);
            }
        });
    }

    #[test]
    fn the_first_node_in_name_order_sets_the_size() {
        // Nodes arrive unsorted; "a" comes first in name order and reports 300 MiB.
        let s = snapshot(
            vec![
                with_images(
                    node("b", "4", "8Gi", 110),
                    json!([image(&["db:1", "db@sha256:1"], 600)]),
                ),
                with_images(node("a", "4", "8Gi", 110), json!([image(&["db:1"], 300)])),
                node("c", "4", "8Gi", 110),
            ],
            vec![],
        );
        assert_eq!(s.image("db:1").unwrap().size, 300 * MB);
        assert_eq!(s.image("db:1").unwrap().num_nodes(), 2);
        assert_eq!(s.image("db@sha256:1").unwrap().num_nodes(), 1);
        let d = decide_json(&s, &running("db:1"));
        // 300 MiB × 2/3 = 200 MiB: 100 × (200 − 23) / (1000 − 23) = 18 on both nodes.
        assert_eq!(plugin_score(&d, "a", NAME), Some(18));
        assert_eq!(plugin_score(&d, "b", NAME), Some(18));
    }

    #[test]
    fn a_name_listed_twice_on_one_node_counts_once() {
        let s = snapshot(
            vec![
                with_images(
                    node("a", "4", "8Gi", 110),
                    json!([image(&["x:1"], 100), image(&["x:1", "x:latest"], 100)]),
                ),
                node("b", "4", "8Gi", 110),
            ],
            vec![],
        );
        assert_eq!(s.image("x:1").unwrap().num_nodes(), 1);
    }
}
