//! [`Labels`]: an object's labels, sorted by key and stored in one buffer.
//!
//! Queries look labels up on every node (topology keys, node affinity) and on many pods
//! (selectors). A map of separately allocated strings costs a cache miss per key
//! compared; here every key and value of an object sits in one string, so a lookup
//! reads one or two cache lines.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Index;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// An object's labels, sorted by key; at most one value per key.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels {
    /// Every key followed by its value, in key order.
    text: String,
    /// Per label: where its key ends and where its value ends in `text` (a key starts
    /// where the previous value ends).
    ends: Vec<(u32, u32)>,
}

impl Labels {
    /// No labels.
    pub const fn new() -> Labels {
        Labels {
            text: String::new(),
            ends: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Asks for the heap blocks the labels own ([`crate::prefetch`]).
    pub fn prefetch_heap(&self) {
        crate::prefetch::buffer_of(self.text.as_bytes());
        crate::prefetch::buffer_of(&self.ends);
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`th label in key order.
    fn entry(&self, i: usize) -> (&str, &str) {
        let start = if i == 0 {
            0
        } else {
            self.ends[i - 1].1 as usize
        };
        let (key_end, value_end) = self.ends[i];
        (
            &self.text[start..key_end as usize],
            &self.text[key_end as usize..value_end as usize],
        )
    }

    /// The label `key` and its value (a binary search over the sorted keys).
    pub fn get_key_value(&self, key: &str) -> Option<(&str, &str)> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = (low + high) / 2;
            let entry = self.entry(mid);
            match entry.0.cmp(key) {
                Ordering::Less => low = mid + 1,
                Ordering::Greater => high = mid,
                Ordering::Equal => return Some(entry),
            }
        }
        None
    }

    /// The value of label `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.get_key_value(key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get_key_value(key).is_some()
    }

    /// The labels in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            labels: self,
            next: 0,
        }
    }

    /// These labels with `key` set to `value`.
    pub fn with(&self, key: &str, value: &str) -> Labels {
        self.iter()
            .filter(|(k, _)| *k != key)
            .chain([(key, value)])
            .collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Labels {
    /// Labels from pairs; a later value of a key replaces an earlier one.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Labels {
        let mut pairs: Vec<(K, V)> = pairs.into_iter().collect();
        super::sort_pairs_later_wins(&mut pairs);
        Labels::from_sorted(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
    }
}

impl Labels {
    /// Labels from pairs sorted by key, each key once, copied into one buffer.
    pub(crate) fn from_sorted<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Labels {
        let (count, bytes) = pairs
            .clone()
            .fold((0, 0), |(n, b), (k, v)| (n + 1, b + k.len() + v.len()));
        let mut labels = Labels {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(count),
        };
        for (key, value) in pairs {
            labels.text.push_str(key);
            let key_end = offset(&labels.text);
            labels.text.push_str(value);
            labels.ends.push((key_end, offset(&labels.text)));
        }
        labels
    }
}

/// A position in the label text. An object's labels are limited to a few hundred
/// kilobytes by the API server, far below `u32::MAX`.
fn offset(text: &str) -> u32 {
    u32::try_from(text.len()).expect("an object's labels fit in 4 GiB")
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> From<[(K, V); N]> for Labels {
    fn from(pairs: [(K, V); N]) -> Labels {
        pairs.into_iter().collect()
    }
}

/// The labels of a [`Labels`] in key order, as `(key, value)`.
pub struct Iter<'a> {
    labels: &'a Labels,
    next: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let entry = (self.next < self.labels.len()).then(|| self.labels.entry(self.next))?;
        self.next += 1;
        Some(entry)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.labels.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl Index<&str> for Labels {
    type Output = str;

    /// The value of label `key`; panics when there is none.
    fn index(&self, key: &str) -> &str {
        self.get(key).unwrap_or_else(|| panic!("no label {key:?}"))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn lookups_follow_the_map_they_were_built_from() {
        let map: BTreeMap<String, String> = [
            ("topology.kubernetes.io/zone", "us-east-1a"),
            ("kubernetes.io/hostname", "node-1"),
            ("app", ""),
            ("node-pool", "general"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let labels: Labels = map.iter().collect();
        assert_eq!(labels.len(), map.len());
        for (k, v) in &map {
            assert_eq!(labels.get(k), Some(v.as_str()));
            assert_eq!(&labels[k.as_str()], v.as_str());
        }
        for missing in ["", "a", "zzz", "kubernetes.io/hostnam", "node-pool2"] {
            assert_eq!(labels.get(missing), None, "{missing}");
        }
        let pairs: Vec<(&str, &str)> = labels.iter().collect();
        let want: Vec<(&str, &str)> = map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, want);
    }

    #[test]
    fn empty_labels_find_nothing() {
        let labels = Labels::new();
        assert!(labels.is_empty());
        assert_eq!(labels.get(""), None);
        assert_eq!(labels.iter().count(), 0);
    }

    #[test]
    fn later_values_win_and_with_replaces_one_value() {
        let labels = Labels::from([("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(labels, Labels::from([("a", "3"), ("b", "2")]));
        let changed = labels.with("b", "9").with("c", "4");
        assert_eq!(changed, Labels::from([("a", "3"), ("b", "9"), ("c", "4")]));
    }

    #[test]
    fn serialises_as_a_map() {
        let labels = Labels::from([("b", "2"), ("a", "1")]);
        assert_eq!(
            serde_json::to_string(&labels).unwrap(),
            r#"{"a":"1","b":"2"}"#
        );
        assert_eq!(format!("{labels:?}"), r#"{"a": "1", "b": "2"}"#);
    }
}
