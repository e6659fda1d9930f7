//! Code that never runs in the canister: compiled only for the crate's own
//! tests and for the `fuzzing` feature that `fuzz/` builds against.
//!
//! `service` puts the endpoints behind one value for them; `model` is a plain in-memory model of the whole upload service;
//! `fuzz` holds the bodies of the cargo-fuzz targets and replays their
//! corpus under `cargo test`; `contract` checks that the errors they see
//! are the ones each method's contract lists.

#[cfg(test)]
pub mod contract;
pub mod fuzz;
pub mod model;
pub mod service;
