//! Applying a [`Dockerfile`] to a root file system and an image config.
//!
//! Config instructions (`ARG`, `ENV`, `LABEL`, `USER`, `WORKDIR`, `SHELL`, and `CMD`/
//! `ENTRYPOINT` outside the spec's list) change the config and add an `empty_layer` history
//! entry. File system instructions (`RUN`, `COPY`, `ADD`, and `WORKDIR` when it creates its
//! directory) change the root; when layers are wanted, the root is snapshotted after each of
//! them and the difference becomes one layer (none when nothing changed, as kaniko does).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use cnb_image::config::{History, ImageConfig};
use cnb_layers::Compression;

use crate::copy::{self, CopyJob, Src};
use crate::dockerfile::{CopySource, CopySpec, Dockerfile, RunCommand, Step, StepKind};
use crate::error::{Error, Result, io};
use crate::expand::{self, Lookup};
use crate::ignore::DockerIgnore;
use crate::layer::{self, LayerBlob};
use crate::passwd;
use crate::run::{self, Output, Process};
use crate::snapshot::{self, Snapshot, Walker};

/// `PATH` given to `RUN` when the config has none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How to apply Dockerfiles.
#[derive(Clone)]
pub struct ApplyOptions {
    /// The root file system: `/` in place, or a directory entered with `chroot`.
    pub root: PathBuf,
    /// The build context (`context.<kind>/`, `context/` or the app dir).
    pub context: PathBuf,
    /// Build args in the caller's order (`base_image`, `build_id`, `user_id`, `group_id`,
    /// then extend-config.toml args); a later one wins.
    pub build_args: Vec<(String, String)>,
    /// Image paths never captured in layers (app, layers, platform, kaniko dirs).
    pub ignore_paths: Vec<PathBuf>,
    /// Where layer blobs go; `None` applies without snapshots (the build kind).
    pub layers_dir: Option<PathBuf>,
    /// Gzip level of layer blobs.
    pub compression: Compression,
    /// Where `RUN` output goes.
    pub output: Arc<dyn Output>,
}

/// A new layer made by an instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLayer {
    /// The blob and its digests.
    pub blob: LayerBlob,
    /// The instruction that made it.
    pub created_by: String,
}

/// The image being extended: its config (history and diffIDs included) plus what the
/// applied Dockerfiles added.
#[derive(Clone, Debug, Default)]
pub struct ImageState {
    /// The config, updated by every instruction.
    pub config: ImageConfig,
    /// New layers, bottom first.
    pub layers: Vec<NewLayer>,
    /// New history entries (also appended to `config.history`).
    pub history: Vec<History>,
}

/// What one [`apply`] reports besides the state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The `FROM` image, expanded.
    pub from: String,
    /// Instructions that were not evaluated, one message each.
    pub warnings: Vec<String>,
}

/// Applies `df` to `opts.root` and `state`.
pub fn apply(df: &Dockerfile, state: &mut ImageState, opts: &ApplyOptions) -> Result<Applied> {
    let mut ev = Evaluator::new(df, state, opts)?;
    let from = ev.from()?;
    // Docker and BuildKit give a base without `PATH` the default one, in the config.
    if !ev.env().iter().any(|(k, _)| k == "PATH") {
        set_env(&mut ev.state.config, "PATH", DEFAULT_PATH);
    }
    for step in &df.steps {
        ev.step(step)?;
    }
    Ok(Applied {
        from,
        warnings: ev.warnings,
    })
}

struct Evaluator<'a> {
    df: &'a Dockerfile,
    state: &'a mut ImageState,
    opts: &'a ApplyOptions,
    /// Declared `ARG`s of the stage with their values (`None`: declared, no value).
    args: Vec<(String, Option<String>)>,
    walker: Option<(Walker, Snapshot)>,
    ignore: DockerIgnore,
    warnings: Vec<String>,
}

/// Args then env: a variable set by `ENV` wins over an `ARG` of the same name.
struct Vars(Vec<(String, String)>);

impl Lookup for Vars {
    fn get(&self, name: &str) -> Option<String> {
        expand::find(&self.0, name)
    }
}

