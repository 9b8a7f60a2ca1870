//! The `preemption-oracle` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use preemption_oracle::conformance;

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
    /// Runs conformance vectors (JSON lines, optionally .gz) and reports every mismatch.
    Conformance {
        /// The vectors file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Conformance { file } => {
            let lines = match conformance::read_cases(&file) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    return ExitCode::from(2);
                }
            };
            let report = conformance::run(&lines);
            for m in &report.mismatches {
                println!(
                    "MISMATCH case={} field={} expected={} got={}",
                    m.case, m.field, m.expected, m.got
                );
            }
            println!("{}", report.summary());
            if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
