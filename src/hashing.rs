//! The hash function of the in-memory maps keyed by object names and label values (the
//! ingest indexes, a snapshot's node index, the topology domains PodTopologySpread and
//! InterPodAffinity count per query): foldhash, seeded once per process. These maps are
//! hashed on every applied object, every node lookup and every node a query filters;
//! their keys are the cluster's own names, sent by authenticated writers, so the
//! standard library's slower, flood-resistant SipHash buys nothing here.

/// Builds the hasher of a name-keyed map.
pub type NameHasher = foldhash::fast::RandomState;

/// A map keyed by object names.
pub type NameMap<K, V> = std::collections::HashMap<K, V, NameHasher>;
