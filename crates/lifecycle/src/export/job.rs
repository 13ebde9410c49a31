//! One export, step by step ([`super::export_to`] runs them).
//!
//! [`Job::prepare`] reads the platform files, opens the run, extended and previous images,
//! plans the layers and takes out of the plan the buildpack layers unchanged since the last
//! export. [`Job::export_image`] then produces the new layers, builds the image on the run
//! image and saves it; the cache is written after it, or alongside it with `-parallel`
//! ([`CacheWriter`]). What the image export changes as it goes (the fingerprints, the daemon's
//! launch cache) is [`Mutable`], handed to it, so the job itself is only read and the cache
//! export can read it at the same time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cnb_image::{BuiltImage, Image, ImageBuilder, ImageRef, ImageStore};
use cnb_layers::{LayerInfo, Owner};
use cnb_platform_api::files::GroupFile;
use cnb_platform_api::files::analyzed::AnalyzedFile;
use cnb_platform_api::files::metadata::MetadataFile;
use cnb_platform_api::files::report::ReportFile;
use cnb_platform_api::labels::LayersMetadata;
use tracing::warn;

use super::plan::{LayerKind, PlanInputs, PlannedLayer, plan_layers};
use super::{
    ExportError, ExportInputs, Produced, add_layer, blob_dir, cache_layer_outputs, cache_layers,
    check_platform, compression, config, copy_launcher_sboms, daemon, extended, open_extended,
    open_previous, parse_daemon_images, parse_images, previously_recorded, produce_and_upload,
    reasons, save,
};
use crate::cache::{Cache, ProducedLayer, VolumeCache};
use crate::daemon::ImageTarget;
use crate::fingerprint::{Fingerprints, Probe, fingerprint};
use cnb_platform_api::files::report::RebuiltLayer;

/// A planned export: what it reads, opened once.
pub(super) struct Job<'a> {
    inputs: &'a ExportInputs,
    target: ImageTarget<'a>,
    tags: Vec<ImageRef>,
    group: GroupFile,
    analyzed: AnalyzedFile,
    metadata: MetadataFile,
    run_image: Image,
    /// The run image the extender extended (`<extended>/run`), if any.
    extended: Option<Image>,
    previous: Option<Image>,
    owner: Owner,
    planned: Vec<PlannedLayer>,
    /// Per planned layer: the directory and fingerprint of a buildpack layer to tar, for
    /// recording once it is tarred.
    fresh: Vec<Option<(PathBuf, String)>>,
    probe: Option<Probe>,
    /// Which planned layers are buildpack layers with `cache=true`.
    cached: Vec<bool>,
    /// A serial export to a store with a cache image hands the cache the gzip blobs of the
    /// `launch=true, cache=true` layers (kept on disk until then), so they are not tarred
    /// again; a volume cache gets their plain tars from the same tar stream instead. A
    /// parallel export cannot wait for them.
    share_blobs: bool,
}

/// What the image export changes as it goes.
pub(super) struct Mutable {
    fingerprints: Fingerprints,
    /// The daemon's launch cache (`-launch-cache`), opened (its staging reset) before any
    /// layer is written there.
    launch: Option<VolumeCache>,
}

/// What the image export leaves for the cache export.
pub(super) struct Exported {
    pub report: ReportFile,
    /// What the cache can take from the image export, by layer directory.
    pub cache_blobs: HashMap<PathBuf, ProducedLayer>,
    /// The blob dir, kept until the cache has taken its blobs.
    pub kept_blob_dir: Option<super::blob_dir::BlobDir>,
}

