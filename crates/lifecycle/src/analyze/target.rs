//! The run image's target data ([ANA-010], [ANA-011]): os, architecture and variant from its
//! config, the target ID and distro from its `io.buildpacks.base.*` labels.
//!
//! Without distro labels the distro is inferred, as platform.md asks:
//! - `io.buildpacks.stack.id = io.buildpacks.stacks.bionic` means ubuntu 18.04 (and linux /
//!   amd64 where the config lacks them; [AMB-004]);
//! - otherwise, for non-Windows images, `ID` and `VERSION_ID` of `/etc/os-release` as the image's
//!   layers hold it. The layers are read top-down without unpacking them: each is streamed
//!   until `etc/os-release` shows up (a regular file is read, a symlink or hard link is
//!   followed, a whiteout or opaque directory ends the search). Registry layers are downloaded
//!   for that; blobs a sparse layout lacks end the search.
//!
//! The reference does not read os-release here; its detector and builder fall back to the build
//! container's os-release. Any failure of the inference is a warning, and the target is then
//! recorded without a distro (the later phases still apply that fallback).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use cnb_buildpack_api::target::Distro;
use cnb_image::{Image, LayerInfo};
use cnb_layers::gotar::{self, typeflag};
use cnb_platform_api::files::TargetMetadata;
use cnb_platform_api::labels::{
    BASE_DISTRO_NAME_LABEL, BASE_DISTRO_VERSION_LABEL, BASE_ID_LABEL, STACK_ID_LABEL,
};

use super::Store;

/// The stack ID platform.md maps to ubuntu 18.04.
pub const BIONIC_STACK_ID: &str = "io.buildpacks.stacks.bionic";
const OS_RELEASE: &str = "etc/os-release";
/// Symlinks followed before giving up.
const MAX_LINK_HOPS: usize = 8;
/// os-release files are tiny; read no more than this.
const MAX_OS_RELEASE_SIZE: u64 = 64 * 1024;

/// [ANA-010] [ANA-011] The target data of `image`.
pub(crate) fn target_metadata(store: &Store, image: &Image) -> TargetMetadata {
    let mut target = labelled_target(image);
    if target.distro.is_none() && target.os != "windows" {
        if image.label(STACK_ID_LABEL) == Some(BIONIC_STACK_ID) {
            infer_bionic(&mut target);
        } else {
            tracing::info!(
                "target distro name/version labels not found, reading /etc/os-release from the run image"
            );
            match os_release_from_layers(image, &mut |layer, scratch| {
                store
                    .blob_file(image, &layer.digest, scratch)
                    .map_err(|e| io::Error::other(crate::error_chain(&e)))
            }) {
                Ok(distro) => target.distro = distro,
                Err(e) => {
                    tracing::warn!("Encountered error trying to read /etc/os-release file: {e}");
                }
            }
        }
    }
    target
}

/// The target data the config and the labels give. A distro exists when either distro label
/// does (even empty), as in the reference.
pub(super) fn labelled_target(image: &Image) -> TargetMetadata {
    let config = image.config();
    let name = image.label(BASE_DISTRO_NAME_LABEL);
    let version = image.label(BASE_DISTRO_VERSION_LABEL);
    let distro = (name.is_some() || version.is_some()).then(|| Distro {
        name: name.unwrap_or_default().to_owned(),
        version: version.unwrap_or_default().to_owned(),
    });
    TargetMetadata {
        id: image.label(BASE_ID_LABEL).unwrap_or_default().to_owned(),
        os: config.os.clone(),
        arch: config.architecture.clone(),
        arch_variant: config.variant.clone().unwrap_or_default(),
        distro,
    }
}

/// platform.md: a bionic stack image is linux / ubuntu 18.04; the architecture is amd64
/// when the config has none ([AMB-004]: the spec's arm64 is a typo; the reference uses amd64).
pub(super) fn infer_bionic(target: &mut TargetMetadata) {
    if target.os.is_empty() {
        target.os = "linux".into();
    }
    if target.arch.is_empty() {
        target.arch = "amd64".into();
    }
    target.distro = Some(Distro {
        name: "ubuntu".into(),
        version: "18.04".into(),
    });
}

