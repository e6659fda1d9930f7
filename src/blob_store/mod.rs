//! Space for the bytes of uploaded files ("blobs") in stable memory.
//!
//! Every blob lives in one logical address space. Its size is declared when
//! an upload begins, so its whole logical space is reserved up front and
//! each chunk is written straight to its final place through a
//! [`StableBlobSink`]: no chunk is ever buffered on the heap, staged, or
//! copied again at commit. That place is where the previous chunk ended,
//! in the order chunks arrive (`placement`), and stable memory is taken
//! only for the 4 KiB blocks bytes are written to ([`super::sparse`]), so a
//! reservation, or chunks sent far apart, cost only what is written.
//!
//! Space is handed out in blocks of [`BLOB_BLOCK_BYTES`]. A blob occupies a short
//! list of extents (runs of contiguous blocks). Freed extents go to two free
//! lists (by start, to coalesce with neighbours; by size, for best fit) and
//! are reused by later blobs, so stable memory does not keep growing under
//! upload/delete churn. A free run that reaches the end of the used area
//! lowers the high-water mark instead, so the end is reused first.
//!
//! Invariants (checked by the tests after every step):
//! - blob extents and free extents tile `[0, high_water)` exactly;
//! - no two free extents touch, and no free extent touches the mark;
//! - `used_blocks + free_blocks == high_water_blocks` in the header.
//!
//! Reused space is not zeroed (that would double the per-byte write cost):
//! a blob's bytes are only meaningful where they have been written, so
//! callers must not expose a blob before all of its range was written.
//!
//! The parts: `encoding` (the blob record, the header and the free-list
//! keys as stored), `allocator` (extents handed out and taken back),
//! `placement` (where each written piece sits in its blob's space), `io`
//! (reading and the `StableBlobSink` that writes chunks in place),
//! `invariants` (layout checks for the tests and the fuzzer) and `tests`.

mod allocator;
mod encoding;
#[cfg(any(test, feature = "fuzzing"))]
mod invariants;
mod io;
mod placement;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

use candid::CandidType;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableBTreeMap, StableCell, Storable};
use serde::{Deserialize, Serialize};

pub mod block_map;

use crate::session::{ByteSink, SinkError};
use crate::stable_memory::STABLE_MEMORY_CAPACITY_BYTES;
use crate::stable_memory::{Headroom, Vm};
use crate::storable::read_u64;
use block_map::SparseData;
use encoding::{BlobRecord, Header};
pub use io::StableBlobSink;
use placement::Placements;

pub use crate::limits::{reserved_bytes, BLOB_BLOCK_BYTES};

pub use crate::limits::{MAX_EXTENTS_PER_BLOB, READ_RUN_COST_BYTES};

/// Blocks the `MemoryManager` can address at most.
const MAX_DATA_BLOCKS: u64 = STABLE_MEMORY_CAPACITY_BYTES / BLOB_BLOCK_BYTES;

/// Blocks needed to hold `byte_len` bytes.
const fn blocks_for(byte_len: u64) -> u64 {
    byte_len.div_ceil(BLOB_BLOCK_BYTES)
}

/// Names one blob. Ids are never reused, even after the blob is freed.
#[derive(
    CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct BlobId(pub u64);

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blob {}", self.0)
    }
}

crate::u64_id_storable!(BlobId);

/// A run of contiguous blocks in `BLOB_DATA`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Extent {
    /// First block (byte address `start_block * BLOB_BLOCK_BYTES`).
    pub start_block: u64,
    /// Number of blocks.
    pub blocks: u64,
}

impl Extent {
    fn end_block(&self) -> u64 {
        self.start_block + self.blocks
    }
}

/// Why the blob store refused an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobStoreError {
    /// No blob has this id (never allocated, or already freed).
    UnknownBlob(BlobId),
    /// The range `[offset, offset + len)` lies outside the blob's `byte_len`.
    OutOfBounds {
        offset: u64,
        len: u64,
        byte_len: u64,
    },
    /// Reserving `requested` bytes (the blob's size rounded up to whole
    /// blocks) would pass the capacity; `available` bytes remain under it.
    CapacityExceeded { requested: u64, available: u64 },
    /// Stable memory could not grow to hold the blob.
    OutOfSpace,
}

