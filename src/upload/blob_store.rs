//! Space for the bytes of uploaded files ("blobs") in stable memory.
//!
//! Every blob lives in one logical address space. Its size is declared when
//! an upload begins, so its whole logical space is reserved up front and
//! each chunk is written straight to its final place through a
//! [`StableBlobSink`]: no chunk is ever buffered on the heap, staged, or
//! copied again at commit. Stable memory is taken only for the 4 KiB blocks
//! bytes are written to ([`super::sparse`]), so a reservation, or a far
//! chunk sent first, costs only what is written.
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

use std::borrow::Cow;
use std::fmt;

use candid::CandidType;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableBTreeMap, StableCell, Storable};
use serde::{Deserialize, Serialize};

use super::sparse::SparseData;
use crate::session::{ByteSink, SinkError};
use crate::stable_memory::STABLE_MEMORY_CAPACITY_BYTES;
use crate::stable_memory::{
    StableMemories, Vm, BLOB_FREE_BY_SIZE, BLOB_FREE_BY_START, BLOB_HEADER, BLOB_TABLE,
};
use crate::storable::read_u64;

/// The unit of space management: blobs occupy whole blocks.
pub const BLOB_BLOCK_BYTES: u64 = 4096;

/// Most extents one blob may occupy. The record is decoded on every chunk
/// write, so it must stay small (here at most 522 bytes).
pub const MAX_EXTENTS_PER_BLOB: usize = 32;

/// Blocks the `MemoryManager` can address at most.
const MAX_DATA_BLOCKS: u64 = STABLE_MEMORY_CAPACITY_BYTES / BLOB_BLOCK_BYTES;

/// Blocks needed to hold `byte_len` bytes.
const fn blocks_for(byte_len: u64) -> u64 {
    byte_len.div_ceil(BLOB_BLOCK_BYTES)
}

/// Bytes a blob of `byte_len` bytes reserves (rounded up to whole blocks,
/// saturating at `u64::MAX`): what it counts against a capacity.
pub const fn reserved_bytes(byte_len: u64) -> u64 {
    blocks_for(byte_len).saturating_mul(BLOB_BLOCK_BYTES)
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

/// Where one blob's bytes are. Stream offset 0 is at the start of the first
/// extent; each extent continues where the previous one ended.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BlobRecord {
    byte_len: u64,
    extents: Vec<Extent>,
}

/// Leading byte of an encoded record, so the layout can change across
/// upgrades without misreading old records.
const RECORD_VERSION: u8 = 1;
const RECORD_HEAD: usize = 1 + 8 + 1;

// Hand-made bytes rather than Candid: the record is decoded on every chunk
// write, and this decoding costs a few hundred instructions at most.
impl Storable for BlobRecord {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let count =
            u8::try_from(self.extents.len()).expect("bug: a blob has more than 255 extents");
        let mut bytes = Vec::with_capacity(RECORD_HEAD + 16 * self.extents.len());
        bytes.push(RECORD_VERSION);
        bytes.extend_from_slice(&self.byte_len.to_be_bytes());
        bytes.push(count);
        for extent in &self.extents {
            bytes.extend_from_slice(&extent.start_block.to_be_bytes());
            bytes.extend_from_slice(&extent.blocks.to_be_bytes());
        }
        bytes
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        assert!(
            bytes.len() >= RECORD_HEAD && bytes[0] == RECORD_VERSION,
            "bug: a stored blob record has an unknown layout"
        );
        let count = usize::from(bytes[9]);
        assert_eq!(
            bytes.len(),
            RECORD_HEAD + 16 * count,
            "bug: a stored blob record has the wrong length"
        );
        let extents = (0..count)
            .map(|i| {
                let at = RECORD_HEAD + 16 * i;
                Extent {
                    start_block: read_u64(&bytes, at),
                    blocks: read_u64(&bytes, at + 8),
                }
            })
            .collect();
        BlobRecord {
            byte_len: read_u64(&bytes, 1),
            extents,
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// The store's counters. `used_blocks + free_blocks == high_water_blocks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    next_blob_id: u64,
    /// Blocks `[0, high_water_blocks)` have been handed out at some point;
    /// everything above is untouched space.
    high_water_blocks: u64,
    used_blocks: u64,
    free_blocks: u64,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            // Ids start at 1 so that 0 is never a valid id.
            next_blob_id: 1,
            high_water_blocks: 0,
            used_blocks: 0,
            free_blocks: 0,
        }
    }
}

const HEADER_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4 * 8;

impl Storable for Header {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER_LEN);
        bytes.push(HEADER_VERSION);
        for word in [
            self.next_blob_id,
            self.high_water_blocks,
            self.used_blocks,
            self.free_blocks,
        ] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // A later version may append fields; the prefix keeps its meaning.
        assert!(
            bytes.len() >= HEADER_LEN && bytes[0] >= HEADER_VERSION,
            "bug: the blob store header has an unknown layout"
        );
        Header {
            next_blob_id: read_u64(&bytes, 1),
            high_water_blocks: read_u64(&bytes, 9),
            used_blocks: read_u64(&bytes, 17),
            free_blocks: read_u64(&bytes, 25),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// Key of the by-size free list: sorts by length, then start.
fn size_key(extent: Extent) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&extent.blocks.to_be_bytes());
    key[8..].copy_from_slice(&extent.start_block.to_be_bytes());
    key
}

