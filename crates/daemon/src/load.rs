//! Loading an image into the daemon (with base layers omitted where the store allows it) and
//! reading one layer back out of `docker save`.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use cnb_layers::Digest;
use cnb_layers::digest::HashWriter;
use cnb_layers::gotar;

use crate::archive::{Archive, Written};
use crate::client::Client;
use crate::error::{Error, Result};

/// The outcome of [`load`].
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The archive that the daemon accepted.
    pub written: Written,
    /// Names the daemon reported loaded.
    pub names: Vec<String>,
    /// Whether the first attempt (base layers omitted) failed and all layers were sent.
    pub retried: bool,
    /// Archive bytes sent over all attempts.
    pub bytes_sent: u64,
}

/// Loads `archive`. With the classic store (`containerd_store` false) daemon layers are first
/// sent as empty entries, and if the daemon refuses that, everything is sent again (the
/// reference does the same); with the containerd store everything is sent at once.
pub fn load(client: &Client, archive: &Archive<'_>, containerd_store: bool) -> Result<Loaded> {
    let image = archive
        .repo_tags
        .first()
        .map(String::as_str)
        .unwrap_or("<untagged>");
    let omit = !containerd_store && archive.has_daemon_layers();
    // Refuse before sending anything if the full archive could never be produced.
    archive.check_sendable(omit)?;
    if omit {
        let can_retry = archive.check_sendable(false).is_ok();
        match client.load(image, |sink| archive.write(true, sink)) {
            Ok((written, names)) => {
                let bytes_sent = written.bytes;
                return Ok(Loaded {
                    written,
                    names,
                    retried: false,
                    bytes_sent,
                });
            }
            Err(e @ (Error::Load { .. } | Error::Status { .. })) if can_retry => {
                tracing::debug!(
                    "loading {image} without its base layers failed ({e}); sending them"
                );
                let (written, names) = client.load(image, |sink| archive.write(false, sink))?;
                let bytes_sent = written.bytes;
                return Ok(Loaded {
                    written,
                    names,
                    retried: true,
                    bytes_sent,
                });
            }
            Err(e) => return Err(e),
        }
    }
    let (written, names) = client.load(image, |sink| archive.write(false, sink))?;
    let bytes_sent = written.bytes;
    Ok(Loaded {
        written,
        names,
        retried: false,
        bytes_sent,
    })
}

/// Reads the layer `diff_id` of `image` out of `docker save` into `dir/<hex>.tar` (not replacing
/// a file already there, e.g. a launch cache entry) and returns its path.
pub fn save_layer(client: &Client, image: &str, diff_id: &Digest, dir: &Path) -> Result<PathBuf> {
    let mut paths = save_layers(client, image, std::slice::from_ref(diff_id), dir)?;
    Ok(paths.remove(0))
}

/// Reads the layers `diff_ids` of `image` out of one `docker save` stream into
/// `dir/<hex>.tar` each (not replacing files already there) and returns their paths, in the
/// order asked.
///
/// Which entry holds a layer is only known from its name in newer formats (`<hex>.tar`,
/// `blobs/sha256/<hex>`); Docker 20.10 names entries `<v1 id>/layer.tar`, so candidates are
/// hashed while they are written to a temporary file in `dir`, and the matches are kept.
pub fn save_layers(
    client: &Client,
    image: &str,
    diff_ids: &[Digest],
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let wanted: Vec<String> = diff_ids.iter().map(|d| d.digest().to_owned()).collect();
    let dest = |hex: &str| dir.join(format!("{hex}.tar"));
    let file_err = |path: &Path, source| Error::File {
        path: path.display().to_string(),
        source,
    };
    let mut missing: HashSet<&str> = wanted.iter().map(String::as_str).collect();
    client.save(&[image], |stream| {
        let mut tar = gotar::Reader::new(stream);
        while !missing.is_empty()
            && let Some(header) = tar.next_header().map_err(|e| Error::Protocol {
                host: client.host().to_string(),
                what: format!("save {image}"),
                reason: format!("{e:?}"),
            })?
        {
            if header.typeflag != gotar::typeflag::REG && header.typeflag != gotar::typeflag::REG_A
            {
                continue;
            }
            let name = String::from_utf8_lossy(&header.name).into_owned();
            match named_digest(&name) {
                Some(hex) if !missing.contains(hex) => continue,
                None if !name.ends_with("layer.tar") => continue,
                _ => {}
            }
            let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| file_err(dir, e))?;
            let mut out = HashWriter::new(io::BufWriter::new(tmp));
            io::copy(&mut (&mut tar).take(u64::MAX), &mut out).map_err(|e| file_err(dir, e))?;
            let (got, _, buffered) = out.finish();
            let Some(hex) = missing.get(got.digest()).copied() else {
                continue;
            };
            let tmp = buffered
                .into_inner()
                .map_err(|e| file_err(dir, e.into_error()))?;
            let path = dest(hex);
            match tmp.persist_noclobber(&path) {
                Ok(_) => {}
                Err(e) if path.exists() => drop(e),
                Err(e) => return Err(file_err(&path, e.error)),
            }
            missing.remove(hex);
        }
        Ok(())
    })?;
    if let Some(hex) = wanted.iter().find(|h| missing.contains(h.as_str())) {
        return Err(Error::NoSuchLayer {
            host: client.host().to_string(),
            image: image.to_owned(),
            diff_id: format!("sha256:{hex}"),
        });
    }
    Ok(wanted.iter().map(|h| dest(h)).collect())
}

/// The digest hex an entry name carries (`<hex>.tar`, `blobs/sha256/<hex>`), if any.
fn named_digest(name: &str) -> Option<&str> {
    let base = name.rsplit('/').next()?;
    let hex = base.strip_suffix(".tar").unwrap_or(base);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}
