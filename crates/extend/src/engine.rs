//! Applying a [`Dockerfile`] to a root file system and an image config.
//!
//! Config instructions (`ARG`, `ENV`, `LABEL`, `USER`, `WORKDIR`, `SHELL`, and `CMD`/
//! `ENTRYPOINT` outside the spec's list) change the config and add an `empty_layer` history
//! entry. File system instructions (`RUN`, `COPY`, `ADD`, and `WORKDIR` when it creates its
//! directory) change the root; when layers are wanted, the root is snapshotted after each of
//! them and the difference becomes one layer (none when nothing changed, as kaniko does).
//!
//! With a [`CacheOptions`], each file system instruction is first looked up in the replay
//! cache ([`crate::cache`]): a hit applies the cached layer to the root and appends the
//! same blob instead of executing the instruction. The build kind (no `layers_dir`) is
//! cached too, as the reference's kaniko caches it: snapshots are then taken only to fill
//! the cache, and a hit saves re-running `RUN apt-get install …` in the builder.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use cnb_image::config::{History, ImageConfig};
use cnb_layers::Compression;

use crate::cache::{self, Cache, CacheOptions, Key, KeyBuilder};
use crate::copy::{self, CopyJob, Src};
use crate::dockerfile::{CopySource, CopySpec, Dockerfile, RunCommand, Step, StepKind};
use crate::error::{Error, Result, io};
use crate::expand::{self, Lookup};
use crate::ignore::DockerIgnore;
use crate::layer::{self, LayerBlob};
use crate::passwd;
use crate::replay;
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
    /// The replay cache across builds; `None` executes every instruction.
    pub cache: Option<CacheOptions>,
    /// Leave replayed layers pending in [`ImageState::pending_replays`] when `apply` returns
    /// instead of writing them to the root. For a root that is thrown away afterwards (the
    /// run kind): a fully cached run extension then writes nothing but its output layout.
    pub lazy_replay: bool,
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
    /// Replay cache key of the last file system instruction applied to this state (`None`:
    /// the base, identified by its diffIDs): the next Dockerfile's keys continue from it.
    pub cache_key: Option<String>,
    /// Cached layers replayed into this state but not yet written to the root, bottom first.
    /// They are applied before anything reads the root (an executed instruction, a `USER`
    /// lookup in `/etc/passwd`, a `WORKDIR` check), so laziness never changes a result.
    pub pending_replays: Vec<PathBuf>,
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
        ev.traced_step(step)?;
    }
    if !opts.lazy_replay {
        ev.materialize()?;
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
    /// The walker when snapshots are taken (layers or a cache wanted), and the snapshot of
    /// the root as it is now (`None` after a replay: taken again before the next execution).
    walker: Option<(Walker, Option<Snapshot>)>,
    cache: Option<Cache>,
    /// The base's identity, where the first key starts.
    base_id: String,
    ignore: DockerIgnore,
    warnings: Vec<String>,
    /// Whether the instruction being evaluated was replayed from the cache.
    replayed: bool,
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
        let cache = opts.cache.as_ref().map(Cache::open).transpose()?;
        let walker = (opts.layers_dir.is_some() || cache.is_some()).then(|| {
            let mut w = Walker::new(&opts.root, &opts.ignore_paths);
            if let Some(dir) = &opts.layers_dir {
                w.ignore_host_path(dir.clone());
            }
            if let Some(c) = &cache {
                w.ignore_host_path(c.dir().to_path_buf());
            }
            (w, None)
        });
        let base_id = cache::base_identity(&state.config.rootfs.diff_ids);
        Ok(Evaluator {
            df,
            state,
            opts,
            args: Vec::new(),
            walker,
            cache,
            base_id,
            ignore: DockerIgnore::read(&opts.context),
            warnings: Vec::new(),
            replayed: false,
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
        self.state.config.env_pairs()
    }

    fn expand(&self, step: &Step, word: &str) -> Result<String> {
        expand::expand_word(word, self.df.escape, &self.vars()).map_err(|m| self.err(step, m))
    }

    /// [`Self::step`] in an `extend.instruction` span (build telemetry, when the phase turned
    /// it on): the keyword only, never the arguments, which may hold user data.
    fn traced_step(&mut self, step: &Step) -> Result<()> {
        let keyword = step
            .text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let mut span = cnb_telemetry::span("extend.instruction")
            .with("cnb.dockerfile.instruction", keyword)
            .with("cnb.dockerfile.line", step.line as i64);
        self.replayed = false;
        let result = self.step(step);
        span.set("cnb.cache_hit", self.replayed);
        span.record(result)
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
            StepKind::Run(c) => return self.run(step, c),
            StepKind::Copy(spec) => return self.copy(step, spec),
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

    /// Writes the pending replayed layers to the root, bottom first.
    fn materialize(&mut self) -> Result<()> {
        if self.state.pending_replays.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        for blob in std::mem::take(&mut self.state.pending_replays) {
            replay::apply_layer(&self.opts.root, &blob)?;
        }
        tracing::debug!(replay_ms = started.elapsed().as_millis(), "replayed");
        // The root changed behind the walker's back: snapshot again before the next
        // executed instruction.
        if let Some((_, snap)) = self.walker.as_mut() {
            *snap = None;
        }
        Ok(())
    }

    fn user(&mut self, step: &Step) -> Result<passwd::ExecUser> {
        self.materialize()?;
        let spec = self.state.config.config.user.clone().unwrap_or_default();
        passwd::resolve(&self.opts.root, &spec).map_err(|m| self.err(step, m))
    }

    fn workdir(&mut self, step: &Step, raw: &str) -> Result<()> {
        let value = self.expand(step, raw)?;
        let path = crate::rootfs::image_path(&self.workdir_path(), &value);
        self.state.config.config.working_dir = Some(path.to_string_lossy().into_owned());
        self.materialize()?;
        let host = crate::rootfs::resolve_follow(&self.opts.root, &path);
        if host.is_dir() {
            self.history(step, true);
            return Ok(());
        }
        let user = self.user(step)?;
        let key = self.key(|b| {
            b.field(b"WORKDIR")
                .field(path.as_os_str().as_encoded_bytes())
                .field(format!("{}:{}", user.uid, user.gid).as_bytes());
            Ok(())
        })?;
        self.fs_step(step, key, |_| {
            std::fs::create_dir_all(&host).map_err(io("creating WORKDIR", &host))?;
            std::os::unix::fs::chown(&host, Some(user.uid), Some(user.gid))
                .map_err(io("chown", &host))
        })
    }

    /// The cache key of the next file system instruction, its fields added by `fields`
    /// (`None` without a cache).
    fn key(&self, fields: impl FnOnce(&mut KeyBuilder) -> Result<()>) -> Result<Option<Key>> {
        if self.cache.is_none() {
            return Ok(None);
        }
        let parent = self.state.cache_key.as_deref().unwrap_or(&self.base_id);
        let mut b = KeyBuilder::new(parent);
        fields(&mut b)?;
        Ok(Some(b.finish()))
    }

    /// Runs a file system instruction and captures its changes as a layer, or replays it
    /// from the cache.
    fn fs_step(
        &mut self,
        step: &Step,
        key: Option<Key>,
        f: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        if let Some(key) = key.as_ref()
            && let Some(hit) = self.cache.as_ref().and_then(|c| c.lookup(key))
        {
            return self.replay(step, key, hit);
        }
        self.materialize()?;
        let started = Instant::now();
        let Some((walker, before)) = self.walker.take() else {
            f(self)?;
            self.history(step, true);
            return Ok(());
        };
        let before = match before {
            Some(snap) => snap,
            None => walker.snapshot()?,
        };
        let snapshotted = started.elapsed();
        // The walker is back in place while `f` runs, so an error leaves the state whole.
        self.walker = Some((walker, None));
        f(self)?;
        let ran = started.elapsed();
        let Some((walker, _)) = self.walker.take() else {
            return Ok(());
        };
        let after = walker.snapshot()?;
        let changes = snapshot::diff(&before, &after);
        let diffed = started.elapsed();
        let blob_dir = self
            .opts
            .layers_dir
            .as_deref()
            .or(self.cache.as_ref().map(Cache::dir));
        let layer = match (blob_dir, changes.is_empty()) {
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
            before_ms = snapshotted.as_millis(),
            run_ms = (ran - snapshotted).as_millis(),
            snapshot_ms = (diffed - ran).as_millis(),
            layer_ms = (started.elapsed() - diffed).as_millis(),
            "instruction applied"
        );
        self.walker = Some((walker, Some(after)));
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            cache.store(key, layer.as_ref(), self.opts.layers_dir.is_none());
        }
        if let Some(key) = key {
            self.state.cache_key = Some(key.0);
        }
        self.record_layer(step, layer.filter(|_| self.opts.layers_dir.is_some()));
        Ok(())
    }

    /// Appends a cached layer's blob (linked or copied into `layers_dir`) instead of executing
    /// the instruction, and queues it for the root (see [`ImageState::pending_replays`]).
    fn replay(&mut self, step: &Step, key: &Key, hit: cache::Hit) -> Result<()> {
        self.replayed = true;
        tracing::info!("Using cached layer for {}", step.text);
        let mut layer = None;
        if let Some((info, cached)) = hit.layer {
            let mut pending = cached.clone();
            if let Some(dir) = &self.opts.layers_dir {
                let path = dir.join(info.digest.digest());
                if !path.exists() && std::fs::hard_link(&cached, &path).is_err() {
                    std::fs::copy(&cached, &path).map_err(io("copying cached layer to", &path))?;
                }
                // Our own copy: a cache clean-up cannot remove it before it is applied.
                pending.clone_from(&path);
                layer = Some(LayerBlob { info, path });
            }
            self.state.pending_replays.push(pending);
        }
        self.state.cache_key = Some(key.0.clone());
        self.record_layer(step, layer);
        Ok(())
    }

    /// Appends a new layer (its diffID, the layer and a history entry), or an empty-layer
    /// history entry.
    fn record_layer(&mut self, step: &Step, layer: Option<LayerBlob>) {
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
        let key = self.key(|b| {
            let env: Vec<String> = p.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let groups: Vec<String> = p.user.groups.iter().map(u32::to_string).collect();
            b.field(b"RUN")
                .fields(&p.argv)
                .fields(&env)
                .field(format!("{}:{}", p.user.uid, p.user.gid).as_bytes())
                .fields(&groups)
                .field(p.cwd.as_os_str().as_encoded_bytes());
            Ok(())
        })?;
        self.fs_step(step, key, |ev| ev.exec(step, &p))
    }

    fn exec(&self, step: &Step, p: &Process) -> Result<()> {
        let status = run::run(p, self.opts.output.as_ref())
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
                self.materialize()?;
                let u = passwd::resolve(&self.opts.root, &chown).map_err(|m| self.err(step, m))?;
                // A UID without a group uses the same number as the GID (Docker's documented
                // rule); a user *name* without a group gets its primary group, as both of
                // docker's builders give it (differential corpus, case copy-chmod).
                let numeric = chown.parse::<u32>().is_ok();
                let gid = if chown.contains(':') || !numeric {
                    u.gid
                } else {
                    u.uid
                };
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
        let key = self.key(|b| {
            b.field(what.as_bytes())
                .field(job.dest.as_os_str().as_encoded_bytes())
                .field(&[u8::from(job.dest_is_dir)])
                .field(format!("{}:{}:{:?}", job.owner.0, job.owner.1, job.chmod).as_bytes());
            cache::hash_sources(b, &job.sources, &self.ignore)
        })?;
        self.fs_step(step, key, |ev| {
            copy::copy(&ev.opts.root, &job, &ev.ignore).map_err(|e| ev.err(step, e.to_string()))
        })
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
