//! The upload domain's values and the Candid types of its API.

use crate::blob_store::BlobId;
use crate::limits::Limits;
pub use crate::session::{ChunkRange, SessionId, SessionStatus};
use crate::session::{IdempotencyKey, Session, SessionMeta};
use candid::{CandidType, Principal};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
        )]
        pub struct $name(pub u64);

        crate::u64_id_storable!($name);
    };
}

id_type!(
    /// A user's container of memories.
    CapsuleId
);
id_type!(
    /// One committed upload in a capsule. Reserved at `uploads_begin`
    /// (provisional) and real from `uploads_finish` on.
    MemoryItemId
);

/// What the client says about the file.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AssetMetadata {
    pub name: String,
    pub mime_type: String,
    pub byte_len: u64,
    /// SHA-256 of the whole file, if known when the upload begins.
    pub sha256: Option<ByteBuf>,
}

/// The idempotency key of an upload request: the client's key within the
/// caller's scope, so two callers never collide.
pub fn request_key(caller: &Principal, client_key: &str) -> IdempotencyKey {
    IdempotencyKey::new(caller.as_slice(), client_key.as_bytes())
}

/// The upload's own metadata, carried opaquely by its generic session.
/// Status, chunks received, expected chunks and timestamps are the
/// session's: `UploadSession` reads them through, so there is one copy.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadSessionMeta {
    pub capsule_id: CapsuleId,
    pub caller: Principal,
    pub idempotency_key: String,
    pub asset: AssetMetadata,
    /// Declared chunk size; the session's `ChunkSpec` is derived from it and
    /// `asset.byte_len` once, at creation.
    pub chunk_size: u32,
    pub provisional_memory_id: MemoryItemId,
    pub blob_id: BlobId,
}

impl SessionMeta for UploadSessionMeta {
    /// The same request: everything the client declared. The ids the
    /// canister allocated are not part of the request.
    fn same_request(&self, other: &Self) -> bool {
        self.capsule_id == other.capsule_id
            && self.caller == other.caller
            && self.idempotency_key == other.idempotency_key
            && self.asset == other.asset
            && self.chunk_size == other.chunk_size
    }
}

/// An upload session: the generic session with the upload's metadata.
pub type UploadSession = Session<UploadSessionMeta>;

impl Session<UploadSessionMeta> {
    pub fn capsule_id(&self) -> CapsuleId {
        self.meta.capsule_id
    }

    pub fn caller(&self) -> Principal {
        self.meta.caller
    }

    pub fn expected_chunks(&self) -> u32 {
        self.spec.chunk_count()
    }
}

/// `uploads_begin`'s argument without a thumbnail: the record as clients
/// built before thumbnails send it, and what Rust code that sends none
/// builds. It converts into the argument the canister takes,
/// [`BeginUploadRequest`] (`with_thumbnail` adds one).
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct BeginUpload {
    pub capsule_id: CapsuleId,
    pub asset: AssetMetadata,
    pub chunk_size: u32,
    /// Must equal `ceil(asset.byte_len / chunk_size)`.
    pub expected_chunks: u32,
    /// Same key (and same request) again returns the same session.
    pub idempotency_key: String,
}

impl BeginUpload {
    /// The request with `thumbnail` for the memory.
    pub fn with_thumbnail(self, thumbnail: Option<Thumbnail>) -> BeginUploadRequest {
        let BeginUpload {
            capsule_id,
            asset,
            chunk_size,
            expected_chunks,
            idempotency_key,
        } = self;
        BeginUploadRequest {
            capsule_id,
            asset,
            chunk_size,
            expected_chunks,
            idempotency_key,
            thumbnail,
        }
    }
}

impl From<BeginUpload> for BeginUploadRequest {
    fn from(request: BeginUpload) -> Self {
        request.with_thumbnail(None)
    }
}

/// The Candid record `BeginUpload` as `uploads_begin` takes it. It is a
/// second Rust type (named `BeginUpload` too, which names the Candid type)
/// so that Rust code building the record without a thumbnail, which the
/// v0.1.0 interface had not, keeps compiling: [`BeginUpload`] converts
/// into it.
pub mod begin_request {
    use super::{AssetMetadata, CapsuleId, Thumbnail};
    use candid::CandidType;
    use serde::Deserialize;

    /// `uploads_begin` argument.
    #[derive(CandidType, Deserialize, Clone, Debug)]
    pub struct BeginUpload {
        pub capsule_id: CapsuleId,
        pub asset: AssetMetadata,
        pub chunk_size: u32,
        /// Must equal `ceil(asset.byte_len / chunk_size)`.
        pub expected_chunks: u32,
        /// Same key (and same request) again returns the same session.
        pub idempotency_key: String,
        /// The memory's thumbnail (a JPEG or WebP of at most 32 KiB): part
        /// of the request (a retry must send the same one), counted in the
        /// upload's reservation, and the memory's when the upload commits.
        pub thumbnail: Option<Thumbnail>,
    }
}

pub use begin_request::BeginUpload as BeginUploadRequest;

/// A small image of a memory, for gallery pages.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Thumbnail {
    /// `image/jpeg` or `image/webp`, and the bytes must be one: a JPEG
    /// starts `FF D8 FF`, a WebP `RIFF <4 bytes> WEBP`.
    pub mime_type: String,
    /// At most 32 KiB (`MAX_THUMBNAIL_BYTES`).
    pub bytes: ByteBuf,
}

/// `uploads_begin` reply.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadStarted {
    pub session_id: SessionId,
    pub provisional_memory_id: MemoryItemId,
    pub expected_chunks: u32,
    pub chunk_size: u32,
    pub expires_at: u64,
}

