//! The one error type of the Candid API.

use super::blob_store::BlobStoreError;
use super::types::{CapsuleId, MemoryItemId};
use crate::session::{SessionError, SessionId, SinkError, SpecError};
use candid::CandidType;
use serde::Deserialize;
use serde_bytes::ByteBuf;

/// Which limit a request ran into.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quota {
    FileBytes,
    ChunkBytes,
    ChunksPerSession,
    OpenSessionsPerCaller,
    ReservedBytesPerCaller,
    /// Bytes reserved by all open sessions together.
    ReservedBytesTotal,
    StoredBytesPerCaller,
    TotalBytes,
    WritersPerCapsule,
    CapsulesPerOwner,
    ReadBytes,
    /// Re-hashes from byte 0 a session may ask for after checksum
    /// mismatches (`MAX_REPAIR_ROUNDS`); abort and upload again.
    RepairRounds,
}

/// Why a call failed. User mistakes are reported here, never by trapping.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum UploadError {
    /// The anonymous principal may not do this.
    AnonymousCaller,
    NotAuthorized,
    CapsuleNotFound {
        capsule_id: CapsuleId,
    },
    SessionNotFound {
        session_id: SessionId,
    },
    MemoryNotFound {
        memory_id: MemoryItemId,
    },
    SessionExpired {
        session_id: SessionId,
    },
    SessionAborted {
        session_id: SessionId,
    },
    AlreadyCommitted {
        session_id: SessionId,
    },
    IndexOutOfRange {
        index: u32,
        expected_chunks: u32,
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
    /// The chunk's bytes do not match the SHA-256 sent with it.
    ChunkChecksumMismatch {
        index: u32,
        actual: ByteBuf,
    },
    /// The file's SHA-256 is not the one declared. The session stays open:
    /// re-send the chunks that are wrong (they may now be replaced), or abort.
    ChecksumMismatch {
        expected: ByteBuf,
        actual: ByteBuf,
    },
    Incomplete {
        missing_chunks: u32,
    },
    /// The chunk has not arrived (yet).
    ChunkNotReceived {
        index: u32,
    },
    /// Every chunk arrived but hashing has not caught up yet; call again.
    VerificationPending {
        hashed_bytes: u64,
        total_bytes: u64,
    },
    QuotaExceeded {
        quota: Quota,
        limit: u64,
        requested: u64,
    },
    /// Two declared values that must agree do not.
    DeclaredValuesDisagree {
        what: String,
        declared: u64,
        actual: u64,
    },
    /// `uploads_finish` names another SHA-256 than `uploads_begin` declared.
    DeclaredHashesDisagree {
        at_begin: ByteBuf,
        at_finish: ByteBuf,
    },
    /// The idempotency key was used for a different request.
    IdempotencyConflict {
        session_id: SessionId,
    },
    InvalidArgument {
        reason: String,
    },
    /// A read past the end of a memory.
    RangeOutOfBounds {
        offset: u64,
        length: u64,
        byte_len: u64,
    },
    /// The store cannot grow to hold the upload.
    OutOfSpace,
}

impl From<SessionError> for UploadError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::NotFound(session_id) => UploadError::SessionNotFound { session_id },
            SessionError::AlreadyExists(sid) => {
                panic!("bug: session id {} allocated twice", sid.0)
            }
            SessionError::Expired(session_id) => UploadError::SessionExpired { session_id },
            SessionError::StillActive { .. } => {
                panic!("bug: expiry attempted on an active session")
            }
            SessionError::Aborted(session_id) => UploadError::SessionAborted { session_id },
            SessionError::Committed(session_id) => UploadError::AlreadyCommitted { session_id },
            SessionError::IndexOutOfRange { index, chunk_count } => UploadError::IndexOutOfRange {
                index,
                expected_chunks: chunk_count,
            },
            SessionError::WrongChunkLength {
                index,
                expected,
                actual,
            } => UploadError::WrongChunkLength {
                index,
                expected,
                actual,
            },
            SessionError::ChunkConflict { index } => UploadError::ChunkConflict { index },
            SessionError::IdempotencyConflict { existing } => UploadError::IdempotencyConflict {
                session_id: existing,
            },
            SessionError::Incomplete { missing_chunks } => {
                UploadError::Incomplete { missing_chunks }
            }
            SessionError::InvalidSpec(spec) => spec.into(),
            SessionError::Sink(SinkError::Gone) => panic!("bug: a pending session lost its blob"),
            SessionError::Sink(SinkError::OutOfSpace) => UploadError::OutOfSpace,
            SessionError::Sink(SinkError::OutOfBounds { .. }) => {
                panic!("bug: a validated chunk fell outside its blob")
            }
        }
    }
}

impl From<SpecError> for UploadError {
    fn from(error: SpecError) -> Self {
        match error {
            SpecError::ZeroChunkSize => UploadError::InvalidArgument {
                reason: "chunk_size must be positive".into(),
            },
            SpecError::ChunkCountMismatch { declared, derived } => {
                UploadError::DeclaredValuesDisagree {
                    what: "expected_chunks vs ceil(byte_len / chunk_size)".into(),
                    declared: u64::from(declared),
                    actual: derived,
                }
            }
            SpecError::TooManyChunks { derived } => UploadError::QuotaExceeded {
                quota: Quota::ChunksPerSession,
                limit: u64::from(u32::MAX),
                requested: derived,
            },
        }
    }
}

impl From<BlobStoreError> for UploadError {
    fn from(error: BlobStoreError) -> Self {
        match error {
            BlobStoreError::CapacityExceeded {
                requested,
                available,
            } => UploadError::QuotaExceeded {
                quota: Quota::TotalBytes,
                limit: available,
                requested,
            },
            BlobStoreError::OutOfSpace => UploadError::OutOfSpace,
            other => panic!("bug: blob store invariant broken: {other:?}"),
        }
    }
}
