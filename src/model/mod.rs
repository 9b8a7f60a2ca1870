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

#[cfg(test)]
mod tests {
    use super::sort_pairs_later_wins;

    #[test]
    fn of_pairs_with_one_key_the_later_is_kept_as_a_map_would() {
        let mut pairs = vec![("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5), ("b", 6)];
        sort_pairs_later_wins(&mut pairs);
        assert_eq!(pairs, [("a", 5), ("b", 6), ("c", 4)]);
        let mut sorted = vec![("a", 1), ("b", 2)];
        sort_pairs_later_wins(&mut sorted);
        assert_eq!(sorted, [("a", 1), ("b", 2)]);
    }
}
