//! The checked-in metric catalogue and alert runbooks are exactly what the engine generates
//! from its definitions, so a family or rule added in Rust cannot be missing from the docs.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

#[test]
fn the_checked_in_metric_catalogue_and_runbooks_are_the_generated_ones() {
    for (subcommand, file) in [
        ("metrics-doc", "docs/METRICS.md"),
        ("runbooks", "docs/RUNBOOKS.md"),
    ] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(file);
        let checked_in = std::fs::read_to_string(path).unwrap();
        assert!(
            checked_in == rtx_testkit::engine_output(env!("CARGO_BIN_EXE_rtx-engine"), subcommand),
            "{file} is stale: run `cargo run -p rtx-engine -- {subcommand} > {file}`"
        );
    }
}
