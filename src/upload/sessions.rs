//! What the upload endpoints share: finding the caller's session in the
//! state it must be in, advancing its hash, and freeing what a session
//! that will not commit held.

use crate::blob_store::BlobStore;
use crate::error::UploadError;
use crate::limits::charged_bytes;
use crate::session::{SessionService, SessionStatus};
use crate::state::State;
use crate::storable::scoped_key;
use crate::stores::hashing::{HashProgress, HashSource};
use crate::stores::thumbnails::ThumbnailRef;
use crate::types::{CommittedUpload, SessionId, UploadSession, UploadSessionMeta};
use candid::Principal;
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;

/// Reads an upload's received chunks back from its blob, for hashing.
pub(super) struct StoredChunks<'a, M: Memory> {
    pub sessions: &'a SessionService<crate::stable_memory::Vm<M>, UploadSessionMeta>,
    pub blobs: &'a BlobStore<M>,
    pub session: &'a UploadSession,
}

impl<M: Memory + Clone> HashSource for StoredChunks<'_, M> {
    fn is_received(&self, index: u32) -> bool {
        self.sessions.is_received(self.session.id, index)
    }

    fn read_chunk(&self, index: u32, buf: &mut [u8]) {
        self.blobs
            .read(
                self.session.meta.blob_id,
                self.session.spec.offset(index),
                buf,
            )
            .expect("bug: a received chunk lies outside its blob");
    }
}

pub(super) fn session<M: Memory>(
    state: &State<M>,
    session_id: SessionId,
) -> Result<UploadSession, UploadError> {
    state
        .sessions
        .get(session_id)
        .ok_or(UploadError::SessionNotFound { session_id })
}

/// The session, if it belongs to `caller`.
pub(super) fn owned_session<M: Memory>(
    state: &State<M>,
    caller: Principal,
    session_id: SessionId,
) -> Result<UploadSession, UploadError> {
    let session = session(state, session_id)?;
    if session.caller() != caller {
        return Err(UploadError::NotAuthorized);
    }
    Ok(session)
}

/// The caller's session if it still accepts chunks; an idle one is
/// recorded as expired (freeing its space) on the way.
pub(super) fn pending_session<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    session_id: SessionId,
    now: u64,
) -> Result<UploadSession, UploadError> {
    let session = owned_session(state, caller, session_id)?;
    match session.status_at(now) {
        SessionStatus::Pending => Ok(session),
        SessionStatus::Expired => {
            expire_session(state, session_id, now);
            Err(UploadError::SessionExpired { session_id })
        }
        status => Err(final_state_error(session_id, status)),
    }
}

/// Hashes the session's next bytes, up to `budget` beyond `fresh` (the
/// chunk just received, hashed from memory rather than read back).
pub fn advance_hashing<M: Memory + Clone>(
    state: &mut State<M>,
    session: &UploadSession,
    fresh: Option<(u32, &[u8])>,
    budget: u64,
) -> HashProgress {
    let source = StoredChunks {
        sessions: &state.sessions,
        blobs: &state.blobs,
        session,
    };
    state
        .hashing
        .advance(session.id, &session.spec, &source, fresh, budget)
}

pub(super) fn committed<M: Memory>(state: &State<M>, session: &UploadSession) -> CommittedUpload {
    let digest = state
        .hashing
        .get(session.id)
        .digest(&session.spec)
        .expect("bug: a committed upload without a complete hash");
    CommittedUpload {
        memory_id: session.meta.provisional_memory_id,
        blob_id: session.meta.blob_id,
        capsule_id: session.capsule_id(),
        byte_len: session.spec.total_bytes(),
        sha256: ByteBuf::from(digest.to_vec()),
    }
}

/// Records an idle session as expired and frees what it held. False if
/// it was not due.
pub fn expire_session<M: Memory + Clone>(
    state: &mut State<M>,
    session_id: SessionId,
    now: u64,
) -> bool {
    match state.sessions.expire(session_id, now) {
        Ok(session) => {
            release(state, &session);
            true
        }
        Err(_) => false,
    }
}

/// Frees what an aborted or expired session held.
pub(super) fn release<M: Memory + Clone>(state: &mut State<M>, session: &UploadSession) {
    state
        .blobs
        .free(session.meta.blob_id)
        .expect("bug: an open session's blob was already freed");
    let thumbnail = state.thumbnails.begun_with(session.id);
    state
        .accounting
        .release(session.caller(), upload_charge(session, thumbnail.as_ref()));
    if thumbnail.is_some() {
        // The thumbnail it was begun with goes with the upload.
        state.thumbnails.remove(session.meta.provisional_memory_id);
    }
    state
        .open_by_caller
        .remove(&scoped_key(&session.caller(), session.id.0));
    state.hashing.remove(session.id);
}

/// Bytes an upload counts against the quotas while open and once
/// committed: its file's and the thumbnail's it was begun with, each in
/// whole blocks.
pub(super) fn upload_charge(session: &UploadSession, thumbnail: Option<&ThumbnailRef>) -> u64 {
    charged_bytes(session.spec.total_bytes()) + thumbnail.map_or(0, ThumbnailRef::charge)
}

pub(super) fn final_state_error(session_id: SessionId, status: SessionStatus) -> UploadError {
    match status {
        SessionStatus::Committed => UploadError::AlreadyCommitted { session_id },
        SessionStatus::Aborted => UploadError::SessionAborted { session_id },
        SessionStatus::Expired => UploadError::SessionExpired { session_id },
        SessionStatus::Pending => unreachable!("bug: a pending session treated as final"),
    }
}
