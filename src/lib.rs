//! preemption-oracle: answers "if this pod were submitted now, where would it land, and
//! which pods would it preempt?" with kube-scheduler v1.35 semantics.
//!
//! Data flows one way: Kubernetes objects ([`kube`]) → plain model ([`model`]) → the
//! ingest [`store`] and its immutable snapshots → decisions ([`engine`]) → the gRPC
//! [`service`], the CLI's [`report`] and the [`conformance`] comparison. [`generate`]
//! makes synthetic clusters for the demo and benchmarks; [`telemetry`] holds the
//! service's metrics and traces; [`pool`] is where CPU-bound work runs, [`reclaim`] where
//! replaced state is freed, and [`prefetch`] holds the cache hints given before a node
//! is copied for an edit or its replaced version freed, and ahead of preemption's
//! screens and dry runs.

pub mod conformance;
pub mod engine;
pub mod generate;
pub mod hashing;
pub mod kube;
pub mod model;
pub mod pool;
pub mod prefetch;
pub mod reclaim;
pub mod report;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod watch;
