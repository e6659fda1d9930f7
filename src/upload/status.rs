//! The reads of uploads in progress: `uploads_status` (for resuming),
//! `uploads_mine` (for a reloaded page) and `uploads_chunk_sha256` (for
//! finding the chunks to re-send after a checksum mismatch).

use super::sessions::{committed, final_state_error, owned_session, StoredChunks};
use crate::endpoint_error;
use crate::error::UploadError;
use crate::limits::MAX_PAGE;
use crate::session::SessionStatus;
use crate::state::State;
use crate::storable::{scoped_key, scoped_key_id};
use crate::stores::hashing::HashSource;
use crate::types::*;
use candid::Principal;
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

endpoint_error! {
    /// What `uploads_status` can answer.
    pub enum UploadStatusError: UploadError for "uploads_status" {
        SessionNotFound { session_id: SessionId },
        NotAuthorized,
    }
}

endpoint_error! {
    /// What `uploads_chunk_sha256` can answer.
    pub enum ChunkHashError: UploadError for "uploads_chunk_sha256" {
        SessionNotFound { session_id: SessionId },
        NotAuthorized,
        IndexOutOfRange { index: u32, expected_chunks: u32 },
        AlreadyCommitted { session_id: SessionId },
        SessionAborted { session_id: SessionId },
        SessionExpired { session_id: SessionId },
        ChunkNotReceived { index: u32 },
    }
}

/// Where an upload stands, with a page of its missing chunks.
pub fn status<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    now: u64,
    request: StatusRequest,
) -> Result<UploadStatus, UploadStatusError> {
    let status_of = || -> Result<UploadStatus, UploadError> {
        let session = owned_session(state, caller, request.session_id)?;
        let max_ranges = request.max_ranges.clamp(1, MAX_PAGE) as usize;
        let (missing, next_from_chunk) =
            state
                .sessions
                .missing_ranges(session.id, request.from_chunk, max_ranges)?;
        let status = session.status_at(now);
        Ok(UploadStatus {
            session_id: session.id,
            capsule_id: session.capsule_id(),
            status,
            provisional_memory_id: session.meta.provisional_memory_id,
            byte_len: session.spec.total_bytes(),
            chunk_size: session.spec.chunk_size(),
            expected_chunks: session.expected_chunks(),
            received_chunks: session.received_chunks,
            missing,
            next_from_chunk,
            hashed_bytes: state.hashing.hashed_bytes(session.id),
            repairing: session.rewritable,
            expires_at: (status == SessionStatus::Pending).then_some(session.deadline),
            committed: (status == SessionStatus::Committed).then(|| committed(state, &session)),
        })
    };
    status_of().map_err(UploadStatusError::narrow)
}

/// The caller's pending uploads, so a reloaded page can resume them.
pub fn open_uploads<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    now: u64,
) -> Vec<OpenUpload> {
    state
        .open_by_caller
        .keys_range(scoped_key(&caller, 0)..=scoped_key(&caller, u64::MAX))
        .take(MAX_PAGE as usize)
        .filter_map(|key| state.sessions.get(SessionId(scoped_key_id(&key))))
        .filter(|s| s.status_at(now) == SessionStatus::Pending)
        .map(|s| OpenUpload {
            session_id: s.id,
            capsule_id: s.capsule_id(),
            provisional_memory_id: s.meta.provisional_memory_id,
            name: s.meta.asset.name.clone(),
            byte_len: s.spec.total_bytes(),
            chunk_size: s.spec.chunk_size(),
            expected_chunks: s.expected_chunks(),
            received_chunks: s.received_chunks,
            expires_at: s.deadline,
        })
        .collect()
}

/// SHA-256 of a received chunk as stored, so a client whose file hash
/// mismatched can find the chunks to re-send.
pub fn chunk_sha256<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    now: u64,
    session_id: SessionId,
    index: u32,
) -> Result<ByteBuf, ChunkHashError> {
    let hash_of = || -> Result<ByteBuf, UploadError> {
        let session = owned_session(state, caller, session_id)?;
        let len = session
            .spec
            .chunk_len(index)
            .ok_or(UploadError::IndexOutOfRange {
                index,
                expected_chunks: session.expected_chunks(),
            })?;
        match session.status_at(now) {
            SessionStatus::Pending => {}
            status => return Err(final_state_error(session_id, status)),
        }
        if !state.sessions.is_received(session_id, index) {
            return Err(UploadError::ChunkNotReceived { index });
        }
        let mut buf = vec![0u8; len as usize];
        StoredChunks {
            sessions: &state.sessions,
            blobs: &state.blobs,
            session: &session,
        }
        .read_chunk(index, &mut buf);
        Ok(ByteBuf::from(Sha256::digest(&buf).to_vec()))
    };
    hash_of().map_err(ChunkHashError::narrow)
}
