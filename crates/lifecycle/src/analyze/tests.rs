//! Analyzer tests.
