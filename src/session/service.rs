//! The generic chunk-session engine: creates sessions, validates and records
//! chunks, and moves each session through `Pending -> Committed | Aborted |
//! Expired`. It knows nothing of what the bytes are: they go to a `ByteSink`
//! the caller hands in, and the caller's metadata rides along opaquely.

use super::bitmap::{ChunkBitmap, ChunkRange};
use super::error::SessionError;
use super::sink::ByteSink;
use super::types::{ChunkSpec, IdempotencyKey, Session, SessionId, SessionMeta, SessionStatus};
use ic_stable_structures::{Memory, StableBTreeMap, StableCell};

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A pending session with no chunk for this long expires.
    pub idle_timeout_ns: u64,
    /// A finished session's record is kept this long (for idempotent
    /// retries and status queries), then pruned.
    pub retention_ns: u64,
}

/// What `create` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created(SessionId),
    /// The idempotency key already named this session, which asked for the
    /// same thing: nothing new was made.
    Existing(SessionId),
}

impl CreateOutcome {
    pub fn session_id(self) -> SessionId {
        match self {
            CreateOutcome::Created(sid) | CreateOutcome::Existing(sid) => sid,
        }
    }
}

/// What `put_chunk` did with a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkWrite {
    /// First arrival: written and recorded.
    Stored,
    /// The same bytes again: nothing changed.
    Duplicate,
    /// Different bytes for a received chunk, accepted because the session
    /// was opened for repair.
    Replaced,
}

/// Result of a successful `put_chunk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkReceipt {
    pub write: ChunkWrite,
    pub received_chunks: u32,
    pub expires_at: u64,
}

/// Bytes compared at a time when checking a repeated chunk, so a duplicate
/// costs no chunk-sized heap buffer.
const COMPARE_WINDOW: usize = 64 * 1024;

fn deadline_key(deadline: u64, sid: SessionId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&deadline.to_be_bytes());
    key[8..].copy_from_slice(&sid.0.to_be_bytes());
    key
}

/// Chunk sessions in stable memory, generic over the metadata they carry.
pub struct SessionService<M: Memory, Meta: SessionMeta> {
    records: StableBTreeMap<SessionId, Session<Meta>, M>,
    idempotency: StableBTreeMap<[u8; 32], SessionId, M>,
    bitmap: ChunkBitmap<M>,
    deadlines: StableBTreeMap<[u8; 16], (), M>,
    next_id: StableCell<u64, M>,
    policy: SessionPolicy,
}

/// The stable memories a `SessionService` lives in, one per structure;
/// the canister hands them in (`crate::state`), so the engine knows no
/// memory map and several engines could share one canister.
pub struct SessionMemories<M> {
    pub records: M,
    pub idempotency: M,
    pub bitmaps: M,
    pub deadlines: M,
    pub header: M,
}

impl<M: Memory, Meta: SessionMeta> SessionService<M, Meta> {
    /// Opens the service's structures (laying them out on first use).
    pub fn init(memories: SessionMemories<M>, policy: SessionPolicy) -> Self {
        Self {
            records: StableBTreeMap::init(memories.records),
            idempotency: StableBTreeMap::init(memories.idempotency),
            bitmap: ChunkBitmap::init(memories.bitmaps),
            deadlines: StableBTreeMap::init(memories.deadlines),
            next_id: StableCell::init(memories.header, 1),
            policy,
        }
    }
}

impl<M: Memory, Meta: SessionMeta> SessionService<M, Meta> {
    /// Applies to deadlines set from now on.
    pub fn set_policy(&mut self, policy: SessionPolicy) {
        self.policy = policy;
    }

    /// A fresh id, never handed out before.
    pub fn allocate_id(&mut self) -> SessionId {
        let id = *self.next_id.get();
        self.next_id.set(id + 1);
        SessionId(id)
    }

    pub fn get(&self, sid: SessionId) -> Option<Session<Meta>> {
        self.records.get(&sid)
    }

