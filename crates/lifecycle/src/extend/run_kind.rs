//! `-kind run` ([EXT-007]..[EXT-009]): the run.Dockerfiles are applied to the run image the
//! extender runs in, each file system instruction snapshotted into a layer; the result must
//! not run as root, carries `io.buildpacks.rebasable` only when every Dockerfile set it, and
//! goes to `<extended>/run` with one history entry per new layer naming its extension. The
//! exported image's `runImage.topLayer` stays the base's top layer, because the exporter
//! takes it from the original run image.

use std::path::PathBuf;

use super::apply::{REBASABLE_LABEL, apply_all, extension_history};
use super::args::is_root;
use super::dockerfiles::ExtDockerfile;
use super::error::{ExtendError, io};
use super::inputs::ExtendInputs;
use super::{base, output};

/// What the run kind wrote.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// `<extended>/run/<digest>`.
    pub dir: PathBuf,
    /// How many layers the Dockerfiles added.
    pub new_layers: usize,
}

/// Extends the run image; see the module docs.
pub fn extend_run(
    inputs: &ExtendInputs,
    dockerfiles: &[ExtDockerfile],
) -> Result<RunOutcome, ExtendError> {
    let base::Base {
        image: base,
        reference,
    } = base::open(inputs)?;
    // Layer blobs are written beside the output (same file system: moved, not copied) and
    // never inside the root being snapshotted.
    std::fs::create_dir_all(&inputs.extended_dir).map_err(io("create", &inputs.extended_dir))?;
    let work = tempfile::Builder::new()
        .prefix(".extend-layers.")
        .tempdir_in(&inputs.extended_dir)
        .map_err(io("create a work directory in", &inputs.extended_dir))?;
    let extended = apply_all(
        inputs,
        base.config(),
        &reference,
        dockerfiles,
        Some(work.path()),
    )?;
    if is_root(&extended.config) {
        return Err(ExtendError::RootUser);
    }
    let mut config = extended.config;
    config.set_label(REBASABLE_LABEL, extended.rebasable.to_string());
    config.history = extension_history(base.config(), &extended.layers);
    // The reference zeroes the creation time of each extended config.
    config.created = Some("0001-01-01T00:00:00Z".to_owned());
    let dir = output::write_run_image(&inputs.extended_dir, &base, config, &extended.layers)?;
    tracing::info!(
        "Extended run image written to {} ({} new layers)",
        dir.display(),
        extended.layers.len()
    );
    Ok(RunOutcome {
        dir,
        new_layers: extended.layers.len(),
    })
}