/// `ID` and `VERSION_ID` of os-release contents (values may be quoted); `None` when both are
/// missing.
pub(super) fn parse_os_release(text: &str) -> Option<Distro> {
    let mut distro = Distro::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches(['"', '\'']).to_owned();
        match key.trim() {
            "ID" => distro.name = value,
            "VERSION_ID" => distro.version = value,
            _ => {}
        }
    }
    (!distro.name.is_empty() || !distro.version.is_empty()).then_some(distro)
}

/// Provides a local file with a layer's blob, given a scratch directory; `Ok(None)` when the
/// blob is not available (sparse layout).
pub(super) type LayerFiles<'a> = dyn FnMut(&LayerInfo, &Path) -> io::Result<Option<PathBuf>> + 'a;

/// What one layer says about a path.
#[derive(Debug, PartialEq, Eq)]
enum Lookup {
    /// The layer has the path as a regular file with these contents.
    File(Vec<u8>),
    /// The layer has the path as a symlink or hard link to this (clean, relative) path.
    Link(String),
    /// The layer removes the path (a whiteout of it or an ancestor, or an opaque ancestor
    /// directory), or has it as something other than a file or link.
    Gone,
    /// The layer does not mention the path.
    Absent,
}

/// The distro from `/etc/os-release` in `image`'s layers (see the module docs).
pub(super) fn os_release_from_layers(
    image: &Image,
    layer_file: &mut LayerFiles<'_>,
) -> io::Result<Option<Distro>> {
    let layers = image.layers();
    let scratch = tempfile::tempdir()?;
    let mut files: HashMap<String, PathBuf> = HashMap::new();
    let mut path = OS_RELEASE.to_owned();
    for _ in 0..=MAX_LINK_HOPS {
        let mut next = None;
        for layer in layers.iter().rev() {
            let key = layer.digest.to_string();
            let file = match files.get(&key) {
                Some(file) => file.clone(),
                None => {
                    let Some(file) = layer_file(layer, scratch.path())? else {
                        tracing::debug!(
                            "Layer {} of the run image is not available; not reading os-release",
                            layer.digest
                        );
                        return Ok(None);
                    };
                    files.insert(key, file.clone());
                    file
                }
            };
            match lookup(&file, &path)? {
                Lookup::File(bytes) => {
                    return Ok(parse_os_release(&String::from_utf8_lossy(&bytes)));
                }
                Lookup::Link(target) => {
                    next = Some(target);
                    break;
                }
                Lookup::Gone => return Ok(None),
                Lookup::Absent => {}
            }
        }
        match next {
            Some(target) => path = target,
            None => return Ok(None),
        }
    }
    tracing::debug!("Too many links resolving /etc/os-release in the run image");
    Ok(None)
}

/// Scan one layer blob (gzip or plain tar) for `path`.
fn lookup(blob: &Path, path: &str) -> io::Result<Lookup> {
    let mut input = BufReader::new(File::open(blob)?);
    let head = input.fill_buf()?;
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(io::Error::other("zstd-compressed layers are not supported"));
    } else {
        Box::new(input)
    };
    lookup_in_tar(reader, path)
}

