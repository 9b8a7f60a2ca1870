//! Runs every public conformance vector through the library and requires exact
//! agreement on every field the vectors' README lists.

use std::path::{Path, PathBuf};

use preemption_oracle::conformance;

fn shared(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance")
        .join(file)
}

fn assert_conforms(file: &str, expected_cases: usize) {
    let path = shared(file);
    let lines =
        conformance::read_cases(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        lines.len(),
        expected_cases,
        "{} should hold {expected_cases} cases",
        path.display()
    );
    let report = conformance::run(&lines);
    for m in report.mismatches.iter().take(50) {
        eprintln!(
            "MISMATCH case={} field={} expected={} got={}",
            m.case, m.field, m.expected, m.got
        );
    }
    eprintln!("{file}: {}", report.summary());
    assert_eq!(report.failed, 0, "{file}: {}", report.summary());
    assert_eq!(report.passed, expected_cases);
}

#[test]
fn public_vectors_agree_exactly() {
    assert_conforms("public.jsonl", 300);
}

#[test]
fn public_scale_vectors_agree_exactly() {
    assert_conforms("public-scale.jsonl.gz", 8);
}
