//! Query latency, in process, on generated clusters (500 and 5,000 nodes × 30 pods by
//! default; see `common` for sizes):
//!
//! - `place-fit/N`: `decide_with(Options::ANSWER)` for a pod that fits (the generator's
//!   pending pod with cpu 100m / memory 128Mi); `place-fit/on-this-thread/N` the same
//!   with `decide_on_this_thread` from the bench's thread (every pass whole, no pool),
//!   and `place-fit/on-this-thread-remembering/N` with a memo kept across calls (the
//!   service's path for clusters of up to 1,024 nodes); `place-fit/remembering/N`
//!   with a memo on the pool (the service's path for bigger clusters, for a pod shape
//!   asked about before: `latency place-fit/N remembering` in the timed loop);
//! - `place-preempt/N`: the generator's pending pod, which fits nowhere and preempts;
//! - `place-batch/N`: `place_in_order` of a gang of 100 fitting pods (each sees the
//!   ones before);
//! - `pending-pods/N`: 1,000 queued pods (`pending_pods = 1000`):
//!   `pending_in_queue_order` + `place_in_order`, what the PendingPods call does.
//!
//! After each criterion group a timed loop measures the fast path and the
//! straightforward evaluation (every filter on every node, one thread) in the same
//! process and prints `latency …` lines (p50/p99) and
//! `ratio NAME/N: straightforward/fast = …x`.

mod common;

/// The allocator the service runs with (`src/bin/preemption-oracle/main.rs`), so the
/// bench measures what it serves.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use preemption_oracle::engine::memo_pool::MEMO_BUDGET;
use preemption_oracle::engine::node_local_memo::NodeLocalMemo;
use preemption_oracle::engine::sequence::{commit, pending_in_queue_order, place_in_order};
use preemption_oracle::engine::{
    Decision, Evaluation, Options, Outcome, decide_on_this_thread, decide_remembering, decide_with,
};

const STRAIGHTFORWARD: Options = Options {
    explain: false,
    evaluation: Evaluation::Straightforward,
};

fn same_answer(fast: &Decision, straightforward: &Decision, what: &str) {
    assert_eq!(
        (fast.outcome, &fast.node),
        (straightforward.outcome, &straightforward.node),
        "{what}: the fast and the straightforward evaluation disagree"
    );
}

fn place_fit(c: &mut Criterion) {
    for nodes in common::sizes() {
        if !common::selected(&format!("place-fit/{nodes}")) {
            continue;
        }
        let cl = common::cluster(nodes, 0);
        let (snapshot, pod) = (&*cl.snapshot, &cl.fitting_pod);
        let fast = decide_with(snapshot, pod, Options::ANSWER);
        assert_eq!(fast.outcome, Outcome::Scheduled, "the fitting pod must fit");
        same_answer(
            &fast,
            &decide_with(snapshot, pod, STRAIGHTFORWARD),
            "place-fit",
        );

        let mut group = c.benchmark_group("place-fit");
        group.bench_function(BenchmarkId::from_parameter(nodes), |b| {
            b.iter(|| decide_with(black_box(snapshot), black_box(pod), Options::ANSWER))
        });
        // The service's path for clusters of up to 1,024 nodes: every pass on the
        // calling thread, which is not one of the pool's.
        group.bench_function(BenchmarkId::new("on-this-thread", nodes), |b| {
            b.iter(|| {
                decide_on_this_thread(black_box(snapshot), black_box(pod), Options::ANSWER, None)
            })
        });
        // The same with a memo kept across calls, as the service keeps per cluster: the
        // pod asked about again on an unchanged cluster reuses every node-local result.
        let mut memo = NodeLocalMemo::bounded(MEMO_BUDGET);
        group.bench_function(BenchmarkId::new("on-this-thread-remembering", nodes), |b| {
            b.iter(|| {
                decide_on_this_thread(
                    black_box(snapshot),
                    black_box(pod),
                    Options::ANSWER,
                    Some(&mut memo),
                )
            })
        });
        // The service's path for bigger clusters: a memo, parallel passes.
        let mut memo = NodeLocalMemo::bounded(MEMO_BUDGET);
        group.bench_function(BenchmarkId::new("remembering", nodes), |b| {
            b.iter(|| {
                decide_remembering(
                    black_box(snapshot),
                    black_box(pod),
                    Options::ANSWER,
                    Some(&mut memo),
                )
            })
        });
        group.finish();
        let fresh = common::compare(
            &format!("place-fit/{nodes}"),
            Duration::from_secs(2),
            5,
            || decide_with(snapshot, pod, Options::ANSWER),
            || decide_with(snapshot, pod, STRAIGHTFORWARD),
        );
        let remembering = common::timed(Duration::from_secs(2), 5, 100_000, || {
            decide_remembering(snapshot, pod, Options::ANSWER, Some(&mut memo))
        });
        println!(
            "latency place-fit/{nodes} remembering: {}",
            remembering.summary()
        );
        println!(
            "ratio place-fit/{nodes}: fresh/remembering = {:.1}x (p50 vs p50)",
            fresh.quantile(0.5).as_secs_f64() / remembering.quantile(0.5).as_secs_f64()
        );
    }
}

