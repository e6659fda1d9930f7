//! `uploads_begin`: starts an upload, or finds the one the same
//! idempotency key started for the same request.

use super::sessions::{final_state_error, session};
use crate::blob_store::BlobId;
use crate::error::{Quota, UploadError};
use crate::limits::{charged_bytes, MAX_IDEMPOTENCY_KEY_BYTES, MAX_MIME_BYTES, MAX_NAME_BYTES};
use crate::session::{ChunkSpec, CreateOutcome, SessionStatus};
use crate::stable_memory::BLOB_STORE_CAPACITY_BYTES;
use crate::state::State;
use crate::storable::scoped_key;
use crate::stores::bucket::BucketState;
use crate::stores::thumbnails::{self, StoredThumbnail, ThumbnailRef};
use crate::types::*;
use crate::validate::{check_digest, check_text, signed_in};
use crate::{endpoint_error, quota_subset};
use candid::Principal;
use ic_stable_structures::Memory;

quota_subset! {
    /// The limits `uploads_begin` checks.
    pub enum BeginUploadQuota {
        ChunkBytes,
        FileBytes,
        ChunksPerSession,
        OpenSessionsPerCaller,
        ReservedBytesPerCaller,
        StoredBytesPerCaller,
        ReservedBytesTotal,
        TotalBytes,
    }
}

endpoint_error! {
    /// What `uploads_begin` can answer.
    pub enum BeginUploadError: UploadError for "uploads_begin" {
        AnonymousCaller,
        OutOfSpace,
        InvalidArgument { reason: String },
        DeclaredValuesDisagree { what: String, declared: u64, actual: u64 },
        CapsuleNotFound { capsule_id: CapsuleId },
        NotAuthorized,
        IdempotencyConflict { session_id: SessionId },
        SessionAborted { session_id: SessionId },
        SessionExpired { session_id: SessionId },
        QuotaExceeded { quota: BeginUploadQuota, limit: u64, requested: u64 },
        BucketSealed,
    }
}

/// Starts an upload, or returns the session the same idempotency key
/// already started for the same request (its thumbnail included). On a
/// sealed bucket only the latter: no new session begins (`BucketSealed`).
pub fn begin<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    now: u64,
    request: impl Into<BeginUploadRequest>,
) -> Result<UploadStarted, BeginUploadError> {
    begin_upload(state, caller, now, request.into()).map_err(BeginUploadError::narrow)
}

