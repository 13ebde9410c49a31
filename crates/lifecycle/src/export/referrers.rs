//! [experimental] The app image's launch SBOMs as OCI 1.1 referrers (`-sbom-referrers`,
//! `CNB_SBOM_REFERRERS`): after the export, one artifact manifest per SBOM format
//! (CycloneDX, SPDX, Syft) whose `subject` is the app image manifest, `artifactType` the
//! format's media type, `config` the empty descriptor, and one layer per buildpack file, so
//! that registries, oras, trivy and Harbor find the SBOMs without pulling the image. The
//! in-image SBOM layer stays as it is (pack reads it).
//!
//! A registry with the referrers API lists the artifacts itself. Without it (Distribution
//! 2.x, Debian's registry) the referrers tag schema is kept instead: an image index at the
//! tag `sha256-<hex>` of the subject, read, added to (entries of others kept, exact
//! duplicates skipped, so a rebuild with the same SBOMs leaves it unchanged) and put back.
//! In a layout, that tag is a layout directory beside the image's, as our layouts hold tags
//! (`<layout-dir>/<registry>/<repo>/sha256-<hex>`).
//!
//! The artifacts carry no timestamps: the same SBOMs give the same digests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cnb_image::registry::{BlobData, BlobToPush};
use cnb_image::{Digest, ImageRef, Layout, LayoutStore, RawManifest, RegistryClient};
use cnb_platform_api::files::GroupElement;
use cnb_platform_api::files::report::{ReferrerReport, ReportFile};
use serde_json::{Value, json};

const EMPTY_CONFIG: &[u8] = b"{}";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const TITLE: &str = "org.opencontainers.image.title";
const BUILDPACK: &str = "io.buildpacks.buildpack.id";

/// The SBOM formats the spec names, by file name, with their media types.
const FORMATS: [(&str, &str); 3] = [
    ("sbom.cdx.json", "application/vnd.cyclonedx+json"),
    ("sbom.spdx.json", "application/spdx+json"),
    ("sbom.syft.json", "application/vnd.syft+json"),
];

/// Why the SBOMs could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum ReferrersError {
    /// An SBOM file could not be read.
    #[error("read SBOM {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The image or an artifact could not be read or written.
    #[error(transparent)]
    Image(Box<cnb_image::Error>),
    /// The app image was not where the export put it.
    #[error("image {0} not found after the export")]
    NotFound(String),
    /// The referrers tag holds something other than an image index: the distribution spec
    /// has the client report it and write nothing rather than replace it.
    #[error("referrers tag {tag} holds {what}, not an image index; leaving it as it is")]
    FallbackNotIndex {
        /// The tag.
        tag: String,
        /// What is there.
        what: String,
    },
}

impl From<cnb_image::Error> for ReferrersError {
    fn from(e: cnb_image::Error) -> Self {
        ReferrersError::Image(Box::new(e))
    }
}

/// One artifact to attach.
pub struct Artifact {
    /// The SBOM media type.
    pub artifact_type: &'static str,
    /// The artifact manifest.
    pub manifest: RawManifest,
    /// The SBOM files (the layers), in the manifest's order: streamed, never held in memory.
    pub layers: Vec<SbomBlob>,
}

/// One SBOM file and the digest and size it had when hashed (a registry or the layout copy
/// checks the digest again, so a file that changes in between fails the push).
pub struct SbomBlob {
    /// The file.
    pub path: PathBuf,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// The largest fallback index read (the distribution spec's floor for manifest sizes a
/// registry accepts): a bigger one could not be put back anyway.
const MAX_FALLBACK_INDEX: usize = 4 * 1024 * 1024;

/// One attached artifact, for report.toml.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// The artifact manifest's digest.
    pub digest: Digest,
    /// Its `artifactType`.
    pub artifact_type: String,
}

