//! The session API the upload domain was first written against, kept as
//! an adapter at the edge: `create(session_id, meta)` and
//! `put_chunk(session_id, index, bytes)`.
//!
//! `SessionCompat` implements no rule of its own. It derives the chunk
//! spec and the idempotency key from the metadata, builds the session's
//! sink from the blob store named by the metadata, and delegates to the
//! generic `SessionService::create(sid, meta, spec, idem)` and
//! `SessionService::put_chunk(sid, index, data, sink)`. The endpoints call
//! the generic service directly and import nothing from here.
#![allow(deprecated)]

use crate::blob_store::BlobStore;
use crate::session::{
    ChunkReceipt, ChunkSpec, CreateOutcome, IdempotencyKey, SessionError, SessionId,
    SessionService, SinkError,
};
use crate::stable_memory::Vm;
use crate::types::{request_key, UploadSessionMeta};
use ic_stable_structures::Memory;

/// The chunk layout the metadata declares.
fn chunk_spec(meta: &UploadSessionMeta) -> Result<ChunkSpec, SessionError> {
    ChunkSpec::for_length(meta.asset.byte_len, meta.chunk_size).map_err(SessionError::InvalidSpec)
}

/// The key `create` deduplicates on. Without a client key the session id
/// stands in, which makes every session distinct.
fn idempotency_key(meta: &UploadSessionMeta, session_id: SessionId) -> IdempotencyKey {
    if meta.idempotency_key.is_empty() {
        IdempotencyKey::new(b"session", &session_id.0.to_be_bytes())
    } else {
        request_key(&meta.caller, &meta.idempotency_key)
    }
}

/// The old two- and three-argument session API over the generic service.
#[deprecated(note = "call SessionService::create and put_chunk with a spec and a sink")]
pub struct SessionCompat<'a, M: Memory> {
    sessions: &'a mut SessionService<Vm<M>, UploadSessionMeta>,
    blobs: &'a mut BlobStore<M>,
    now: u64,
}

impl<'a, M: Memory + Clone> SessionCompat<'a, M> {
    /// `now` is the time of the message the calls belong to.
    pub fn new(
        sessions: &'a mut SessionService<Vm<M>, UploadSessionMeta>,
        blobs: &'a mut BlobStore<M>,
        now: u64,
    ) -> Self {
        Self {
            sessions,
            blobs,
            now,
        }
    }

    pub fn create(
        &mut self,
        session_id: SessionId,
        meta: UploadSessionMeta,
    ) -> Result<CreateOutcome, SessionError> {
        let spec = chunk_spec(&meta)?;
        let idem = idempotency_key(&meta, session_id);
        self.sessions.create(session_id, meta, spec, idem, self.now)
    }

    pub fn put_chunk(
        &mut self,
        session_id: SessionId,
        index: u32,
        bytes: &[u8],
    ) -> Result<ChunkReceipt, SessionError> {
        let blob_id = self
            .sessions
            .get(session_id)
            .ok_or(SessionError::NotFound(session_id))?
            .meta
            .blob_id;
        let mut sink = self
            .blobs
            .sink(blob_id)
            .map_err(|_| SessionError::Sink(SinkError::Gone))?;
        self.sessions
            .put_chunk(session_id, index, bytes, &mut sink, self.now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob_store::BlobId;
    use crate::session::SessionPolicy;
    use crate::stable_memory::StableMemories;
    use crate::types::{AssetMetadata, CapsuleId, MemoryItemId};
    use candid::Principal;
    use ic_stable_structures::VectorMemory;

    /// Two stacks on separate memories: one driven through
    /// `SessionCompat`'s old signatures, one through the generic API with a
    /// hand-made sink.
    #[test]
    fn compat_and_generic_paths_produce_identical_blobs_and_states() {
        let policy = SessionPolicy {
            idle_timeout_ns: 100,
            retention_ns: 1_000,
        };
        let alice = Principal::from_slice(&[1; 29]);
        let data: Vec<u8> = (0..3_500u32).map(|i| (i * 7 + 8) as u8).collect();
        let meta = UploadSessionMeta {
            capsule_id: CapsuleId(1),
            caller: alice,
            idempotency_key: "k".into(),
            asset: AssetMetadata {
                name: "n".into(),
                mime_type: "m".into(),
                byte_len: 3_500,
                sha256: None,
            },
            chunk_size: 1_000,
            provisional_memory_id: MemoryItemId(1),
            blob_id: BlobId(0),
        };
        let order = [3u32, 1, 0, 1, 2];
        let mut outcomes = Vec::new();
        let mut results = Vec::new();
        for use_compat in [true, false] {
            let memories = StableMemories::init(VectorMemory::default());
            let (mut sessions, mut blobs) =
                crate::state::session_and_blob_stores(&memories, policy);
            let mut meta = meta.clone();
            meta.blob_id = blobs.allocate(3_500, u64::MAX).unwrap();
            let sid = sessions.allocate_id();
            let mut log = Vec::new();
            let chunk = |index: u32| {
                let start = index as usize * 1_000;
                &data[start..(start + 1_000).min(3_500)]
            };
            if use_compat {
                let mut compat = SessionCompat::new(&mut sessions, &mut blobs, 5);
                log.push(format!("{:?}", compat.create(sid, meta.clone())));
                for index in order {
                    log.push(format!("{:?}", compat.put_chunk(sid, index, chunk(index))));
                }
            } else {
                let spec = ChunkSpec::new(3_500, 1_000, 4).unwrap();
                let idem = request_key(&alice, "k");
                log.push(format!(
                    "{:?}",
                    sessions.create(sid, meta.clone(), spec, idem, 5)
                ));
                for index in order {
                    let mut sink = blobs.sink(meta.blob_id).unwrap();
                    log.push(format!(
                        "{:?}",
                        sessions.put_chunk(sid, index, chunk(index), &mut sink, 5)
                    ));
                }
            }
            let mut stored = vec![0u8; 3_500];
            blobs.read(meta.blob_id, 0, &mut stored).unwrap();
            outcomes.push(log);
            results.push((sessions.get(sid).unwrap(), stored));
        }
        assert_eq!(outcomes[0], outcomes[1]);
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0].1, data);
    }
}
