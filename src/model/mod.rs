//! Plain data: the cluster objects the engine reads, and the small value types they are
//! made of (quantities, resource vectors, labels and selectors, taints, affinity terms).

pub mod affinity;
pub mod labels;
pub mod objects;
pub mod quantity;
pub mod resources;
pub mod selector;
pub mod taints;

pub use objects::*;

/// Sorts `(key, value)` pairs by key and keeps the later of two pairs with one key, as
/// collecting them into a map would. Pairs already in strictly increasing key order
/// (they usually come from a map) are left as they are.
pub(crate) fn sort_pairs_later_wins<K: AsRef<str>, V>(pairs: &mut Vec<(K, V)>) {
    if pairs.is_sorted_by(|a, b| a.0.as_ref() < b.0.as_ref()) {
        return;
    }
    // Reversed, a stable sort puts the later of two equal keys first, and `dedup_by`
    // keeps the first.
    pairs.reverse();
    pairs.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
    pairs.dedup_by(|a, b| a.0.as_ref() == b.0.as_ref());
}
