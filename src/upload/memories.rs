//! Committed memories: records, and the per-capsule index that lists them.

use super::types::{CapsuleId, MemoryItemId, MemoryRecord};
use crate::candid_storable;
use crate::stable_memory::{self, StableMemories, Vm};
use ic_stable_structures::{Memory, StableBTreeMap};

candid_storable!(MemoryRecord);

fn capsule_key(capsule_id: CapsuleId, memory_id: MemoryItemId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&capsule_id.0.to_be_bytes());
    key[8..].copy_from_slice(&memory_id.0.to_be_bytes());
    key
}

/// The committed memories of all capsules.
pub struct MemoryStore<M: Memory> {
    records: StableBTreeMap<MemoryItemId, MemoryRecord, Vm<M>>,
    by_capsule: StableBTreeMap<[u8; 16], (), Vm<M>>,
}

impl<M: Memory + Clone> MemoryStore<M> {
    pub fn init(memories: &StableMemories<M>) -> Self {
        Self {
            records: StableBTreeMap::init(memories.get(stable_memory::MEMORY_RECORDS)),
            by_capsule: StableBTreeMap::init(memories.get(stable_memory::CAPSULE_MEMORIES)),
        }
    }
}

impl<M: Memory> MemoryStore<M> {
    pub fn insert(&mut self, record: MemoryRecord) {
        self.by_capsule
            .insert(capsule_key(record.capsule_id, record.memory_id), ());
        self.records.insert(record.memory_id, record);
    }

    pub fn get(&self, memory_id: MemoryItemId) -> Option<MemoryRecord> {
        self.records.get(&memory_id)
    }

    pub fn remove(&mut self, memory_id: MemoryItemId) -> Option<MemoryRecord> {
        let record = self.records.remove(&memory_id)?;
        self.by_capsule
            .remove(&capsule_key(record.capsule_id, memory_id));
        Some(record)
    }

    pub fn len(&self) -> u64 {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A capsule's memories after `after`, at most `limit`, and whether more
    /// follow.
    pub fn in_capsule(
        &self,
        capsule_id: CapsuleId,
        after: Option<MemoryItemId>,
        limit: usize,
    ) -> (Vec<MemoryRecord>, bool) {
        let start = after.map_or(0, |id| id.0.saturating_add(1));
        let mut keys = self.by_capsule.keys_range(
            capsule_key(capsule_id, MemoryItemId(start))
                ..=capsule_key(capsule_id, MemoryItemId(u64::MAX)),
        );
        let page: Vec<MemoryRecord> = keys
            .by_ref()
            .take(limit)
            .filter_map(|key| {
                self.records
                    .get(&MemoryItemId(crate::storable::read_u64(&key, 8)))
            })
            .collect();
        (page, keys.next().is_some())
    }
}
