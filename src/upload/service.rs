//! The upload service: capsules, upload sessions, committed memories and
//! their reading back. Every method takes the caller and the time as
//! arguments, so the whole domain runs natively on `VectorMemory`.

use super::accounting::Accounting;
use super::blob_store::{BlobId, BlobStore};
use super::capsules::CapsuleStore;
use super::compat::request_key;
use super::error::{Quota, UploadError};
use super::hashing::{HashProgress, HashSource, HashTracker};
use super::limits::{
    charged_bytes, Limits, HASH_BYTES_PER_MESSAGE, MAX_CHUNK_BYTES, MAX_PAGE, MAX_REPAIR_ROUNDS,
};
use super::memories::MemoryStore;
use super::shares::ShareStore;
use super::thumbnails::{self, StoredThumbnail, ThumbnailRef, ThumbnailStore};
use super::types::*;
use crate::layout::{self, Found, LayoutError, CURRENT_LAYOUT};
use crate::session::{
    ChunkSpec, ChunkWrite, CreateOutcome, SessionError, SessionPolicy, SessionService, SinkError,
};
use crate::stable_memory::{self, Headroom, StableMemories, Vm, BLOB_STORE_CAPACITY_BYTES};
use crate::storable::{scoped_key, scoped_key_id, SCOPED_KEY_BYTES};
use candid::Principal;
use ic_stable_structures::{Memory, StableBTreeMap};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

/// Longest file name, MIME type and idempotency key accepted.
const MAX_NAME_BYTES: usize = 1024;
const MAX_MIME_BYTES: usize = 256;
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;

/// The upload domain over stable memory `M`.
pub struct UploadService<M: Memory> {
    pub(crate) sessions: SessionService<M, UploadSessionMeta>,
    pub(crate) blobs: BlobStore<M>,
    pub(crate) hashing: HashTracker<M>,
    pub(super) open_by_caller: StableBTreeMap<[u8; SCOPED_KEY_BYTES], (), Vm<M>>,
    pub(super) capsules: CapsuleStore<M>,
    pub(super) memories: MemoryStore<M>,
    pub(super) accounting: Accounting<M>,
    headroom: Headroom<M>,
    pub(super) shares: ShareStore<M>,
    pub(crate) thumbnails: ThumbnailStore<M>,
}

pub(super) fn policy(limits: &Limits) -> SessionPolicy {
    SessionPolicy {
        idle_timeout_ns: limits.session_idle_timeout_ns,
        retention_ns: limits.finished_retention_ns,
    }
}

pub(super) fn signed_in(caller: Principal) -> Result<(), UploadError> {
    if caller == Principal::anonymous() {
        Err(UploadError::AnonymousCaller)
    } else {
        Ok(())
    }
}

pub(super) fn check_text(what: &str, value: &str, max: usize) -> Result<(), UploadError> {
    if value.len() > max {
        return Err(UploadError::InvalidArgument {
            reason: format!("{what} is longer than {max} bytes"),
        });
    }
    Ok(())
}

fn check_digest(what: &str, digest: &[u8]) -> Result<(), UploadError> {
    if digest.len() != 32 {
        return Err(UploadError::InvalidArgument {
            reason: format!("{what} must be 32 bytes (SHA-256), got {}", digest.len()),
        });
    }
    Ok(())
}

/// Reads an upload's received chunks back from its blob, for hashing.
struct StoredChunks<'a, M: Memory> {
    sessions: &'a SessionService<M, UploadSessionMeta>,
    blobs: &'a BlobStore<M>,
    session: &'a UploadSession,
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

impl<M: Memory + Clone> UploadService<M> {
    /// Opens the service on `memory`, laying out its structures on first
    /// use and migrating an older layout. Constant work: only headers and
    /// small records are read.
    ///
    /// # Panics
    /// When stable memory holds a layout newer than this build knows: in
    /// `post_upgrade` that traps, and the IC keeps the running canister.
    pub fn init(memory: M) -> Self {
        Self::open(memory).unwrap_or_else(|error| panic!("{error}"))
    }

