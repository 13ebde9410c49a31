//! Merging the processes of every buildpack's launch.toml into the list metadata.toml records
//! ([BLD-038]..[BLD-040]).

use std::collections::BTreeMap;

use cnb_buildpack_api::launch::Process;
use cnb_buildpack_api::{BuildpackId, ProcessType};
use cnb_platform_api::PlatformApi;
use cnb_platform_api::files::{LaunchProcess, ProcessCommand};

/// The processes seen so far, by type, and the current default type.
#[derive(Debug, Default)]
pub(crate) struct ProcessMap {
    by_type: BTreeMap<ProcessType, LaunchProcess>,
    default_type: Option<ProcessType>,
}

/// A metadata.toml process from a launch.toml process of buildpack `buildpack_id`.
pub(crate) fn launch_process(process: Process, buildpack_id: &BuildpackId) -> LaunchProcess {
    LaunchProcess {
        r#type: process.r#type,
        command: ProcessCommand::Array(process.command),
        args: process.args,
        direct: process.direct,
        default: process.default,
        buildpack_id: Some(buildpack_id.clone()),
        working_dir: process.working_dir,
        exec_env: process.exec_env,
    }
}

impl ProcessMap {
    /// Adds one buildpack's processes, in its file order.
    ///
    /// [BLD-039] A process replaces an earlier one of the same type. [BLD-040] A process marked
    /// `default` becomes the default; a process not marked `default` that redefines the
    /// current default type clears the default. Returns the warning to log for that, as the
    /// reference: only when the last change this buildpack made to the default was clearing it.
    pub fn add(&mut self, processes: Vec<LaunchProcess>) -> Option<String> {
        let mut warning = None;
        for process in processes {
            if process.default {
                self.default_type = Some(process.r#type.clone());
                warning = None;
            } else if self.default_type.as_ref() == Some(&process.r#type) {
                self.default_type = None;
                warning = Some(format!(
                    "redefining the following default process type with a process not marked as default: {}",
                    process.r#type
                ));
            }
            self.by_type.insert(process.r#type.clone(), process);
        }
        warning
    }

    /// The default process type, if any.
    #[cfg(test)]
    pub fn default_type(&self) -> Option<&ProcessType> {
        self.default_type.as_ref()
    }

    /// The final list: sorted by type, `default` cleared (the default is recorded separately),
    /// in the command form of Platform API `api` (below 0.10, extra command words move to the
    /// front of `args`).
    pub fn into_list(self, api: PlatformApi) -> (Vec<LaunchProcess>, Option<ProcessType>) {
        let list = self
            .by_type
            .into_values()
            .map(|mut p| {
                p.default = false;
                p.for_platform(api)
            })
            .collect();
        (list, self.default_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(kind: &str, bp: &str, default: bool) -> LaunchProcess {
        LaunchProcess {
            r#type: kind.parse().unwrap(),
            command: ProcessCommand::Array(vec![format!("{bp}-{kind}")]),
            args: Vec::new(),
            direct: true,
            default,
            buildpack_id: Some(bp.parse().unwrap()),
            working_dir: None,
            exec_env: Vec::new(),
        }
    }

    fn types(list: &[LaunchProcess]) -> Vec<(&str, &str)> {
        list.iter()
            .map(|p| {
                (
                    p.r#type.as_str(),
                    p.buildpack_id.as_ref().map_or("", |b| b.as_str()),
                )
            })
            .collect()
    }

    #[test]
    fn bld_039_later_buildpack_replaces_and_list_is_sorted() {
        let mut map = ProcessMap::default();
        assert_eq!(
            map.add(vec![
                process("web", "a", false),
                process("worker", "a", false)
            ]),
            None
        );
        assert_eq!(
            map.add(vec![process("web", "b", false), process("cli", "b", false)]),
            None
        );
        let (list, default) = map.into_list(PlatformApi::V0_15);
        assert_eq!(types(&list), [("cli", "b"), ("web", "b"), ("worker", "a")]);
        assert_eq!(default, None);
    }

    #[test]
    fn bld_040_last_default_wins_and_flags_are_cleared() {
        let mut map = ProcessMap::default();
        map.add(vec![process("web", "a", true)]);
        map.add(vec![process("worker", "b", true)]);
        assert_eq!(map.default_type().unwrap().as_str(), "worker");
        let (list, default) = map.into_list(PlatformApi::V0_15);
        assert_eq!(default.unwrap().as_str(), "worker");
        assert!(list.iter().all(|p| !p.default));
    }

    #[test]
    fn bld_039_non_default_redefinition_clears_the_default() {
        let mut map = ProcessMap::default();
        map.add(vec![process("web", "a", true)]);
        let warning = map.add(vec![process("web", "b", false)]).unwrap();
        assert!(warning.ends_with("not marked as default: web"), "{warning}");
        let (list, default) = map.into_list(PlatformApi::V0_15);
        assert_eq!(default, None);
        assert_eq!(types(&list), [("web", "b")]);

        // A redefinition of another type leaves the default alone.
        let mut map = ProcessMap::default();
        map.add(vec![process("web", "a", true)]);
        assert_eq!(map.add(vec![process("worker", "b", false)]), None);
        assert_eq!(map.default_type().unwrap().as_str(), "web");

        // Redefining the default as default again keeps it, from the later buildpack.
        let mut map = ProcessMap::default();
        map.add(vec![process("web", "a", true)]);
        assert_eq!(map.add(vec![process("web", "b", true)]), None);
        let (list, default) = map.into_list(PlatformApi::V0_15);
        assert_eq!(default.unwrap().as_str(), "web");
        assert_eq!(types(&list), [("web", "b")]);
    }

    #[test]
    fn a_later_default_in_the_same_buildpack_silences_the_warning() {
        let mut map = ProcessMap::default();
        map.add(vec![process("web", "a", true)]);
        let warning = map.add(vec![
            process("web", "b", false),
            process("worker", "b", true),
        ]);
        assert_eq!(warning, None);
        assert_eq!(map.default_type().unwrap().as_str(), "worker");
    }

    #[test]
    fn platform_below_0_10_folds_commands() {
        let mut map = ProcessMap::default();
        let mut web = process("web", "a", false);
        web.command = ProcessCommand::Array(vec!["bash".into(), "-c".into(), "echo".into()]);
        web.args = vec!["x".into()];
        map.add(vec![web.clone()]);
        let (list, _) = map.into_list(PlatformApi::V0_9);
        assert_eq!(list[0].command, ProcessCommand::String("bash".into()));
        assert_eq!(list[0].args, ["-c", "echo", "x"]);

        let mut map = ProcessMap::default();
        map.add(vec![web.clone()]);
        let (list, _) = map.into_list(PlatformApi::V0_10);
        assert_eq!(list[0].command, web.command);
        assert_eq!(list[0].args, ["x"]);
    }

    #[test]
    fn launch_process_carries_the_buildpack() {
        let p = Process {
            r#type: "web".parse().unwrap(),
            command: vec!["exe".into()],
            args: vec!["a".into()],
            direct: false,
            default: true,
            working_dir: Some("sub".into()),
            exec_env: vec!["test".into()],
        };
        let lp = launch_process(p, &"x/y".parse().unwrap());
        assert_eq!(lp.buildpack_id.unwrap().as_str(), "x/y");
        assert_eq!(lp.command.entries(), ["exe"]);
        assert!(lp.default && !lp.direct);
        assert_eq!(lp.working_dir.as_deref(), Some("sub"));
        assert_eq!(lp.exec_env, ["test"]);
    }
}
