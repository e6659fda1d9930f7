//! Large, resumable, verified file uploads into stable memory.
//!
//! The modules from the bottom up (an arrow only ever points down; the
//! test `module_layers_point_down` in `src/layers.rs` checks it from the
//! `use` lines):
//! - `storable`, `layout`, `stable_memory`, `limits`, `types`, `error`:
//!   encodings, the memory map, every limit, the Candid types;
//! - `session` (the generic chunk-session engine) and `blob_store`: each
//!   takes the stable memories it lives in as arguments;
//! - `stores`: the upload domain's stable maps, and `sharing::links`,
//!   the share-link store and its certification tree;
//! - `state`: the `State` of all stores, opened (and migrated) once;
//! - the features, whose functions are the endpoints' bodies: `upload`,
//!   `library` (capsules and memories), `admin`, `sharing::serve`,
//!   `bucket` (the canister as a bucket of an index canister);
//! - `jobs` (timers), `admission` (the ingress filter) and `canister`
//!   (one line per endpoint).

pub mod error;
pub mod layout;
pub mod limits;
pub mod stable_memory;
pub mod storable;
pub mod types;
pub mod validate;

pub mod blob_store;
pub mod http;
pub mod session;
pub mod stores;

pub mod sharing;
pub mod state;

pub mod admin;
pub mod bucket;
pub mod library;
pub mod upload;

pub mod admission;
pub mod jobs;

pub mod canister;
#[cfg(test)]
mod layers;
#[cfg(test)]
mod limits_table;
#[cfg(any(test, feature = "fuzzing"))]
pub mod testing;