fn extent_of_size_key(key: &[u8; 16]) -> Extent {
    Extent {
        blocks: read_u64(key, 0),
        start_block: read_u64(key, 8),
    }
}

/// Where the blocks of a new blob will come from, worked out before any
/// change so that a failure leaves nothing behind.
#[derive(Default)]
struct Plan {
    /// Free extents taken whole.
    whole: Vec<Extent>,
    /// A free extent and how many of its blocks (from its end) are taken.
    split: Option<(Extent, u64)>,
    /// Blocks taken above the high-water mark.
    from_mark: u64,
}

/// Calls `piece(address, at, len)` for each piece of the stream range
/// `[offset, offset + len)`: `len` bytes at memory `address` correspond to
/// `buf[at..at + len]` of a buffer that starts at `offset`. The range must lie
/// within the extents.
fn for_each_piece(
    extents: &[Extent],
    offset: u64,
    len: u64,
    mut piece: impl FnMut(u64, usize, usize),
) {
    let end = offset + len;
    let mut pos = offset;
    let mut extent_offset = 0u64;
    for extent in extents {
        if pos >= end {
            break;
        }
        let extent_end = extent_offset + extent.blocks * BLOB_BLOCK_BYTES;
        if pos < extent_end {
            let n = end.min(extent_end) - pos;
            let address = extent.start_block * BLOB_BLOCK_BYTES + (pos - extent_offset);
            piece(address, (pos - offset) as usize, n as usize);
            pos += n;
        }
        extent_offset = extent_end;
    }
    assert!(
        pos >= end,
        "bug: a blob's extents are shorter than its length"
    );
}

/// `Ok` if `[offset, offset + len)` lies within `byte_len`.
fn check_range(offset: u64, len: u64, byte_len: u64) -> Result<(), BlobStoreError> {
    match offset.checked_add(len) {
        Some(end) if end <= byte_len => Ok(()),
        _ => Err(BlobStoreError::OutOfBounds {
            offset,
            len,
            byte_len,
        }),
    }
}

/// Blobs in stable memory: space allocation, reuse, and byte access.
pub struct BlobStore<M: Memory> {
    data: SparseData<M>,
    blobs: StableBTreeMap<BlobId, BlobRecord, Vm<M>>,
    free_by_start: StableBTreeMap<u64, u64, Vm<M>>,
    free_by_size: StableBTreeMap<[u8; 16], (), Vm<M>>,
    header: StableCell<Header, Vm<M>>,
}

impl<M: Memory + Clone> BlobStore<M> {
    /// Opens the store on its memories, or lays it out on fresh ones. After
    /// an upgrade this finds every blob and free extent where it was.
    pub fn init(memories: &StableMemories<M>) -> Self {
        Self {
            data: SparseData::init(memories),
            blobs: StableBTreeMap::init(memories.get(BLOB_TABLE)),
            free_by_start: StableBTreeMap::init(memories.get(BLOB_FREE_BY_START)),
            free_by_size: StableBTreeMap::init(memories.get(BLOB_FREE_BY_SIZE)),
            header: StableCell::init(memories.get(BLOB_HEADER), Header::default()),
        }
    }

    /// Reserves space for a blob of `byte_len` bytes and returns its id.
    ///
    /// The space comes from the best-fitting free extent, else from the
    /// largest free extents plus fresh space at the end. `capacity_bytes`
    /// caps the bytes reserved by all blobs once this one is added (a
    /// zero-length blob reserves nothing and always fits). On error nothing
    /// changes. Costs at most about `2 * MAX_EXTENTS_PER_BLOB` free-list
    /// operations.
    pub fn allocate(
        &mut self,
        byte_len: u64,
        capacity_bytes: u64,
    ) -> Result<BlobId, BlobStoreError> {
        let need = blocks_for(byte_len);
        let header = *self.header.get();
        if need > 0 {
            let used_after =
                (u128::from(header.used_blocks) + u128::from(need)) * u128::from(BLOB_BLOCK_BYTES);
            if used_after > u128::from(capacity_bytes) {
                return Err(BlobStoreError::CapacityExceeded {
                    requested: reserved_bytes(byte_len),
                    available: capacity_bytes
                        .saturating_sub(header.used_blocks.saturating_mul(BLOB_BLOCK_BYTES)),
                });
            }
        }

        let plan = self.plan(need);
        let high_water_blocks = header
            .high_water_blocks
            .checked_add(plan.from_mark)
            .ok_or(BlobStoreError::OutOfSpace)?;
        // Memory grows lazily, when bytes are written (`ensure_memory_holds`):
        // a reservation no chunk has filled yet costs no stable memory.
        if high_water_blocks > MAX_DATA_BLOCKS {
            return Err(BlobStoreError::OutOfSpace);
        }
        let next_blob_id = header
            .next_blob_id
            .checked_add(1)
            .expect("bug: blob ids exhausted");

        // Nothing below can fail.
        let mut extents = Vec::with_capacity(plan.whole.len() + 2);
        let mut free_blocks = header.free_blocks;
        for extent in plan.whole {
            self.remove_free(extent);
            free_blocks -= extent.blocks;
            extents.push(extent);
        }
        if let Some((extent, take)) = plan.split {
            if take == extent.blocks {
                self.remove_free(extent);
            } else {
                // Taking the tail keeps the remainder's start, so its
                // by-start entry is updated in place (one operation fewer).
                let rest = Extent {
                    start_block: extent.start_block,
                    blocks: extent.blocks - take,
                };
                self.free_by_size.remove(&size_key(extent));
                self.free_by_size.insert(size_key(rest), ());
                self.free_by_start.insert(rest.start_block, rest.blocks);
            }
            free_blocks -= take;
            extents.push(Extent {
                start_block: extent.end_block() - take,
                blocks: take,
            });
        }
        if plan.from_mark > 0 {
            extents.push(Extent {
                start_block: header.high_water_blocks,
                blocks: plan.from_mark,
            });
        }
        debug_assert!(extents.len() <= MAX_EXTENTS_PER_BLOB);

        let id = BlobId(header.next_blob_id);
        self.blobs.insert(id, BlobRecord { byte_len, extents });
        self.header.set(Header {
            next_blob_id,
            high_water_blocks,
            used_blocks: header.used_blocks + need,
            free_blocks,
        });
        Ok(id)
    }