/// Scan a tar stream for `path` (clean, relative).
fn lookup_in_tar(reader: impl Read, path: &str) -> io::Result<Lookup> {
    let (parent, base) = match path.rsplit_once('/') {
        Some((parent, base)) => (parent, base),
        None => ("", path),
    };
    // Ancestor directories of `path`: "etc" for "etc/os-release", "usr", "usr/lib", …
    let ancestors: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
    let whiteout = join(parent, &format!(".wh.{base}"));
    let mut opaque = false;
    let mut tar = gotar::Reader::new(reader);
    while let Some(header) = tar.next_header().map_err(read_error)? {
        let name = clean(&String::from_utf8_lossy(&header.name));
        if name == path {
            return Ok(match header.typeflag {
                typeflag::REG => {
                    let mut bytes = Vec::new();
                    (&mut tar)
                        .take(MAX_OS_RELEASE_SIZE)
                        .read_to_end(&mut bytes)?;
                    Lookup::File(bytes)
                }
                typeflag::SYMLINK => {
                    let target = String::from_utf8_lossy(&header.linkname).into_owned();
                    Lookup::Link(if target.starts_with('/') {
                        clean(&target)
                    } else {
                        clean(&join(parent, &target))
                    })
                }
                // Hard link names are archive paths.
                typeflag::LINK => Lookup::Link(clean(&String::from_utf8_lossy(&header.linkname))),
                _ => Lookup::Gone,
            });
        }
        if name == whiteout {
            return Ok(Lookup::Gone);
        }
        for ancestor in &ancestors {
            let (a_parent, a_base) = match ancestor.rsplit_once('/') {
                Some((p, b)) => (p, b),
                None => ("", *ancestor),
            };
            if name == join(a_parent, &format!(".wh.{a_base}")) {
                return Ok(Lookup::Gone);
            }
            if name == join(ancestor, ".wh..wh..opq") {
                opaque = true;
            }
        }
    }
    Ok(if opaque { Lookup::Gone } else { Lookup::Absent })
}

fn read_error(e: gotar::ReadError) -> io::Error {
    match e {
        gotar::ReadError::Io(e) => e,
        gotar::ReadError::Malformed(reason) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed layer: {reason}"),
        ),
    }
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}/{child}")
    }
}

