//! The `signer` phase (experimental, beyond the spec; the shape rfcs#195 proposes): run after
//! export, it signs every tag of the app image the way `cosign sign --key` does, and with
//! `-attest-sbom` attaches the launch SBOMs as signed in-toto attestations like
//! `cosign attest --key`.
//!
//! `signer -signing-key <key> [-report <report.toml> | <image>...]`
//!
//! - Targets: the images given as arguments, else the tags of the exporter's report.toml; a
//!   report's digest must still be what each tag points at (else nothing is signed).
//! - Signatures: the simple signing payload as the layer of the `sha256-<hex>.sig` manifest in
//!   the image's repository, its ECDSA P-256 signature (base64, ASN.1) in the layer annotation
//!   `dev.cosignproject.cosign/signature`; earlier signatures there are kept.
//! - Attestations: one DSSE envelope per launch SBOM at `sha256-<hex>.att`.
//! - Layout mode: the `.sig`/`.att` "tags" are layout directories next to the image's
//!   (`<layout-dir>/<registry>/<repo>/sha256-<hex>.sig`).
//!
//! Exit codes: 0 done; 3 bad arguments (no key, no targets, an unparsable name); 1 anything
//! else, with `ERROR: failed to sign: <cause>`. The key's password never appears in output.

mod artifact;
mod envelope;
pub mod key;
mod layout;
mod payload;
mod registry;
pub(crate) mod sbom;

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cnb_image::{Digest, ImageRef};
use cnb_platform_api::files::FileError;
use cnb_platform_api::files::report::ReportFile;

use self::artifact::NewLayer;
pub use self::key::{KeyError, Password, SigningKey};

/// The annotation cosign keeps a signature in.
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The media type of a simple signing payload layer.
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The media type of a DSSE envelope layer.
const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";

/// What the signer reads, resolved by the caller.
#[derive(Clone, Debug)]
pub struct SignInputs {
    /// Images given as arguments (else the report's tags).
    pub images: Vec<String>,
    /// `<report>`: the exporter's report.toml.
    pub report_path: PathBuf,
    /// `<layout-dir>` when `<layout>` is on.
    pub layout_dir: Option<PathBuf>,
    /// `<insecure-registry>`.
    pub insecure_registries: Vec<String>,
    /// `<layers>`, where the launch SBOMs are.
    pub layers_dir: PathBuf,
    /// `<attest-sbom>`.
    pub attest_sbom: bool,
}

/// Why the signer failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// No key given.
    #[error("no signing key: give -signing-key or CNB_SIGNING_KEY")]
    MissingKey,
    /// The key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// report.toml could not be read.
    #[error("read report")]
    Report(#[source] FileError),
    /// Nothing to sign.
    #[error("no image to sign: report '{0}' names no tags and no image was given")]
    NoTargets(PathBuf),
    /// A name that cannot be parsed.
    #[error("invalid image name '{name}'")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: Box<cnb_image::Error>,
    },
    /// An image that does not exist.
    #[error("image '{0}' not found")]
    NotFound(String),
    /// A tag that moved since the export.
    #[error("image '{tag}' is now {now}, but the report says {report}; not signing")]
    Moved {
        /// The tag.
        tag: String,
        /// What it points at now.
        now: Digest,
        /// What the report says.
        report: Digest,
    },
    /// The report's digest does not parse.
    #[error("report digest '{0}' is not a digest")]
    BadDigest(String),
    /// An SBOM could not be read.
    #[error("read SBOM '{path}': {reason}")]
    Sbom {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An image operation failed.
    #[error(transparent)]
    Image(#[from] Box<cnb_image::Error>),
}

impl SignError {
    /// Whether the arguments themselves are wrong (exit 3).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::MissingKey | Self::NoTargets(_) | Self::InvalidName { .. }
        )
    }
}

impl From<cnb_image::Error> for SignError {
    fn from(e: cnb_image::Error) -> Self {
        Self::Image(Box::new(e))
    }
}

/// One image to sign: its name and, from the report, the digest it must have.
struct Target {
    reference: ImageRef,
    expected: Option<Digest>,
}