impl<'a> Evaluator<'a> {
    fn new(df: &'a Dockerfile, state: &'a mut ImageState, opts: &'a ApplyOptions) -> Result<Self> {
        if opts.root != std::path::Path::new("/") {
            crate::rootfs::ensure_devices(&opts.root)
                .map_err(io("creating devices in", opts.root.join("dev")))?;
        }
        let walker = match &opts.layers_dir {
            Some(dir) => {
                let mut w = Walker::new(&opts.root, &opts.ignore_paths);
                w.ignore_host_path(dir.clone());
                let snap = w.snapshot()?;
                Some((w, snap))
            }
            None => None,
        };
        Ok(Evaluator {
            df,
            state,
            opts,
            args: Vec::new(),
            walker,
            ignore: DockerIgnore::read(&opts.context),
            warnings: Vec::new(),
        })
    }

    fn err(&self, step: &Step, message: impl Into<String>) -> Error {
        Error::Instruction {
            path: self.df.path.clone(),
            line: step.line,
            message: message.into(),
        }
    }

    fn build_arg(&self, name: &str) -> Option<String> {
        expand::find(&self.opts.build_args, name)
    }

    /// The `FROM` image, expanded with the global args.
    fn from(&self) -> Result<String> {
        let mut globals: Vec<(String, String)> = Vec::new();
        for (name, default) in &self.df.global_args {
            let value = match (self.build_arg(name), default) {
                (Some(v), _) => Some(v),
                (None, Some(d)) => Some(
                    self.expand_with(&globals, d)
                        .map_err(|m| self.file_err(m))?,
                ),
                (None, None) => None,
            };
            if let Some(v) = value {
                globals.push((name.clone(), v));
            }
        }
        self.expand_with(&globals, &self.df.from)
            .map_err(|m| self.file_err(m))
    }

    fn file_err(&self, message: String) -> Error {
        Error::Parse {
            path: self.df.path.clone(),
            message,
        }
    }

    fn expand_with(&self, vars: &[(String, String)], word: &str) -> Result<String, String> {
        expand::expand_word(word, self.df.escape, &Vars(vars.to_vec()))
    }

    /// Variables visible now: declared args with values, then the config's `Env`.
    fn vars(&self) -> Vars {
        let mut v: Vec<(String, String)> = self
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        v.extend(self.env());
        Vars(v)
    }

