//! Black-box conformance tests.
