//! A streaming `docker load` archive writer: `<diffID hex>.tar` layer entries, then the config
//! (`<sha256 hex>.json`) and `manifest.json`, written straight into a sink (the load request
//! body) with nothing staged on disk and memory bounded by the tar writer's buffers.
//!
//! A tar entry's header carries its size, so a layer built from a directory is tarred twice:
//! once into a hasher (diffID and size), then into the archive, checking that both passes agree.
//! The second pass reads from the page cache; it costs far less than a temporary file would,
//! and the first pass of the next layer runs on another thread while a layer is being sent.
//! The config and manifest come last because they need every diffID: Docker and podman both
//! unpack the whole archive before reading `manifest.json`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};

use cnb_layers::digest::{HashReader, sha256};
use cnb_layers::gotar::{self, Header, Timestamp, WriteError, typeflag};
use cnb_layers::{Digest, LayerSource, TarInfo};
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// One layer of an image to load.
#[derive(Clone, Debug)]
pub enum Layer {
    /// Content tarred with the project's reproducible tar writer (the same bytes, hence the
    /// same diffID, as the registry exporter's uncompressed tar of the same source).
    Source {
        /// What to tar.
        source: LayerSource,
        /// For errors (the layer directory or ID).
        name: String,
    },
    /// An existing uncompressed tar (a launch cache entry); `diff_id` if already known saves a
    /// hashing pass and is checked while sending.
    Tar {
        /// The file.
        path: PathBuf,
        /// Its diffID, if known.
        diff_id: Option<Digest>,
    },
    /// A layer the daemon already has (a base-image layer). With the classic image store it is
    /// sent as an empty entry (Docker skips a layer whose chain ID it has); otherwise, or when
    /// that fails, `fallback` is sent.
    InDaemon {
        /// Its diffID.
        diff_id: Digest,
        /// The same layer's content, if available.
        fallback: Option<Box<Layer>>,
    },
}

/// What to write.
#[derive(Clone, Copy, Debug)]
pub struct Archive<'a> {
    /// The image config; its `rootfs` is replaced by the layers' diffIDs.
    pub config: &'a Value,
    /// Names for `manifest.json` `RepoTags` (`repo:tag`).
    pub repo_tags: &'a [String],
    /// Layers, base first.
    pub layers: &'a [Layer],
}

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// Layer diffIDs, base first.
    pub diff_ids: Vec<Digest>,
    /// SHA-256 of the config: the image ID with the classic store.
    pub config_digest: Digest,
    /// The config as written.
    pub config: Vec<u8>,
    /// Archive bytes written.
    pub bytes: u64,
    /// Layers sent as empty entries.
    pub omitted: usize,
}

