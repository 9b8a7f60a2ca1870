//! The hash function of the in-memory maps keyed by object names (the ingest indexes, a
//! snapshot's node index): foldhash, seeded once per process. These maps are hashed on
//! every applied object and every node lookup; their keys are the cluster's own names,
//! sent by authenticated writers, so the standard library's slower, flood-resistant
//! SipHash buys nothing here.

/// Builds the hasher of a name-keyed map.
pub type NameHasher = foldhash::fast::RandomState;

/// A map keyed by object names.
pub type NameMap<K, V> = std::collections::HashMap<K, V, NameHasher>;

/// A set of object names.
pub type NameSet<K> = std::collections::HashSet<K, NameHasher>;
