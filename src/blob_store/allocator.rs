//! Extents handed out and taken back: best fit from the free lists, else
//! the largest free extents plus fresh blocks at the high-water mark;
//! freed extents merge with their free neighbours or lower the mark.

use super::encoding::{extent_of_size_key, size_key};
use super::*;

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

impl<M: Memory + Clone> BlobStore<M> {
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
        self.placements.start(id);
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
        self.placements.forget(id);
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
}