impl Archive<'_> {
    /// Whether some layer is [`Layer::InDaemon`].
    pub fn has_daemon_layers(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(l, Layer::InDaemon { .. }))
    }

    /// Fails if a layer would have to be sent but has no content (checked before sending).
    pub fn check_sendable(&self, omit: bool) -> Result<()> {
        for layer in self.layers {
            if let Layer::InDaemon { diff_id, fallback } = layer
                && fallback.is_none()
                && !omit
            {
                return Err(Error::MissingLayer {
                    diff_id: diff_id.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Writes the archive into `sink`; with `omit`, daemon layers are empty entries.
    pub fn write(&self, omit: bool, sink: &mut dyn Write) -> Result<Written> {
        self.check_sendable(omit)?;
        let mut tar = gotar::Writer::new(Counter {
            inner: sink,
            count: 0,
        });
        let (diff_ids, omitted) = std::thread::scope(|scope| {
            let measured = spawn_measuring(scope, self.layers, omit);
            let mut diff_ids = Vec::with_capacity(self.layers.len());
            let mut sent = HashSet::new();
            let mut omitted = 0;
            for layer in self.layers {
                let (diff_id, was_omitted) = write_layer(&mut tar, layer, omit, &sent, &measured)?;
                omitted += usize::from(was_omitted);
                sent.insert(diff_id.clone());
                diff_ids.push(diff_id);
            }
            Ok::<_, Error>((diff_ids, omitted))
        })?;
        let config = config_with_diff_ids(self.config, &diff_ids)?;
        let config_digest = sha256(&config);
        let config_name = format!("{}.json", config_digest.digest());
        put_file(&mut tar, &config_name, &config)?;
        let manifest = json!([{
            "Config": config_name,
            "RepoTags": self.repo_tags,
            "Layers": diff_ids.iter().map(entry_name).collect::<Vec<_>>(),
        }]);
        put_file(&mut tar, "manifest.json", manifest.to_string().as_bytes())?;
        let out = tar.finish().map_err(|e| tar_err("archive", e))?;
        let bytes = out.count;
        Ok(Written {
            diff_ids,
            config_digest,
            config,
            bytes,
            omitted,
        })
    }
}

type TarWriter<'s> = gotar::Writer<Counter<'s>>;

/// Counts what goes through to the sink.
struct Counter<'s> {
    inner: &'s mut dyn Write,
    count: u64,
}

impl Write for Counter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The first pass over directory layers (diffID and size), in order.
type Measured = Receiver<cnb_layers::Result<TarInfo>>;

/// Runs the first (measuring) pass of the directory layers on another thread, at most one layer
/// ahead of the second pass, so that hashing layer N+1 overlaps sending layer N.
fn spawn_measuring<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    layers: &'scope [Layer],
    omit: bool,
) -> Measured {
    let (tx, rx) = mpsc::sync_channel(1);
    scope.spawn(move || {
        for source in layers.iter().filter_map(|l| sent_source(l, omit)) {
            let info = cnb_layers::write_uncompressed(source, io::sink()).map(|(info, _)| info);
            if tx.send(info).is_err() {
                return; // The writer stopped.
            }
        }
    });
    rx
}

/// The directory content that [`write_layer`] will send for `layer`, if any.
fn sent_source(layer: &Layer, omit: bool) -> Option<&LayerSource> {
    match layer {
        Layer::Source { source, .. } => Some(source),
        Layer::InDaemon { fallback, .. } if !omit => sent_source(fallback.as_deref()?, false),
        _ => None,
    }
}

/// Writes one layer entry (none if a layer with the same diffID was already written); returns
/// its diffID and whether it was sent empty.
fn write_layer(
    tar: &mut TarWriter<'_>,
    layer: &Layer,
    omit: bool,
    sent: &HashSet<Digest>,
    measured: &Measured,
) -> Result<(Digest, bool)> {
    match layer {
        Layer::InDaemon { diff_id, .. } if omit => {
            if !sent.contains(diff_id) {
                tar.write_header(&entry_header(&entry_name(diff_id), 0))
                    .map_err(|e| tar_err(&entry_name(diff_id), e))?;
            }
            Ok((diff_id.clone(), true))
        }
        Layer::InDaemon { diff_id, fallback } => {
            let fallback = fallback.as_deref().ok_or_else(|| Error::MissingLayer {
                diff_id: diff_id.to_string(),
            })?;
            let (got, _) = write_layer(tar, fallback, false, sent, measured)?;
            if &got != diff_id {
                return Err(Error::LayerChanged {
                    name: format!("{diff_id} (its content hashes to {got})"),
                });
            }
            Ok((got, false))
        }
        Layer::Source { source, name } => {
            write_source(tar, source, name, sent, measured).map(|d| (d, false))
        }
        Layer::Tar { path, diff_id } => {
            write_tar_file(tar, path, diff_id.as_ref(), sent).map(|d| (d, false))
        }
    }
}

fn write_source(
    tar: &mut TarWriter<'_>,
    source: &LayerSource,
    name: &str,
    sent: &HashSet<Digest>,
    measured: &Measured,
) -> Result<Digest> {
    let layer_err = |source| Error::Layer {
        name: name.to_owned(),
        source,
    };
    let measured = measured
        .recv()
        .map_err(|_| Error::LayerChanged {
            name: name.to_owned(),
        })?
        .map_err(layer_err)?;
    if sent.contains(&measured.diff_id) {
        return Ok(measured.diff_id);
    }
    let entry = entry_name(&measured.diff_id);
    tar.write_header(&entry_header(&entry, measured.size))
        .map_err(|e| tar_err(&entry, e))?;
    let (streamed, _) =
        cnb_layers::write_uncompressed(source, EntryWriter(tar)).map_err(layer_err)?;
    if streamed != measured {
        return Err(Error::LayerChanged {
            name: name.to_owned(),
        });
    }
    Ok(measured.diff_id)
}

fn write_tar_file(
    tar: &mut TarWriter<'_>,
    path: &Path,
    known: Option<&Digest>,
    sent: &HashSet<Digest>,
) -> Result<Digest> {
    let file_err = |source| Error::File {
        path: path.display().to_string(),
        source,
    };
    let diff_id = match known {
        Some(d) => d.clone(),
        None => {
            let mut reader = HashReader::new(File::open(path).map_err(file_err)?);
            io::copy(&mut reader, &mut io::sink()).map_err(file_err)?;
            reader.finish().0
        }
    };
    if sent.contains(&diff_id) {
        return Ok(diff_id);
    }
    let file = File::open(path).map_err(file_err)?;
    let size = file.metadata().map_err(file_err)?.len();
    let entry = entry_name(&diff_id);
    tar.write_header(&entry_header(&entry, size))
        .map_err(|e| tar_err(&entry, e))?;
    let mut reader = HashReader::new(file.take(size));
    let copied = io::copy(&mut reader, &mut EntryWriter(tar)).map_err(file_err)?;
    let (got, _) = reader.finish();
    if copied != size || got != diff_id {
        return Err(Error::LayerChanged {
            name: path.display().to_string(),
        });
    }
    Ok(diff_id)
}

/// The config with `rootfs` set to these diffIDs, serialized compactly.
fn config_with_diff_ids(config: &Value, diff_ids: &[Digest]) -> Result<Vec<u8>> {
    let mut config = config.clone();
    let object = config
        .as_object_mut()
        .ok_or_else(|| Error::Config("not a JSON object".into()))?;
    object.insert(
        "rootfs".into(),
        json!({
            "type": "layers",
            "diff_ids": diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
    );
    serde_json::to_vec(&config).map_err(|e| Error::Config(e.to_string()))
}

fn entry_name(diff_id: &Digest) -> String {
    format!("{}.tar", diff_id.digest())
}

fn entry_header(name: &str, size: u64) -> Header {
    Header {
        typeflag: typeflag::REG,
        name: name.as_bytes().to_vec(),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        mode: 0o644,
        mtime: Timestamp::from_secs(0),
        ..Header::default()
    }
}

fn put_file(tar: &mut TarWriter<'_>, name: &str, bytes: &[u8]) -> Result<()> {
    tar.write_header(&entry_header(name, bytes.len() as u64))
        .and_then(|()| tar.write_data(bytes))
        .map_err(|e| tar_err(name, e))
}

fn tar_err(name: &str, e: WriteError) -> Error {
    let source = match e {
        WriteError::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    };
    Error::File {
        path: format!("docker archive entry {name}"),
        source,
    }
}

/// Writes into the current tar entry.
struct EntryWriter<'a, 's>(&'a mut TarWriter<'s>);

impl Write for EntryWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_data(buf).map_err(|e| match e {
            WriteError::Io(e) => e,
            other => io::Error::other(format!("{other:?}")),
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
