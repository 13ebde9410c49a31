//! The image arguments of the exporter, creator and rebaser ([EXP-001], [RBS-001]): every name a
//! valid reference, all on one registry (the reference exempts only daemon targets, which this
//! lifecycle does not have yet); and [`check_references`], the gate every phase passes before
//! it touches the disk or the network: no image name from a flag or a file may leave the
//! layout root or address another repository than it says (see [`cnb_image::ImageRef`]).

use std::path::{Path, PathBuf};

use cnb_image::{ImageRef, LayoutStore};
use cnb_platform_api::files::{AnalyzedFile, RunFile, StackFile};
use cnb_platform_api::{Inputs, Phase};

/// Image arguments that cannot be used (exit 3 in every phase).
#[derive(Debug, thiserror::Error)]
pub enum ImageArgsError {
    /// A name that is not a valid reference.
    #[error("invalid image name {name:?}")]
    Invalid {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
    /// A name in a file that is not a valid reference.
    #[error("invalid image name {name:?} in {}", file.display())]
    InvalidInFile {
        /// The name.
        name: String,
        /// The file that holds it.
        file: PathBuf,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
    /// Names on different registries; the registries, comma-separated.
    #[error("images on different registries: {0}")]
    MultipleRegistries(String),
}

/// Parses every name and checks they share one registry.
pub fn parse_tags(images: &[String]) -> Result<Vec<ImageRef>, ImageArgsError> {
    let refs = images
        .iter()
        .map(|name| {
            ImageRef::parse(name).map_err(|source| ImageArgsError::Invalid {
                name: name.clone(),
                source: Box::new(source),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if refs.iter().any(|r| r.registry() != refs[0].registry()) {
        let registries: Vec<&str> = refs.iter().map(|r| r.registry()).collect();
        return Err(ImageArgsError::MultipleRegistries(registries.join(", ")));
    }
    Ok(refs)
}

/// The registries of `names`, each once, in the order they first appear; names that do not
/// parse are skipped. For [`cnb_image::Keychain::preresolve`] before privileges are dropped.
pub fn unique_registries<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut registries: Vec<String> = Vec::new();
    for name in names {
        if let Ok(r) = ImageRef::parse(name.as_ref())
            && !registries.iter().any(|known| known == r.registry())
        {
            registries.push(r.registry().to_owned());
        }
    }
    registries
}

/// Every image name the phase will use, from flags (image arguments, `-tag`, `-run-image`,
/// `-image`, `-previous-image`, `-cache-image`, `-build-image`) and from the files it reads
/// them from (run.toml / stack.toml images and mirrors; analyzed.toml for the restorer and
/// exporter, which read back what an earlier phase, or anyone with write access, put there),
/// is a valid reference or, in layout mode, a path under the layout root. Files that are
/// missing or do not parse are left to the phase, which reports them as it always has.
pub fn check_references(inputs: &Inputs, layout_root: Option<&Path>) -> Result<(), ImageArgsError> {
    // Daemon names may be image IDs; this lifecycle refuses the daemon later anyway.
    let daemon = inputs.daemon && layout_root.is_none();
    let flags = [
        &inputs.run_image,
        &inputs.deprecated_run_image,
        &inputs.cache_image,
        &inputs.build_image,
    ];
    let mut names: Vec<&str> = flags.into_iter().flatten().map(String::as_str).collect();
    if !daemon {
        names.extend(inputs.previous_image.as_deref());
    }
    if inputs.phase != Phase::Restorer {
        names.extend(inputs.args.iter().map(String::as_str));
    }
    names.extend(inputs.tags.iter().map(String::as_str));
    for name in names.into_iter().filter(|n| !n.is_empty()) {
        check_name(name, layout_root).map_err(|source| ImageArgsError::Invalid {
            name: name.to_owned(),
            source,
        })?;
    }
    for (file, name) in file_references(inputs, layout_root, daemon) {
        check_name(&name, layout_root).map_err(|source| ImageArgsError::InvalidInFile {
            name,
            file: file.clone(),
            source,
        })?;
    }
    Ok(())
}

/// A reference, or in layout mode also a path (or `<path>@<digest>`) under the layout root.
fn check_name(name: &str, layout_root: Option<&Path>) -> Result<(), Box<cnb_image::Error>> {
    match layout_root {
        Some(root) => LayoutStore::new(root).resolve(name).map(drop),
        None => ImageRef::parse(name).map(drop),
    }
    .map_err(Box::new)
}

/// The image names in the run.toml / stack.toml and analyzed.toml the phase reads.
fn file_references(
    inputs: &Inputs,
    layout_root: Option<&Path>,
    daemon: bool,
) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let reads_run_file = matches!(
        inputs.phase,
        Phase::Analyzer | Phase::Creator | Phase::Detector | Phase::Restorer | Phase::Exporter
    );
    if reads_run_file {
        let candidates = if inputs.platform_api.features().targets {
            RunFile::read_if_exists(&inputs.run_path)
                .ok()
                .flatten()
                .map(|run| (&inputs.run_path, run.images))
        } else {
            StackFile::read_if_exists(&inputs.stack_path)
                .ok()
                .flatten()
                .map(|stack| (&inputs.stack_path, vec![stack.run_image]))
        };
        if let Some((file, images)) = candidates {
            for image in &images {
                found.extend(image.candidates().map(|n| (file.clone(), n.to_owned())));
            }
        }
    }
    let reads_analyzed = matches!(inputs.phase, Phase::Restorer | Phase::Exporter);
    if reads_analyzed
        && !daemon
        && let Ok(analyzed) = AnalyzedFile::read(&inputs.analyzed_path)
    {
        let path = &inputs.analyzed_path;
        if let Some(run) = analyzed.run_image {
            found.push((path.clone(), run.reference));
            found.push((path.clone(), run.image));
        }
        for id in [analyzed.previous_image, analyzed.build_image]
            .into_iter()
            .flatten()
        {
            found.push((path.clone(), id.reference));
        }
    }
    found.retain(|(file, name)| {
        // Outside layout mode a path in analyzed.toml (written by a layout-mode analyzer) is
        // never turned into a directory or a URL; the phase reports it if it needs it.
        let layout_path_without_layout =
            layout_root.is_none() && file == &inputs.analyzed_path && name.starts_with('/');
        !name.is_empty() && !layout_path_without_layout
    });
    found
}