    /// Decides where `need` blocks come from, without changing anything.
    fn plan(&self, need: u64) -> Plan {
        let mut plan = Plan::default();
        let mut remaining = need;
        // The extents taken whole are the largest ones, i.e. every by-size
        // key at or above `floor`; searches stay below it.
        let mut floor: Option<[u8; 16]> = None;
        while remaining > 0 {
            let lowest_fit = size_key(Extent {
                start_block: 0,
                blocks: remaining,
            });
            let fit = match floor {
                None => self.free_by_size.keys_range(lowest_fit..).next(),
                Some(floor) if lowest_fit < floor => {
                    self.free_by_size.keys_range(lowest_fit..floor).next()
                }
                Some(_) => None,
            };
            if let Some(key) = fit {
                plan.split = Some((extent_of_size_key(&key), remaining));
                return plan;
            }
            // One extent is kept for the fresh space at the mark.
            if plan.whole.len() + 1 >= MAX_EXTENTS_PER_BLOB {
                break;
            }
            let largest = match floor {
                None => self.free_by_size.keys().next_back(),
                Some(floor) => self.free_by_size.keys_range(..floor).next_back(),
            };
            let Some(key) = largest else { break };
            let extent = extent_of_size_key(&key);
            // Nothing holds `remaining`, so this extent is smaller: take it all.
            debug_assert!(extent.blocks < remaining);
            plan.whole.push(extent);
            remaining -= extent.blocks;
            floor = Some(key);
        }
        plan.from_mark = remaining;
        plan
    }

    fn remove_free(&mut self, extent: Extent) {
        self.free_by_start.remove(&extent.start_block);
        self.free_by_size.remove(&size_key(extent));
    }

    fn insert_free(&mut self, extent: Extent) {
        self.free_by_start.insert(extent.start_block, extent.blocks);
        self.free_by_size.insert(size_key(extent), ());
    }

    /// Frees a blob's space for reuse and returns the bytes it reserved
    /// (whole blocks: what `stats().used_bytes` drops by).
    pub fn free(&mut self, id: BlobId) -> Result<u64, BlobStoreError> {
        let record = self
            .blobs
            .remove(&id)
            .ok_or(BlobStoreError::UnknownBlob(id))?;
        let mut header = *self.header.get();
        let mut freed_blocks = 0;
        for extent in &record.extents {
            self.release(*extent, &mut header);
            freed_blocks += extent.blocks;
        }
        header.used_blocks -= freed_blocks;
        self.header.set(header);
        Ok(freed_blocks * BLOB_BLOCK_BYTES)
    }

    /// Returns one extent to the free lists, merged with free neighbours;
    /// a run that reaches the mark lowers it instead.
    fn release(&mut self, extent: Extent, header: &mut Header) {
        let mut run = extent;
        let before = self
            .free_by_start
            .range(..run.start_block)
            .next_back()
            .map(|entry| entry.into_pair());
        if let Some((start_block, blocks)) = before {
            let prev = Extent {
                start_block,
                blocks,
            };
            if prev.end_block() == run.start_block {
                self.remove_free(prev);
                header.free_blocks -= prev.blocks;
                run = Extent {
                    start_block: prev.start_block,
                    blocks: prev.blocks + run.blocks,
                };
            }
        }
        if let Some(blocks) = self.free_by_start.get(&run.end_block()) {
            let next = Extent {
                start_block: run.end_block(),
                blocks,
            };
            self.remove_free(next);
            header.free_blocks -= next.blocks;
            run.blocks += next.blocks;
        }
        if run.end_block() == header.high_water_blocks {
            // The block below `run` is not free (it would have merged), so
            // the new mark touches no free extent either.
            header.high_water_blocks = run.start_block;
        } else {
            self.insert_free(run);
            header.free_blocks += run.blocks;
        }
    }

