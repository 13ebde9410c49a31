//! The `signer` phase (experimental): all behaviour lives in `cnb-lifecycle`.

fn main() -> std::process::ExitCode {
    cnb_lifecycle::cli::phases::signer()
}