    fn env(&self) -> Vec<(String, String)> {
        self.state
            .config
            .config
            .env
            .iter()
            .flatten()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (e.clone(), String::new()),
            })
            .collect()
    }

    fn expand(&self, step: &Step, word: &str) -> Result<String> {
        expand::expand_word(word, self.df.escape, &self.vars()).map_err(|m| self.err(step, m))
    }

    fn step(&mut self, step: &Step) -> Result<()> {
        match &step.kind {
            StepKind::Arg(words) => self.arg(step, words)?,
            StepKind::Env(raw) => {
                for (k, v) in self.pairs(step, raw, "ENV")? {
                    set_env(&mut self.state.config, &k, &v);
                }
            }
            StepKind::Label(raw) => {
                for (k, v) in self.pairs(step, raw, "LABEL")? {
                    self.state.config.set_label(k, v);
                }
            }
            StepKind::User(raw) => {
                let user = self.expand(step, raw)?;
                self.state.config.config.user = Some(user);
            }
            StepKind::Shell(argv) => {
                self.state
                    .config
                    .config
                    .other
                    .insert("Shell".into(), serde_json::json!(argv));
            }
            StepKind::Cmd(c) => {
                let argv = self.argv(c);
                self.state.config.config.cmd = Some(argv);
            }
            StepKind::Entrypoint(c) => {
                let argv = self.argv(c);
                self.state.config.config.entrypoint = Some(argv);
            }
            StepKind::Ignored(name) => {
                self.warnings.push(format!(
                    "{}:{}: {name} is not supported by the extender and was ignored",
                    self.df.path.display(),
                    step.line
                ));
                return Ok(());
            }
            StepKind::Workdir(raw) => return self.workdir(step, raw),
            StepKind::Run(c) => return self.fs_step(step, |ev| ev.run(step, c)),
            StepKind::Copy(spec) => return self.fs_step(step, |ev| ev.copy(step, spec)),
        }
        self.history(step, true);
        Ok(())
    }

    fn arg(&mut self, step: &Step, words: &[String]) -> Result<()> {
        for w in words {
            let (name, default) = match w.split_once('=') {
                Some((n, d)) => (n.to_owned(), Some(self.expand(step, d)?)),
                None => (w.clone(), None),
            };
            let value = self.build_arg(&name).or(default);
            self.args.retain(|(n, _)| *n != name);
            self.args.push((name, value));
        }
        Ok(())
    }

    /// `KEY=VALUE ...` pairs of `ENV`/`LABEL` (or the legacy `KEY VALUE`), expanded.
    fn pairs(&self, step: &Step, raw: &str, what: &str) -> Result<Vec<(String, String)>> {
        let words = expand::split_words(raw, self.df.escape);
        let Some(first) = words.first() else {
            return Err(self.err(step, format!("{what} needs at least one argument")));
        };
        if !first.contains('=') {
            let rest = raw.trim_start()[first.len()..].trim();
            if what == "LABEL" || rest.is_empty() {
                return Err(self.err(
                    step,
                    format!("{what} {first}: must be of the form KEY=VALUE"),
                ));
            }
            return Ok(vec![(self.expand(step, first)?, self.expand(step, rest)?)]);
        }
        let mut out = Vec::new();
        for w in &words {
            let Some((k, v)) = w.split_once('=') else {
                return Err(self.err(
                    step,
                    format!("{what}: can't find = in \"{w}\"; must be of the form KEY=VALUE"),
                ));
            };
            out.push((self.expand(step, k)?, self.expand(step, v)?));
        }
        Ok(out)
    }

    fn shell(&self) -> Vec<String> {
        self.state
            .config
            .config
            .other
            .get("Shell")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    fn argv(&self, c: &RunCommand) -> Vec<String> {
        match c {
            RunCommand::Exec(argv) => argv.clone(),
            RunCommand::Shell(script) => {
                let mut argv = self.shell();
                argv.push(script.clone());
                argv
            }
        }
    }

    fn workdir_path(&self) -> String {
        self.state
            .config
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    fn user(&self, step: &Step) -> Result<passwd::ExecUser> {
        let spec = self.state.config.config.user.clone().unwrap_or_default();
        passwd::resolve(&self.opts.root, &spec).map_err(|m| self.err(step, m))
    }

    fn workdir(&mut self, step: &Step, raw: &str) -> Result<()> {
        let value = self.expand(step, raw)?;
        let path = crate::rootfs::image_path(&self.workdir_path(), &value);
        self.state.config.config.working_dir = Some(path.to_string_lossy().into_owned());
        let host = crate::rootfs::resolve_follow(&self.opts.root, &path);
        if host.is_dir() {
            self.history(step, true);
            return Ok(());
        }
        let user = self.user(step)?;
        self.fs_step(step, |_| {
            std::fs::create_dir_all(&host).map_err(io("creating WORKDIR", &host))?;
            std::os::unix::fs::chown(&host, Some(user.uid), Some(user.gid))
                .map_err(io("chown", &host))
        })
    }

    /// Runs a file system instruction and captures its changes as a layer.
    fn fs_step(&mut self, step: &Step, f: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        let started = Instant::now();
        f(self)?;
        let Some((walker, before)) = self.walker.take() else {
            self.history(step, true);
            return Ok(());
        };
        let ran = started.elapsed();
        let after = walker.snapshot()?;
        let changes = snapshot::diff(&before, &after);
        let snapshotted = started.elapsed();
        let layer = match (&self.opts.layers_dir, changes.is_empty()) {
            (Some(dir), false) => Some(layer::write_layer(
                walker.root(),
                &after,
                &changes,
                dir,
                self.opts.compression,
            )?),
            _ => None,
        };
        tracing::debug!(
            line = step.line,
            entries = after.entries.len(),
            changed = changes.changed.len(),
            deleted = changes.deleted.len(),
            run_ms = ran.as_millis(),
            snapshot_ms = (snapshotted - ran).as_millis(),
            layer_ms = (started.elapsed() - snapshotted).as_millis(),
            "instruction applied"
        );
        self.walker = Some((walker, after));
        match layer {
            Some(blob) => {
                self.state
                    .config
                    .rootfs
                    .diff_ids
                    .push(blob.info.diff_id.clone());
                self.state.layers.push(NewLayer {
                    blob,
                    created_by: step.text.clone(),
                });
                self.history(step, false);
            }
            None => self.history(step, true),
        }
        Ok(())
    }

    fn history(&mut self, step: &Step, empty_layer: bool) {
        let h = History {
            created_by: Some(step.text.clone()),
            empty_layer,
            ..History::default()
        };
        self.state.config.history.push(h.clone());
        self.state.history.push(h);
    }

    /// The environment of `RUN`: the config's `Env`, declared args it does not set, a
    /// default `PATH` and the user's `HOME`. Nothing from this process's environment.
    fn run_env(&self, user: &passwd::ExecUser) -> Vec<(String, String)> {
        let mut env = self.env();
        for (k, v) in &self.args {
            if let Some(v) = v
                && !env.iter().any(|(e, _)| e == k)
            {
                env.push((k.clone(), v.clone()));
            }
        }
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        if !env.iter().any(|(k, _)| k == "HOME") {
            env.push(("HOME".into(), user.home.clone()));
        }
        env
    }

    fn run(&mut self, step: &Step, c: &RunCommand) -> Result<()> {
        let user = self.user(step)?;
        let p = Process {
            root: self.opts.root.clone(),
            argv: self.argv(c),
            env: self.run_env(&user),
            user,
            cwd: PathBuf::from(self.workdir_path()),
        };
        let status = run::run(&p, self.opts.output.as_ref())
            .map_err(|e| self.err(step, format!("starting {:?}: {e}", p.argv)))?;
        if !status.success() {
            return Err(Error::RunFailed {
                path: self.df.path.clone(),
                line: step.line,
                command: step.text.trim_start_matches("RUN").trim().to_owned(),
                status: status.to_string(),
            });
        }
        Ok(())
    }

    fn copy(&mut self, step: &Step, spec: &CopySpec) -> Result<()> {
        let what = if spec.add { "ADD" } else { "COPY" };
        let raw_dest = self.expand(step, &spec.dest)?;
        let dest = crate::rootfs::image_path(&self.workdir_path(), &raw_dest);
        let dest_is_dir = raw_dest.ends_with('/');
        let mut sources = Vec::new();
        for s in &spec.sources {
            match s {
                CopySource::Path(p) => {
                    let p = self.expand(step, p)?;
                    let found = copy::resolve_sources(&self.opts.context, &p, &self.ignore)
                        .map_err(|m| self.err(step, format!("{what} {m}")))?;
                    sources.extend(found);
                }
                CopySource::HereDoc { contents, expand } => {
                    let text = if *expand {
                        expand::expand_heredoc(contents, self.df.escape, &self.vars())
                            .map_err(|m| self.err(step, m))?
                    } else {
                        contents.clone()
                    };
                    sources.push(Src::Inline(text.into_bytes()));
                }
            }
        }
        if sources.len() > 1 && !dest_is_dir {
            return Err(self.err(
                step,
                format!("When using {what} with more than one source file, the destination must be a directory and end with a /"),
            ));
        }
        let owner = match &spec.chown {
            Some(raw) => {
                let chown = self.expand(step, raw)?;
                let u = passwd::resolve(&self.opts.root, &chown).map_err(|m| self.err(step, m))?;
                // Docker: a user without a group uses the same number as the group.
                let gid = if chown.contains(':') { u.gid } else { u.uid };
                (u.uid, gid)
            }
            None => (0, 0),
        };
        let chmod = match &spec.chmod {
            Some(raw) => Some(
                u32::from_str_radix(raw, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        self.err(step, format!("invalid --chmod={raw}: octal bits expected"))
                    })?,
            ),
            None => None,
        };
        let job = CopyJob {
            sources,
            dest,
            dest_is_dir,
            owner,
            chmod,
            extract: spec.add,
        };
        copy::copy(&self.opts.root, &job, &self.ignore).map_err(|e| self.err(step, e.to_string()))
    }
}

/// Sets `KEY=value` in the config's `Env`, replacing an existing entry in place.
fn set_env(config: &mut ImageConfig, key: &str, value: &str) {
    let env = config.config.env.get_or_insert_with(Vec::new);
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}
