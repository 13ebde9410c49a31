//! The image arguments of the exporter, creator and rebaser ([EXP-001], [RBS-001]): every name a
//! valid reference, all on one registry (the reference exempts only daemon targets, which this
//! lifecycle does not have yet).

use cnb_image::ImageRef;

/// Image arguments that cannot be used (exit 3 in every phase).
#[derive(Debug)]
pub enum ImageArgsError {
    /// A name that is not a valid reference.
    Invalid {
        /// The name.
        name: String,
        /// Why.
        source: Box<cnb_image::Error>,
    },
    /// Names on different registries; the registries, comma-separated.
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
