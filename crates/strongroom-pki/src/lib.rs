//! An internal certificate authority for Strongroom.
#![forbid(unsafe_code)]