impl<'a> Job<'a> {
    pub(super) fn prepare(
        inputs: &'a ExportInputs,
        target: ImageTarget<'a>,
        cache: Option<&Cache>,
    ) -> Result<(Self, Mutable), ExportError> {
        let tags = match target {
            ImageTarget::Store(_) => parse_images(&inputs.images)?,
            ImageTarget::Daemon(_) => parse_daemon_images(&inputs.images)?,
        };
        let launch = match target.daemon() {
            Some(d) => daemon::open_launch_cache(d)?,
            None => None,
        };
        let group = GroupFile::read(&inputs.group_path).map_err(ExportError::Read)?;
        let analyzed = AnalyzedFile::read(&inputs.analyzed_path).map_err(ExportError::Read)?;
        let metadata = MetadataFile::read(&inputs.layers_dir.join("config").join("metadata.toml"))
            .map_err(ExportError::Read)?
            .for_platform(inputs.platform_api);
        let platform = crate::target_platform::from_analyzed(&analyzed);
        let run_image = open_run_image(target, &analyzed, &platform)?;
        let extended = open_extended(inputs, &analyzed)?;
        let previous = open_previous(target, &analyzed, &platform);
        if inputs.platform_api.features().sbom {
            copy_launcher_sboms(inputs)?;
        }
        let owner = Owner::new(inputs.owner.0, inputs.owner.1);
        let planned = plan_layers(&PlanInputs {
            layers_dir: &inputs.layers_dir,
            app_dir: &inputs.app_dir,
            launcher: &inputs.launcher_path,
            group: &group.group,
            metadata: &metadata,
            previous: &analyzed.metadata,
            owner,
            sbom: inputs.platform_api.features().sbom,
        })?;
        let share_blobs =
            !inputs.parallel && matches!(cache, Some(Cache::Image(_))) && target.daemon().is_none();
        let fingerprints = Fingerprints::load(&inputs.layers_dir);
        let mut job = Job {
            inputs,
            target,
            tags,
            group,
            analyzed,
            metadata,
            run_image,
            extended,
            previous,
            owner,
            cached: cache_layers(&planned),
            fresh: (0..planned.len()).map(|_| None).collect(),
            planned,
            probe: Probe::take(&inputs.layers_dir),
            share_blobs,
        };
        job.skip_unchanged(&fingerprints);
        Ok((
            job,
            Mutable {
                fingerprints,
                launch,
            },
        ))
    }

    /// Buildpack layers unchanged since the last export are taken from the previous image by
    /// their recorded diffID without being tarred again (see `fingerprint`); the others are
    /// noted in `fresh`.
    fn skip_unchanged(&mut self, fingerprints: &Fingerprints) {
        for i in 0..self.planned.len() {
            let Some((dir, print)) = self.fingerprinted(&self.planned[i]) else {
                continue;
            };
            match self.unchanged(fingerprints, &self.planned[i], &dir, &print) {
                Some(diff_id) => {
                    let layer = &mut self.planned[i];
                    tracing::debug!("Layer '{}' is unchanged since the last export", layer.id);
                    layer.source = None;
                    layer.previous_sha = Some(diff_id);
                }
                None => self.fresh[i] = Some((dir, print)),
            }
        }
    }

    /// A buildpack layer to tar: its directory and fingerprint (`None` when it cannot be
    /// fingerprinted, or is not a buildpack layer with contents).
    fn fingerprinted(&self, layer: &PlannedLayer) -> Option<(PathBuf, String)> {
        let LayerKind::Buildpack {
            buildpack, name, ..
        } = &layer.kind
        else {
            return None;
        };
        layer.source.as_ref()?;
        let dir = self
            .inputs
            .layers_dir
            .join(self.group.group[*buildpack].id.escaped())
            .join(name);
        let print = fingerprint(&dir, self.owner, self.probe.as_ref()?)?;
        Some((dir, print))
    }

    /// The diffID recorded for `dir` at `print`, when the previous image has that layer (and
    /// the target reuses it cheaply) and the label recorded it for this layer.
    fn unchanged(
        &self,
        fingerprints: &Fingerprints,
        layer: &PlannedLayer,
        dir: &Path,
        print: &str,
    ) -> Option<String> {
        let diff_id = fingerprints.diff_id(dir, print)?;
        let in_previous = diff_id
            .parse::<cnb_image::Digest>()
            .ok()
            .zip(self.previous.as_ref())
            .is_some_and(|(digest, prev)| {
                prev.layer_by_diff_id(&digest).is_some() && self.target.reuses_cheaply(&digest)
            });
        (in_previous && previously_recorded(&self.analyzed.metadata, layer, diff_id))
            .then(|| diff_id.to_string())
    }

