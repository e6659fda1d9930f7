//! The upload service's original session API, kept as a thin adapter.
//!
//! The upload service was first written against `create(session_id, meta)`
//! and `put_chunk(session_id, index, bytes)`. `SessionCompat` keeps those
//! signatures for code written against them (today the equivalence test in
//! `upload::tests`, which drives one stack through it and one through the
//! generic service) and delegates to the generic `SessionService`: it
//! derives the chunk spec and the idempotency key from the metadata and
//! builds the sink from the session's metadata through a factory. It
//! implements no rule of its own. `UploadService` calls the generic service
//! directly, so the adapter costs the hot path nothing.

use super::types::UploadSessionMeta;
use crate::session::{
    ByteSink, ChunkReceipt, ChunkSpec, CreateOutcome, IdempotencyKey, SessionError, SessionId,
    SessionService, SinkError,
};
use candid::Principal;
use ic_stable_structures::Memory;

/// The idempotency key of an upload request: the client's key within the
/// caller's scope, so two callers never collide.
pub fn request_key(caller: &Principal, client_key: &str) -> IdempotencyKey {
    IdempotencyKey::new(caller.as_slice(), client_key.as_bytes())
}

impl UploadSessionMeta {
    /// The chunk layout the metadata declares.
    pub fn chunk_spec(&self) -> Result<ChunkSpec, SessionError> {
        ChunkSpec::for_length(self.asset.byte_len, self.chunk_size)
            .map_err(SessionError::InvalidSpec)
    }

    /// The key `create` deduplicates on. Without a client key the session
    /// id stands in, which makes every session distinct.
    pub fn idempotency_key(&self, session_id: SessionId) -> IdempotencyKey {
        if self.idempotency_key.is_empty() {
            IdempotencyKey::new(b"session", &session_id.0.to_be_bytes())
        } else {
            request_key(&self.caller, &self.idempotency_key)
        }
    }
}

/// The old two- and three-argument session API over the generic service.
pub struct SessionCompat<'a, M: Memory, F> {
    sessions: &'a mut SessionService<M, UploadSessionMeta>,
    sink_factory: F,
    now: u64,
}

impl<'a, M, F, S> SessionCompat<'a, M, F>
where
    M: Memory,
    F: Fn(&UploadSessionMeta) -> Result<S, SinkError>,
    S: ByteSink,
{
    /// `now` is the time of the message the calls belong to.
    pub fn new(
        sessions: &'a mut SessionService<M, UploadSessionMeta>,
        now: u64,
        sink_factory: F,
    ) -> Self {
        Self {
            sessions,
            sink_factory,
            now,
        }
    }

    pub fn create(
        &mut self,
        session_id: SessionId,
        meta: UploadSessionMeta,
    ) -> Result<CreateOutcome, SessionError> {
        let spec = meta.chunk_spec()?;
        let idem = meta.idempotency_key(session_id);
        self.sessions.create(session_id, meta, spec, idem, self.now)
    }

    pub fn put_chunk(
        &mut self,
        session_id: SessionId,
        index: u32,
        bytes: &[u8],
    ) -> Result<ChunkReceipt, SessionError> {
        let mut session = self
            .sessions
            .get(session_id)
            .ok_or(SessionError::NotFound(session_id))?;
        let mut sink = (self.sink_factory)(&session.meta).map_err(SessionError::Sink)?;
        self.sessions
            .put_loaded_chunk(&mut session, index, bytes, &mut sink, self.now)
    }
}
