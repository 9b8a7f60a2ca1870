//! `preemption-oracle place --state FILE --pod FILE [--json]`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Cluster state: a conformance-style scenario object or a kubectl `v1 List`.
    #[arg(long)]
    state: PathBuf,
    /// The pending pod (YAML or JSON).
    #[arg(long)]
    pod: PathBuf,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> ExitCode {
    let _ = (args.state, args.pod, args.json);
    eprintln!("error: place is being implemented");
    ExitCode::from(2)
}