    /// Fills `buf` with the blob's bytes at `offset`.
    pub fn read(&self, id: BlobId, offset: u64, buf: &mut [u8]) -> Result<(), BlobStoreError> {
        let record = self.record(id)?;
        check_range(offset, buf.len() as u64, record.byte_len)?;
        read_extents(&self.data, &record.extents, offset, buf);
        Ok(())
    }

    /// A sink that writes (and reads) the blob's bytes at stream offsets.
    /// It loads the extents once, so each chunk costs no table lookup, and
    /// borrows the store immutably.
    pub fn sink(&self, id: BlobId) -> Result<StableBlobSink<'_, M>, BlobStoreError> {
        let record = self.record(id)?;
        Ok(StableBlobSink {
            data: &self.data,
            id,
            byte_len: record.byte_len,
            extents: record.extents,
        })
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
}

/// Writes one blob's bytes in place, at offsets of its stream.
pub struct StableBlobSink<'a, M: Memory> {
    data: &'a SparseData<M>,
    id: BlobId,
    byte_len: u64,
    extents: Vec<Extent>,
}

impl<M: Memory> StableBlobSink<'_, M> {
    /// The blob this sink writes.
    pub fn id(&self) -> BlobId {
        self.id
    }

    /// The blob's declared length: the end of the writable range.
    pub fn byte_len(&self) -> u64 {
        self.byte_len
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), SinkError> {
        check_range(offset, len as u64, self.byte_len).map_err(|_| SinkError::OutOfBounds {
            offset,
            len: len as u64,
            capacity: self.byte_len,
        })
    }
}

/// Fills `buf` with the bytes at stream `offset` of a blob laid out in
/// `extents` (the range is checked by the caller).
fn read_extents<M: Memory>(data: &SparseData<M>, extents: &[Extent], offset: u64, buf: &mut [u8]) {
    for_each_piece(extents, offset, buf.len() as u64, |address, at, len| {
        data.read(address, &mut buf[at..at + len]);
    });
}

impl<M: Memory> ByteSink for StableBlobSink<'_, M> {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), SinkError> {
        self.check(offset, bytes.len())?;
        let (mut highest, mut pieces) = (0, 0);
        for_each_piece(
            &self.extents,
            offset,
            bytes.len() as u64,
            |address, _, len| {
                highest = highest.max(address + len as u64);
                pieces += 1;
            },
        );
        // Room for every piece first, so that a refusal changes nothing.
        self.data
            .room_for(highest, bytes.len() as u64, pieces)
            .map_err(|_| SinkError::OutOfSpace)?;
        let mut written = Ok(());
        for_each_piece(
            &self.extents,
            offset,
            bytes.len() as u64,
            |address, at, len| {
                if written.is_ok() {
                    written = self.data.write(address, &bytes[at..at + len]);
                }
            },
        );
        written.map_err(|_| SinkError::OutOfSpace)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SinkError> {
        self.check(offset, buf.len())?;
        read_extents(self.data, &self.extents, offset, buf);
        Ok(())
    }
}

/// Introspection for tests and the fuzzer: the layout as it is, and the
/// module's invariants checked against it.
#[cfg(any(test, feature = "fuzzing"))]
impl<M: Memory + Clone> BlobStore<M> {
    /// Free extents, by start.
    pub(crate) fn free_extents(&self) -> Vec<Extent> {
        self.free_by_start
            .iter()
            .map(|entry| {
                let (start_block, blocks) = entry.into_pair();
                Extent {
                    start_block,
                    blocks,
                }
            })
            .collect()
    }

    /// Where a live blob lies.
    #[cfg(test)]
    pub(crate) fn extents_of(&self, id: BlobId) -> Vec<Extent> {
        self.blobs.get(&id).expect("blob exists").extents
    }

    /// Every live blob with its length and extents, by id.
    pub(crate) fn live_blobs(&self) -> Vec<(BlobId, u64, Vec<Extent>)> {
        self.blobs
            .iter()
            .map(|entry| {
                let (id, record) = entry.into_pair();
                (id, record.byte_len, record.extents)
            })
            .collect()
    }

