//! `preemption-oracle conformance FILE`: runs vectors and prints every mismatch.

use std::path::PathBuf;
use std::process::ExitCode;

use preemption_oracle::conformance;

#[derive(clap::Args)]
pub struct Args {
    /// The vectors file (`.jsonl` or `.jsonl.gz`).
    file: PathBuf,
}

pub fn run(args: Args) -> ExitCode {
    let lines = match conformance::read_cases(&args.file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file.display());
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