/// The launch SBOMs the exporter left under `<layers>/sbom/launch/<escaped ID>/`, and the
/// buildpack IDs of those directories.
pub struct LaunchSboms {
    launch: PathBuf,
    /// Escaped ID (`acme_runtime`) to ID (`acme/runtime`), from the group.
    ids: BTreeMap<String, String>,
}

impl LaunchSboms {
    /// The SBOMs of `layers_dir`, written by the buildpacks of `group`.
    pub fn new(layers_dir: &Path, group: &[GroupElement]) -> Self {
        LaunchSboms {
            launch: layers_dir.join("sbom").join("launch"),
            ids: group
                .iter()
                .map(|e| (e.id.escaped(), e.id.to_string()))
                .collect(),
        }
    }

    /// The ID of the buildpack whose SBOMs are in `dir`: the group's (IDs may hold `_`, so
    /// the escaping cannot be undone in general), else `dir` with `_` as `/` (the lifecycle's
    /// own `buildpacksio_lifecycle`).
    fn buildpack_id(&self, dir: &str) -> String {
        self.ids
            .get(dir)
            .cloned()
            .unwrap_or_else(|| dir.replace('_', "/"))
    }
}

/// The launch SBOMs as one artifact per format, each with `subject` (the app image manifest's
/// descriptor). No SBOM of a format, no artifact.
pub fn artifacts(sboms: &LaunchSboms, subject: &Value) -> Result<Vec<Artifact>, ReferrersError> {
    let launch = &sboms.launch;
    let mut files = Vec::new();
    crate::sign::sbom::collect_files(launch, &mut files).map_err(|source| {
        ReferrersError::Read {
            path: launch.clone(),
            source,
        }
    })?;
    files.sort();
    let mut out = Vec::new();
    for (name, media_type) in FORMATS {
        let of_format: Vec<&PathBuf> = files
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| n == name))
            .collect();
        if of_format.is_empty() {
            continue;
        }
        out.push(artifact(sboms, &of_format, media_type, subject)?);
    }
    Ok(out)
}

fn artifact(
    sboms: &LaunchSboms,
    files: &[&PathBuf],
    media_type: &'static str,
    subject: &Value,
) -> Result<Artifact, ReferrersError> {
    let mut layers = Vec::with_capacity(files.len());
    let mut descriptors = Vec::with_capacity(files.len());
    for path in files {
        let (digest, size) =
            cnb_image::digest::sha256_file(path).map_err(|source| ReferrersError::Read {
                path: (*path).clone(),
                source,
            })?;
        let rel = path.strip_prefix(&sboms.launch).unwrap_or(path);
        let buildpack = rel
            .components()
            .next()
            .map(|c| sboms.buildpack_id(&c.as_os_str().to_string_lossy()))
            .unwrap_or_default();
        descriptors.push(json!({
            "mediaType": media_type,
            "digest": digest.to_string(),
            "size": size,
            "annotations": { TITLE: rel.to_string_lossy(), BUILDPACK: buildpack },
        }));
        layers.push(SbomBlob {
            path: (*path).clone(),
            digest,
            size,
        });
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": media_type,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": cnb_image::digest::sha256(EMPTY_CONFIG).to_string(),
            "size": EMPTY_CONFIG.len(),
        },
        "layers": descriptors,
        "subject": subject,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    Ok(Artifact {
        artifact_type: media_type,
        manifest: RawManifest::new(bytes, Some(MANIFEST_MEDIA_TYPE)),
        layers,
    })
}

/// The descriptor of a manifest, as `subject` and index entries write it.
fn descriptor(manifest: &RawManifest, artifact_type: Option<&str>) -> Value {
    let mut d = json!({
        "mediaType": manifest.media_type,
        "digest": manifest.digest.to_string(),
        "size": manifest.bytes.len(),
    });
    if let Some(t) = artifact_type {
        d["artifactType"] = json!(t);
    }
    d
}

/// The fallback tag of `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.digest())
}

