//! Table-driven tests: every row is checked, and one assertion reports all the rows that
//! failed, so a regression in several rows shows them all in one run.

/// Checks every row with `check` (which returns the row's failure messages, empty when it
/// passed) and panics listing every failure, with the counts, if any row failed.
pub fn assert_all_rows_pass<R>(rows: &[R], check: impl Fn(&R) -> Vec<String>) {
    let failures: Vec<String> = rows.iter().flat_map(check).collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n\n")
    );
}