    /// What the cache export needs, borrowed from the job.
    pub(super) fn cache_writer(&self) -> CacheWriter<'_> {
        CacheWriter(crate::cache::CacheExport {
            platform_api: self.inputs.platform_api,
            layers_dir: &self.inputs.layers_dir,
            group: &self.group.group,
            owner: self.owner,
        })
    }

    /// Produces the new layers, builds the image and saves it; writes report.toml and the
    /// fingerprints. With `staging`, a volume cache's staging also gets the plain tars of the
    /// cache layers from the same tar streams.
    pub(super) fn export_image(
        &self,
        mut state: Mutable,
        staging: Option<&VolumeCache>,
    ) -> Result<Exported, ExportError> {
        let blob_dir = blob_dir(self.inputs)?;
        let Produced {
            layers: produced,
            staged,
            mut lists,
        } = self.produce(staging, state.launch.as_ref(), blob_dir.path())?;
        let cache_blobs = self.cache_outputs(&produced, &staged);
        self.record_fingerprints(&mut state.fingerprints, &produced, &mut lists);
        let (built, rebuilt) = self.build(produced, &state.fingerprints)?;
        let mut report = self.save(&built, state.launch.take(), blob_dir.path())?;
        report.rebuild.layers = rebuilt;
        report
            .write(&self.inputs.report_path)
            .map_err(ExportError::WriteReport)?;
        if let Err(e) = state.fingerprints.save(&self.inputs.layers_dir) {
            tracing::debug!("Could not record layer fingerprints: {e}");
        }
        Ok(Exported {
            report,
            cache_blobs,
            kept_blob_dir: self.share_blobs.then_some(blob_dir),
        })
    }

    fn produce(
        &self,
        staging: Option<&VolumeCache>,
        launch: Option<&VolumeCache>,
        blob_dir: &Path,
    ) -> Result<Produced, ExportError> {
        match self.target {
            ImageTarget::Store(store) => produce_and_upload(
                store,
                self.tags.first(),
                self.previous.as_ref(),
                &self.planned,
                blob_dir,
                staging.map(|volume| (volume, self.cached.as_slice())),
                compression::for_format(self.inputs.layer_compression, self.run_image.format()),
            ),
            ImageTarget::Daemon(_) => daemon::produce_layers(&self.planned, launch, blob_dir),
        }
    }

    fn cache_outputs(
        &self,
        produced: &[Option<(LayerInfo, PathBuf)>],
        staged: &[bool],
    ) -> HashMap<PathBuf, ProducedLayer> {
        cache_layer_outputs(
            self.inputs,
            &self.group.group,
            &self.planned,
            produced,
            self.share_blobs.then_some(self.cached.as_slice()),
            staged,
            // Where the blobs will be once the image is saved: a cache image on the same
            // registry mounts them from there.
            matches!(self.target, ImageTarget::Store(ImageStore::Registry(_)))
                .then(|| self.tags.first())
                .flatten(),
        )
    }

    /// Records the fingerprints (and entry lists) of the layers just tarred, only where the
    /// tree did not change while it was tarred.
    fn record_fingerprints(
        &self,
        fingerprints: &mut Fingerprints,
        produced: &[Option<(LayerInfo, PathBuf)>],
        lists: &mut [Option<cnb_layers::EntryList>],
    ) {
        for ((slot, info), list) in self.fresh.iter().zip(produced).zip(lists) {
            let (Some((dir, before)), Some((info, _))) = (slot, info) else {
                continue;
            };
            let after = self
                .probe
                .as_ref()
                .and_then(|probe| fingerprint(dir, self.owner, probe));
            match after {
                Some(after) if &after == before => fingerprints.record(
                    dir,
                    after,
                    info.diff_id.to_string(),
                    Some(info.uncompressed_size),
                ),
                _ => fingerprints.forget(dir),
            }
            if let Some(list) = list.take() {
                fingerprints.list(dir, list);
            }
        }
    }

    /// The image: the run image (or the extended one), every planned layer (new or reused),
    /// the label and the config; and why each layer that was not reused was rebuilt.
    fn build(
        &self,
        produced: Vec<Option<(LayerInfo, PathBuf)>>,
        fingerprints: &Fingerprints,
    ) -> Result<(BuiltImage, Vec<RebuiltLayer>), ExportError> {
        let features = self.inputs.platform_api.features();
        let mut builder = ImageBuilder::from_base(&self.run_image);
        if !features.targets {
            // Before Platform 0.12 the reference writes no history.
            builder.config_mut().history.clear();
        }
        let top_layer = self
            .run_image
            .top_layer_diff_id()
            .map(ToString::to_string)
            .unwrap_or_default();
        if let Some(extended) = &self.extended {
            extended::apply(&mut builder, &self.run_image, extended)?;
        }
        let (mut label, rebuilt) =
            self.add_layers(&mut builder, produced, fingerprints, &top_layer)?;
        config::finish_label(
            &mut label,
            self.inputs,
            &self.group.group,
            &self.analyzed,
            &self.run_image,
            top_layer,
        )?;
        let base = self.extended.as_ref().unwrap_or(&self.run_image);
        config::apply(&mut builder, self.inputs, &self.metadata, &label, base)?;
        let built = builder
            .build()
            .map_err(|e| ExportError::Image(Box::new(e)))?;
        Ok((built, rebuilt))
    }

    /// Adds every planned layer; returns the label's layer records and the rebuild reasons.
    fn add_layers(
        &self,
        builder: &mut ImageBuilder,
        produced: Vec<Option<(LayerInfo, PathBuf)>>,
        fingerprints: &Fingerprints,
        top_layer: &str,
    ) -> Result<(LayersMetadata, Vec<RebuiltLayer>), ExportError> {
        let features = self.inputs.platform_api.features();
        let mut label = LayersMetadata::default();
        let why = reasons::ReasonInputs {
            previous: self.previous.as_ref(),
            previous_metadata: &self.analyzed.metadata,
            group: &self.group.group,
            exec_env: if features.exec_env {
                &self.inputs.exec_env
            } else {
                ""
            },
            run_top_layer: top_layer,
            layers_dir: &self.inputs.layers_dir,
            fingerprints,
        };
        let mut rebuilt = crate::rebuild::take_restore_reasons(&self.inputs.layers_dir);
        let daemon_layer = self.target.daemon().is_some();
        for (layer, info) in self.planned.iter().zip(produced) {
            let created_by = features.targets.then_some(layer.created_by.as_str());
            let bytes = info.as_ref().map(|(info, _)| info.compressed_size);
            let (diff_id, reused) = add_layer(
                builder,
                layer,
                info.map(|(info, path)| (info, path, daemon_layer)),
                self.previous.as_ref(),
                &self.analyzed.metadata,
                created_by,
            )?;
            if !reused {
                let reason = reasons::why(&why, layer);
                rebuilt.push(reason.report(crate::rebuild::Phase::Export, &layer.id));
            }
            crate::telemetry::export_layer(&layer.id, reused, bytes, rebuilt.last());
            config::record_layer(&mut label, &self.group.group, layer, &diff_id);
        }
        Ok((label, rebuilt))
    }

    fn save(
        &self,
        built: &BuiltImage,
        launch: Option<VolumeCache>,
        blob_dir: &Path,
    ) -> Result<ReportFile, ExportError> {
        match self.target {
            ImageTarget::Store(store) => {
                save(store, built, &self.tags, self.inputs.layout_dir.is_some())
            }
            ImageTarget::Daemon(d) => {
                let base_layers = self.run_image.config().rootfs.diff_ids.len();
                daemon::save(
                    d,
                    built,
                    (base_layers, self.previous.as_ref()),
                    &self.inputs.images,
                    launch,
                    blob_dir,
                )
            }
        }
    }
}