fn begin_upload<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    now: u64,
    request: BeginUploadRequest,
) -> Result<UploadStarted, UploadError> {
    signed_in(caller)?;
    state.ensure_room()?;
    let limits = state.accounting.limits().clone();
    let BeginUploadRequest {
        capsule_id,
        asset,
        chunk_size,
        expected_chunks,
        idempotency_key,
        thumbnail,
    } = request;
    check_text("asset name", &asset.name, MAX_NAME_BYTES)?;
    check_text("MIME type", &asset.mime_type, MAX_MIME_BYTES)?;
    check_text(
        "idempotency key",
        &idempotency_key,
        MAX_IDEMPOTENCY_KEY_BYTES,
    )?;
    if idempotency_key.is_empty() {
        return Err(UploadError::InvalidArgument {
            reason: "idempotency_key must not be empty".into(),
        });
    }
    if let Some(digest) = &asset.sha256 {
        check_digest("asset.sha256", digest)?;
    }
    if let Some(thumbnail) = &thumbnail {
        thumbnails::check(thumbnail)?;
    }
    if chunk_size > limits.max_chunk_bytes {
        return Err(UploadError::QuotaExceeded {
            quota: Quota::ChunkBytes,
            limit: u64::from(limits.max_chunk_bytes),
            requested: u64::from(chunk_size),
        });
    }
    if asset.byte_len > limits.max_file_bytes {
        return Err(UploadError::QuotaExceeded {
            quota: Quota::FileBytes,
            limit: limits.max_file_bytes,
            requested: asset.byte_len,
        });
    }
    let spec = ChunkSpec::new(asset.byte_len, chunk_size, expected_chunks)?;
    if spec.chunk_count() > limits.max_chunks_per_session {
        return Err(UploadError::QuotaExceeded {
            quota: Quota::ChunksPerSession,
            limit: u64::from(limits.max_chunks_per_session),
            requested: u64::from(spec.chunk_count()),
        });
    }
    state.capsules.writable_by(capsule_id, caller)?;

    let mut meta = UploadSessionMeta {
        capsule_id,
        caller,
        idempotency_key,
        asset,
        chunk_size,
        provisional_memory_id: MemoryItemId(0),
        blob_id: BlobId(0),
    };
    let byte_len = meta.asset.byte_len;
    let thumbnail_ref = thumbnail.as_ref().map(ThumbnailRef::of);
    let charge = charged_bytes(byte_len) + thumbnail_ref.as_ref().map_or(0, ThumbnailRef::charge);
    // Worked out once: the spec above and this key are what the session is
    // created (or found again) with.
    let key = request_key(&caller, &meta.idempotency_key);
    let session_id = match state.sessions.find_by_key(&key) {
        Some(existing) if !memory_was_deleted(state, existing, now) => {
            // A retry: offer the existing allocation so the generic create
            // decides whether this is the same request.
            let session = state
                .sessions
                .get(existing)
                .expect("bug: idempotency key without session");
            // The thumbnail is part of the request too (kept beside the
            // session record, so compared here).
            if state.thumbnails.begun_with(existing) != thumbnail_ref {
                return Err(UploadError::IdempotencyConflict {
                    session_id: existing,
                });
            }
            meta.provisional_memory_id = session.meta.provisional_memory_id;
            meta.blob_id = session.meta.blob_id;
            existing
        }
        found => {
            // A new session: not on a sealed bucket (the settings cell's
            // heap copy, no stable read).
            if state.bucket.state() == BucketState::Sealed {
                return Err(UploadError::BucketSealed);
            }
            // The key's upload was committed and its memory deleted since:
            // a begin under it uploads the file again, so the old session
            // lets go of the key.
            state.accounting.check_reserve(&caller, charge)?;
            meta.blob_id = state.blobs.allocate(byte_len, BLOB_STORE_CAPACITY_BYTES)?;
            if let Some(existing) = found {
                state.sessions.release_key(existing);
            }
            meta.provisional_memory_id = state.accounting.next_memory_id();
            state.sessions.allocate_id()
        }
    };
    let outcome = state.sessions.create(session_id, meta, spec, key, now)?;
    let session = session(state, outcome.session_id())?;
    match outcome {
        CreateOutcome::Created(sid) => {
            state.accounting.reserve(caller, charge);
            if let (Some(thumbnail), Some(thumbnail_ref)) = (thumbnail, thumbnail_ref) {
                // Kept under the provisional id: the memory's once the
                // upload commits, dropped if it does not.
                state.thumbnails.set_begun_with(sid, thumbnail_ref);
                let previous = state.thumbnails.insert(
                    session.meta.provisional_memory_id,
                    StoredThumbnail {
                        thumbnail,
                        charged_to: caller,
                    },
                );
                assert!(previous.is_none(), "bug: a new memory id had a thumbnail");
            }
            state.open_by_caller.insert(scoped_key(&caller, sid.0), ());
            state.hashing.start(sid);
        }
        CreateOutcome::Existing(sid) => match session.status_at(now) {
            // The same session back: pending, or already committed (the
            // client then learns it from `uploads_finish` or the status).
            SessionStatus::Pending | SessionStatus::Committed => {}
            status => return Err(final_state_error(sid, status)),
        },
    }
    Ok(UploadStarted {
        session_id: session.id,
        provisional_memory_id: session.meta.provisional_memory_id,
        expected_chunks: session.expected_chunks(),
        chunk_size: session.spec.chunk_size(),
        expires_at: session.deadline,
    })
}

/// Whether `session_id` committed a memory that has since been deleted.
fn memory_was_deleted<M: Memory>(state: &State<M>, session_id: SessionId, now: u64) -> bool {
    state.sessions.get(session_id).is_some_and(|session| {
        session.status_at(now) == SessionStatus::Committed
            && state
                .memories
                .get(session.meta.provisional_memory_id)
                .is_none()
    })
}
