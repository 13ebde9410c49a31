//! The CNB launcher: the `ENTRYPOINT` of every app image, usually run as
//! `/cnb/process/<type>` (a symlink to `/cnb/lifecycle/launcher`). All logic is in `cnb-launch`.

fn main() -> std::process::ExitCode {
    cnb_launch::main()
}
