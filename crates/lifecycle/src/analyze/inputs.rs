//! Input validation ([ANA-001]..[ANA-006]) and run image resolution ([ANA-017]): what the
//! reference does in `ResolveInputs` for the analyzer, before any image is opened.

use std::collections::HashMap;
use std::path::Path;

use cnb_image::ImageRef;
use cnb_platform_api::files::{RunFile, RunImageForExport, StackFile};

use super::{AnalyzeError, AnalyzeInputs, Store};

/// Whether `name` is a layout path (it starts with the layout root), which layout mode accepts
/// where a reference is expected, as the reference's layout handler does.
fn is_layout_path(name: &str, layout_root: Option<&Path>) -> bool {
    layout_root.is_some_and(|root| name.starts_with(root.to_string_lossy().as_ref()))
}

/// [ANA-001] `name` must parse as an image reference (weak validation), or be a path under
/// the layout root in layout mode.
pub(super) fn check_reference(name: &str, layout_root: Option<&Path>) -> Result<(), AnalyzeError> {
    if is_layout_path(name, layout_root) {
        return Ok(());
    }
    ImageRef::parse(name)
        .map(drop)
        .map_err(|e| AnalyzeError::InvalidReference(Box::new(e)))
}

/// [ANA-001]..[ANA-005] The output image is given; every reference parses (the previous image
/// may be anything when the daemon is used: an image ID); without the daemon, the output
/// image and its tags are on one registry. No network access.
pub(super) fn validate(
    inputs: &AnalyzeInputs,
    layout_root: Option<&Path>,
) -> Result<(), AnalyzeError> {
    if inputs.image.is_empty() {
        return Err(AnalyzeError::MissingImage);
    }
    check_reference(&inputs.image, layout_root)?;
    for tag in &inputs.tags {
        check_reference(tag, layout_root)?;
    }
    if !(inputs.daemon && layout_root.is_none()) {
        check_reference(inputs.previous_image_name(), layout_root)?;
    }
    for name in [&inputs.run_image, &inputs.cache_image]
        .into_iter()
        .flatten()
        .filter(|n| !n.is_empty())
    {
        check_reference(name, layout_root)?;
    }
    if !inputs.daemon {
        let mut registry: Option<String> = None;
        for name in std::iter::once(&inputs.image).chain(&inputs.tags) {
            // Layout paths have no registry; they were accepted above.
            let Ok(reference) = ImageRef::parse(name) else {
                continue;
            };
            match &registry {
                None => registry = Some(reference.registry().to_owned()),
                Some(known) if known != reference.registry() => {
                    return Err(AnalyzeError::MultipleRegistries);
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// The run metadata to choose from: the first `[[images]]` entry of run.toml (Platform
/// ≥ 0.12), or `[run-image]` of stack.toml. `Ok(None)` when run.toml is missing or empty.
/// `log` says when a file is missing, as the reference does.
pub(super) fn run_metadata(
    inputs: &AnalyzeInputs,
    log: bool,
) -> Result<Option<RunImageForExport>, AnalyzeError> {
    if inputs.platform_api.features().targets {
        let run = RunFile::read_if_exists(&inputs.run_path).map_err(AnalyzeError::ReadRun)?;
        let Some(run) = run else {
            if log {
                tracing::info!("No run metadata found at path {:?}", inputs.run_path);
            }
            return Ok(None);
        };
        Ok(run.images.into_iter().next())
    } else {
        let stack =
            StackFile::read_if_exists(&inputs.stack_path).map_err(AnalyzeError::ReadStack)?;
        let Some(stack) = stack else {
            if log {
                tracing::info!("No stack metadata found at path {:?}", inputs.stack_path);
            }
            return Ok(Some(RunImageForExport::default()));
        };
        Ok(Some(stack.run_image))
    }
}

/// [ANA-006] [ANA-017] The run image when `-run-image` is not given: best-mirror selection
/// among the first run.toml entry's `image` and `mirrors` (stack.toml's before 0.12) against
/// the output image's registry.
pub(super) fn resolve_run_image(
    inputs: &AnalyzeInputs,
    store: &Store,
) -> Result<String, AnalyzeError> {
    let target_registry = match ImageRef::parse(&inputs.image) {
        Ok(r) => r.registry().to_owned(),
        // A layout path as the output image: no registry to prefer.
        Err(_) => String::new(),
    };
    let Some(metadata) = run_metadata(inputs, true)? else {
        return Err(AnalyzeError::NoRunMetadata);
    };
    let chosen = best_mirror(&target_registry, &metadata, &mut |name| {
        store.readable(name)
    })?;
    tracing::debug!("Selected run image {chosen:?}");
    Ok(chosen)
}

/// [ANA-017] The reference's `BestRunImageMirrorFor`: among `[image, mirrors…]`, the first one
/// on `target_registry` that is readable, else the first readable one. Each candidate is
/// checked at most once.
pub(super) fn best_mirror(
    target_registry: &str,
    metadata: &RunImageForExport,
    readable: &mut dyn FnMut(&str) -> bool,
) -> Result<String, AnalyzeError> {
    if metadata.image.is_empty() {
        return Err(AnalyzeError::MissingRunImageMetadata);
    }
    let candidates: Vec<&str> = metadata.candidates().filter(|c| !c.is_empty()).collect();
    let mut memo: HashMap<String, bool> = HashMap::new();
    let mut check = |name: &str| -> bool {
        if let Some(known) = memo.get(name) {
            return *known;
        }
        let ok = readable(name);
        memo.insert(name.to_owned(), ok);
        ok
    };
    for candidate in &candidates {
        let same_registry = ImageRef::parse(candidate)
            .is_ok_and(|r| !target_registry.is_empty() && r.registry() == target_registry);
        if same_registry && check(candidate) {
            return Ok((*candidate).to_owned());
        }
    }
    for candidate in &candidates {
        if check(candidate) {
            return Ok((*candidate).to_owned());
        }
    }
    Err(AnalyzeError::NoAccessibleRunImage)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn md(image: &str, mirrors: &[&str]) -> RunImageForExport {
        RunImageForExport {
            image: image.to_owned(),
            mirrors: mirrors.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    #[test]
    fn ana_017_prefers_readable_mirror_on_target_registry() {
        let m = md(
            "first.example.com/run",
            &["target.example.com/run", "other.example.com/run"],
        );
        let mut seen = Vec::new();
        let chosen = best_mirror("target.example.com", &m, &mut |n| {
            seen.push(n.to_owned());
            true
        })
        .unwrap();
        assert_eq!(chosen, "target.example.com/run");
        assert_eq!(seen, ["target.example.com/run"]);
    }

    #[test]
    fn ana_017_falls_back_to_first_readable() {
        let m = md(
            "first.example.com/run",
            &["target.example.com/run", "other.example.com/run"],
        );
        let mut seen = Vec::new();
        let chosen = best_mirror("target.example.com", &m, &mut |n| {
            seen.push(n.to_owned());
            n.starts_with("other")
        })
        .unwrap();
        assert_eq!(chosen, "other.example.com/run");
        // The same-registry candidate is checked once only.
        assert_eq!(
            seen,
            [
                "target.example.com/run",
                "first.example.com/run",
                "other.example.com/run"
            ]
        );
        // Docker Hub names normalise to index.docker.io.
        let hub = md("gcr.io/x/run", &["cnbs/run"]);
        assert_eq!(
            best_mirror("index.docker.io", &hub, &mut |_| true).unwrap(),
            "cnbs/run"
        );
    }

    #[test]
    fn ana_006_no_candidate_or_none_readable() {
        let err = best_mirror("r", &md("", &[]), &mut |_| true).unwrap_err();
        assert_eq!(err.to_string(), "missing run image metadata (-run-image)");
        assert_eq!(err.exit_code(), cnb_platform_api::ExitCode::InvalidArgs);
        let err = best_mirror(
            "r",
            &md("a.example.com/run", &["b.example.com/run"]),
            &mut |_| false,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "failed to find accessible run image");
        assert_eq!(err.action(), "resolve inputs");
    }
}
