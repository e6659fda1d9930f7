//! The one place that names every stable memory of the canister.
//!
//! All durable state lives in stable structures, each on its own virtual
//! memory of a single `MemoryManager`. Ids are never renumbered or shared:
//! renumbering one would make an upgraded canister read another structure's
//! bytes. `tests::memory_ids_are_pinned` pins the numbering.

use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::Memory;

/// A virtual memory handed out by the canister's `MemoryManager`.
pub type Vm<M> = VirtualMemory<M>;

/// Session records (`session::SessionService`).
pub const SESSION_RECORDS: MemoryId = MemoryId::new(0);
/// Idempotency key -> session id.
pub const SESSION_IDEMPOTENCY: MemoryId = MemoryId::new(1);
/// Received-chunk bitmaps, in blocks of 4096 chunks.
pub const SESSION_CHUNK_BITMAPS: MemoryId = MemoryId::new(2);
/// (deadline, session id): expiry and pruning order.
pub const SESSION_DEADLINES: MemoryId = MemoryId::new(3);
/// Session service header (next session id).
pub const SESSION_HEADER: MemoryId = MemoryId::new(4);
/// SHA-256 midstate of each open upload.
pub const UPLOAD_HASH_PROGRESS: MemoryId = MemoryId::new(5);
/// Uploads whose hashing has received bytes waiting (catch-up work).
pub const UPLOAD_HASH_BACKLOG: MemoryId = MemoryId::new(6);
/// (caller, session id) of open uploads, to list a caller's sessions.
pub const UPLOAD_CALLER_SESSIONS: MemoryId = MemoryId::new(7);
/// The blob store's raw bytes.
pub const BLOB_DATA: MemoryId = MemoryId::new(8);
/// Blob id -> extents.
pub const BLOB_TABLE: MemoryId = MemoryId::new(9);
/// Free extents keyed by start block.
pub const BLOB_FREE_BY_START: MemoryId = MemoryId::new(10);
/// Free extents keyed by (length, start block).
pub const BLOB_FREE_BY_SIZE: MemoryId = MemoryId::new(11);
/// Blob store header (next blob id, high-water mark, block counts).
pub const BLOB_HEADER: MemoryId = MemoryId::new(12);
/// Capsule records.
pub const CAPSULES: MemoryId = MemoryId::new(13);
/// Committed memory records.
pub const MEMORY_RECORDS: MemoryId = MemoryId::new(14);
/// (capsule id, memory id) index.
pub const CAPSULE_MEMORIES: MemoryId = MemoryId::new(15);
/// Per-caller usage counters.
pub const CALLER_USAGE: MemoryId = MemoryId::new(16);
/// Limits, id counters and totals of the upload domain.
pub const UPLOAD_CONFIG: MemoryId = MemoryId::new(17);
/// (owner, capsule id) index.
pub const CAPSULES_BY_OWNER: MemoryId = MemoryId::new(18);
/// The stable-layout version record (`crate::layout`).
pub const LAYOUT_VERSION: MemoryId = MemoryId::new(19);
/// Principals the controllers allow to create capsules (used when
/// capsule creation is restricted).
pub const CAPSULE_CREATORS: MemoryId = MemoryId::new(20);
/// Repair state of uploads after a checksum mismatch.
pub const UPLOAD_REPAIRS: MemoryId = MemoryId::new(21);
/// Logical blob-store block -> physical block (`upload::sparse`).
pub const BLOB_BLOCK_TABLE: MemoryId = MemoryId::new(22);
/// Physical blocks of blob bytes, taken as bytes are written.
pub const BLOB_BLOCKS: MemoryId = MemoryId::new(23);
/// Where each written piece of a blob sits in its space
/// (`upload::blob_store::placement`).
pub const BLOB_PIECES: MemoryId = MemoryId::new(24);
/// Freed blobs whose pieces are still to be removed.
pub const BLOB_PIECES_FORGOTTEN: MemoryId = MemoryId::new(25);
/// Memory id -> the memory's thumbnail (`upload::thumbnails`); an upload
/// begun with one keeps it under its provisional memory id until it
/// commits, is aborted or expires.
pub const THUMBNAILS: MemoryId = MemoryId::new(26);
/// Session id -> the thumbnail (type, length, SHA-256) an upload was begun
/// with, until its record is pruned: what a retried `uploads_begin` is
/// compared with, and what the upload is charged for it. Beside the
/// session record, not in it, so that the record every chunk decodes
/// stays as it was.
pub const UPLOAD_THUMBNAILS: MemoryId = MemoryId::new(27);
/// The bucket's settings (`stores::bucket`): the index canister managing
/// this canister, if any, the state it set, and the bytes ever accepted
/// by `uploads_put_chunk`.
pub const BUCKET_SETTINGS: MemoryId = MemoryId::new(28);

