//! A registry client for phases that talk to the registry request by request (the indexer,
//! the signer) rather than through an [`cnb_image::ImageStore`].

use std::future::Future;

use cnb_image::{Keychain, Registry, RegistryClient, RegistryOptions};

/// Runs `work` to completion with a client for `keychain`'s registries (plain HTTP allowed for
/// `insecure_registries`), on the client's own runtime.
pub(crate) fn with_client<T, E, F, Fut>(
    insecure_registries: &[String],
    keychain: Keychain,
    work: F,
) -> Result<T, E>
where
    F: FnOnce(RegistryClient) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<cnb_image::Error>,
{
    let options = RegistryOptions {
        insecure_registries: insecure_registries.to_vec(),
        ..RegistryOptions::default()
    };
    let registry = Registry::new(options, keychain)?;
    let client = registry.client().clone();
    registry.block_on(work(client))?
}
