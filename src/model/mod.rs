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
