//! `preemption-oracle generate --nodes N --pods-per-node P --seed S`.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    #[arg(long, default_value_t = 30)]
    pods_per_node: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(args: Args) -> ExitCode {
    let _ = (args.nodes, args.pods_per_node, args.seed);
    eprintln!("error: generate is being implemented");
    ExitCode::from(2)
}
