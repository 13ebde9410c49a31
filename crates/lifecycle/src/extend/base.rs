//! [EXT-002] The image being extended: analyzed.toml's `[build-image]` or `[run-image]`
//! reference, a digest reference whose manifest and config the restorer saved as an OCI
//! layout at `<kaniko-dir>/cache/base/<digest>` (the reference's `ImageFor`). The extender
//! runs inside that image, so no layer blob is read.

use std::path::Path;

use cnb_image::{Image, ImageRef, Platform};
use cnb_platform_api::files::AnalyzedFile;

use super::error::ExtendError;
use super::inputs::{ExtendInputs, Kind};

/// The image being extended and its reference in analyzed.toml (the `base_image` arg).
#[derive(Clone, Debug)]
pub struct Base {
    /// Manifest and config, from `<kaniko-dir>/cache/base/<digest>`.
    pub image: Image,
    /// The digest reference.
    pub reference: String,
}

/// Opens the base image of `inputs.kind`.
pub fn open(inputs: &ExtendInputs) -> Result<Base, ExtendError> {
    let analyzed = AnalyzedFile::read(&inputs.analyzed_path)
        .map_err(|e| ExtendError::Analyzed(Box::new(e)))?;
    let (reference, what) = match inputs.kind {
        Kind::Build => (analyzed.build_image.map(|b| b.reference), "[build-image]"),
        Kind::Run => (analyzed.run_image.map(|r| r.reference), "[run-image]"),
    };
    let reference = reference
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ExtendError::NoImage(inputs.analyzed_path.clone(), what))?;
    let image = open_saved(&inputs.kaniko_dir, &reference, inputs.kind)?;
    // [EXT-010] Never extend for Windows.
    if image.config().os == "windows" {
        return Err(ExtendError::Windows(reference));
    }
    Ok(Base { image, reference })
}

fn open_saved(kaniko_dir: &Path, reference: &str, kind: Kind) -> Result<Image, ExtendError> {
    let base_dir = kaniko_dir.join("cache").join("base");
    let fail = |dir: &Path, source: Box<dyn std::error::Error + Send + Sync>| ExtendError::Base {
        kind: kind.name(),
        reference: reference.to_owned(),
        dir: dir.to_path_buf(),
        source,
    };
    let parsed = ImageRef::parse(reference).map_err(|e| fail(&base_dir, Box::new(e)))?;
    let digest = parsed.digest().ok_or_else(|| {
        fail(
            &base_dir,
            "not a digest reference (the restorer writes one)".into(),
        )
    })?;
    let dir = base_dir.join(digest.to_string());
    match cnb_image::store::open_layout_dir(&dir, Some(digest), &Platform::host()) {
        Ok(Some(image)) => Ok(image),
        Ok(None) => Err(fail(&dir, "no such image (was the restorer run?)".into())),
        Err(e) => Err(fail(&dir, Box::new(e))),
    }
}
