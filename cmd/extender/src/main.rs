//! The `extender` phase of the CNB lifecycle: all behaviour lives in `cnb-lifecycle`.

fn main() -> std::process::ExitCode {
    cnb_lifecycle::cli::phases::extender()
}
