//! The blob store's bytes, with stable memory taken only where bytes are
//! written.
//!
//! The blob store places each blob in a *logical* address space (extents of
//! 4 KiB blocks, reserved whole when an upload begins). Stable memory is
//! dense, so writing a far chunk of a large blob straight to its logical
//! address would grow stable memory by everything before it. Instead each
//! logical block is given a physical block when bytes are first written to
//! it, and a flat table (4 bytes per logical block) maps one to the other:
//! stable memory grows with the blocks written plus the table (1/1024 of the
//! logical span), whatever the order of the chunks. Physical blocks are
//! never unmapped: freed logical space is reused by later blobs (the blob
//! store hands it out before growing), and so are its blocks.
//!
//! Blocks below `legacy_blocks` are the bytes a canister wrote before this
//! table existed (`BLOB_DATA`, dense): they stay where they are, mapped to
//! themselves, so opening an older canister moves nothing.

use crate::stable_memory::{Headroom, Vm};
use crate::storable::read_u64;
use ic_stable_structures::Memory;

// The unit of mapping is the blob store's block.
use super::BLOB_BLOCK_BYTES;
const WASM_PAGE: u64 = 65_536;
/// Table header: next physical block, legacy blocks.
const HEADER_BYTES: u64 = 16;
const ENTRY_BYTES: u64 = 4;

/// Stable memory could not grow to hold the bytes; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfSpace;

/// Logical blob-store bytes over lazily mapped physical blocks.
pub struct SparseData<M: Memory> {
    legacy: Vm<M>,
    table: Vm<M>,
    blocks: Vm<M>,
    headroom: Headroom<M>,
    legacy_blocks: u64,
}

/// Grows `memory` to hold `end` bytes, with room checked first.
fn hold<M: Memory>(memory: &Vm<M>, headroom: &Headroom<M>, end: u64) -> Result<(), OutOfSpace> {
    let pages = end.div_ceil(WASM_PAGE);
    let have = memory.size();
    if pages > have && (!headroom.ensure_for(pages - have) || memory.grow(pages - have) < 0) {
        return Err(OutOfSpace);
    }
    Ok(())
}

impl<M: Memory + Clone> SparseData<M> {
    /// Opens the mapping, or lays it out; a canister whose blobs were
    /// written densely keeps them as its legacy blocks.
    pub fn init(legacy: Vm<M>, table: Vm<M>, blocks: Vm<M>, headroom: Headroom<M>) -> Self {
        let legacy_blocks = if table.size() == 0 {
            let legacy_blocks = legacy.size() * (WASM_PAGE / BLOB_BLOCK_BYTES);
            if table.grow(1) < 0 {
                panic!("bug: no stable memory for the block table");
            }
            let mut header = [0u8; HEADER_BYTES as usize];
            header[8..].copy_from_slice(&legacy_blocks.to_be_bytes());
            table.write(0, &header);
            legacy_blocks
        } else {
            let mut header = [0u8; HEADER_BYTES as usize];
            table.read(0, &mut header);
            read_u64(&header, 8)
        };
        Self {
            legacy,
            table,
            blocks,
            headroom,
            legacy_blocks,
        }
    }
}

impl<M: Memory> SparseData<M> {
    fn next_block(&self) -> u64 {
        let mut word = [0u8; 8];
        self.table.read(0, &mut word);
        u64::from_be_bytes(word)
    }

    /// Physical blocks mapped so far (stable memory the blob bytes take
    /// beside the legacy ones).
    pub fn mapped_blocks(&self) -> u64 {
        self.next_block()
    }

    /// Bytes of stable memory behind the blob store: legacy, table and
    /// mapped blocks (in 64 KiB pages).
    #[cfg(test)]
    pub fn stable_bytes(&self) -> u64 {
        (self.legacy.size() + self.table.size() + self.blocks.size()) * WASM_PAGE
    }

    /// Table entries (physical block + 1, 0: unmapped) of logical blocks
    /// `[first, first + n)`, all at or above the legacy blocks.
    fn entries(&self, first: u64, n: usize) -> Vec<u32> {
        let mut bytes = vec![0u8; n * ENTRY_BYTES as usize];
        let start = HEADER_BYTES + (first - self.legacy_blocks) * ENTRY_BYTES;
        let size = self.table.size() * WASM_PAGE;
        if start < size {
            let held = ((size - start) as usize).min(bytes.len());
            self.table.read(start, &mut bytes[..held]);
        }
        bytes
            .chunks_exact(ENTRY_BYTES as usize)
            .map(|e| u32::from_be_bytes([e[0], e[1], e[2], e[3]]))
            .collect()
    }