/// What one image got.
struct Signed {
    name: String,
    digest: Digest,
    signature_tag: String,
    attestations: usize,
}

/// Signs every target; returns how many images were signed.
pub fn sign(
    inputs: &SignInputs,
    key: &SigningKey,
    keychain: cnb_image::Keychain,
) -> Result<usize, SignError> {
    let targets = targets(inputs)?;
    let sboms = if inputs.attest_sbom {
        sbom::launch_sboms(&inputs.layers_dir)?
    } else {
        Vec::new()
    };
    let signed = match &inputs.layout_dir {
        Some(root) => layout::sign_all(root, &targets, key, &sboms)?,
        None => registry::sign_all(inputs, &targets, key, &sboms, keychain)?,
    };
    for s in &signed {
        tracing::info!(
            "Signed {}@{} (signature at tag {}, {} attestation(s))",
            s.name,
            s.digest,
            s.signature_tag,
            s.attestations
        );
    }
    Ok(signed.len())
}

/// The registries of the images to sign (best effort: errors surface in [`sign`]), so the
/// caller can resolve their credentials before anything else.
pub fn registries(inputs: &SignInputs) -> Vec<String> {
    targets(inputs)
        .map(|t| {
            t.iter()
                .map(|t| t.reference.registry().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The images to sign: the arguments, else the report's tags (each expected at its digest).
fn targets(inputs: &SignInputs) -> Result<Vec<Target>, SignError> {
    let (names, expected) = if inputs.images.is_empty() {
        let report = ReportFile::read(&inputs.report_path).map_err(SignError::Report)?;
        let digest = match report.image.digest {
            Some(d) => Some(d.parse().map_err(|_| SignError::BadDigest(d.clone()))?),
            None => None,
        };
        (report.image.tags, digest)
    } else {
        (inputs.images.clone(), None)
    };
    if names.is_empty() {
        return Err(SignError::NoTargets(inputs.report_path.clone()));
    }
    names
        .into_iter()
        .map(|name| {
            let reference = ImageRef::parse(&name).map_err(|e| SignError::InvalidName {
                name: name.clone(),
                source: Box::new(e),
            })?;
            Ok(Target {
                reference,
                expected: expected.clone(),
            })
        })
        .collect()
}

/// Checks the digest found against the report's.
fn check_expected(target: &Target, now: &Digest) -> Result<(), SignError> {
    match &target.expected {
        Some(report) if report != now => Err(SignError::Moved {
            tag: target.reference.to_string(),
            now: now.clone(),
            report: report.clone(),
        }),
        _ => Ok(()),
    }
}

/// The `.sig` layer for the image `name` at `digest`.
fn signature_layer(key: &SigningKey, name: &str, digest: &Digest) -> Result<NewLayer, KeyError> {
    let bytes = payload::simple_signing(name, digest);
    let signature = B64.encode(key.sign(&bytes)?);
    Ok(NewLayer {
        bytes,
        media_type: SIMPLE_SIGNING,
        annotations: [(SIGNATURE_ANNOTATION.to_owned(), signature)].into(),
    })
}

/// The `.att` layers (one DSSE envelope per SBOM) for the image `name` at `digest`.
fn attestation_layers(
    key: &SigningKey,
    name: &str,
    digest: &Digest,
    sboms: &[sbom::Sbom],
) -> Result<Vec<NewLayer>, KeyError> {
    sboms
        .iter()
        .map(|s| {
            tracing::debug!("Attesting {} as {}", s.path.display(), s.predicate_type);
            let statement = payload::statement(name, digest, s.predicate_type, s.predicate.clone());
            let annotations: BTreeMap<String, String> = [
                (SIGNATURE_ANNOTATION.to_owned(), String::new()),
                ("predicateType".to_owned(), s.predicate_type.to_owned()),
            ]
            .into();
            Ok(NewLayer {
                bytes: payload::dsse(key, payload::IN_TOTO, &statement)?,
                media_type: DSSE_ENVELOPE,
                annotations,
            })
        })
        .collect()
}
