//! The values a chunk session is made of.

use candid::CandidType;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::Storable;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// Identifies a chunk session. Ids are never reused.
#[derive(
    CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct SessionId(pub u64);

crate::u64_id_storable!(SessionId);

/// Where a session is in its life. `Pending` is the only state that moves;
/// the other three are final.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    Pending,
    Committed,
    Aborted,
    Expired,
}

/// How a stream is cut into chunks: every chunk is `chunk_size` long except
/// the last, which holds the rest.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSpec {
    total_bytes: u64,
    chunk_size: u32,
    chunk_count: u32,
}

/// Why declared stream dimensions are inconsistent.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum SpecError {
    ZeroChunkSize,
    /// The declared chunk count does not follow from length and chunk size.
    ChunkCountMismatch {
        declared: u32,
        derived: u64,
    },
    /// More chunks than a `u32` counts.
    TooManyChunks {
        derived: u64,
    },
}

impl ChunkSpec {
    /// Checks that `chunk_count` is exactly the number of `chunk_size`
    /// chunks that `total_bytes` needs; a disagreement is never resolved
    /// silently.
    pub fn new(total_bytes: u64, chunk_size: u32, chunk_count: u32) -> Result<Self, SpecError> {
        if chunk_size == 0 {
            return Err(SpecError::ZeroChunkSize);
        }
        let derived = total_bytes.div_ceil(u64::from(chunk_size));
        if derived != u64::from(chunk_count) {
            return Err(SpecError::ChunkCountMismatch {
                declared: chunk_count,
                derived,
            });
        }
        Ok(Self {
            total_bytes,
            chunk_size,
            chunk_count,
        })
    }

    /// The spec that cuts `total_bytes` into `chunk_size` chunks.
    pub fn for_length(total_bytes: u64, chunk_size: u32) -> Result<Self, SpecError> {
        if chunk_size == 0 {
            return Err(SpecError::ZeroChunkSize);
        }
        let derived = total_bytes.div_ceil(u64::from(chunk_size));
        let chunk_count =
            u32::try_from(derived).map_err(|_| SpecError::TooManyChunks { derived })?;
        Self::new(total_bytes, chunk_size, chunk_count)
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    pub fn chunk_count(&self) -> u32 {
        self.chunk_count
    }

    /// Stream offset of chunk `index`.
    pub fn offset(&self, index: u32) -> u64 {
        u64::from(index) * u64::from(self.chunk_size)
    }

    /// Length chunk `index` must have, or `None` past the last chunk.
    pub fn chunk_len(&self, index: u32) -> Option<u64> {
        if index >= self.chunk_count {
            return None;
        }
        let start = self.offset(index);
        Some((self.total_bytes - start).min(u64::from(self.chunk_size)))
    }
}

/// A client's idempotency key, scoped (e.g. by caller) and reduced to a
/// fixed-width digest so that keys of any length index alike.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(pub [u8; 32]);

impl IdempotencyKey {
    /// The key `key` within `scope`; length prefixes keep `("ab","c")` and
    /// `("a","bc")` apart.
    pub fn new(scope: &[u8], key: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update((scope.len() as u64).to_be_bytes());
        hasher.update(scope);
        hasher.update((key.len() as u64).to_be_bytes());
        hasher.update(key);
        IdempotencyKey(hasher.finalize().into())
    }
}

/// Metadata a session carries for its user, opaque to the session service.
pub trait SessionMeta: CandidType + DeserializeOwned + Clone {
    /// Whether `other` asks for the same thing as `self`: a repeated `create`
    /// under one idempotency key must ask for the same thing to get the
    /// existing session back.
    fn same_request(&self, other: &Self) -> bool;
}

/// One chunk session as stored. Status, chunk counts and timestamps live
/// here and nowhere else.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct Session<Meta> {
    pub id: SessionId,
    pub meta: Meta,
    pub spec: ChunkSpec,
    pub idempotency_key: IdempotencyKey,
    pub status: SessionStatus,
    pub created_at: u64,
    pub updated_at: u64,
    /// While pending: when the session expires unless a chunk arrives.
    /// Once final: when the record may be pruned.
    pub deadline: u64,
    pub received_chunks: u32,
    /// Set after a failed verification: chunks may then be replaced.
    pub rewritable: bool,
}

impl<Meta> Session<Meta> {
    /// The status as of `now`: a pending session past its deadline is
    /// expired even before the sweeper has recorded it.
    pub fn status_at(&self, now: u64) -> SessionStatus {
        match self.status {
            SessionStatus::Pending if now >= self.deadline => SessionStatus::Expired,
            status => status,
        }
    }

    pub fn missing_chunks(&self) -> u32 {
        self.spec.chunk_count() - self.received_chunks
    }
}

impl<Meta: SessionMeta> Storable for Session<Meta> {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(candid::encode_one(self).expect("bug: session record failed to encode"))
    }

    fn into_bytes(self) -> Vec<u8> {
        candid::encode_one(&self).expect("bug: session record failed to encode")
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        candid::decode_one(&bytes).expect("bug: session record failed to decode")
    }

    const BOUND: Bound = Bound::Unbounded;
}