    /// `init`, with a refused layout as an error.
    pub fn open(memory: M) -> Result<Self, LayoutError> {
        let was_empty = memory.size() == 0;
        let memories = StableMemories::init(memory);
        let found = layout::read(&memories, was_empty)?;
        let mut accounting = Accounting::init(&memories);
        if found == Found::Version(1) {
            accounting.migrate_to_layout_2();
        }
        if matches!(found, Found::Version(1..=3)) {
            accounting.adopt_current_defaults();
        }
        if found != Found::Version(CURRENT_LAYOUT) {
            layout::record(&memories, CURRENT_LAYOUT);
        }
        let session_policy = policy(accounting.limits());
        let mut service = Self {
            sessions: SessionService::init(&memories, session_policy),
            blobs: BlobStore::init(&memories),
            hashing: HashTracker::init(&memories),
            open_by_caller: StableBTreeMap::init(
                memories.get(stable_memory::UPLOAD_CALLER_SESSIONS),
            ),
            capsules: CapsuleStore::init(&memories),
            memories: MemoryStore::init(&memories),
            accounting,
            headroom: memories.headroom(),
            shares: ShareStore::init(&memories),
            thumbnails: ThumbnailStore::init(&memories),
        };
        // The certification tree is heap state: bounded rebuild.
        service.certify_all_links();
        Ok(service)
    }

    /// For updates that may grow stable memory, before they change
    /// anything: `OutOfSpace` if the subnet will not give the memory they
    /// may need.
    pub(super) fn ensure_room(&self) -> Result<(), UploadError> {
        if self.headroom.ensure() {
            Ok(())
        } else {
            Err(UploadError::OutOfSpace)
        }
    }