    /// Panics unless blob and free extents tile `[0, high_water)`, no two
    /// free extents touch, none touches the mark, both free lists agree and
    /// the header's counts match.
    pub(crate) fn check_invariants(&self) {
        let header = *self.header.get();
        let free = self.free_extents();
        let by_size: Vec<Extent> = self
            .free_by_size
            .keys()
            .map(|k| extent_of_size_key(&k))
            .collect();
        let mut sorted_by_size = free.clone();
        sorted_by_size.sort_by_key(|e| (e.blocks, e.start_block));
        assert_eq!(by_size, sorted_by_size, "free lists disagree");

        let mut all: Vec<(Extent, bool)> = free.iter().map(|e| (*e, true)).collect();
        let mut used = 0;
        for entry in self.blobs.iter() {
            let record = entry.value();
            assert!(record.extents.len() <= MAX_EXTENTS_PER_BLOB);
            let blocks: u64 = record.extents.iter().map(|e| e.blocks).sum();
            assert_eq!(blocks, blocks_for(record.byte_len));
            used += blocks;
            all.extend(record.extents.iter().map(|e| (*e, false)));
        }
        all.sort();
        let mut cursor = 0;
        let mut previous_free = false;
        for (extent, is_free) in &all {
            assert!(extent.blocks > 0, "empty extent");
            assert_eq!(extent.start_block, cursor, "gap or overlap");
            assert!(!(previous_free && *is_free), "adjacent free extents");
            cursor = extent.end_block();
            previous_free = *is_free;
        }
        assert_eq!(
            cursor, header.high_water_blocks,
            "extents do not tile the used area"
        );
        assert!(!previous_free, "a free extent touches the mark");
        let free_blocks: u64 = free.iter().map(|e| e.blocks).sum();
        assert_eq!(header.free_blocks, free_blocks);
        assert_eq!(header.used_blocks, used);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::VectorMemory;
    use proptest::prelude::*;
    use std::collections::HashMap;

    type Store = BlobStore<VectorMemory>;

    const UNLIMITED: u64 = u64::MAX;

    fn fresh() -> (VectorMemory, StableMemories<VectorMemory>, Store) {
        let memory = VectorMemory::default();
        let memories = StableMemories::init(memory.clone());
        let store = BlobStore::init(&memories);
        (memory, memories, store)
    }

    /// Distinct bytes for each blob, so an overlap shows as a mismatch.
    fn pattern(id: BlobId, len: u64) -> Vec<u8> {
        (0..len)
            .map(|i| {
                let mut x = id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(i / 8);
                x ^= x >> 31;
                x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
                x ^= x >> 29;
                (x >> ((i % 8) * 8)) as u8
            })
            .collect()
    }

    /// Writes `bytes` through the sink in `chunk`-sized pieces, last first.
    fn write_reversed(store: &Store, id: BlobId, bytes: &[u8], chunk: usize) {
        let mut sink = store.sink(id).expect("blob exists");
        let pieces: Vec<(usize, &[u8])> = bytes
            .chunks(chunk.max(1))
            .enumerate()
            .map(|(i, c)| (i * chunk.max(1), c))
            .collect();
        for (offset, piece) in pieces.into_iter().rev() {
            sink.write_at(offset as u64, piece).expect("in bounds");
        }
    }

    fn read_all(store: &Store, id: BlobId) -> Vec<u8> {
        let len = store.byte_len(id).expect("blob exists");
        let mut buf = vec![0u8; len as usize];
        store.read(id, 0, &mut buf).expect("in bounds");
        buf
    }

    #[test]
    fn chunks_written_out_of_order_read_back() {
        let (_, _, mut store) = fresh();
        let len = 3 * BLOB_BLOCK_BYTES + 1234;
        let id = store.allocate(len, UNLIMITED).unwrap();
        let bytes = pattern(id, len);
        write_reversed(&store, id, &bytes, 1000);
        assert_eq!(read_all(&store, id), bytes);

        let sink = store.sink(id).unwrap();
        let mut buf = vec![0u8; 5000];
        sink.read_at(2000, &mut buf).unwrap();
        assert_eq!(buf, bytes[2000..7000]);
        assert_eq!(sink.id(), id);
        assert_eq!(sink.byte_len(), len);
        store.check_invariants();
    }

    #[test]
    fn fragmented_blob_crosses_extent_boundaries() {
        let (_, _, mut store) = fresh();
        let ids: Vec<BlobId> = (0..6)
            .map(|_| store.allocate(BLOB_BLOCK_BYTES, UNLIMITED).unwrap())
            .collect();
        for id in &ids {
            write_reversed(&store, *id, &pattern(*id, BLOB_BLOCK_BYTES), 4096);
        }
        for i in [0, 2, 4] {
            store.free(ids[i]).unwrap();
        }
        assert_eq!(store.free_extents().len(), 3);

        let len = 5 * BLOB_BLOCK_BYTES - 17;
        let big = store.allocate(len, UNLIMITED).unwrap();
        let extents = store.extents_of(big);
        // Three one-block holes, then two fresh blocks at the mark.
        assert_eq!(extents.len(), 4);
        assert_eq!(
            extents[3],
            Extent {
                start_block: 6,
                blocks: 2
            }
        );
        assert!(store.free_extents().is_empty());
        assert_eq!(store.stats().high_water_bytes, 8 * BLOB_BLOCK_BYTES);

        let bytes = pattern(big, len);
        // 3000-byte chunks straddle every extent boundary.
        write_reversed(&store, big, &bytes, 3000);
        assert_eq!(read_all(&store, big), bytes);
        let mut piece = vec![0u8; 3 * BLOB_BLOCK_BYTES as usize];
        store.read(big, 100, &mut piece).unwrap();
        assert_eq!(piece, bytes[100..100 + piece.len()]);
        for i in [1, 3, 5] {
            assert_eq!(read_all(&store, ids[i]), pattern(ids[i], BLOB_BLOCK_BYTES));
        }
        store.check_invariants();
    }

    #[test]
    fn best_fit_takes_the_smallest_hole_that_holds() {
        let (_, _, mut store) = fresh();
        // Holes of 3, 5 and 2 blocks separated by live one-block blobs.
        let mut holes = Vec::new();
        for blocks in [3, 5, 2] {
            holes.push(
                store
                    .allocate(blocks * BLOB_BLOCK_BYTES, UNLIMITED)
                    .unwrap(),
            );
            store.allocate(1, UNLIMITED).unwrap();
        }
        for id in holes {
            store.free(id).unwrap();
        }
        let high_water = store.stats().high_water_bytes;
        let two = store.allocate(2 * BLOB_BLOCK_BYTES, UNLIMITED).unwrap();
        assert_eq!(
            store.extents_of(two),
            vec![Extent {
                start_block: 10,
                blocks: 2
            }]
        );
        let four = store.allocate(4 * BLOB_BLOCK_BYTES, UNLIMITED).unwrap();
        // The tail of the 5-block hole at block 4; its first block stays free.
        assert_eq!(
            store.extents_of(four),
            vec![Extent {
                start_block: 5,
                blocks: 4
            }]
        );
        assert_eq!(
            store.free_extents(),
            vec![
                Extent {
                    start_block: 0,
                    blocks: 3
                },
                Extent {
                    start_block: 4,
                    blocks: 1
                }
            ]
        );
        assert_eq!(store.stats().high_water_bytes, high_water);
        store.check_invariants();
    }

    #[test]
    fn churn_does_not_raise_the_high_water_mark() {
        let (_, _, mut store) = fresh();
        let sizes = [1u64, 7000, 40_000, 4096, 12_345, 100_000, 3, 65_536, 0];
        let mut live: Vec<BlobId> = Vec::new();
        for len in sizes {
            let id = store.allocate(len, UNLIMITED).unwrap();
            write_reversed(&store, id, &pattern(id, len), 5000);
            live.push(id);
        }
        let peak = store.stats().high_water_bytes;
        assert_eq!(peak, store.stats().used_bytes);
        for round in 0..300usize {
            // Free one blob and allocate one of the same size: the live total
            // stays the same, and so must the mark.
            let victim = live.remove((round * 7) % live.len());
            let len = store.byte_len(victim).unwrap();
            store.free(victim).unwrap();
            let id = store.allocate(len, UNLIMITED).unwrap();
            write_reversed(&store, id, &pattern(id, len), 3000);
            live.push(id);
            store.check_invariants();
            assert!(store.stats().high_water_bytes <= peak);
        }
        for id in live {
            let len = store.byte_len(id).unwrap();
            assert_eq!(read_all(&store, id), pattern(id, len));
        }
    }

    /// Frees A, B, C (adjacent, 1, 2 and 3 blocks) in the given order.
    fn free_three_adjacent(order: [usize; 3], keep_tail: bool) {
        let (_, _, mut store) = fresh();
        let abc: Vec<BlobId> = (1..=3)
            .map(|blocks| {
                store
                    .allocate(blocks * BLOB_BLOCK_BYTES, UNLIMITED)
                    .unwrap()
            })
            .collect();
        let tail = store.allocate(10, UNLIMITED).unwrap();
        if !keep_tail {
            store.free(tail).unwrap();
        }
        for i in order {
            store.free(abc[i]).unwrap();
            store.check_invariants();
        }
        let stats = store.stats();
        if keep_tail {
            assert_eq!(
                store.free_extents(),
                vec![Extent {
                    start_block: 0,
                    blocks: 6
                }]
            );
            assert_eq!(stats.high_water_bytes, 7 * BLOB_BLOCK_BYTES);
            assert_eq!(stats.free_bytes, 6 * BLOB_BLOCK_BYTES);
            // The whole run is reused by one blob, in one extent.
            let again = store.allocate(6 * BLOB_BLOCK_BYTES, UNLIMITED).unwrap();
            assert_eq!(
                store.extents_of(again),
                vec![Extent {
                    start_block: 0,
                    blocks: 6
                }]
            );
        } else {
            assert!(store.free_extents().is_empty());
            assert_eq!(stats, BlobStoreStats::default());
        }
    }

    #[test]
    fn freeing_adjacent_blobs_coalesces_in_any_order() {
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for order in orders {
            free_three_adjacent(order, true);
            free_three_adjacent(order, false);
        }
    }

    #[test]
    fn capacity_exceeded_changes_nothing() {
        let (_, _, mut store) = fresh();
        let a = store
            .allocate(3 * BLOB_BLOCK_BYTES, 10 * BLOB_BLOCK_BYTES)
            .unwrap();
        let b = store
            .allocate(2 * BLOB_BLOCK_BYTES, 10 * BLOB_BLOCK_BYTES)
            .unwrap();
        store.allocate(1, 10 * BLOB_BLOCK_BYTES).unwrap();
        store.free(a).unwrap();
        let before = (
            store.stats(),
            store.free_extents(),
            store.data.stable_bytes(),
        );

        let err = store
            .allocate(7 * BLOB_BLOCK_BYTES + 1, 10 * BLOB_BLOCK_BYTES)
            .unwrap_err();
        assert_eq!(
            err,
            BlobStoreError::CapacityExceeded {
                requested: 8 * BLOB_BLOCK_BYTES,
                available: 7 * BLOB_BLOCK_BYTES
            }
        );
        assert_eq!(
            (
                store.stats(),
                store.free_extents(),
                store.data.stable_bytes()
            ),
            before
        );
        // The refused request took no id.
        let next = store
            .allocate(7 * BLOB_BLOCK_BYTES, 10 * BLOB_BLOCK_BYTES)
            .unwrap();
        assert_eq!(next, BlobId(b.0 + 2));
        // A capacity below current use still admits zero-length blobs.
        assert!(store.allocate(0, 0).is_ok());
        assert_eq!(
            store.allocate(u64::MAX, u64::MAX),
            Err(BlobStoreError::CapacityExceeded {
                requested: u64::MAX,
                available: u64::MAX - 10 * BLOB_BLOCK_BYTES
            })
        );
        store.check_invariants();
    }

    #[test]
    fn allocation_beyond_the_addressable_space_changes_nothing() {
        let (_, _, mut store) = fresh();
        let a = store.allocate(2 * BLOB_BLOCK_BYTES, UNLIMITED).unwrap();
        store.allocate(1, UNLIMITED).unwrap();
        store.free(a).unwrap();
        let before = (
            store.stats(),
            store.free_extents(),
            store.data.stable_bytes(),
        );
        // More than the memory manager's 256 GiB: the hole would be taken
        // first, so a change made before the refusal would show.
        let err = store.allocate(300 << 30, UNLIMITED).unwrap_err();
        assert_eq!(err, BlobStoreError::OutOfSpace);
        assert_eq!(
            (
                store.stats(),
                store.free_extents(),
                store.data.stable_bytes()
            ),
            before
        );
        store.check_invariants();
    }

    #[test]
    fn zero_length_blob() {
        let (_, _, mut store) = fresh();
        let id = store.allocate(0, UNLIMITED).unwrap();
        assert_eq!(store.byte_len(id), Some(0));
        assert!(store.extents_of(id).is_empty());
        store.read(id, 0, &mut []).unwrap();
        assert_eq!(
            store.read(id, 0, &mut [0u8; 1]),
            Err(BlobStoreError::OutOfBounds {
                offset: 0,
                len: 1,
                byte_len: 0
            })
        );
        let mut sink = store.sink(id).unwrap();
        sink.write_at(0, &[]).unwrap();
        assert_eq!(
            sink.write_at(0, &[1]),
            Err(SinkError::OutOfBounds {
                offset: 0,
                len: 1,
                capacity: 0
            })
        );
        let stats = store.stats();
        assert_eq!((stats.used_bytes, stats.blob_count), (0, 1));
        assert_eq!(store.free(id), Ok(0));
        assert_eq!(store.stats(), BlobStoreStats::default());
        store.check_invariants();
    }

    #[test]
    fn bounds_and_unknown_blobs_are_refused() {
        let (_, _, mut store) = fresh();
        let id = store.allocate(5000, UNLIMITED).unwrap();
        let mut sink = store.sink(id).unwrap();
        assert_eq!(
            sink.write_at(4999, &[1, 2]),
            Err(SinkError::OutOfBounds {
                offset: 4999,
                len: 2,
                capacity: 5000
            })
        );
        assert!(sink.write_at(u64::MAX, &[1]).is_err());
        let mut buf = [0u8; 2];
        assert!(sink.read_at(5000, &mut buf[..1]).is_err());
        sink.write_at(4998, &[7, 8]).unwrap();
        sink.read_at(4998, &mut buf).unwrap();
        assert_eq!(buf, [7, 8]);
        assert!(matches!(
            store.read(id, u64::MAX, &mut buf),
            Err(BlobStoreError::OutOfBounds { .. })
        ));

        assert_eq!(store.free(id), Ok(2 * BLOB_BLOCK_BYTES));
        let gone = BlobStoreError::UnknownBlob(id);
        assert_eq!(store.free(id), Err(gone.clone()));
        assert_eq!(store.read(id, 0, &mut buf), Err(gone.clone()));
        assert_eq!(store.sink(id).err(), Some(gone));
        assert_eq!(store.byte_len(id), None);
        assert_eq!(
            store.free(BlobId(0)),
            Err(BlobStoreError::UnknownBlob(BlobId(0)))
        );
    }

    #[test]
    fn state_survives_reinit() {
        let (memory, memories, mut store) = fresh();
        let ids: Vec<BlobId> = [10_000u64, 1, 70_000, 0, 9000]
            .iter()
            .map(|len| store.allocate(*len, UNLIMITED).unwrap())
            .collect();
        for id in &ids {
            let len = store.byte_len(*id).unwrap();
            write_reversed(&store, *id, &pattern(*id, len), 777);
        }
        store.free(ids[1]).unwrap();
        let stats = store.stats();
        let free = store.free_extents();
        drop(store);
        drop(memories);

        // As after an upgrade: the same stable memory, everything re-opened.
        let memories = StableMemories::init(memory);
        let mut store: Store = BlobStore::init(&memories);
        assert_eq!(store.stats(), stats);
        assert_eq!(store.free_extents(), free);
        for id in [ids[0], ids[2], ids[3], ids[4]] {
            let len = store.byte_len(id).unwrap();
            assert_eq!(read_all(&store, id), pattern(id, len));
        }
        let next = store.allocate(1, UNLIMITED).unwrap();
        assert_eq!(next, BlobId(ids[4].0 + 1));
        // The one-block hole left by ids[1] is reused.
        assert_eq!(
            store.extents_of(next),
            vec![Extent {
                start_block: 3,
                blocks: 1
            }]
        );
        store.check_invariants();
    }

    #[test]
    fn record_and_header_round_trip() {
        let record = BlobRecord {
            byte_len: 123_456_789,
            extents: (0..MAX_EXTENTS_PER_BLOB as u64)
                .map(|i| Extent {
                    start_block: i * 1000 + 7,
                    blocks: i + 1,
                })
                .collect(),
        };
        let bytes = record.to_bytes();
        assert_eq!(bytes.len(), RECORD_HEAD + 16 * MAX_EXTENTS_PER_BLOB);
        assert_eq!(BlobRecord::from_bytes(bytes), record);
        let header = Header {
            next_blob_id: 5,
            high_water_blocks: 6,
            used_blocks: 4,
            free_blocks: 2,
        };
        assert_eq!(Header::from_bytes(header.to_bytes()), header);
        assert_eq!(BlobId::from_bytes(BlobId(42).to_bytes()), BlobId(42));
        assert_eq!(reserved_bytes(0), 0);
        assert_eq!(reserved_bytes(1), BLOB_BLOCK_BYTES);
        assert_eq!(reserved_bytes(BLOB_BLOCK_BYTES), BLOB_BLOCK_BYTES);
        assert_eq!(reserved_bytes(u64::MAX), u64::MAX);
    }

    #[test]
    fn extents_per_blob_are_capped() {
        let (_, _, mut store) = fresh();
        // 40 one-block holes between live one-block blobs.
        let mut holes = Vec::new();
        for _ in 0..40 {
            holes.push(store.allocate(1, UNLIMITED).unwrap());
            store.allocate(1, UNLIMITED).unwrap();
        }
        for id in holes {
            store.free(id).unwrap();
        }
        let len = 50 * BLOB_BLOCK_BYTES;
        let id = store.allocate(len, UNLIMITED).unwrap();
        let extents = store.extents_of(id);
        assert_eq!(extents.len(), MAX_EXTENTS_PER_BLOB);
        assert_eq!(
            extents[MAX_EXTENTS_PER_BLOB - 1],
            Extent {
                start_block: 80,
                blocks: 50 - (MAX_EXTENTS_PER_BLOB as u64 - 1)
            }
        );
        assert_eq!(store.free_extents().len(), 40 - (MAX_EXTENTS_PER_BLOB - 1));
        let bytes = pattern(id, len);
        write_reversed(&store, id, &bytes, 2500);
        assert_eq!(read_all(&store, id), bytes);
        store.check_invariants();
    }

    #[derive(Clone, Debug)]
    enum Op {
        Allocate(u64),
        Free(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => (0u64..3 * BLOB_BLOCK_BYTES).prop_map(Op::Allocate),
            2 => (0u64..24 * BLOB_BLOCK_BYTES).prop_map(Op::Allocate),
            3 => any::<usize>().prop_map(Op::Free),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Random churn against a model of the live blobs' bytes.
        #[test]
        fn churn_matches_model(ops in prop::collection::vec(op(), 1..120), chunk in 500usize..6000) {
            let (_, _, mut store) = fresh();
            let mut model: HashMap<BlobId, Vec<u8>> = HashMap::new();
            let mut live: Vec<BlobId> = Vec::new();
            let mut peak_live_blocks = 0u64;
            // The high-water bound below holds while every allocation that
            // raises the mark finds fewer than MAX_EXTENTS_PER_BLOB free
            // extents (then it takes them all, leaving no free space).
            let mut bound_applies = true;
            for op in ops {
                match op {
                    Op::Allocate(len) => {
                        let free_count = store.free_by_start.len();
                        let before = store.stats();
                        let id = store.allocate(len, UNLIMITED).unwrap();
                        let after = store.stats();
                        prop_assert_eq!(after.used_bytes, before.used_bytes + reserved_bytes(len));
                        if after.high_water_bytes > before.high_water_bytes {
                            if free_count < MAX_EXTENTS_PER_BLOB as u64 {
                                prop_assert_eq!(after.free_bytes, 0);
                            } else {
                                bound_applies = false;
                            }
                        }
                        let bytes = pattern(id, len);
                        write_reversed(&store, id, &bytes, chunk);
                        model.insert(id, bytes);
                        live.push(id);
                    }
                    Op::Free(pick) => {
                        if live.is_empty() {
                            continue;
                        }
                        let id = live.swap_remove(pick % live.len());
                        let bytes = model.remove(&id).unwrap();
                        prop_assert_eq!(store.free(id), Ok(reserved_bytes(bytes.len() as u64)));
                    }
                }
                store.check_invariants();
                let live_blocks: u64 = model.values().map(|b| blocks_for(b.len() as u64)).sum();
                peak_live_blocks = peak_live_blocks.max(live_blocks);
                let stats = store.stats();
                prop_assert_eq!(stats.used_bytes, live_blocks * BLOB_BLOCK_BYTES);
                prop_assert_eq!(stats.used_bytes + stats.free_bytes, stats.high_water_bytes);
                prop_assert_eq!(stats.blob_count, model.len() as u64);
                if bound_applies {
                    prop_assert!(stats.high_water_bytes <= peak_live_blocks * BLOB_BLOCK_BYTES);
                }
                for (id, bytes) in &model {
                    prop_assert_eq!(&read_all(&store, *id), bytes);
                }
            }
        }
    }
}
