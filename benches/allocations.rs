//! Heap allocations on the ingest path, counted. Unlike times they do not move with the
//! machine, so a change that adds or removes allocations shows in one run anywhere;
//! and an allocation costs more than its call: its free, often on the reclaimer's
//! thread, and its memory's cache misses.
//!
//! On the generated cluster (`common::cluster`: 500 nodes × 30 pods, or the first size
//! of `ORACLE_BENCH_NODES`), for 1,000 bound pods sent again with their image changed,
//! each on another node (`common::spread`):
//!
//! - `decode`: `service::decode::batch` of their Kubernetes JSON text: allocations per
//!   pod, and how many blocks each decoded pod keeps;
//! - `pod-info`: a decoded pod's `PodInfo` (its requests precomputed): allocations per
//!   pod;
//! - `apply`: `ClusterState::apply` of the decoded batch to the loaded cluster (the index,
//!   a copy of each node changed, the renewed `PodInfo`s): allocations per update, on
//!   every thread.
//!
//! Run: `cargo bench --bench allocations` (prints one line per size).

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use preemption_oracle::engine::snapshot::PodInfo;
use preemption_oracle::reclaim;
use preemption_oracle::service::{decode, pb};
use preemption_oracle::store::{Batch, Change, Object, Store};

/// The service's allocator (`src/bin/preemption-oracle/main.rs`), its calls counted.
struct Counting;

/// Calls that return a block: allocations, zeroed or not, and reallocations.
static CALLS: AtomicU64 = AtomicU64::new(0);
/// Blocks allocated less blocks freed (a reallocation keeps the count).
static LIVE: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call goes to mimalloc unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        LIVE.fetch_add(1, Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        LIVE.fetch_add(1, Relaxed);
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(1, Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The allocation calls `work` makes, and the blocks it leaves allocated (signed: it
/// may free more than it allocates), all threads counted.
fn counted<T>(work: impl FnOnce() -> T) -> (T, u64, i64) {
    let (calls, live) = (CALLS.load(Relaxed), LIVE.load(Relaxed));
    let value = work();
    let kept = LIVE.load(Relaxed).wrapping_sub(live) as i64;
    (value, CALLS.load(Relaxed) - calls, kept)
}

/// Upserts of `texts`, each pod's first image changed again (the `round`th time), as
/// one SyncState message.
fn changed_pods(texts: &[String], round: u32) -> pb::SyncStateRequest {
    pb::SyncStateRequest {
        changes: texts
            .iter()
            .map(|text| common::json_upsert(common::with_image_changed(text, round)))
            .collect(),
        ..Default::default()
    }
}

fn main() {
    let nodes = common::sizes()[0];
    let cl = common::cluster(nodes, 0);
    let store = Store::new();
    let state = store.cluster_or_create("");
    state.apply(Batch::replace_with(cl.objects.clone()));
    let texts = &cl.pod_json_spread[..cl.pod_json_spread.len().min(1000)];
    let pods = texts.len() as f64;
    const ROUNDS: u32 = 3;
    let (mut decoding, mut kept, mut pod_info, mut applying) = (0, 0, 0, 0);
    for round in 1..=ROUNDS {
        let request = changed_pods(texts, round);
        reclaim::settle();
        let (batch, calls, live) = counted(|| {
            decode::batch(&request, state.priority_classes()).expect("generated pods decode")
        });
        decoding += calls;
        kept += live;
        let decoded: Vec<_> = batch
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Upsert(Object::Pod(pod)) => Some(Arc::clone(pod)),
                _ => None,
            })
            .collect();
        let (infos, calls, _) = counted(|| {
            decoded
                .iter()
                .map(|pod| PodInfo::new(Arc::clone(pod), Vec::new()))
                .collect::<Vec<_>>()
        });
        pod_info += calls;
        drop((infos, decoded));
        reclaim::settle();
        let (_, calls, _) = counted(|| state.apply(batch));
        applying += calls;
    }
    let per_pod = |n: u64| n as f64 / (pods * ROUNDS as f64);
    println!(
        "allocations/{nodes}: decode {:.1} per pod ({:.1} kept by the decoded pod), pod-info {:.1} per pod, apply {:.1} per update (batches of {pods} changed pods, each on another node; {ROUNDS} rounds)",
        per_pod(decoding),
        kept as f64 / (pods * ROUNDS as f64),
        per_pod(pod_info),
        per_pod(applying),
    );
}