    /// Calls `piece(memory, address, at, len)` for each run of the logical
    /// range `[offset, offset + len)` (mapped part; `None` where unmapped),
    /// where `at` indexes a buffer starting at `offset`.
    fn for_each_run(
        &self,
        offset: u64,
        len: u64,
        entries: &[u32],
        mut piece: impl FnMut(Option<(&Vm<M>, u64)>, usize, usize),
    ) {
        let end = offset + len;
        let mut pos = offset;
        if pos < self.legacy_blocks * BLOB_BLOCK_BYTES {
            let n = end.min(self.legacy_blocks * BLOB_BLOCK_BYTES) - pos;
            piece(Some((&self.legacy, pos)), 0, n as usize);
            pos += n;
        }
        if pos >= end {
            return;
        }
        let first = pos / BLOB_BLOCK_BYTES;
        let mut i = 0;
        while pos < end {
            let entry = entries[i];
            let block_end = (first + i as u64 + 1) * BLOB_BLOCK_BYTES;
            // Extend over following blocks mapped right after this one.
            let mut run_end = block_end.min(end);
            let mut j = i + 1;
            while run_end < end && entry != 0 && entries[j] == entry + (j - i) as u32 {
                run_end = ((first + j as u64 + 1) * BLOB_BLOCK_BYTES).min(end);
                j += 1;
            }
            if entry == 0 {
                // An unmapped block is one block long.
                j = i + 1;
            }
            let at = (pos - offset) as usize;
            let n = (run_end - pos) as usize;
            let target = (entry != 0).then(|| {
                (
                    &self.blocks,
                    u64::from(entry - 1) * BLOB_BLOCK_BYTES + pos % BLOB_BLOCK_BYTES,
                )
            });
            piece(target, at, n);
            pos = run_end;
            i = j;
        }
    }

    /// The mapped part of `[offset, offset + len)`: first block and count.
    fn mapped_range(&self, offset: u64, len: u64) -> Option<(u64, usize)> {
        let start = offset.max(self.legacy_blocks * BLOB_BLOCK_BYTES);
        let end = offset + len;
        (start < end).then(|| {
            let first = start / BLOB_BLOCK_BYTES;
            (first, ((end - 1) / BLOB_BLOCK_BYTES - first + 1) as usize)
        })
    }

    /// Makes sure that writing `len` bytes in `pieces` pieces, none ending
    /// past logical byte `end`, will find the stable memory it needs (the
    /// table to cover `end`, a block per 4 KiB and two more per piece).
    pub fn room_for(&self, end: u64, len: u64, pieces: u64) -> Result<(), OutOfSpace> {
        let pages = |bytes: u64| bytes.div_ceil(WASM_PAGE);
        let mut grow = 0;
        if end > self.legacy_blocks * BLOB_BLOCK_BYTES {
            let table_end =
                HEADER_BYTES + (end.div_ceil(BLOB_BLOCK_BYTES) - self.legacy_blocks) * ENTRY_BYTES;
            grow += pages(table_end).saturating_sub(self.table.size());
            let blocks_end =
                (self.next_block() + len / BLOB_BLOCK_BYTES + 2 * pieces) * BLOB_BLOCK_BYTES;
            grow += pages(blocks_end).saturating_sub(self.blocks.size());
        }
        if grow == 0 || self.headroom.ensure_for(grow) {
            Ok(())
        } else {
            Err(OutOfSpace)
        }
    }

    /// Fills `buf` with the bytes at logical `offset` (zeros where nothing
    /// was ever written).
    pub fn read(&self, offset: u64, buf: &mut [u8]) {
        let entries = match self.mapped_range(offset, buf.len() as u64) {
            Some((first, n)) => self.entries(first, n),
            None => Vec::new(),
        };
        self.for_each_run(
            offset,
            buf.len() as u64,
            &entries,
            |target, at, n| match target {
                Some((memory, address)) => memory.read(address, &mut buf[at..at + n]),
                None => buf[at..at + n].fill(0),
            },
        );
    }

