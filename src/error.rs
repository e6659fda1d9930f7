//! `UploadError`, every error case of the domain, and the macros that
//! give each endpoint its own error type: an enum with exactly the cases
//! that endpoint can answer, each shaped as in `UploadError`, so that it
//! is a Candid subtype of it (old clients keep decoding).
//!
//! The domain's helpers answer `UploadError`; an endpoint narrows it to
//! its own type on the way out. A case the endpoint's type lacks is a bug
//! in the code, not in the call: it traps (the message changes nothing),
//! and the model and fuzz tests, which call the endpoints, would find it.
//!
//! Cases `UploadError` has but no path of an endpoint reaches are left out
//! of its type: capsules are never deleted, so a session's or memory's
//! capsule is always found (`CapsuleNotFound` only where the caller names
//! the capsule), and a memory's links go with it (`memories_unshare` finds
//! the memory of any link it finds).

use crate::blob_store::BlobStoreError;
use crate::session::{SessionError, SessionId, SinkError, SpecError};
use crate::types::{CapsuleId, MemoryItemId};
use candid::{CandidType, Principal};
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
    /// An index canister manages this canister as one of its buckets:
    /// capsules are created through it (`bucket_register_capsule`).
    ManagedByIndex {
        index: Principal,
    },
    /// The index sealed this bucket: no new upload begins here. Uploads
    /// in progress finish; begin a new one where the index places it.
    BucketSealed,
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

/// Declares an endpoint's error type: the listed cases of `$wide`, with
/// the same fields (a field may be of a narrower type that converts both
/// ways, as the quota subsets do), and the conversions both ways.
#[macro_export]
macro_rules! endpoint_error {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $wide:ident for $method:literal {
            $( $(#[$vmeta:meta])* $variant:ident $({ $($field:ident : $ty:ty),* $(,)? })? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(candid::CandidType, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant $({ $($field : $ty),* })? ),*
        }

        impl From<$name> for $wide {
            fn from(error: $name) -> Self {
                match error {
                    $( $name::$variant $({ $($field),* })? =>
                        $wide::$variant $({ $($field: $field.into()),* })? ),*
                }
            }
        }

        impl $name {
            /// The endpoint's answer for `error`.
            ///
            /// # Panics
            /// For a case this endpoint cannot answer: a bug.
            pub fn narrow(error: $wide) -> Self {
                match error {
                    $( $wide::$variant $({ $($field),* })? =>
                        $name::$variant $({ $($field: $crate::error::narrow_field($field, $method)),* })?, )*
                    #[allow(unreachable_patterns)]
                    other => panic!(
                        "bug: {} answered {other:?}, a case its error type does not have",
                        $method
                    ),
                }
            }
        }
    };
}

/// Declares the quotas an endpoint can run into: a subset of `Quota`.
#[macro_export]
macro_rules! quota_subset {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(candid::CandidType, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($variant),*
        }

        impl From<$name> for $crate::error::Quota {
            fn from(quota: $name) -> Self {
                match quota {
                    $($name::$variant => $crate::error::Quota::$variant),*
                }
            }
        }

        impl TryFrom<$crate::error::Quota> for $name {
            type Error = $crate::error::Quota;
            fn try_from(quota: $crate::error::Quota) -> Result<Self, Self::Error> {
                match quota {
                    $($crate::error::Quota::$variant => Ok($name::$variant),)*
                    #[allow(unreachable_patterns)]
                    other => Err(other),
                }
            }
        }
    };
}

/// A field of a wide error case as the narrow case has it.
///
/// # Panics
/// When the narrow type cannot hold the value (a quota the endpoint does
/// not declare): a bug.
pub fn narrow_field<W: std::fmt::Debug + Clone, N: TryFrom<W>>(value: W, method: &str) -> N {
    N::try_from(value.clone()).unwrap_or_else(|_| {
        panic!("bug: {method} answered {value:?}, which its error type does not have")
    })
}
