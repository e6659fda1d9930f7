//! Layout checks for the tests and the fuzzer.

use super::encoding::extent_of_size_key;
use super::*;

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
        self.check_placements();
    }

    /// Panics unless each placed blob's pieces are disjoint in its stream
    /// and tile its space `[0, tail)` exactly, within its length, and only
    /// live blobs or blobs queued to be forgotten have entries.
    fn check_placements(&self) {
        let placements = &self.placements;
        for (blob, forgotten) in placements.blobs_with_entries() {
            let id = BlobId(blob);
            let Some(record) = self.blobs.get(&id) else {
                assert!(forgotten, "{id} is gone but its pieces are not forgotten");
                continue;
            };
            let Some(tail) = placements.tail(id) else {
                panic!("{id} has pieces but no tail");
            };
            assert!(tail <= record.byte_len, "{id} placed past its length");
            let pieces = placements.pieces_of(id);
            let mut stream_end = 0;
            for &(offset, _, len) in &pieces {
                assert!(len > 0 && offset >= stream_end, "{id}: pieces overlap");
                stream_end = offset + len;
            }
            assert!(stream_end <= record.byte_len);
            let mut by_place: Vec<(u64, u64)> = pieces.iter().map(|&(_, p, l)| (p, l)).collect();
            by_place.sort();
            let mut cursor = 0;
            for (place, len) in by_place {
                assert_eq!(place, cursor, "{id}: its space has a gap or overlap");
                cursor += len;
            }
            assert_eq!(cursor, tail, "{id}: pieces do not fill its space");
        }
    }
}