/// The entries of the fallback index at `tag`, or why it is not one (a manifest, invalid
/// JSON, no `manifests` list, too big).
fn fallback_entries(tag: &str, existing: &RawManifest) -> Result<Vec<Value>, ReferrersError> {
    let refuse = |what: String| ReferrersError::FallbackNotIndex {
        tag: tag.to_owned(),
        what,
    };
    if existing.bytes.len() > MAX_FALLBACK_INDEX {
        return Err(refuse(format!("{} bytes", existing.bytes.len())));
    }
    if !existing.is_index() {
        return Err(refuse(format!("a {}", existing.media_type)));
    }
    let doc: Value = serde_json::from_slice(&existing.bytes)
        .map_err(|e| refuse(format!("invalid JSON ({e})")))?;
    doc.get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| refuse("an index without a manifests list".to_owned()))
}

/// `existing` (the fallback index at `tag`, if any) with `artifacts` added; `None` when every
/// artifact is already listed (nothing to write).
fn merged_index(
    tag: &str,
    existing: Option<&RawManifest>,
    artifacts: &[Artifact],
) -> Result<Option<RawManifest>, ReferrersError> {
    let mut entries = match existing {
        Some(m) => fallback_entries(tag, m)?,
        None => Vec::new(),
    };
    let before = entries.len();
    for a in artifacts {
        let digest = a.manifest.digest.to_string();
        if !entries.iter().any(|e| e["digest"] == json!(digest)) {
            entries.push(descriptor(&a.manifest, Some(a.artifact_type)));
        }
    }
    if existing.is_some() && entries.len() == before {
        return Ok(None);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": entries,
    });
    Ok(Some(RawManifest::new(
        serde_json::to_vec(&index).unwrap_or_default(),
        Some(INDEX_MEDIA_TYPE),
    )))
}

fn attached(artifacts: &[Artifact]) -> Vec<Attached> {
    artifacts
        .iter()
        .map(|a| Attached {
            digest: a.manifest.digest.clone(),
            artifact_type: a.artifact_type.to_owned(),
        })
        .collect()
}

/// Attaches the SBOMs to `image` (a digest reference) in its registry repository.
pub async fn attach_in_registry(
    client: &RegistryClient,
    image: &ImageRef,
    sboms: &LaunchSboms,
) -> Result<Vec<Attached>, ReferrersError> {
    let subject = client
        .get_manifest(image)
        .await?
        .ok_or_else(|| ReferrersError::NotFound(image.to_string()))?;
    let artifacts = artifacts(sboms, &descriptor(&subject, None))?;
    if artifacts.is_empty() {
        tracing::debug!("No launch SBOMs to attach to {image}");
        return Ok(Vec::new());
    }
    let tag = image.with_tag(&fallback_tag(&subject.digest))?;
    for a in &artifacts {
        let files = a.layers.iter().map(|l| BlobToPush {
            digest: l.digest.clone(),
            size: l.size,
            data: BlobData::File(l.path.clone()),
            mount_from: None,
        });
        let empty = BlobToPush {
            digest: cnb_image::digest::sha256(EMPTY_CONFIG),
            size: EMPTY_CONFIG.len() as u64,
            data: BlobData::Bytes(Arc::new(EMPTY_CONFIG.to_vec())),
            mount_from: None,
        };
        for blob in files.chain([empty]) {
            client.push_blob(image, &blob).await?;
        }
        let at = image.with_digest(a.manifest.digest.clone());
        client.put_manifest(&at, &a.manifest).await?;
    }
    if client.referrers(image, &subject.digest).await?.is_some() {
        tracing::debug!("{image}: the registry lists referrers itself");
    } else {
        let existing = client.get_manifest(&tag).await?;
        if let Some(index) = merged_index(&tag.to_string(), existing.as_ref(), &artifacts)? {
            client.put_manifest(&tag, &index).await?;
        }
    }
    Ok(attached(&artifacts))
}