impl fmt::Display for BlobStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobStoreError::UnknownBlob(id) => write!(f, "unknown {id}"),
            BlobStoreError::OutOfBounds {
                offset,
                len,
                byte_len,
            } => write!(
                f,
                "range of {len} bytes at offset {offset} is outside a blob of {byte_len} bytes"
            ),
            BlobStoreError::CapacityExceeded {
                requested,
                available,
            } => write!(
                f,
                "blob storage capacity exceeded: {requested} bytes requested, {available} available"
            ),
            BlobStoreError::OutOfSpace => write!(f, "stable memory cannot grow to hold the blob"),
        }
    }
}

impl std::error::Error for BlobStoreError {}

/// Space accounting of the store, in bytes.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BlobStoreStats {
    /// Bytes reserved by live blobs (whole blocks).
    pub used_bytes: u64,
    /// Bytes below the high-water mark that are free for reuse.
    pub free_bytes: u64,
    /// End of the used area: `used_bytes + free_bytes`.
    pub high_water_bytes: u64,
    /// Number of live blobs.
    pub blob_count: u64,
}

/// The stable memories the blob store lives in, one per structure; the
/// canister hands them in (`crate::state`).
pub struct BlobMemories<M: Memory> {
    /// Blob bytes written before the block table existed (layout < 4).
    pub dense_data: Vm<M>,
    pub block_table: Vm<M>,
    pub blocks: Vm<M>,
    pub records: Vm<M>,
    pub free_by_start: Vm<M>,
    pub free_by_size: Vm<M>,
    pub header: Vm<M>,
    pub pieces: Vm<M>,
    pub pieces_forgotten: Vm<M>,
    /// Growth of the raw memory under all of them.
    pub headroom: Headroom<M>,
}

/// Blobs in stable memory: space allocation, reuse, and byte access.
pub struct BlobStore<M: Memory> {
    data: SparseData<M>,
    placements: Placements<M>,
    blobs: StableBTreeMap<BlobId, BlobRecord, Vm<M>>,
    free_by_start: StableBTreeMap<u64, u64, Vm<M>>,
    free_by_size: StableBTreeMap<[u8; 16], (), Vm<M>>,
    header: StableCell<Header, Vm<M>>,
}

impl<M: Memory + Clone> BlobStore<M> {
    /// Opens the store on its memories, or lays it out on fresh ones. After
    /// an upgrade this finds every blob and free extent where it was.
    pub fn init(memories: BlobMemories<M>) -> Self {
        Self {
            data: SparseData::init(
                memories.dense_data,
                memories.block_table,
                memories.blocks,
                memories.headroom,
            ),
            placements: Placements::init(memories.pieces, memories.pieces_forgotten),
            blobs: StableBTreeMap::init(memories.records),
            free_by_start: StableBTreeMap::init(memories.free_by_start),
            free_by_size: StableBTreeMap::init(memories.free_by_size),
            header: StableCell::init(memories.header, Header::default()),
        }
    }

    /// The declared length of a blob, if it exists.
    pub fn byte_len(&self, id: BlobId) -> Option<u64> {
        self.blobs.get(&id).map(|record| record.byte_len)
    }

    /// Physical blocks that hold blob bytes (taken as bytes were written).
    pub fn mapped_blocks(&self) -> u64 {
        self.data.mapped_blocks()
    }

    /// Space accounting, in constant time.
    pub fn stats(&self) -> BlobStoreStats {
        let header = self.header.get();
        BlobStoreStats {
            used_bytes: header.used_blocks * BLOB_BLOCK_BYTES,
            free_bytes: header.free_blocks * BLOB_BLOCK_BYTES,
            high_water_bytes: header.high_water_blocks * BLOB_BLOCK_BYTES,
            blob_count: self.blobs.len(),
        }
    }

    fn record(&self, id: BlobId) -> Result<BlobRecord, BlobStoreError> {
        self.blobs.get(&id).ok_or(BlobStoreError::UnknownBlob(id))
    }

    /// Removes at most `limit` pieces of freed blobs from the placement
    /// map; true while some are left (a timer's bounded step).
    pub fn forget_freed_pieces(&mut self, limit: usize) -> bool {
        self.placements.purge(limit)
    }
}