/// An archive path made relative and lexically clean (`./etc//x/../os-release` →
/// `etc/os-release`; `..` never climbs above the root).
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil::write_layer;
    use cnb_image::{ImageBuilder, Platform};
    use cnb_layers::{Compression, Entry, LayerSource, Owner};

    fn file(dir: &Path, path: &str, contents: &str) -> Entry {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let source = dir.join(format!("src-{n}"));
        std::fs::write(&source, contents).unwrap();
        Entry::File {
            path: PathBuf::from(path),
            mode: 0o644,
            owner: Owner::ROOT,
            source,
        }
    }

    fn symlink(path: &str, target: &str) -> Entry {
        Entry::Symlink {
            path: PathBuf::from(path),
            target: PathBuf::from(target),
            mode: 0o777,
            owner: Owner::ROOT,
        }
    }

    fn empty(dir: &Path, path: &str) -> Entry {
        file(dir, path, "")
    }

    /// An image (not saved anywhere) whose layers, bottom first, have these entries; the layer
    /// files are returned by digest.
    fn image(dir: &Path, layers: Vec<Vec<Entry>>) -> (Image, HashMap<String, PathBuf>) {
        let mut builder = ImageBuilder::empty(&Platform::new("linux", "amd64", None));
        let mut files = HashMap::new();
        for entries in layers {
            let layer = write_layer(&LayerSource::entries(entries), dir, Compression::default());
            files.insert(layer.digest.to_string(), layer.path.clone());
            builder.add_layer(layer, None);
        }
        let built = builder.build().unwrap();
        let image = Image::from_parts(
            "test",
            cnb_image::ImageSource::Layout(dir.to_owned()),
            built.manifest.clone(),
            built.config_bytes.to_vec(),
        )
        .unwrap();
        (image, files)
    }

    fn distro_of(image: &Image, files: &HashMap<String, PathBuf>) -> Option<Distro> {
        os_release_from_layers(image, &mut |layer, _| {
            Ok(files.get(&layer.digest.to_string()).cloned())
        })
        .unwrap()
    }

    fn distro(name: &str, version: &str) -> Option<Distro> {
        Some(Distro {
            name: name.into(),
            version: version.into(),
        })
    }

    #[test]
    fn ana_011_os_release_parsing() {
        assert_eq!(
            parse_os_release("NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"22.04\"\n"),
            distro("ubuntu", "22.04")
        );
        assert_eq!(parse_os_release("ID='alpine'\n"), distro("alpine", ""));
        assert_eq!(parse_os_release("NAME=x\n"), None);
        assert_eq!(clean("./etc//x/../os-release"), "etc/os-release");
        assert_eq!(clean("/../../etc/os-release"), "etc/os-release");
    }

    #[test]
    fn ana_011_os_release_top_layer_wins_and_symlinks_are_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        // Ubuntu's layout: /etc/os-release -> ../usr/lib/os-release, in a lower layer than
        // an updated /usr/lib/os-release.
        let (img, files) = image(
            d,
            vec![
                vec![
                    symlink("/etc/os-release", "../usr/lib/os-release"),
                    file(
                        d,
                        "/usr/lib/os-release",
                        "ID=ubuntu\nVERSION_ID=\"22.04\"\n",
                    ),
                ],
                vec![file(
                    d,
                    "/usr/lib/os-release",
                    "ID=ubuntu\nVERSION_ID=\"24.04\"\n",
                )],
                vec![file(d, "/unrelated", "x")],
            ],
        );
        assert_eq!(distro_of(&img, &files), distro("ubuntu", "24.04"));

        // An absolute symlink target.
        let (img, files) = image(
            d,
            vec![vec![
                file(d, "/opt/os", "ID=abs\nVERSION_ID=1\n"),
                symlink("/etc/os-release", "/opt/os"),
            ]],
        );
        assert_eq!(distro_of(&img, &files), distro("abs", "1"));
    }

    #[test]
    fn ana_011_os_release_whiteouts() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let base = || vec![file(d, "/etc/os-release", "ID=old\nVERSION_ID=1\n")];
        // Deleted in a higher layer.
        let (img, files) = image(d, vec![base(), vec![empty(d, "/etc/.wh.os-release")]]);
        assert_eq!(distro_of(&img, &files), None);
        // /etc made opaque in a higher layer without a new os-release.
        let (img, files) = image(d, vec![base(), vec![empty(d, "/etc/.wh..wh..opq")]]);
        assert_eq!(distro_of(&img, &files), None);
        // Opaque, but the same layer brings a new one.
        let (img, files) = image(
            d,
            vec![
                base(),
                vec![
                    empty(d, "/etc/.wh..wh..opq"),
                    file(d, "/etc/os-release", "ID=new\n"),
                ],
            ],
        );
        assert_eq!(distro_of(&img, &files), distro("new", ""));
        // /etc itself deleted.
        let (img, files) = image(d, vec![base(), vec![empty(d, "/.wh.etc")]]);
        assert_eq!(distro_of(&img, &files), None);
        // No os-release at all; a symlink loop.
        let (img, files) = image(d, vec![vec![file(d, "/bin/sh", "")]]);
        assert_eq!(distro_of(&img, &files), None);
        let (img, files) = image(
            d,
            vec![vec![
                symlink("/etc/os-release", "/etc/loop"),
                symlink("/etc/loop", "/etc/os-release"),
            ]],
        );
        assert_eq!(distro_of(&img, &files), None);
        // A missing (sparse) blob ends the search.
        let (img, _) = image(d, vec![base()]);
        assert_eq!(distro_of(&img, &HashMap::new()), None);
    }

    #[test]
    fn ana_011_bionic_and_labels() {
        let mut t = TargetMetadata::default();
        infer_bionic(&mut t);
        assert_eq!((t.os.as_str(), t.arch.as_str()), ("linux", "amd64"));
        assert_eq!(t.distro, distro("ubuntu", "18.04"));
        let mut t = TargetMetadata {
            os: "linux".into(),
            arch: "arm64".into(),
            ..TargetMetadata::default()
        };
        infer_bionic(&mut t);
        assert_eq!(t.arch, "arm64");
    }
}
