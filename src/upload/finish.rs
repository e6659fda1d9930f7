//! `uploads_finish`: verifies an upload's SHA-256 and commits it as a
//! memory.

use super::sessions::{advance_hashing, committed, owned_session, pending_session, upload_charge};
use crate::error::{Quota, UploadError};
use crate::limits::{HASH_BYTES_PER_MESSAGE, MAX_REPAIR_ROUNDS};
use crate::session::SessionStatus;
use crate::state::State;
use crate::storable::scoped_key;
use crate::types::*;
use crate::validate::{check_digest, signed_in};
use crate::{endpoint_error, quota_subset};
use candid::Principal;
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;

quota_subset! {
    /// The limit `uploads_finish` checks.
    pub enum FinishUploadQuota {
        RepairRounds,
    }
}

endpoint_error! {
    /// What `uploads_finish` can answer.
    pub enum FinishUploadError: UploadError for "uploads_finish" {
        AnonymousCaller,
        OutOfSpace,
        InvalidArgument { reason: String },
        SessionNotFound { session_id: SessionId },
        NotAuthorized,
        DeclaredValuesDisagree { what: String, declared: u64, actual: u64 },
        AlreadyCommitted { session_id: SessionId },
        MemoryNotFound { memory_id: MemoryItemId },
        SessionExpired { session_id: SessionId },
        SessionAborted { session_id: SessionId },
        DeclaredHashesDisagree { at_begin: ByteBuf, at_finish: ByteBuf },
        Incomplete { missing_chunks: u32 },
        VerificationPending { hashed_bytes: u64, total_bytes: u64 },
        ChecksumMismatch { expected: ByteBuf, actual: ByteBuf },
        QuotaExceeded { quota: FinishUploadQuota, limit: u64, requested: u64 },
    }
}

/// Verifies and commits an upload. Finishing a committed upload again
/// returns the same result.
pub fn finish<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    now: u64,
    request: FinishUpload,
) -> Result<CommittedUpload, FinishUploadError> {
    commit(state, caller, now, request).map_err(FinishUploadError::narrow)
}

fn commit<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    now: u64,
    request: FinishUpload,
) -> Result<CommittedUpload, UploadError> {
    signed_in(caller)?;
    state.ensure_room()?;
    check_digest("sha256", &request.sha256)?;
    let session = owned_session(state, caller, request.session_id)?;
    let sid = session.id;
    match session.status_at(now) {
        SessionStatus::Pending => {}
        SessionStatus::Committed => {
            // The same checks as for a pending upload, then the same answer
            // for the same call, as long as the memory lives.
            check_declared_len(&session, request.byte_len)?;
            let committed = committed(state, &session);
            if committed.sha256 != request.sha256 {
                return Err(UploadError::AlreadyCommitted { session_id: sid });
            }
            if state.memories.get(committed.memory_id).is_none() {
                return Err(UploadError::MemoryNotFound {
                    memory_id: committed.memory_id,
                });
            }
            return Ok(committed);
        }
        _ => {
            pending_session(state, caller, sid, now)?;
        }
    }
    state.capsules.writable_by(session.capsule_id(), caller)?;
    check_declared_len(&session, request.byte_len)?;
    if let Some(at_begin) = &session.meta.asset.sha256 {
        if *at_begin != request.sha256 {
            return Err(UploadError::DeclaredHashesDisagree {
                at_begin: at_begin.clone(),
                at_finish: request.sha256,
            });
        }
    }
    if session.missing_chunks() > 0 {
        return Err(UploadError::Incomplete {
            missing_chunks: session.missing_chunks(),
        });
    }
    let repair = state.hashing.repair(sid);
    if repair.stale {
        // Chunks that were hashed have been replaced: one more repair round
        // hashes the file again from byte 0.
        if repair.rounds >= MAX_REPAIR_ROUNDS {
            return Err(UploadError::QuotaExceeded {
                quota: Quota::RepairRounds,
                limit: u64::from(MAX_REPAIR_ROUNDS),
                requested: u64::from(repair.rounds) + 1,
            });
        }
        state.hashing.restart(sid);
    }
    let progress = advance_hashing(state, &session, None, HASH_BYTES_PER_MESSAGE);
    let Some(digest) = progress.digest(&session.spec) else {
        // A client polling while hashing catches up is not idle.
        state.sessions.touch(sid, now)?;
        return Err(UploadError::VerificationPending {
            hashed_bytes: progress.hashed_bytes(),
            total_bytes: session.spec.total_bytes(),
        });
    };
    if digest[..] != request.sha256[..] {
        state.sessions.allow_rewrites(sid, now)?;
        return Err(UploadError::ChecksumMismatch {
            expected: request.sha256,
            actual: ByteBuf::from(digest.to_vec()),
        });
    }
    let session = state.sessions.complete(sid, now)?;
    let committed = committed(state, &session);
    // The thumbnail it was begun with, if any, already waits under the
    // memory's id; its reservation turns into stored bytes below.
    state.memories.insert(MemoryRecord {
        memory_id: committed.memory_id,
        capsule_id: committed.capsule_id,
        name: session.meta.asset.name.clone(),
        mime_type: session.meta.asset.mime_type.clone(),
        byte_len: committed.byte_len,
        sha256: committed.sha256.clone(),
        blob_id: committed.blob_id,
        uploaded_by: caller,
        created_at: now,
        thumbnail: None,
    });
    let thumbnail = state.thumbnails.begun_with(sid);
    state
        .accounting
        .commit(caller, upload_charge(&session, thumbnail.as_ref()));
    state.open_by_caller.remove(&scoped_key(&caller, sid.0));
    Ok(committed)
}

fn check_declared_len(session: &UploadSession, byte_len: u64) -> Result<(), UploadError> {
    let declared = session.meta.asset.byte_len;
    if byte_len != declared {
        return Err(UploadError::DeclaredValuesDisagree {
            what: "byte_len at finish vs at begin".into(),
            declared,
            actual: byte_len,
        });
    }
    Ok(())
}