/// Bytes the one `MemoryManager` can hand out across all its memories
/// (32 768 buckets of 8 MiB): the capacity every other figure is cut from.
pub const STABLE_MEMORY_CAPACITY_BYTES: u64 = 256 << 30;

/// Bytes the blob store may reserve: the whole capacity less 8 GiB kept for
/// the other structures (records, indexes, the block table).
pub const BLOB_STORE_CAPACITY_BYTES: u64 = STABLE_MEMORY_CAPACITY_BYTES - (8 << 30);

/// Buckets of raw stable memory kept grown beyond those the
/// `MemoryManager` has handed out (see [`Headroom`]). A message grows at
/// most a chunk's bytes (under 2 MB, within one 8 MiB bucket) in the blob
/// store and a few small records in other structures; four buckets cover
/// the blob store and three other structures crossing into a new bucket in
/// the same message.
pub const HEADROOM_BUCKETS: u64 = 4;

// 20..30 are left to the upload domain's own growth (29 is still free);
// sharing starts at 30.

/// Share links by link id (`upload::shares`).
pub const SHARE_LINKS: MemoryId = MemoryId::new(30);
/// (memory id, link id) index of share links.
pub const SHARES_BY_MEMORY: MemoryId = MemoryId::new(31);
/// (expires at, link id) index of expiring share links.
pub const SHARES_BY_EXPIRY: MemoryId = MemoryId::new(32);
/// (memory id, serving chunk) -> SHA-256 of the chunk's bytes.
pub const SHARE_CHUNK_HASHES: MemoryId = MemoryId::new(33);
/// Memories whose serving-chunk hashes are being computed.
pub const SHARE_HASH_QUEUE: MemoryId = MemoryId::new(34);
/// Next link id and certified-entry count.
pub const SHARE_COUNTERS: MemoryId = MemoryId::new(35);

/// Hands out the virtual memories of one `MemoryManager`.
pub struct StableMemories<M: Memory> {
    manager: MemoryManager<M>,
    raw: M,
}

impl<M: Memory + Clone> StableMemories<M> {
    /// Opens (or lays out, on a fresh memory) the manager on `memory`.
    pub fn init(memory: M) -> Self {
        Self {
            manager: MemoryManager::init(memory.clone()),
            raw: memory,
        }
    }

    /// The virtual memory with the given id.
    pub fn get(&self, id: MemoryId) -> Vm<M> {
        self.manager.get(id)
    }

    /// Growth of the raw stable memory, checked ahead of the manager.
    pub fn headroom(&self) -> Headroom<M> {
        Headroom {
            raw: self.raw.clone(),
        }
    }
}

/// Stable memory the subnet may refuse to grow.
///
/// The `MemoryManager` panics when the memory under it cannot grow
/// (ic-stable-structures 0.7), which would trap the message. So updates
/// that may grow stable memory first make sure the raw memory extends
/// [`HEADROOM_BUCKETS`] buckets beyond what the manager uses, growing it
/// through `ic0.stable64_grow` if needed: when the subnet refuses, the
/// update answers `OutOfSpace` before it has changed anything, and the
/// manager then takes its buckets from memory that already exists.
pub struct Headroom<M: Memory> {
    raw: M,
}

/// The `MemoryManager` header's first bytes: magic, layout version, then
/// the allocated bucket count and the bucket size in pages (little-endian
/// `u16`s, the manager writes its header as a packed struct).
const MANAGER_MAGIC: &[u8; 3] = b"MGR";
const MANAGER_LAYOUT: u8 = 1;
/// The manager's header page comes before the first bucket.
const MANAGER_HEADER_PAGES: u64 = 1;