    /// Starts an upload, or returns the session the same idempotency key
    /// already started for the same request (its thumbnail included).
    pub fn begin(
        &mut self,
        caller: Principal,
        now: u64,
        request: impl Into<BeginUploadRequest>,
    ) -> Result<UploadStarted, UploadError> {
        signed_in(caller)?;
        self.ensure_room()?;
        let limits = self.accounting.limits().clone();
        let BeginUploadRequest {
            capsule_id,
            asset,
            chunk_size,
            expected_chunks,
            idempotency_key,
            thumbnail,
        } = request.into();
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
        self.capsules.writable_by(capsule_id, caller)?;

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
        let charge =
            charged_bytes(byte_len) + thumbnail_ref.as_ref().map_or(0, ThumbnailRef::charge);
        // Worked out once: the spec above and this key are what the
        // session is created (or found again) with.
        let key = request_key(&caller, &meta.idempotency_key);
        let session_id = match self.sessions.find_by_key(&key) {
            Some(existing) if !self.memory_was_deleted(existing, now) => {
                // A retry: offer the existing allocation so the generic
                // create decides whether this is the same request.
                let session = self
                    .sessions
                    .get(existing)
                    .expect("bug: idempotency key without session");
                // The thumbnail is part of the request too (kept beside
                // the session record, so compared here).
                if self.thumbnails.begun_with(existing) != thumbnail_ref {
                    return Err(UploadError::IdempotencyConflict {
                        session_id: existing,
                    });
                }
                meta.provisional_memory_id = session.meta.provisional_memory_id;
                meta.blob_id = session.meta.blob_id;
                existing
            }
            found => {
                // The key's upload was committed and its memory deleted
                // since: a begin under it uploads the file again, so the
                // old session lets go of the key.
                self.accounting.check_reserve(&caller, charge)?;
                meta.blob_id = self.blobs.allocate(byte_len, BLOB_STORE_CAPACITY_BYTES)?;
                if let Some(existing) = found {
                    self.sessions.release_key(existing);
                }
                meta.provisional_memory_id = self.accounting.next_memory_id();
                self.sessions.allocate_id()
            }
        };
        let outcome = self.sessions.create(session_id, meta, spec, key, now)?;
        let session = self.session(outcome.session_id())?;
        match outcome {
            CreateOutcome::Created(sid) => {
                self.accounting.reserve(caller, charge);
                if let (Some(thumbnail), Some(thumbnail_ref)) = (thumbnail, thumbnail_ref) {
                    // Kept under the provisional id: the memory's once the
                    // upload commits, dropped if it does not.
                    self.thumbnails.set_begun_with(sid, thumbnail_ref);
                    let previous = self.thumbnails.insert(
                        session.meta.provisional_memory_id,
                        StoredThumbnail {
                            thumbnail,
                            charged_to: caller,
                        },
                    );
                    assert!(previous.is_none(), "bug: a new memory id had a thumbnail");
                }
                self.open_by_caller.insert(scoped_key(&caller, sid.0), ());
                self.hashing.start(sid);
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

    /// Stores one chunk at its final place in the upload's blob.
    pub fn put_chunk(
        &mut self,
        caller: Principal,
        now: u64,
        request: PutChunk,
    ) -> Result<ChunkAccepted, UploadError> {
        signed_in(caller)?;
        self.ensure_room()?;
        // Checked against the constant, not the configured limit: a session
        // begun before the limit was lowered keeps its chunk size.
        if request.bytes.len() as u64 > u64::from(MAX_CHUNK_BYTES) {
            return Err(UploadError::QuotaExceeded {
                quota: Quota::ChunkBytes,
                limit: u64::from(MAX_CHUNK_BYTES),
                requested: request.bytes.len() as u64,
            });
        }
        let mut session = self.pending_session(caller, request.session_id, now)?;
        self.capsules.writable_by(session.capsule_id(), caller)?;
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
        // The session loaded above is the one written through: its record
        // is decoded once per chunk, and its sink built once.
        let mut sink = self
            .blobs
            .sink(session.meta.blob_id)
            .map_err(|_| SessionError::Sink(SinkError::Gone))?;
        let receipt = self.sessions.put_loaded_chunk(
            &mut session,
            request.index,
            &request.bytes,
            &mut sink,
            now,
        )?;
        match receipt.write {
            ChunkWrite::Duplicate => {}
            ChunkWrite::Stored => {
                self.advance_hashing(
                    &session,
                    Some((request.index, &request.bytes)),
                    HASH_BYTES_PER_MESSAGE,
                );
            }
            ChunkWrite::Replaced => {
                // A replaced chunk that was already hashed only marks the
                // hash stale: re-hashing waits for `uploads_finish`, so a
                // client alternating a chunk's bytes makes the canister
                // hash nothing. One not hashed yet is read when its turn
                // comes, as any chunk is.
                if !self.hashing.chunk_replaced(sid, request.index) {
                    self.advance_hashing(&session, Some((request.index, &request.bytes)), 0);
                }
            }
        }
        Ok(ChunkAccepted {
            newly_stored: receipt.write != ChunkWrite::Duplicate,
            received_chunks: receipt.received_chunks,
            expected_chunks: session.expected_chunks(),
            hashed_bytes: self.hashing.hashed_bytes(sid),
            expires_at: receipt.expires_at,
        })
    }

    /// Verifies and commits an upload. Finishing a committed upload again
    /// returns the same result.
    pub fn finish(
        &mut self,
        caller: Principal,
        now: u64,
        request: FinishUpload,
    ) -> Result<CommittedUpload, UploadError> {
        signed_in(caller)?;
        self.ensure_room()?;
        check_digest("sha256", &request.sha256)?;
        let session = self.owned_session(caller, request.session_id)?;
        let sid = session.id;
        match session.status_at(now) {
            SessionStatus::Pending => {}
            SessionStatus::Committed => {
                // The same checks as for a pending upload, then the same
                // answer for the same call, as long as the memory lives.
                check_declared_len(&session, request.byte_len)?;
                let committed = self.committed(&session);
                if committed.sha256 != request.sha256 {
                    return Err(UploadError::AlreadyCommitted { session_id: sid });
                }
                if self.memories.get(committed.memory_id).is_none() {
                    return Err(UploadError::MemoryNotFound {
                        memory_id: committed.memory_id,
                    });
                }
                return Ok(committed);
            }
            _ => {
                self.pending_session(caller, sid, now)?;
            }
        }
        self.capsules.writable_by(session.capsule_id(), caller)?;
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
        let repair = self.hashing.repair(sid);
        if repair.stale {
            // Chunks that were hashed have been replaced: one more repair
            // round hashes the file again from byte 0.
            if repair.rounds >= MAX_REPAIR_ROUNDS {
                return Err(UploadError::QuotaExceeded {
                    quota: Quota::RepairRounds,
                    limit: u64::from(MAX_REPAIR_ROUNDS),
                    requested: u64::from(repair.rounds) + 1,
                });
            }
            self.hashing.restart(sid);
        }
        let progress = self.advance_hashing(&session, None, HASH_BYTES_PER_MESSAGE);
        let Some(digest) = progress.digest(&session.spec) else {
            // A client polling while hashing catches up is not idle.
            self.sessions.touch(sid, now)?;
            return Err(UploadError::VerificationPending {
                hashed_bytes: progress.hashed_bytes(),
                total_bytes: session.spec.total_bytes(),
            });
        };
        if digest[..] != request.sha256[..] {
            self.sessions.allow_rewrites(sid, now)?;
            return Err(UploadError::ChecksumMismatch {
                expected: request.sha256,
                actual: ByteBuf::from(digest.to_vec()),
            });
        }
        let session = self.sessions.complete(sid, now)?;
        let committed = self.committed(&session);
        // The thumbnail it was begun with, if any, already waits under the
        // memory's id; its reservation turns into stored bytes below.
        self.memories.insert(MemoryRecord {
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
        let thumbnail = self.thumbnails.begun_with(sid);
        self.accounting
            .commit(caller, upload_charge(&session, thumbnail.as_ref()));
        self.open_by_caller.remove(&scoped_key(&caller, sid.0));
        Ok(committed)
    }

    /// Abandons an upload and frees its space. Aborting twice is harmless.
    pub fn abort(
        &mut self,
        caller: Principal,
        now: u64,
        session_id: SessionId,
    ) -> Result<(), UploadError> {
        signed_in(caller)?;
        self.owned_session(caller, session_id)?;
        match self.sessions.abort(session_id, now) {
            Ok(session) => {
                self.release(&session);
                Ok(())
            }
            Err(SessionError::Aborted(_)) => Ok(()),
            Err(SessionError::Expired(_)) => {
                self.expire_session(session_id, now);
                Err(UploadError::SessionExpired { session_id })
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Where an upload stands, with a page of its missing chunks.
    pub fn status(
        &self,
        caller: Principal,
        now: u64,
        request: StatusRequest,
    ) -> Result<UploadStatus, UploadError> {
        let session = self.owned_session(caller, request.session_id)?;
        let max_ranges = request.max_ranges.clamp(1, MAX_PAGE) as usize;
        let (missing, next_from_chunk) =
            self.sessions
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
            hashed_bytes: self.hashing.hashed_bytes(session.id),
            repairing: session.rewritable,
            expires_at: (status == SessionStatus::Pending).then_some(session.deadline),
            committed: (status == SessionStatus::Committed).then(|| self.committed(&session)),
        })
    }

    /// The caller's pending uploads, so a reloaded page can resume them.
    pub fn open_uploads(&self, caller: Principal, now: u64) -> Vec<OpenUpload> {
        self.open_by_caller
            .keys_range(scoped_key(&caller, 0)..=scoped_key(&caller, u64::MAX))
            .take(MAX_PAGE as usize)
            .filter_map(|key| self.sessions.get(SessionId(scoped_key_id(&key))))
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
    pub fn chunk_sha256(
        &self,
        caller: Principal,
        now: u64,
        session_id: SessionId,
        index: u32,
    ) -> Result<ByteBuf, UploadError> {
        let session = self.owned_session(caller, session_id)?;
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
        if !self.sessions.is_received(session_id, index) {
            return Err(UploadError::ChunkNotReceived { index });
        }
        let mut buf = vec![0u8; len as usize];
        StoredChunks {
            sessions: &self.sessions,
            blobs: &self.blobs,
            session: &session,
        }
        .read_chunk(index, &mut buf);
        Ok(ByteBuf::from(Sha256::digest(&buf).to_vec()))
    }

    // ---- internals ----

    pub(super) fn session(&self, session_id: SessionId) -> Result<UploadSession, UploadError> {
        self.sessions
            .get(session_id)
            .ok_or(UploadError::SessionNotFound { session_id })
    }

    /// The session, if it belongs to `caller`.
    pub(super) fn owned_session(
        &self,
        caller: Principal,
        session_id: SessionId,
    ) -> Result<UploadSession, UploadError> {
        let session = self.session(session_id)?;
        if session.caller() != caller {
            return Err(UploadError::NotAuthorized);
        }
        Ok(session)
    }

    /// The caller's session if it still accepts chunks; an idle one is
    /// recorded as expired (freeing its space) on the way.
    fn pending_session(
        &mut self,
        caller: Principal,
        session_id: SessionId,
        now: u64,
    ) -> Result<UploadSession, UploadError> {
        let session = self.owned_session(caller, session_id)?;
        match session.status_at(now) {
            SessionStatus::Pending => Ok(session),
            SessionStatus::Expired => {
                self.expire_session(session_id, now);
                Err(UploadError::SessionExpired { session_id })
            }
            status => Err(final_state_error(session_id, status)),
        }
    }

    /// Whether `session_id` committed a memory that has since been deleted.
    fn memory_was_deleted(&self, session_id: SessionId, now: u64) -> bool {
        self.sessions.get(session_id).is_some_and(|session| {
            session.status_at(now) == SessionStatus::Committed
                && self
                    .memories
                    .get(session.meta.provisional_memory_id)
                    .is_none()
        })
    }

    pub(super) fn advance_hashing(
        &mut self,
        session: &UploadSession,
        fresh: Option<(u32, &[u8])>,
        budget: u64,
    ) -> HashProgress {
        let source = StoredChunks {
            sessions: &self.sessions,
            blobs: &self.blobs,
            session,
        };
        self.hashing
            .advance(session.id, &session.spec, &source, fresh, budget)
    }

    fn committed(&self, session: &UploadSession) -> CommittedUpload {
        let digest = self
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
    pub(super) fn expire_session(&mut self, session_id: SessionId, now: u64) -> bool {
        match self.sessions.expire(session_id, now) {
            Ok(session) => {
                self.release(&session);
                true
            }
            Err(_) => false,
        }
    }

    /// Frees what an aborted or expired session held.
    fn release(&mut self, session: &UploadSession) {
        self.blobs
            .free(session.meta.blob_id)
            .expect("bug: an open session's blob was already freed");
        let thumbnail = self.thumbnails.begun_with(session.id);
        self.accounting
            .release(session.caller(), upload_charge(session, thumbnail.as_ref()));
        if thumbnail.is_some() {
            // The thumbnail it was begun with goes with the upload.
            self.thumbnails.remove(session.meta.provisional_memory_id);
        }
        self.open_by_caller
            .remove(&scoped_key(&session.caller(), session.id.0));
        self.hashing.remove(session.id);
    }
}

/// Bytes an upload counts against the quotas while open and once
/// committed: its file's and the thumbnail's it was begun with, each in
/// whole blocks.
fn upload_charge(session: &UploadSession, thumbnail: Option<&ThumbnailRef>) -> u64 {
    charged_bytes(session.spec.total_bytes()) + thumbnail.map_or(0, ThumbnailRef::charge)
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

fn final_state_error(session_id: SessionId, status: SessionStatus) -> UploadError {
    match status {
        SessionStatus::Committed => UploadError::AlreadyCommitted { session_id },
        SessionStatus::Aborted => UploadError::SessionAborted { session_id },
        SessionStatus::Expired => UploadError::SessionExpired { session_id },
        SessionStatus::Pending => unreachable!("bug: a pending session treated as final"),
    }
}