/// Attaches the SBOMs to the image in the layout `image_dir` (holding `subject`), with the
/// fallback tag's layout beside it.
pub fn attach_in_layout(
    store: &LayoutStore,
    image: &ImageRef,
    subject: &RawManifest,
    sboms: &LaunchSboms,
) -> Result<Vec<Attached>, ReferrersError> {
    let artifacts = artifacts(sboms, &descriptor(subject, None))?;
    if artifacts.is_empty() {
        tracing::debug!("No launch SBOMs to attach to {image}");
        return Ok(Vec::new());
    }
    let tag = fallback_tag(&subject.digest);
    let dir = store.path_for(&image.with_tag(&tag)?);
    let existing = match Layout::open(&dir)? {
        Some(layout) => read_tagged(&layout, &tag)?,
        None => None,
    };
    let Some(index) = merged_index(&dir.display().to_string(), existing.as_ref(), &artifacts)?
    else {
        return Ok(attached(&artifacts));
    };
    let out = Layout::create(&dir)?;
    for a in &artifacts {
        for layer in &a.layers {
            copy_blob(&out, layer)?;
        }
        out.write_blob(EMPTY_CONFIG)?;
        out.write_blob(&a.manifest.bytes)?;
    }
    out.write_blob(&index.bytes)?;
    out.set_manifest(&index, Some(&tag))?;
    Ok(attached(&artifacts))
}

/// Streams `layer` into `out` (a copy, not a link: the SBOM file belongs to the build), and
/// fails if the file no longer has the digest its descriptor names.
fn copy_blob(out: &Layout, layer: &SbomBlob) -> Result<(), ReferrersError> {
    if out.has_blob(&layer.digest) {
        return Ok(());
    }
    let read_err = |source| ReferrersError::Read {
        path: layer.path.clone(),
        source,
    };
    let mut file = std::fs::File::open(&layer.path).map_err(read_err)?;
    let mut writer = out.blob_writer()?;
    std::io::copy(&mut file, &mut writer).map_err(read_err)?;
    let (digest, _) = writer.finish()?;
    if digest != layer.digest {
        return Err(read_err(std::io::Error::other(
            "changed while it was exported",
        )));
    }
    Ok(())
}

/// What `index.json` names `tag`, as it is (resolve_manifest descends into indexes; the
/// fallback index itself is wanted here, and anything else there is refused, not replaced).
fn read_tagged(layout: &Layout, tag: &str) -> Result<Option<RawManifest>, ReferrersError> {
    let refuse = |what: String| ReferrersError::FallbackNotIndex {
        tag: layout.dir().display().to_string(),
        what,
    };
    let index = layout
        .read_index()
        .map_err(|e| refuse(format!("an unreadable index.json ({e})")))?;
    let Some(entry) = index.manifests().iter().find(|e| {
        e.annotations()
            .as_ref()
            .and_then(|a| a.get("org.opencontainers.image.ref.name"))
            .is_some_and(|n| n == tag)
    }) else {
        return Ok(None);
    };
    // The file's size, not the entry's claim, bounds what is read.
    let size = std::fs::metadata(layout.blob_path(entry.digest())).map_or(0, |m| m.len());
    if size > MAX_FALLBACK_INDEX as u64 {
        return Err(refuse(format!("{size} bytes")));
    }
    let bytes = layout
        .read_blob(entry.digest())
        .map_err(|e| refuse(format!("an unreadable blob ({e})")))?;
    let media_type = entry.media_type().to_string();
    Ok(Some(RawManifest::new(bytes, Some(&media_type))))
}

/// Where the exported image is.
pub enum Target<'a> {
    /// A registry, reached with these settings.
    Registry {
        /// `-insecure-registry` values.
        insecure: &'a [String],
        /// The phase's credentials.
        keychain: cnb_image::Keychain,
    },
    /// An OCI layout root (`-layout-dir`).
    Layout(&'a Path),
}

