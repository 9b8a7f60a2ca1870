//! ImageLocality: favours nodes that already hold the pod's images, scaled by how widely
//! each image is spread across the cluster.

use super::{MAX_NODE_SCORE, NodeScorer};
use crate::engine::snapshot::{NodeInfo, Snapshot};
use crate::model::Pod;

pub const NAME: &str = "ImageLocality";

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub struct Scorer<'a> {
    snapshot: &'a Snapshot,
    pod: &'a Pod,
}

/// PreScore (ImageLocality has none; it always scores).
pub fn pre_score<'a>(snapshot: &'a Snapshot, pod: &'a Pod) -> Scorer<'a> {
    Scorer { snapshot, pod }
}

impl NodeScorer for Scorer<'_> {
    fn score(&self, node: &NodeInfo) -> i64 {
        let total_nodes = self.snapshot.nodes.len() as f64;
        let mut sum: i64 = 0;
        for image in &self.pod.images {
            let on_node = node
                .node
                .images
                .iter()
                .any(|i| i.names.iter().any(|n| n == image));
            if !on_node {
                continue;
            }
            if let Some(summary) = self.snapshot.image(image) {
                let spread = summary.num_nodes as f64 / total_nodes;
                sum += (summary.size as f64 * spread) as i64;
            }
        }
        let max_threshold = MAX_CONTAINER_THRESHOLD * self.pod.images.len() as i64;
        let clamped = sum.clamp(MIN_THRESHOLD, max_threshold.max(MIN_THRESHOLD));
        if max_threshold <= MIN_THRESHOLD {
            return 0;
        }
        MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
    }
}
