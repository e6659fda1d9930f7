//! `uploads_put_chunk`: stores one chunk at its final place in the
//! upload's blob and hashes what it can.

use super::sessions::{advance_hashing, pending_session};
use crate::error::{Quota, UploadError};
use crate::limits::{HASH_BYTES_PER_MESSAGE, MAX_CHUNK_BYTES};
use crate::session::{ChunkWrite, SessionError, SinkError};
use crate::state::State;
use crate::types::*;
use crate::validate::{check_digest, signed_in};
use crate::{endpoint_error, quota_subset};
use candid::Principal;
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

quota_subset! {
    /// The limit `uploads_put_chunk` checks.
    pub enum PutChunkQuota {
        ChunkBytes,
    }
}

endpoint_error! {
    /// What `uploads_put_chunk` can answer.
    pub enum PutChunkError: UploadError for "uploads_put_chunk" {
        AnonymousCaller,
        OutOfSpace,
        SessionNotFound { session_id: SessionId },
        NotAuthorized,
        SessionExpired { session_id: SessionId },
        SessionAborted { session_id: SessionId },
        AlreadyCommitted { session_id: SessionId },
        InvalidArgument { reason: String },
        ChunkChecksumMismatch { index: u32, actual: ByteBuf },
        IndexOutOfRange { index: u32, expected_chunks: u32 },
        WrongChunkLength { index: u32, expected: u64, actual: u64 },
        ChunkConflict { index: u32 },
        QuotaExceeded { quota: PutChunkQuota, limit: u64, requested: u64 },
    }
}

/// Stores one chunk at its final place in the upload's blob.
pub fn put_chunk<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    now: u64,
    request: PutChunk,
) -> Result<ChunkAccepted, PutChunkError> {
    store_chunk(state, caller, now, request).map_err(PutChunkError::narrow)
}

fn store_chunk<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    now: u64,
    request: PutChunk,
) -> Result<ChunkAccepted, UploadError> {
    signed_in(caller)?;
    state.ensure_room()?;
    // Checked against the constant, not the configured limit: a session
    // begun before the limit was lowered keeps its chunk size.
    if request.bytes.len() as u64 > u64::from(MAX_CHUNK_BYTES) {
        return Err(UploadError::QuotaExceeded {
            quota: Quota::ChunkBytes,
            limit: u64::from(MAX_CHUNK_BYTES),
            requested: request.bytes.len() as u64,
        });
    }
    let mut session = pending_session(state, caller, request.session_id, now)?;
    state.capsules.writable_by(session.capsule_id(), caller)?;
    if let Some(expected) = &request.sha256 {
        check_digest("chunk sha256", expected)?;
        let actual: [u8; 32] = Sha256::digest(&request.bytes).into();
        if actual[..] != expected[..] {
            return Err(UploadError::ChunkChecksumMismatch {
                index: request.index,
                actual: ByteBuf::from(actual.to_vec()),
            });
        }
    }
    let sid = session.id;
    // The session loaded above is the one written through: its record is
    // decoded once per chunk, and its sink built once.
    let mut sink = state
        .blobs
        .sink(session.meta.blob_id)
        .map_err(|_| SessionError::Sink(SinkError::Gone))?;
    let receipt = state.sessions.put_loaded_chunk(
        &mut session,
        request.index,
        &request.bytes,
        &mut sink,
        now,
    )?;
    if receipt.write != ChunkWrite::Duplicate {
        // The bucket's load counter (`bucket_report`): one small cell.
        state.bucket.count_uploaded(request.bytes.len() as u64);
    }
    match receipt.write {
        ChunkWrite::Duplicate => {}
        ChunkWrite::Stored => {
            advance_hashing(
                state,
                &session,
                Some((request.index, &request.bytes)),
                HASH_BYTES_PER_MESSAGE,
            );
        }
        ChunkWrite::Replaced => {
            // A replaced chunk that was already hashed only marks the hash
            // stale: re-hashing waits for `uploads_finish`, so a client
            // alternating a chunk's bytes makes the canister hash nothing.
            // One not hashed yet is read when its turn comes, as any
            // chunk is.
            if !state.hashing.chunk_replaced(sid, request.index) {
                advance_hashing(state, &session, Some((request.index, &request.bytes)), 0);
            }
        }
    }
    Ok(ChunkAccepted {
        newly_stored: receipt.write != ChunkWrite::Duplicate,
        received_chunks: receipt.received_chunks,
        expected_chunks: session.expected_chunks(),
        hashed_bytes: state.hashing.hashed_bytes(sid),
        expires_at: receipt.expires_at,
    })
}