    /// Writes `bytes` at logical `offset`, mapping the blocks they first
    /// touch. Every memory it needs is grown before anything is written, so
    /// `OutOfSpace` leaves everything as it was.
    pub fn write(&self, offset: u64, bytes: &[u8]) -> Result<(), OutOfSpace> {
        let len = bytes.len() as u64;
        if len == 0 {
            return Ok(());
        }
        let legacy_end = (offset + len).min(self.legacy_blocks * BLOB_BLOCK_BYTES);
        if offset < legacy_end {
            // Legacy blocks lie within the legacy memory's size.
            debug_assert!(legacy_end <= self.legacy.size() * WASM_PAGE);
        }
        let mut entries = Vec::new();
        if let Some((first, n)) = self.mapped_range(offset, len) {
            entries = self.entries(first, n);
            let fresh = entries.iter().filter(|e| **e == 0).count() as u64;
            if fresh > 0 {
                let next = self.next_block();
                let table_end =
                    HEADER_BYTES + (first + n as u64 - self.legacy_blocks) * ENTRY_BYTES;
                hold(&self.table, &self.headroom, table_end)?;
                hold(
                    &self.blocks,
                    &self.headroom,
                    (next + fresh) * BLOB_BLOCK_BYTES,
                )?;
                let mut assigned = next;
                for entry in entries.iter_mut().filter(|e| **e == 0) {
                    assigned += 1;
                    *entry = u32::try_from(assigned).expect("bug: more than 2^32 blocks mapped");
                }
                let encoded: Vec<u8> = entries.iter().flat_map(|e| e.to_be_bytes()).collect();
                self.table.write(
                    HEADER_BYTES + (first - self.legacy_blocks) * ENTRY_BYTES,
                    &encoded,
                );
                self.table.write(0, &assigned.to_be_bytes());
            }
        }
        self.for_each_run(offset, len, &entries, |target, at, n| {
            let (memory, address) = target.expect("bug: a written block is unmapped");
            memory.write(address, &bytes[at..at + n]);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stable_memory::{StableMemories, BLOB_BLOCKS, BLOB_BLOCK_TABLE, BLOB_DATA};
    use ic_stable_structures::VectorMemory;

    fn open(memories: &StableMemories<VectorMemory>) -> SparseData<VectorMemory> {
        SparseData::init(
            memories.get(BLOB_DATA),
            memories.get(BLOB_BLOCK_TABLE),
            memories.get(BLOB_BLOCKS),
            memories.headroom(),
        )
    }

    fn fresh() -> (VectorMemory, SparseData<VectorMemory>) {
        let memory = VectorMemory::default();
        let memories = StableMemories::init(memory.clone());
        (memory, open(&memories))
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn a_far_write_maps_only_its_blocks() {
        let (_, data) = fresh();
        let far = 8u64 << 30;
        let bytes = pattern(10_000, 1);
        data.write(far - 3, &bytes).unwrap();
        // 10 000 bytes across a block boundary: 4 blocks at most.
        assert!(data.mapped_blocks() <= 4);
        let mut back = vec![0u8; bytes.len()];
        data.read(far - 3, &mut back);
        assert_eq!(back, bytes);
        // Blocks are mapped once: writing the same range again adds none.
        let mapped = data.mapped_blocks();
        data.write(far, &pattern(5_000, 2)).unwrap();
        assert_eq!(data.mapped_blocks(), mapped);
        // Never written: zeros.
        let mut hole = vec![7u8; 100];
        data.read(1 << 20, &mut hole);
        assert_eq!(hole, vec![0u8; 100]);
        // The table covers 8 GiB of logical space with 8 MiB.
        assert!(data.stable_bytes() < 9 << 20);
    }

    #[test]
    fn writes_in_any_order_read_back_across_runs() {
        let (_, data) = fresh();
        let total = 20 * BLOB_BLOCK_BYTES as usize + 1_234;
        let bytes = pattern(total, 3);
        let chunk = 3_001;
        let mut order: Vec<usize> = (0..total.div_ceil(chunk)).collect();
        order.reverse();
        order.swap(1, 4);
        for i in order {
            let start = i * chunk;
            let end = (start + chunk).min(total);
            data.write(start as u64 + 77, &bytes[start..end]).unwrap();
        }
        let mut back = vec![0u8; total];
        data.read(77, &mut back);
        assert_eq!(back, bytes);
        assert_eq!(
            data.mapped_blocks(),
            (total as u64 + 77).div_ceil(BLOB_BLOCK_BYTES)
        );
        for (offset, len) in [(77, 1), (4_000, 200), (8_190, 9_000), (77, total)] {
            let mut part = vec![0u8; len];
            data.read(offset as u64, &mut part);
            assert_eq!(part, bytes[offset - 77..offset - 77 + len]);
        }
    }

    #[test]
    fn dense_bytes_of_an_older_canister_stay_in_place() {
        let memory = VectorMemory::default();
        let memories = StableMemories::init(memory.clone());
        let legacy = memories.get(BLOB_DATA);
        legacy.grow(2);
        let old = pattern(100_000, 4);
        legacy.write(10, &old);
        let data = open(&memories);
        assert_eq!(data.legacy_blocks, 2 * WASM_PAGE / BLOB_BLOCK_BYTES);
        let mut back = vec![0u8; old.len()];
        data.read(10, &mut back);
        assert_eq!(back, old);
        // A write across the legacy end: the part above is mapped.
        let new = pattern(50_000, 5);
        data.write(2 * WASM_PAGE - 1_000, &new).unwrap();
        let mut back = vec![0u8; new.len()];
        data.read(2 * WASM_PAGE - 1_000, &mut back);
        assert_eq!(back, new);
        assert_eq!(
            data.mapped_blocks(),
            (new.len() as u64 - 1_000).div_ceil(BLOB_BLOCK_BYTES)
        );
        // Reopened (an upgrade): the same mapping.
        let again = open(&StableMemories::init(memory));
        let mut back = vec![0u8; new.len()];
        again.read(2 * WASM_PAGE - 1_000, &mut back);
        assert_eq!(back, new);
        assert_eq!(again.mapped_blocks(), data.mapped_blocks());
    }
}
