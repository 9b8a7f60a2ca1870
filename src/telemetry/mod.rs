//! Telemetry: what the oracle tells operators about itself while it serves.
//!
//! - [`metrics`]: Prometheus metrics (RPCs, ingest, state held, watch re-lists) and the
//!   `/metrics` exporter;
//! - [`traces`]: the tracing subscriber, OTLP span export and W3C trace context;
//! - [`rpc`]: the tower layer that gives every gRPC call its span and its metrics.
//!
//! Query phases (snapshot, filter, score, preemption) are spans of their own, one per
//! phase per decision, opened where the work happens (`service::oracle` and
//! `engine::decide_with`) as children of the call's span.

pub mod metrics;
pub mod rpc;
pub mod traces;
