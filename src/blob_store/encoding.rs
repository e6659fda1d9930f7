//! The blob store's records as stored: hand-made fixed layouts with a
//! version byte, and the keys of the by-size free list.

use super::*;

/// Where one blob's bytes are. Stream offset 0 is at the start of the first
/// extent; each extent continues where the previous one ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BlobRecord {
    pub(super) byte_len: u64,
    pub(super) extents: Vec<Extent>,
}

/// Leading byte of an encoded record, so the layout can change across
/// upgrades without misreading old records.
const RECORD_VERSION: u8 = 1;
pub(super) const RECORD_HEAD: usize = 1 + 8 + 1;

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
pub(super) struct Header {
    pub(super) next_blob_id: u64,
    /// Blocks `[0, high_water_blocks)` have been handed out at some point;
    /// everything above is untouched space.
    pub(super) high_water_blocks: u64,
    pub(super) used_blocks: u64,
    pub(super) free_blocks: u64,
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
pub(super) fn size_key(extent: Extent) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&extent.blocks.to_be_bytes());
    key[8..].copy_from_slice(&extent.start_block.to_be_bytes());
    key
}

pub(super) fn extent_of_size_key(key: &[u8; 16]) -> Extent {
    Extent {
        blocks: read_u64(key, 0),
        start_block: read_u64(key, 8),
    }
}
