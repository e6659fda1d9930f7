//! The index canister: it places capsules on bucket canisters (each one
//! the upload canister of this repository) across subnets, and creates,
//! funds and upgrades the buckets. It never touches file bytes.
//!
//! Modules from the bottom up: `types` (Candid), `storable` (the compact
//! records), `registry` (all durable state and its pure rules),
//! `placement` (the steps of placing a capsule), `calls` (the
//! inter-canister calls), then `canister` (entry points and jobs),
//! `rollout` and `invariants`.

pub mod calls;
pub mod module_info;
pub mod placement;
pub mod registry;
pub mod storable;
pub mod types;

// The entry points export `canister_*` symbols: only in the canister (and
// this crate's own tests), so a host-side test can link the index's types
// beside the bucket's crate.
#[cfg(any(target_arch = "wasm32", test))]
pub mod canister;
#[cfg(any(target_arch = "wasm32", test))]
pub mod invariants;
#[cfg(any(target_arch = "wasm32", test))]
pub mod rollout;
