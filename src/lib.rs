//! preemption-oracle: answers "if this pod were submitted now, where would it land, and
//! which pods would it preempt?" with kube-scheduler v1.35 semantics.
//!
//! Data flows one way: Kubernetes objects ([`kube`]) → plain model ([`model`]) →
//! immutable snapshot and decision ([`engine`]) → reports ([`report`]) and the
//! conformance comparison ([`conformance`]).

pub mod conformance;
pub mod engine;
pub mod generate;
pub mod kube;
pub mod model;
pub mod report;
