//! Reproducible layer tarballs.