/// Attaches the launch SBOMs to the image `report` names (in every repository its tags are
/// in) and lists the artifacts in `report.referrers`.
pub fn attach(
    report: &mut ReportFile,
    target: Target<'_>,
    sboms: &LaunchSboms,
) -> Result<(), ReferrersError> {
    let digest: Option<Digest> = report.image.digest.as_deref().and_then(|d| d.parse().ok());
    let mut attached = Vec::new();
    match target {
        Target::Registry { insecure, keychain } => {
            let digest =
                digest.ok_or_else(|| ReferrersError::NotFound(report.image.tags.join(", ")))?;
            let mut images: Vec<ImageRef> = Vec::new();
            for tag in &report.image.tags {
                let image = ImageRef::parse(tag)?.with_digest(digest.clone());
                if !images.iter().any(|i| i.name() == image.name()) {
                    images.push(image);
                }
            }
            crate::registry_session::with_client(insecure, keychain, |client| async move {
                let mut all = Vec::new();
                for image in &images {
                    all.extend(attach_in_registry(&client, image, sboms).await?);
                }
                Ok::<_, ReferrersError>(all)
            })
            .map(|a| attached.extend(a))?;
        }
        Target::Layout(root) => {
            let store = LayoutStore::new(root);
            let mut done: Vec<String> = Vec::new();
            for tag in &report.image.tags {
                let tagged = ImageRef::parse(tag)?;
                if done.contains(&tagged.name()) {
                    continue;
                }
                done.push(tagged.name());
                let subject = Layout::open(store.path_for(&tagged))?
                    .and_then(|l| {
                        let named = Some(tagged.identifier());
                        let by = if digest.is_some() {
                            None
                        } else {
                            named.as_deref()
                        };
                        l.resolve_manifest(digest.as_ref(), by, &cnb_image::Platform::host())
                            .ok()
                            .flatten()
                    })
                    .ok_or_else(|| ReferrersError::NotFound(tag.clone()))?;
                attached.extend(attach_in_layout(&store, &tagged, &subject, sboms)?);
            }
        }
    }
    for a in attached {
        tracing::info!("Attached {} as a referrer: {}", a.artifact_type, a.digest);
        if !report
            .referrers
            .iter()
            .any(|r| r.digest == a.digest.to_string())
        {
            report.referrers.push(ReferrerReport {
                digest: a.digest.to_string(),
                artifact_type: a.artifact_type,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch_sboms(dir: &Path) {
        for (bp, name, body) in [
            (
                "example_node",
                "sbom.cdx.json",
                r#"{"bomFormat":"CycloneDX"}"#,
            ),
            (
                "example_java",
                "sbom.cdx.json",
                r#"{"bomFormat":"CycloneDX","n":2}"#,
            ),
            (
                "example_java",
                "sbom.spdx.json",
                r#"{"spdxVersion":"SPDX-2.3"}"#,
            ),
            ("example_java", "other.json", "{}"),
        ] {
            let d = dir.join("sbom/launch").join(bp);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(name), body).unwrap();
        }
    }

    /// The group: `example/java` escapes to `example_java`; `example_node` is an ID with `_`.
    fn sboms(dir: &Path) -> LaunchSboms {
        let group = ["example/java", "example_node"].map(crate::cache::tests::element);
        LaunchSboms::new(dir, &group)
    }

    fn subject() -> Value {
        json!({"mediaType": MANIFEST_MEDIA_TYPE, "digest": format!("sha256:{}", "a".repeat(64)), "size": 7})
    }

    #[test]
    fn one_artifact_per_format_with_a_layer_per_buildpack_file() {
        let dir = tempfile::tempdir().unwrap();
        launch_sboms(dir.path());
        let arts = artifacts(&sboms(dir.path()), &subject()).unwrap();
        let types: Vec<_> = arts.iter().map(|a| a.artifact_type).collect();
        assert_eq!(
            types,
            ["application/vnd.cyclonedx+json", "application/spdx+json"]
        );
        let cdx: Value = serde_json::from_slice(&arts[0].manifest.bytes).unwrap();
        assert_eq!(cdx["subject"], subject());
        assert_eq!(cdx["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(
            cdx["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let titles: Vec<_> = cdx["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["annotations"][TITLE].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            titles,
            ["example_java/sbom.cdx.json", "example_node/sbom.cdx.json"]
        );
        // The buildpack ID from the group, not its directory name.
        assert_eq!(cdx["layers"][0]["annotations"][BUILDPACK], "example/java");
        assert_eq!(cdx["layers"][1]["annotations"][BUILDPACK], "example_node");
        // The same SBOMs give the same artifact.
        let again = artifacts(&sboms(dir.path()), &subject()).unwrap();
        assert_eq!(again[0].manifest.digest, arts[0].manifest.digest);
    }

    #[test]
    fn the_fallback_index_keeps_others_and_skips_what_it_lists() {
        let dir = tempfile::tempdir().unwrap();
        launch_sboms(dir.path());
        let arts = artifacts(&sboms(dir.path()), &subject()).unwrap();
        let other = json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [
            {"mediaType": MANIFEST_MEDIA_TYPE, "digest": format!("sha256:{}", "b".repeat(64)), "size": 1, "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json"}
        ]});
        let other = RawManifest::new(serde_json::to_vec(&other).unwrap(), None);
        let merged = merged_index("t", Some(&other), &arts)
            .unwrap()
            .expect("new entries");
        let v: Value = serde_json::from_slice(&merged.bytes).unwrap();
        let listed = v["manifests"].as_array().unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[1]["artifactType"], "application/vnd.cyclonedx+json");
        assert!(
            merged_index("t", Some(&merged), &arts).unwrap().is_none(),
            "nothing new"
        );
        assert!(merged_index("t", None, &arts).unwrap().is_some());
    }

    #[test]
    fn a_fallback_tag_that_is_not_an_index_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        launch_sboms(dir.path());
        let arts = artifacts(&sboms(dir.path()), &subject()).unwrap();
        let manifest = json!({"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": format!("sha256:{}", "c".repeat(64)), "size": 2},
            "layers": []});
        let huge = format!(
            r#"{{"schemaVersion":2,"mediaType":"{INDEX_MEDIA_TYPE}","manifests":[],"pad":"{}"}}"#,
            "x".repeat(MAX_FALLBACK_INDEX)
        );
        for (body, hint, what) in [
            (
                serde_json::to_vec(&manifest).unwrap(),
                None,
                "a application/vnd.oci.image.manifest.v1+json",
            ),
            (
                b"{not json".to_vec(),
                Some(INDEX_MEDIA_TYPE),
                "invalid JSON",
            ),
            (
                br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#.to_vec(),
                None,
                "without a manifests list",
            ),
            (huge.into_bytes(), None, "bytes"),
        ] {
            let existing = RawManifest::new(body, hint);
            let e = merged_index("r/app:sha256-c", Some(&existing), &arts).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("r/app:sha256-c") && text.contains(what),
                "{text}"
            );
        }
    }

    #[test]
    fn sbom_layers_are_hashed_from_the_files_not_held_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        launch_sboms(dir.path());
        let arts = artifacts(&sboms(dir.path()), &subject()).unwrap();
        let layer = &arts[0].layers[0];
        let bytes = std::fs::read(&layer.path).unwrap();
        assert_eq!(layer.digest, cnb_image::digest::sha256(&bytes));
        assert_eq!(layer.size, bytes.len() as u64);
        // A layout copy checks the digest again.
        let out = Layout::create(dir.path().join("out")).unwrap();
        copy_blob(&out, layer).unwrap();
        assert_eq!(out.read_blob(&layer.digest).unwrap(), bytes);
        std::fs::write(&arts[1].layers[0].path, "changed").unwrap();
        let e = copy_blob(&out, &arts[1].layers[0]).unwrap_err();
        assert!(e.to_string().contains("read SBOM"), "{e}");
    }
}
