//! The `preemption-oracle` command line: one module per subcommand.

mod conformance_cmd;
mod feed_cmd;
mod generate_cmd;
mod place_cmd;
mod remote;
mod serve_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A query allocates many small, short-lived buffers from several threads at once;
/// mimalloc serves them about a third faster than glibc's malloc at 5,000 nodes
/// (BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "preemption-oracle",
    version,
    about = "Where would this pod land, and whom would it preempt? (kube-scheduler v1.35 semantics)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decides where a pod would land on a cluster state file, and whom it would preempt.
    Place(place_cmd::Args),
    /// Runs conformance vectors (JSON lines, optionally .gz) and reports every mismatch.
    Conformance(conformance_cmd::Args),
    /// Writes a deterministic synthetic cluster as a conformance-style scenario JSON.
    Generate(generate_cmd::Args),
    /// Serves the gRPC API (state in through SyncState; Place, PlaceBatch, PendingPods).
    Serve(serve_cmd::Args),
    /// Watches a Kubernetes cluster and streams its state to a remote oracle.
    Feed(feed_cmd::Args),
}

/// The Tokio runtime a subcommand runs on; on failure, the message is printed and the
/// exit code returned.
fn start_runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the runtime: {e}");
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Place(args) => place_cmd::run(args),
        Command::Conformance(args) => conformance_cmd::run(args),
        Command::Generate(args) => generate_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Feed(args) => feed_cmd::run(args),
    }
}