/// Virtual memories that opening an empty canister writes to, each taking
/// its first bucket: every structure's header but the dense blob data of
/// layouts before 4 (`BLOB_DATA`) and the mapped blob blocks
/// (`BLOB_BLOCKS`), which take memory only when bytes arrive. A test opens
/// an empty state and checks the count.
pub const MEMORIES_LAID_OUT_WHEN_EMPTY: u64 = 33;

const WASM_PAGE_BYTES: u64 = 65_536;

impl<M: Memory> Headroom<M> {
    /// Bytes of raw stable memory now.
    pub fn raw_bytes(&self) -> u64 {
        self.raw.size() * WASM_PAGE_BYTES
    }

    /// The stable memory an empty canister holds: the manager's header and
    /// the first bucket of each structure laid out when it opens.
    pub fn fixed_bytes(&self) -> u64 {
        let (_, bucket_pages) = self.in_use();
        (MANAGER_HEADER_PAGES + MEMORIES_LAID_OUT_WHEN_EMPTY * bucket_pages) * WASM_PAGE_BYTES
    }

    /// Pages the manager's buckets occupy now, and its bucket size.
    fn in_use(&self) -> (u64, u64) {
        let mut header = [0u8; 8];
        self.raw.read(0, &mut header);
        assert!(
            &header[..3] == MANAGER_MAGIC && header[3] == MANAGER_LAYOUT,
            "bug: stable memory does not start with a known MemoryManager header"
        );
        let buckets = u64::from(u16::from_le_bytes([header[4], header[5]]));
        let bucket_pages = u64::from(u16::from_le_bytes([header[6], header[7]]));
        (MANAGER_HEADER_PAGES + buckets * bucket_pages, bucket_pages)
    }

    /// Grows the raw memory to the headroom if it is short of it. False if
    /// the subnet refused: nothing changed.
    pub fn ensure(&self) -> bool {
        self.ensure_for(0)
    }

    /// Makes sure virtual memories can grow by `pages` in all (spread over
    /// at most two of them) from raw memory that exists, keeping at least
    /// the headroom. False if the subnet refused: nothing changed.
    pub fn ensure_for(&self, pages: u64) -> bool {
        let (used, bucket_pages) = self.in_use();
        let buckets = (pages.div_ceil(bucket_pages.max(1)) + 2).max(HEADROOM_BUCKETS);
        let wanted = used + buckets * bucket_pages;
        let have = self.raw.size();
        wanted <= have || self.raw.grow(wanted - have) >= 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_ids_are_pinned() {
        let ids = [
            SESSION_RECORDS,
            SESSION_IDEMPOTENCY,
            SESSION_CHUNK_BITMAPS,
            SESSION_DEADLINES,
            SESSION_HEADER,
            UPLOAD_HASH_PROGRESS,
            UPLOAD_HASH_BACKLOG,
            UPLOAD_CALLER_SESSIONS,
            BLOB_DATA,
            BLOB_TABLE,
            BLOB_FREE_BY_START,
            BLOB_FREE_BY_SIZE,
            BLOB_HEADER,
            CAPSULES,
            MEMORY_RECORDS,
            CAPSULE_MEMORIES,
            CALLER_USAGE,
            UPLOAD_CONFIG,
            CAPSULES_BY_OWNER,
            LAYOUT_VERSION,
            CAPSULE_CREATORS,
            UPLOAD_REPAIRS,
            BLOB_BLOCK_TABLE,
            BLOB_BLOCKS,
            BLOB_PIECES,
            BLOB_PIECES_FORGOTTEN,
            THUMBNAILS,
            UPLOAD_THUMBNAILS,
            BUCKET_SETTINGS,
        ];
        let expected: Vec<MemoryId> = (0..29).map(MemoryId::new).collect();
        assert_eq!(ids.to_vec(), expected);
        let sharing = [
            SHARE_LINKS,
            SHARES_BY_MEMORY,
            SHARES_BY_EXPIRY,
            SHARE_CHUNK_HASHES,
            SHARE_HASH_QUEUE,
            SHARE_COUNTERS,
        ];
        let expected: Vec<MemoryId> = (30..36).map(MemoryId::new).collect();
        assert_eq!(sharing.to_vec(), expected);
    }
}
