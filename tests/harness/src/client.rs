//! Typed calls to the upload canister, as a frontend would make them.

use crate::{query, update, IcEnv};
use backend::limits::{self, Limits};
use backend::upload::*;
use candid::Principal;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

/// Calls that transport or the canister refused (`Err(String)`), or that
/// the canister answered with an `UploadError`.
pub type Reply<T> = Result<Result<T, UploadError>, String>;

/// The upload canister as seen by one caller.
pub struct UploadClient<'a> {
    pub env: &'a mut dyn IcEnv,
    pub canister: Principal,
    pub caller: Principal,
}

fn one<T>(reply: Result<(T,), String>) -> Result<T, String> {
    reply.map(|(value,)| value)
}

impl<'a> UploadClient<'a> {
    pub fn new(env: &'a mut dyn IcEnv, canister: Principal, caller: Principal) -> Self {
        Self {
            env,
            canister,
            caller,
        }
    }

    /// The same canister, another caller.
    pub fn as_caller(&mut self, caller: Principal) -> UploadClient<'_> {
        UploadClient {
            env: &mut *self.env,
            canister: self.canister,
            caller,
        }
    }

    fn update<
        A: candid::utils::ArgumentEncoder,
        R: candid::CandidType + for<'de> serde::Deserialize<'de>,
    >(
        &mut self,
        method: &str,
        args: A,
    ) -> Result<R, String> {
        one(update(self.env, self.canister, self.caller, method, args))
    }

    fn query<
        A: candid::utils::ArgumentEncoder,
        R: candid::CandidType + for<'de> serde::Deserialize<'de>,
    >(
        &mut self,
        method: &str,
        args: A,
    ) -> Result<R, String> {
        one(query(self.env, self.canister, self.caller, method, args))
    }

    pub fn create_capsule(&mut self, name: &str) -> Reply<Capsule> {
        self.update("capsules_create", (name.to_string(),))
    }

    pub fn grant_write(&mut self, capsule: CapsuleId, writer: Principal) -> Reply<Capsule> {
        self.update("capsules_grant_write", (capsule, writer))
    }

    pub fn revoke_write(&mut self, capsule: CapsuleId, writer: Principal) -> Reply<Capsule> {
        self.update("capsules_revoke_write", (capsule, writer))
    }

    pub fn begin(
        &mut self,
        capsule: CapsuleId,
        name: &str,
        len: u64,
        chunk_size: u32,
        key: &str,
    ) -> Reply<UploadStarted> {
        self.begin_request(BeginUpload {
            capsule_id: capsule,
            asset: AssetMetadata {
                name: name.into(),
                mime_type: "application/octet-stream".into(),
                byte_len: len,
                sha256: None,
            },
            chunk_size,
            expected_chunks: len.div_ceil(u64::from(chunk_size)) as u32,
            idempotency_key: key.into(),
        })
    }

    /// `uploads_begin` with a request of either shape: [`BeginUpload`]
    /// (no thumbnail) or [`BeginUploadRequest`].
    pub fn begin_request(
        &mut self,
        request: impl Into<BeginUploadRequest>,
    ) -> Reply<UploadStarted> {
        self.update("uploads_begin", (request.into(),))
    }

    pub fn put_chunk(
        &mut self,
        session: SessionId,
        index: u32,
        bytes: &[u8],
    ) -> Reply<ChunkAccepted> {
        self.put_chunk_checked(session, index, bytes, None)
    }

    pub fn put_chunk_checked(
        &mut self,
        session: SessionId,
        index: u32,
        bytes: &[u8],
        sha256: Option<[u8; 32]>,
    ) -> Reply<ChunkAccepted> {
        let request = PutChunk {
            session_id: session,
            index,
            bytes: ByteBuf::from(bytes.to_vec()),
            sha256: sha256.map(|d| ByteBuf::from(d.to_vec())),
        };
        self.update("uploads_put_chunk", (request,))
    }

    /// Puts chunk `index` of `data` cut in `chunk_size` pieces.
    pub fn put_chunk_of(
        &mut self,
        session: SessionId,
        data: &[u8],
        chunk_size: u32,
        index: u32,
    ) -> Reply<ChunkAccepted> {
        let start = index as usize * chunk_size as usize;
        let end = (start + chunk_size as usize).min(data.len());
        self.put_chunk(session, index, &data[start..end])
    }

    pub fn finish(&mut self, session: SessionId, data: &[u8]) -> Reply<CommittedUpload> {
        self.finish_with(session, sha256(data), data.len() as u64)
    }

    pub fn finish_with(
        &mut self,
        session: SessionId,
        digest: [u8; 32],
        len: u64,
    ) -> Reply<CommittedUpload> {
        let request = FinishUpload {
            session_id: session,
            sha256: ByteBuf::from(digest.to_vec()),
            byte_len: len,
        };
        self.update("uploads_finish", (request,))
    }

    pub fn abort(&mut self, session: SessionId) -> Reply<()> {
        self.update("uploads_abort", (session,))
    }

    pub fn status(
        &mut self,
        session: SessionId,
        from_chunk: u32,
        max_ranges: u32,
    ) -> Reply<UploadStatus> {
        let request = StatusRequest {
            session_id: session,
            from_chunk,
            max_ranges,
        };
        self.query("uploads_status", (request,))
    }

    /// Every missing chunk index, following the status pages.
    pub fn missing_chunks(&mut self, session: SessionId) -> Result<Vec<u32>, String> {
        let mut missing = Vec::new();
        let mut from = 0;
        loop {
            let status = self
                .status(session, from, 100)?
                .map_err(|e| format!("{e:?}"))?;
            for range in &status.missing {
                missing.extend(range.start..range.end);
            }
            match status.next_from_chunk {
                Some(next) => from = next,
                None => return Ok(missing),
            }
        }
    }

    pub fn open_uploads(&mut self) -> Result<Vec<OpenUpload>, String> {
        self.query("uploads_mine", ())
    }

    pub fn read(&mut self, memory: MemoryItemId, offset: u64, length: u64) -> Reply<ByteBuf> {
        let request = ReadRange {
            memory_id: memory,
            offset,
            length,
        };
        self.query("memories_read", (request,))
    }

    /// A whole memory, read in ranges of at most `MAX_READ_BYTES`.
    pub fn read_all(&mut self, memory: MemoryItemId, len: u64) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(len as usize);
        while (out.len() as u64) < len {
            let offset = out.len() as u64;
            let length = (len - offset).min(limits::MAX_READ_BYTES);
            let part = self
                .read(memory, offset, length)?
                .map_err(|e| format!("{e:?}"))?;
            out.extend_from_slice(&part);
        }
        Ok(out)
    }

    pub fn memory(&mut self, memory: MemoryItemId) -> Reply<MemoryRecord> {
        self.query("memories_get", (memory,))
    }

    pub fn delete_memory(&mut self, memory: MemoryItemId) -> Reply<()> {
        self.update("memories_delete", (memory,))
    }

    pub fn set_thumbnail(
        &mut self,
        memory: MemoryItemId,
        thumbnail: Option<Thumbnail>,
    ) -> Reply<()> {
        self.update("memories_set_thumbnail", (memory, thumbnail))
    }

    pub fn list_memories(
        &mut self,
        capsule: CapsuleId,
        after: Option<MemoryItemId>,
        limit: u32,
    ) -> Reply<MemoriesPage> {
        let request = ListMemories {
            capsule_id: capsule,
            after,
            limit,
        };
        self.query("memories_list", (request,))
    }

    pub fn stats(&mut self) -> Result<Stats, String> {
        self.query("stats", ())
    }

    pub fn set_limits(&mut self, limits: Limits) -> Reply<()> {
        self.update("admin_set_limits", (limits,))
    }

    pub fn set_capsule_creators_restricted(&mut self, restricted: bool) -> Reply<()> {
        self.update("admin_set_capsule_creation_restricted", (restricted,))
    }

    pub fn allow_capsule_creator(&mut self, principal: Principal, allowed: bool) -> Reply<()> {
        self.update("admin_allow_capsule_creator", (principal, allowed))
    }

    pub fn capsule_creators(
        &mut self,
        after: Option<Principal>,
        limit: u32,
    ) -> Reply<CapsuleCreators> {
        self.query("admin_capsule_creators", (after, limit))
    }
}

/// The canister's answer to a call that must succeed.
pub fn ok<T: std::fmt::Debug>(reply: Reply<T>) -> T {
    reply.expect("transport").expect("canister")
}

/// The `UploadError` of a call that must fail in the canister.
pub fn err<T: std::fmt::Debug>(reply: Reply<T>) -> UploadError {
    reply
        .expect("transport")
        .expect_err("expected an UploadError")
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Deterministic test content: `len` bytes that differ per `seed`.
pub fn test_file(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}