/// [EXP-003] The run image analyzed.toml names, for the build's target `platform` (it must
/// be one our launcher runs on).
fn open_run_image(
    target: ImageTarget<'_>,
    analyzed: &AnalyzedFile,
    platform: &cnb_image::Platform,
) -> Result<Image, ExportError> {
    let run_ref = analyzed
        .run_image
        .as_ref()
        .map(|r| r.reference.clone())
        .filter(|r| !r.is_empty())
        .ok_or(ExportError::NoRunImage)?;
    let run_image = target
        .open_read_only(&run_ref, platform)
        .map_err(|source| ExportError::OpenRunImage {
            name: run_ref.clone(),
            source,
        })?
        .ok_or_else(|| ExportError::RunImageNotFound(run_ref.clone()))?;
    check_platform(&run_ref, &run_image, &cnb_image::Platform::host())?;
    Ok(run_image)
}

/// Writes the cache; its errors are warnings only.
pub(super) struct CacheWriter<'a>(crate::cache::CacheExport<'a>);

impl CacheWriter<'_> {
    pub(super) fn write(&self, cache: Option<Cache>, blobs: &HashMap<PathBuf, ProducedLayer>) {
        let Some(mut cache) = cache else {
            return;
        };
        if let Err(e) = crate::cache::export_to(&mut cache, &self.0, blobs) {
            warn!("Failed to export cache: {}", crate::error_chain(&e));
        }
    }
}
