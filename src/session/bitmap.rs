//! Which chunks of each session have arrived: one bit a chunk, stored in
//! blocks of 4096 chunks so that a chunk write touches 512 bytes, whatever
//! the session's size.

use super::types::SessionId;
use crate::storable::{read_u32, read_u64};
use candid::CandidType;
use ic_stable_structures::{Memory, StableBTreeMap};
use serde::Deserialize;

/// Chunks covered by one stored block.
pub const CHUNKS_PER_BLOCK: u32 = 4096;
/// Bytes of one stored bitmap block (one bit per chunk).
const BITMAP_BLOCK_BYTES: usize = (CHUNKS_PER_BLOCK / 8) as usize;

type Block = [u8; BITMAP_BLOCK_BYTES];

/// (session id, block number), big-endian so a session's blocks sort
/// together and in order.
fn block_key(sid: SessionId, block: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&sid.0.to_be_bytes());
    key[8..].copy_from_slice(&block.to_be_bytes());
    key
}

// One type for the session service and the upload API's Candid replies.
/// Chunks `[start, end)`.
#[derive(CandidType, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    pub start: u32,
    pub end: u32,
}

/// Received-chunk bitmaps of all sessions.
pub struct ChunkBitmap<M: Memory> {
    blocks: StableBTreeMap<[u8; 12], Block, M>,
}

impl<M: Memory> ChunkBitmap<M> {
    pub fn init(memory: M) -> Self {
        Self {
            blocks: StableBTreeMap::init(memory),
        }
    }

    fn block(&self, sid: SessionId, block: u32) -> Option<Block> {
        self.blocks.get(&block_key(sid, block))
    }

    pub fn is_set(&self, sid: SessionId, index: u32) -> bool {
        let bit = index % CHUNKS_PER_BLOCK;
        self.block(sid, index / CHUNKS_PER_BLOCK)
            .is_some_and(|b| b[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
    }

    pub fn set(&mut self, sid: SessionId, index: u32) {
        let block_no = index / CHUNKS_PER_BLOCK;
        let bit = index % CHUNKS_PER_BLOCK;
        let mut block = self.block(sid, block_no).unwrap_or([0; BITMAP_BLOCK_BYTES]);
        block[(bit / 8) as usize] |= 1 << (bit % 8);
        self.blocks.insert(block_key(sid, block_no), block);
    }

    /// Runs of chunks in `[from, chunk_count)` whose bit is clear, at most
    /// `max_ranges` of them, and where to continue if more may follow.
    pub fn missing_ranges(
        &self,
        sid: SessionId,
        chunk_count: u32,
        from: u32,
        max_ranges: usize,
    ) -> (Vec<ChunkRange>, Option<u32>) {
        let mut ranges: Vec<ChunkRange> = Vec::new();
        let mut open: Option<u32> = None;
        let mut index = from;
        while index < chunk_count {
            let block_no = index / CHUNKS_PER_BLOCK;
            let block = self.block(sid, block_no);
            let block_end = ((u64::from(block_no) + 1) * u64::from(CHUNKS_PER_BLOCK))
                .min(u64::from(chunk_count)) as u32;
            while index < block_end {
                let bit = index % CHUNKS_PER_BLOCK;
                // 64 bits at once where they change nothing (all received
                // outside a gap, or all missing inside one), so a status
                // costs about the same at any chunk count.
                if bit.is_multiple_of(64) && index + 64 <= block_end {
                    let at = (bit / 8) as usize;
                    let word = block.as_ref().map_or(0, |b| {
                        u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
                    });
                    if (word == u64::MAX && open.is_none()) || (word == 0 && open.is_some()) {
                        index += 64;
                        continue;
                    }
                }
                let received = block
                    .as_ref()
                    .is_some_and(|b| b[(bit / 8) as usize] & (1 << (bit % 8)) != 0);
                match (received, open) {
                    (false, None) => {
                        if ranges.len() == max_ranges {
                            return (ranges, Some(index));
                        }
                        open = Some(index);
                    }
                    (true, Some(start)) => {
                        ranges.push(ChunkRange { start, end: index });
                        open = None;
                    }
                    _ => {}
                }
                index += 1;
            }
        }
        if let Some(start) = open {
            ranges.push(ChunkRange {
                start,
                end: chunk_count,
            });
        }
        (ranges, None)
    }

    /// Forgets a session's bits: at most `ceil(chunk_count / 4096)` removals.
    pub fn clear(&mut self, sid: SessionId, chunk_count: u32) {
        for block_no in 0..chunk_count.div_ceil(CHUNKS_PER_BLOCK) {
            self.blocks.remove(&block_key(sid, block_no));
        }
    }

    /// Number of stored blocks (for tests of cleanup).
    pub fn stored_blocks(&self) -> u64 {
        self.blocks.len()
    }
}

/// Decodes a block key; used by the layout test.
pub fn decode_block_key(key: &[u8; 12]) -> (SessionId, u32) {
    (SessionId(read_u64(key, 0)), read_u32(key, 8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::VectorMemory;

    fn bitmap() -> ChunkBitmap<VectorMemory> {
        ChunkBitmap::init(VectorMemory::default())
    }

    #[test]
    fn key_layout_is_big_endian_session_then_block() {
        let key = block_key(SessionId(0x0102), 7);
        assert_eq!(key, [0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 7]);
        assert_eq!(decode_block_key(&key), (SessionId(0x0102), 7));
    }

    #[test]
    fn missing_ranges_page_through_gaps() {
        let mut map = bitmap();
        let sid = SessionId(3);
        for index in [0, 1, 5, 4097, 9000] {
            map.set(sid, index);
        }
        assert!(map.is_set(sid, 4097) && !map.is_set(sid, 4096));
        let (first, next) = map.missing_ranges(sid, 9001, 0, 2);
        assert_eq!(
            first,
            vec![
                ChunkRange { start: 2, end: 5 },
                ChunkRange {
                    start: 6,
                    end: 4097
                }
            ]
        );
        assert_eq!(next, Some(4098));
        let (rest, next) = map.missing_ranges(sid, 9001, 4098, 10);
        assert_eq!(
            rest,
            vec![ChunkRange {
                start: 4098,
                end: 9000
            }]
        );
        assert_eq!(next, None);
        map.clear(sid, 9001);
        assert_eq!(map.stored_blocks(), 0);
    }

    proptest::proptest! {
        /// Paging through the missing ranges (which skips whole words)
        /// gives the runs of clear bits, one bit at a time.
        #[test]
        fn missing_ranges_match_a_bit_by_bit_scan(
            runs in proptest::collection::vec((1u32..300, proptest::bool::ANY), 1..40),
            max_ranges in 1usize..5,
        ) {
            let mut map = bitmap();
            let sid = SessionId(1);
            let mut received = Vec::new();
            for (len, set) in runs {
                for _ in 0..len {
                    if set {
                        map.set(sid, received.len() as u32);
                    }
                    received.push(set);
                }
            }
            let count = received.len() as u32;
            let mut expected = Vec::new();
            let mut index = 0;
            while index < count {
                if received[index as usize] {
                    index += 1;
                    continue;
                }
                let start = index;
                while index < count && !received[index as usize] {
                    index += 1;
                }
                expected.push(ChunkRange { start, end: index });
            }
            let mut found = Vec::new();
            let mut from = Some(0);
            while let Some(at) = from {
                let (page, next) = map.missing_ranges(sid, count, at, max_ranges);
                proptest::prop_assert!(page.len() <= max_ranges);
                found.extend(page);
                from = next;
            }
            proptest::prop_assert_eq!(found, expected);
        }
    }
}
