//! Committed memories: records, and the per-capsule index that lists them.

use crate::candid_storable;
use crate::stable_memory::Vm;
use crate::types::{CapsuleId, MemoryItemId, MemoryRecord};
use candid::{CandidType, Principal};
use ic_stable_structures::{Memory, StableBTreeMap};
use serde::Deserialize;
use serde_bytes::ByteBuf;

/// A memory record as stored: `MemoryRecord` without its thumbnail, which
/// lives in the thumbnail store. Its Candid encoding is the one records
/// have always had (a test pins it), so records written before thumbnails
/// are read as they are.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
struct StoredMemory {
    memory_id: MemoryItemId,
    capsule_id: CapsuleId,
    name: String,
    mime_type: String,
    byte_len: u64,
    sha256: ByteBuf,
    blob_id: crate::blob_store::BlobId,
    uploaded_by: Principal,
    created_at: u64,
}

candid_storable!(StoredMemory);

impl From<MemoryRecord> for StoredMemory {
    fn from(record: MemoryRecord) -> Self {
        let MemoryRecord {
            memory_id,
            capsule_id,
            name,
            mime_type,
            byte_len,
            sha256,
            blob_id,
            uploaded_by,
            created_at,
            thumbnail: _,
        } = record;
        Self {
            memory_id,
            capsule_id,
            name,
            mime_type,
            byte_len,
            sha256,
            blob_id,
            uploaded_by,
            created_at,
        }
    }
}

impl From<StoredMemory> for MemoryRecord {
    fn from(stored: StoredMemory) -> Self {
        let StoredMemory {
            memory_id,
            capsule_id,
            name,
            mime_type,
            byte_len,
            sha256,
            blob_id,
            uploaded_by,
            created_at,
        } = stored;
        Self {
            memory_id,
            capsule_id,
            name,
            mime_type,
            byte_len,
            sha256,
            blob_id,
            uploaded_by,
            created_at,
            thumbnail: None,
        }
    }
}

fn capsule_key(capsule_id: CapsuleId, memory_id: MemoryItemId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&capsule_id.0.to_be_bytes());
    key[8..].copy_from_slice(&memory_id.0.to_be_bytes());
    key
}

/// The committed memories of all capsules. Records come back with
/// `thumbnail: None`: thumbnails are the thumbnail store's.
pub struct MemoryStore<M: Memory> {
    records: StableBTreeMap<MemoryItemId, StoredMemory, Vm<M>>,
    by_capsule: StableBTreeMap<[u8; 16], (), Vm<M>>,
}

impl<M: Memory + Clone> MemoryStore<M> {
    pub fn init(records: Vm<M>, by_capsule: Vm<M>) -> Self {
        Self {
            records: StableBTreeMap::init(records),
            by_capsule: StableBTreeMap::init(by_capsule),
        }
    }
}

impl<M: Memory> MemoryStore<M> {
    /// Stores `record` (its thumbnail, if any, is not stored here).
    pub fn insert(&mut self, record: MemoryRecord) {
        self.by_capsule
            .insert(capsule_key(record.capsule_id, record.memory_id), ());
        self.records.insert(record.memory_id, record.into());
    }

    pub fn get(&self, memory_id: MemoryItemId) -> Option<MemoryRecord> {
        self.records.get(&memory_id).map(MemoryRecord::from)
    }

    pub fn remove(&mut self, memory_id: MemoryItemId) -> Option<MemoryRecord> {
        let record = self.records.remove(&memory_id)?;
        self.by_capsule
            .remove(&capsule_key(record.capsule_id, memory_id));
        Some(record.into())
    }

    pub fn len(&self) -> u64 {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The largest memory id in use.
    pub fn last_id(&self) -> Option<MemoryItemId> {
        self.records.last_key_value().map(|(id, _)| id)
    }

    /// The ids of a capsule's memories after `after`, in order.
    pub fn ids_in_capsule(
        &self,
        capsule_id: CapsuleId,
        after: Option<MemoryItemId>,
    ) -> impl Iterator<Item = MemoryItemId> + '_ {
        let start = after.map_or(Some(0), |id| id.0.checked_add(1));
        start
            .map(|start| {
                self.by_capsule.keys_range(
                    capsule_key(capsule_id, MemoryItemId(start))
                        ..=capsule_key(capsule_id, MemoryItemId(u64::MAX)),
                )
            })
            .into_iter()
            .flatten()
            .map(|key| MemoryItemId(crate::storable::read_u64(&key, 8)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::BlobId;
    use ic_stable_structures::Storable;

    /// A memory record as every layout so far stored it: the encoding of
    /// `MemoryRecord` before it had a thumbnail, taken from that build.
    const STORED_MEMORY_HEX: &str = "4449444c026c09e7c8eae70101ed8eb9c40378bdd9b0a20478cbe4fdc70471dea7c3a70578e5a88eea0571aaacd9d0067899fb8adf0678d6d6fec00f686d7b010020090909090909090909090909090909090909090909090909090909090909090907000000000000002800000000000000056e2e6a70670a000000000000000a696d6167652f6a706567e8030000000000000500000000000000011d0101010101010101010101010101010101010101010101010101010101";

    fn sample() -> MemoryRecord {
        MemoryRecord {
            memory_id: MemoryItemId(5),
            capsule_id: CapsuleId(7),
            name: "n.jpg".into(),
            mime_type: "image/jpeg".into(),
            byte_len: 10,
            sha256: ByteBuf::from(vec![9; 32]),
            blob_id: BlobId(40),
            uploaded_by: Principal::from_slice(&[1; 29]),
            created_at: 1_000,
            thumbnail: None,
        }
    }

    #[test]
    fn stored_memory_layout_is_pinned() {
        let stored: Vec<u8> = (0..STORED_MEMORY_HEX.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&STORED_MEMORY_HEX[i..i + 2], 16).unwrap())
            .collect();
        let encoded: String = StoredMemory::from(sample())
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            MemoryRecord::from(StoredMemory::from_bytes(std::borrow::Cow::Owned(stored))),
            sample()
        );
        assert_eq!(
            encoded, STORED_MEMORY_HEX,
            "the stored layout changed: keep old records decodable"
        );
    }
}
