//! Images: references, manifests, OCI layouts, registries.
