//! Large, resumable, verified file uploads into stable memory.
//!
//! `session` is a generic chunk-session engine; `upload` is the upload
//! domain built on it; `canister` holds the thin Candid entry points.

pub mod admission;
pub mod http;
pub mod layout;
pub mod session;
pub mod stable_memory;
pub mod storable;
pub mod upload;

pub mod canister;
#[cfg(any(test, feature = "fuzzing"))]
pub mod testing;