fn place_preempt(c: &mut Criterion) {
    for nodes in common::sizes() {
        if !common::selected(&format!("place-preempt/{nodes}")) {
            continue;
        }
        let cl = common::cluster(nodes, 0);
        let (snapshot, pod) = (&*cl.snapshot, &cl.preempting_pod);
        let fast = decide_with(snapshot, pod, Options::ANSWER);
        assert_eq!(
            fast.outcome,
            Outcome::Preempts,
            "the pending pod must preempt"
        );
        let victims = fast
            .chosen_candidate()
            .map_or(0, |c| c.victim_details.len());
        println!(
            "place-preempt/{nodes}: preempts on {:?}, {victims} victim(s)",
            fast.node
        );
        same_answer(
            &fast,
            &decide_with(snapshot, pod, STRAIGHTFORWARD),
            "place-preempt",
        );

        let mut group = c.benchmark_group("place-preempt");
        group.bench_function(BenchmarkId::from_parameter(nodes), |b| {
            b.iter(|| decide_with(black_box(snapshot), black_box(pod), Options::ANSWER))
        });
        group.finish();
        common::compare(
            &format!("place-preempt/{nodes}"),
            Duration::from_secs(2),
            3,
            || decide_with(snapshot, pod, Options::ANSWER),
            || decide_with(snapshot, pod, STRAIGHTFORWARD),
        );
    }
}

fn place_batch(c: &mut Criterion) {
    for nodes in common::sizes() {
        if !common::selected(&format!("place-batch/{nodes}")) {
            continue;
        }
        let cl = common::cluster(nodes, 0);
        let snapshot = &*cl.snapshot;
        let pods = common::gang(&cl.fitting_pod_json, 100, &cl.objects);
        // Where a batch's time goes: the decisions, or the snapshot each placed pod
        // leaves for the next (`sequence::commit`; timed here on a copy of the shared
        // snapshot, which in a sequence only the first pod pays for).
        let decision = decide_with(snapshot, &pods[0], Options::ANSWER);
        assert_eq!(decision.outcome, Outcome::Scheduled, "gang pods fit");
        let decide = common::timed(Duration::from_secs(1), 5, 100_000, || {
            decide_with(snapshot, &pods[0], Options::ANSWER)
        });
        let step = common::timed(Duration::from_secs(1), 5, 100_000, || {
            commit(snapshot.clone(), &pods[0], &decision)
        });
        println!(
            "place-batch/{nodes}: one pod's decision p50 {}, copy + commit (next snapshot) p50 {}",
            common::human(decide.quantile(0.5)),
            common::human(step.quantile(0.5)),
        );

        // The timed loop first: with a slow engine one iteration can take seconds, and
        // criterion (10 samples at least) runs only when it is short enough.
        let fast = common::compare(
            &format!("place-batch/{nodes}"),
            Duration::from_secs(3),
            2,
            || {
                let decisions = place_in_order(snapshot, &pods, true, Options::ANSWER);
                assert!(
                    decisions.len() == 100
                        && decisions.iter().all(|d| d.outcome == Outcome::Scheduled),
                    "every gang pod must fit"
                );
                decisions
            },
            || place_in_order(snapshot, &pods, true, STRAIGHTFORWARD),
        );
        if common::criterion_fits(&format!("place-batch/{nodes}"), fast.quantile(0.5)) {
            let mut group = c.benchmark_group("place-batch");
            group.bench_function(BenchmarkId::from_parameter(nodes), |b| {
                b.iter(|| {
                    place_in_order(black_box(snapshot), black_box(&pods), true, Options::ANSWER)
                })
            });
            group.finish();
        }
    }
}

fn pending_pods(c: &mut Criterion) {
    for nodes in common::sizes() {
        if !common::selected(&format!("pending-pods/{nodes}")) {
            continue;
        }
        let cl = common::cluster(nodes, 1000);
        let snapshot = &*cl.snapshot;
        let run = |options: Options| {
            let pods = pending_in_queue_order(snapshot);
            place_in_order(snapshot, &pods, false, options)
        };
        // The timed loop first (its first fast run gives the classification below); with
        // a slow engine one run can take a minute, and criterion (10 samples at least)
        // runs only when it is short enough.
        let mut first = None;
        let fast = common::compare(
            &format!("pending-pods/{nodes}"),
            Duration::from_secs(3),
            1,
            || {
                let decisions = run(Options::ANSWER);
                if first.is_none() {
                    first = Some(decisions.iter().map(|d| d.outcome).collect::<Vec<_>>());
                }
                decisions
            },
            || run(STRAIGHTFORWARD),
        );
        let outcomes = first.expect("ran once");
        let expected = if common::bench_mode() {
            1000
        } else {
            outcomes.len()
        };
        assert_eq!(outcomes.len(), expected, "1,000 pending pods");
        let count = |o: Outcome| outcomes.iter().filter(|d| **d == o).count();
        println!(
            "pending-pods/{nodes}: {} scheduled, {} preempt, {} unschedulable, {} not eligible",
            count(Outcome::Scheduled),
            count(Outcome::Preempts),
            count(Outcome::Unschedulable),
            count(Outcome::NotEligible),
        );
        if common::criterion_fits(&format!("pending-pods/{nodes}"), fast.quantile(0.5)) {
            let mut group = c.benchmark_group("pending-pods");
            group.bench_function(BenchmarkId::from_parameter(nodes), |b| {
                b.iter(|| run(Options::ANSWER))
            });
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = place_fit, place_preempt, place_batch, pending_pods
}
criterion_main!(benches);
