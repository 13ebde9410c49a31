//! The lifecycle phases as library functions.
