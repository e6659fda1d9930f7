//! What can go wrong in a chunk session.

use super::sink::SinkError;
use super::types::{SessionId, SpecError};

/// A session operation refused, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    NotFound(SessionId),
    /// `create` was given an id already in use.
    AlreadyExists(SessionId),
    Expired(SessionId),
    /// `expire` on a session that is not idle long enough.
    StillActive {
        expires_at: u64,
    },
    Aborted(SessionId),
    Committed(SessionId),
    IndexOutOfRange {
        index: u32,
        chunk_count: u32,
    },
    WrongChunkLength {
        index: u32,
        expected: u64,
        actual: u64,
    },
    /// Different bytes for a chunk already received.
    ChunkConflict {
        index: u32,
    },
    /// The idempotency key names a session that asked for something else.
    IdempotencyConflict {
        existing: SessionId,
    },
    Incomplete {
        missing_chunks: u32,
    },
    InvalidSpec(SpecError),
    Sink(SinkError),
}
