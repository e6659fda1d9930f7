//! Generic chunk sessions in stable memory.
//!
//! A session receives a stream cut into fixed-size chunks, in any order and
//! with retries, records which chunks arrived, and ends committed, aborted
//! or expired. It is generic over the metadata it carries and over where
//! the bytes go (`ByteSink`), so it knows nothing about uploads.

pub mod bitmap;
pub mod error;
pub mod service;
pub mod sink;
pub mod types;

#[cfg(test)]
mod tests;

pub use bitmap::ChunkRange;
pub use error::SessionError;
pub use service::{
    ChunkReceipt, ChunkWrite, CreateOutcome, SessionMemories, SessionPolicy, SessionService,
};
pub use sink::{ByteSink, SinkError};
pub use types::{
    ChunkSpec, IdempotencyKey, Session, SessionId, SessionMeta, SessionStatus, SpecError,
};
