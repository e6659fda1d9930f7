//! Large, resumable, verified file uploads into stable memory.

pub mod memory;
pub mod session;
pub mod storable;