    /// Number of session records (pending and final, until pruned).
    pub fn len(&self) -> u64 {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The session an idempotency key names, if it is still remembered.
    pub fn find_by_key(&self, key: &IdempotencyKey) -> Option<SessionId> {
        self.idempotency.get(&key.0)
    }

    /// Starts session `sid`, or, when `idem` already names a session that
    /// asked for the same `meta` and `spec`, returns that one instead.
    pub fn create(
        &mut self,
        sid: SessionId,
        meta: Meta,
        spec: ChunkSpec,
        idem: IdempotencyKey,
        now: u64,
    ) -> Result<CreateOutcome, SessionError> {
        if let Some(existing) = self.find_by_key(&idem) {
            let session = self.load(existing)?;
            return if session.spec == spec && session.meta.same_request(&meta) {
                Ok(CreateOutcome::Existing(existing))
            } else {
                Err(SessionError::IdempotencyConflict { existing })
            };
        }
        if self.records.contains_key(&sid) {
            return Err(SessionError::AlreadyExists(sid));
        }
        let session = Session {
            id: sid,
            meta,
            spec,
            idempotency_key: idem,
            status: SessionStatus::Pending,
            created_at: now,
            updated_at: now,
            deadline: now.saturating_add(self.policy.idle_timeout_ns),
            received_chunks: 0,
            rewritable: false,
        };
        self.deadlines
            .insert(deadline_key(session.deadline, sid), ());
        self.idempotency.insert(idem.0, sid);
        self.records.insert(sid, session);
        Ok(CreateOutcome::Created(sid))
    }

    /// Accepts chunk `index` of session `sid` into `sink`. Repeating a chunk
    /// with the same bytes changes nothing; different bytes conflict unless
    /// the session was opened for repair. Only a chunk's first arrival moves
    /// the idle deadline.
    pub fn put_chunk(
        &mut self,
        sid: SessionId,
        index: u32,
        data: &[u8],
        sink: &mut impl ByteSink,
        now: u64,
    ) -> Result<ChunkReceipt, SessionError> {
        let mut session = self.load(sid)?;
        self.put_loaded_chunk(&mut session, index, data, sink, now)
    }

    /// `put_chunk` for a session the caller has already loaded with `get`
    /// in this message, so that its record is decoded once: the caller
    /// needs it too (to build the sink, to check who may write). Refuses a
    /// session that is not pending at `now`; on success `session` is what
    /// is now stored.
    pub fn put_loaded_chunk(
        &mut self,
        session: &mut Session<Meta>,
        index: u32,
        data: &[u8],
        sink: &mut impl ByteSink,
        now: u64,
    ) -> Result<ChunkReceipt, SessionError> {
        let sid = session.id;
        match session.status_at(now) {
            SessionStatus::Pending => {}
            status => return Err(refusal(sid, status)),
        }
        let chunk_count = session.spec.chunk_count();
        let expected = session
            .spec
            .chunk_len(index)
            .ok_or(SessionError::IndexOutOfRange { index, chunk_count })?;
        if data.len() as u64 != expected {
            return Err(SessionError::WrongChunkLength {
                index,
                expected,
                actual: data.len() as u64,
            });
        }
        let offset = session.spec.offset(index);
        let write = if self.bitmap.is_set(sid, index) {
            if stored_bytes_equal(sink, offset, data)? {
                ChunkWrite::Duplicate
            } else if session.rewritable {
                sink.write_at(offset, data).map_err(SessionError::Sink)?;
                ChunkWrite::Replaced
            } else {
                return Err(SessionError::ChunkConflict { index });
            }
        } else {
            sink.write_at(offset, data).map_err(SessionError::Sink)?;
            self.bitmap.set(sid, index);
            session.received_chunks += 1;
            ChunkWrite::Stored
        };
        // Only new bytes are progress: a repeated or replaced chunk leaves
        // the deadline where it was, so a session cannot be kept alive (and
        // its reservation held) by sending the same chunk again and again.
        if write == ChunkWrite::Stored {
            self.refresh(session, now);
        }
        let receipt = ChunkReceipt {
            write,
            received_chunks: session.received_chunks,
            expires_at: session.deadline,
        };
        if write == ChunkWrite::Stored {
            self.records.insert(sid, session.clone());
        }
        Ok(receipt)
    }

    pub fn is_received(&self, sid: SessionId, index: u32) -> bool {
        self.bitmap.is_set(sid, index)
    }

    /// Chunks still missing from `from` on, at most `max_ranges` runs, and
    /// where the next page starts.
    pub fn missing_ranges(
        &self,
        sid: SessionId,
        from: u32,
        max_ranges: usize,
    ) -> Result<(Vec<ChunkRange>, Option<u32>), SessionError> {
        let session = self.load(sid)?;
        Ok(self
            .bitmap
            .missing_ranges(sid, session.spec.chunk_count(), from, max_ranges))
    }

    /// Records activity on a pending session: its idle deadline moves.
    pub fn touch(&mut self, sid: SessionId, now: u64) -> Result<u64, SessionError> {
        let mut session = self.pending(sid, now)?;
        self.refresh(&mut session, now);
        let deadline = session.deadline;
        self.records.insert(sid, session);
        Ok(deadline)
    }

    /// Lets a pending session's received chunks be replaced (after the
    /// caller found the assembled stream wrong).
    pub fn allow_rewrites(&mut self, sid: SessionId, now: u64) -> Result<(), SessionError> {
        let mut session = self.pending(sid, now)?;
        session.rewritable = true;
        self.records.insert(sid, session);
        Ok(())
    }

    /// `Pending -> Committed`, once every chunk has arrived.
    pub fn complete(&mut self, sid: SessionId, now: u64) -> Result<Session<Meta>, SessionError> {
        let session = self.pending(sid, now)?;
        if session.missing_chunks() > 0 {
            return Err(SessionError::Incomplete {
                missing_chunks: session.missing_chunks(),
            });
        }
        Ok(self.finalize(session, SessionStatus::Committed, now))
    }

    /// `Pending -> Aborted`.
    pub fn abort(&mut self, sid: SessionId, now: u64) -> Result<Session<Meta>, SessionError> {
        let session = self.pending(sid, now)?;
        Ok(self.finalize(session, SessionStatus::Aborted, now))
    }

    /// `Pending -> Expired`, for a session idle past its deadline.
    pub fn expire(&mut self, sid: SessionId, now: u64) -> Result<Session<Meta>, SessionError> {
        let session = self.load(sid)?;
        match session.status_at(now) {
            SessionStatus::Expired if session.status == SessionStatus::Pending => {
                Ok(self.finalize(session, SessionStatus::Expired, now))
            }
            SessionStatus::Pending => Err(SessionError::StillActive {
                expires_at: session.deadline,
            }),
            status => Err(refusal(sid, status)),
        }
    }

    /// Sessions whose deadline has passed (to expire or to prune), oldest
    /// first, at most `limit`.
    pub fn due(&self, now: u64, limit: usize) -> Vec<SessionId> {
        self.deadlines
            .keys_range(..deadline_key(now, SessionId(u64::MAX)))
            .take(limit)
            .map(|key| SessionId(crate::storable::read_u64(&key, 8)))
            .collect()
    }

    /// Detaches a session from its idempotency key, so that a later
    /// `create` under the key starts a new session. The session itself
    /// stays as it is.
    pub fn release_key(&mut self, sid: SessionId) {
        if let Some(session) = self.records.get(&sid) {
            self.release_key_of(&session);
        }
    }

    /// Removes the key's entry if it still names `session`: it may name a
    /// newer session since `release_key`.
    fn release_key_of(&mut self, session: &Session<Meta>) {
        if self.find_by_key(&session.idempotency_key) == Some(session.id) {
            self.idempotency.remove(&session.idempotency_key.0);
        }
    }

    /// Forgets a session entirely: record, idempotency key, bitmap and
    /// deadline. Bounded by the session's bitmap blocks.
    pub fn remove(&mut self, sid: SessionId) -> Option<Session<Meta>> {
        let session = self.records.remove(&sid)?;
        self.deadlines.remove(&deadline_key(session.deadline, sid));
        self.release_key_of(&session);
        self.bitmap.clear(sid, session.spec.chunk_count());
        Some(session)
    }

    fn load(&self, sid: SessionId) -> Result<Session<Meta>, SessionError> {
        self.records.get(&sid).ok_or(SessionError::NotFound(sid))
    }

    /// The session if it still accepts work as of `now`.
    fn pending(&self, sid: SessionId, now: u64) -> Result<Session<Meta>, SessionError> {
        let session = self.load(sid)?;
        match session.status_at(now) {
            SessionStatus::Pending => Ok(session),
            status => Err(refusal(sid, status)),
        }
    }

    fn refresh(&mut self, session: &mut Session<Meta>, now: u64) {
        session.updated_at = now;
        self.move_deadline(session, now.saturating_add(self.policy.idle_timeout_ns));
    }

    fn move_deadline(&mut self, session: &mut Session<Meta>, deadline: u64) {
        self.deadlines
            .remove(&deadline_key(session.deadline, session.id));
        session.deadline = deadline;
        self.deadlines
            .insert(deadline_key(deadline, session.id), ());
    }

    fn finalize(
        &mut self,
        mut session: Session<Meta>,
        status: SessionStatus,
        now: u64,
    ) -> Session<Meta> {
        debug_assert_eq!(session.status, SessionStatus::Pending);
        session.status = status;
        session.updated_at = now;
        session.rewritable = false;
        self.move_deadline(&mut session, now.saturating_add(self.policy.retention_ns));
        self.records.insert(session.id, session.clone());
        session
    }
}

/// The error for acting on a session in a final state.
fn refusal(sid: SessionId, status: SessionStatus) -> SessionError {
    match status {
        SessionStatus::Committed => SessionError::Committed(sid),
        SessionStatus::Aborted => SessionError::Aborted(sid),
        SessionStatus::Expired => SessionError::Expired(sid),
        SessionStatus::Pending => unreachable!("bug: a pending session was refused"),
    }
}

fn stored_bytes_equal(
    sink: &impl ByteSink,
    offset: u64,
    data: &[u8],
) -> Result<bool, SessionError> {
    let mut window = vec![0u8; COMPARE_WINDOW.min(data.len())];
    for (i, piece) in data.chunks(COMPARE_WINDOW).enumerate() {
        let stored = &mut window[..piece.len()];
        sink.read_at(offset + (i * COMPARE_WINDOW) as u64, stored)
            .map_err(SessionError::Sink)?;
        if stored != piece {
            return Ok(false);
        }
    }
    Ok(true)
}