/// `uploads_put_chunk` argument.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct PutChunk {
    pub session_id: SessionId,
    pub index: u32,
    pub bytes: ByteBuf,
    /// SHA-256 of this chunk: checked when given.
    pub sha256: Option<ByteBuf>,
}

/// `uploads_put_chunk` reply.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChunkAccepted {
    /// False when the same bytes had already arrived.
    pub newly_stored: bool,
    pub received_chunks: u32,
    pub expected_chunks: u32,
    /// Bytes verified so far, in file order.
    pub hashed_bytes: u64,
    pub expires_at: u64,
}

/// `uploads_finish` argument.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct FinishUpload {
    pub session_id: SessionId,
    pub sha256: ByteBuf,
    pub byte_len: u64,
}

/// A committed memory: the `uploads_finish` reply.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CommittedUpload {
    pub memory_id: MemoryItemId,
    pub blob_id: BlobId,
    pub capsule_id: CapsuleId,
    pub byte_len: u64,
    pub sha256: ByteBuf,
}

/// `uploads_status` argument: a page of missing chunks from `from_chunk`.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct StatusRequest {
    pub session_id: SessionId,
    pub from_chunk: u32,
    pub max_ranges: u32,
}

/// What a client needs to resume or finish an upload.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadStatus {
    pub session_id: SessionId,
    pub capsule_id: CapsuleId,
    pub status: SessionStatus,
    pub provisional_memory_id: MemoryItemId,
    pub byte_len: u64,
    pub chunk_size: u32,
    pub expected_chunks: u32,
    pub received_chunks: u32,
    pub missing: Vec<ChunkRange>,
    /// Ask again from here for more missing ranges.
    pub next_from_chunk: Option<u32>,
    pub hashed_bytes: u64,
    /// Set after a checksum mismatch: chunks may be re-sent with new bytes.
    pub repairing: bool,
    pub expires_at: Option<u64>,
    pub committed: Option<CommittedUpload>,
}

/// One of the caller's open uploads.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OpenUpload {
    pub session_id: SessionId,
    pub capsule_id: CapsuleId,
    pub provisional_memory_id: MemoryItemId,
    pub name: String,
    pub byte_len: u64,
    pub chunk_size: u32,
    pub expected_chunks: u32,
    pub received_chunks: u32,
    pub expires_at: u64,
}

/// A capsule and who may write to it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Capsule {
    pub capsule_id: CapsuleId,
    pub name: String,
    pub owner: Principal,
    pub writers: Vec<Principal>,
    pub created_at: u64,
}

/// Who may create capsules: anyone signed in, or (when `restricted`) the
/// principals the controllers allowed; a page of them.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CapsuleCreators {
    pub restricted: bool,
    pub allowed: Vec<Principal>,
    /// Pass as `after` for the next page.
    pub next_after: Option<Principal>,
}

/// A committed memory.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MemoryRecord {
    pub memory_id: MemoryItemId,
    pub capsule_id: CapsuleId,
    pub name: String,
    pub mime_type: String,
    pub byte_len: u64,
    pub sha256: ByteBuf,
    pub blob_id: BlobId,
    pub uploaded_by: Principal,
    pub created_at: u64,
    /// The memory's thumbnail, if it has one.
    pub thumbnail: Option<Thumbnail>,
}

/// `memories_list` argument.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct ListMemories {
    pub capsule_id: CapsuleId,
    pub after: Option<MemoryItemId>,
    /// At most 1 000 records; a page may hold fewer (see `MemoriesPage`).
    pub limit: u32,
}

/// A page of a capsule's memories, thumbnails included: at most `limit`,
/// and no more than fit in about 1.5 MiB (`MAX_LIST_REPLY_BYTES`), so a
/// page of memories with thumbnails stays well under the 2 MiB reply
/// limit; a gallery page takes one query.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MemoriesPage {
    pub memories: Vec<MemoryRecord>,
    /// Where the next page starts: pass as `after`. Set whenever more
    /// memories follow, whether the page stopped at `limit` or at its size.
    pub next_after: Option<MemoryItemId>,
}

/// `memories_read` argument: a byte range of a committed memory.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct ReadRange {
    pub memory_id: MemoryItemId,
    pub offset: u64,
    pub length: u64,
}

/// A caller's use of the canister.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallerUsage {
    pub open_sessions: u32,
    pub reserved_bytes: u64,
    pub stored_bytes: u64,
}

/// `stats` reply.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in blocks held by blobs (reserved or committed).
    pub used_bytes: u64,
    /// Bytes in freed blocks waiting for reuse.
    pub free_bytes: u64,
    /// Extent of the blob store's memory ever used.
    pub high_water_bytes: u64,
    /// Stable memory holding blob bytes: a 4 KiB block is taken when bytes
    /// first arrive in it (kept for reuse, never given back). Optional in
    /// Candid only so that clients of this interface can still decode the
    /// stats of a canister released before it; this build always sets it.
    pub mapped_bytes: Option<u64>,
    pub reserved_bytes: u64,
    pub stored_bytes: u64,
    pub open_sessions: u64,
    pub session_records: u64,
    pub memories: u64,
    pub caller: CallerUsage,
    pub limits: Limits,
    /// Raw stable memory the canister holds now. Optional, as
    /// `mapped_bytes` is, so that older canisters' stats still decode.
    pub stable_memory_bytes: Option<u64>,
    /// The part of it an empty canister already holds: the memory
    /// manager's header and the first bucket of each structure. Constant.
    pub fixed_stable_bytes: Option<u64>,
}
