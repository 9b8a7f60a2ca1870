//! `preemption-oracle generate --nodes N --pods-per-node P --seed S [--pending-pods K]
//! [--output FILE]`.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use preemption_oracle::generate::{GeneratorConfig, write_scenario};

#[derive(clap::Args)]
pub struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Pods running on every node (DaemonSet pods included).
    #[arg(long, default_value_t = 30)]
    pods_per_node: usize,
    /// Seed: the same seed and sizes always give byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Extra pods waiting in the queue (neither nodeName nor nominatedNodeName).
    #[arg(long, default_value_t = 0)]
    pending_pods: usize,
    /// Write the scenario here instead of to stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let cfg = GeneratorConfig {
        nodes: args.nodes,
        pods_per_node: args.pods_per_node,
        seed: args.seed,
        pending_pods: args.pending_pods,
    };
    let started = Instant::now();
    let result = match &args.output {
        Some(path) => File::create(path).and_then(|f| write_scenario(&cfg, BufWriter::new(f))),
        None => write_scenario(&cfg, BufWriter::new(io::stdout().lock())),
    };
    match result {
        Ok(()) => {
            if let Some(path) = &args.output {
                eprintln!(
                    "wrote {}: {} nodes, {} running pods, {} queued pods, seed {} ({:.2}s)",
                    path.display(),
                    cfg.nodes,
                    cfg.nodes * cfg.pods_per_node,
                    cfg.pending_pods,
                    cfg.seed,
                    started.elapsed().as_secs_f64()
                );
            }
            ExitCode::SUCCESS
        }
        // A closed pipe (`| head`) is not an error worth reporting.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let target = args
                .output
                .as_ref()
                .map_or("stdout".to_string(), |p| p.display().to_string());
            eprintln!("error: writing {target}: {e}");
            ExitCode::from(2)
        }
    }
}
