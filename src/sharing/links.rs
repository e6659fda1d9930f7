//! Share links: capability URLs that serve one memory over HTTP, and the
//! certification tree that makes every response they give verifiable.
//!
//! A link's URL is `/s/<memory id>/<link id>/<secret>`. Responses are
//! certified once per shared memory, under the scope `/s/<memory id>`, and
//! serve every link of that memory: a second link costs no certification,
//! and the tree holds `entries_for(len)` entries per shared memory
//! whatever its number of links. The canister serves bytes only to a live
//! link's exact key; certification only proves the bytes are the memory's.
//!
//! Durable state lives in stable structures (links, their indexes, and the
//! SHA-256 of every 2 MB serving chunk of a shared memory). The
//! `HttpCertificationTree` is heap state rebuilt from them when the
//! canister starts: the number of certified entries is capped
//! (`MAX_CERTIFIED_ENTRIES`) so that rebuild is bounded.

use crate::candid_storable;
use crate::http::{self, Reply, Served};
use crate::stable_memory::Vm;
use crate::stores::memories::MemoryStore;
use crate::types::{MemoryItemId, MemoryRecord};
use candid::{CandidType, Principal};
use ic_http_certification::{
    HttpCertification, HttpCertificationPath, HttpCertificationTree, HttpCertificationTreeEntry,
};
use ic_stable_structures::{Memory, StableBTreeMap};
use serde::Deserialize;
use serde_bytes::ByteBuf;

use crate::limits::{MAX_CERTIFIED_ENTRIES, SECRET_BYTES};

/// Replies every link certifies besides its chunks and the whole file.
const FIXED_REPLIES: [Reply; 5] = [
    Reply::Head,
    Reply::NotModified,
    Reply::Unsatisfiable,
    Reply::NotFound,
    Reply::MethodNotAllowed,
];

/// The stable memories the share store lives in, handed in by
/// `crate::state`.
pub struct ShareMemories<M: Memory> {
    pub links: Vm<M>,
    pub by_memory: Vm<M>,
    pub by_expiry: Vm<M>,
    pub chunk_hashes: Vm<M>,
    pub queue: Vm<M>,
    pub counters: Vm<M>,
}

/// A share link as stored.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ShareRecord {
    pub memory_id: MemoryItemId,
    pub secret: ByteBuf,
    pub created_by: Principal,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    /// Certified entries of its memory (counted once per shared memory).
    pub entries: u64,
}
candid_storable!(ShareRecord);

/// A share link, as its owner sees it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ShareLink {
    pub link_id: u64,
    pub memory_id: MemoryItemId,
    /// The URL path that serves the memory:
    /// `/s/<memory_id>/<link_id>/<secret>`. The only key to it: anyone who
    /// has it can read the memory.
    pub path: String,
    pub created_by: Principal,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    /// False while the memory's serving-chunk hashes are being computed:
    /// until then the path answers 404.
    pub ready: bool,
}

/// Why a share call failed.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ShareError {
    AnonymousCaller,
    /// Only the capsule's owner and the memory's uploader manage its links.
    NotAuthorized,
    MemoryNotFound {
        memory_id: MemoryItemId,
    },
    LinkNotFound {
        link_id: u64,
    },
    InvalidArgument {
        reason: String,
    },
    TooManyLinks {
        limit: u64,
    },
    /// The canister's share-link capacity (certified responses) is used up.
    CapacityExhausted {
        needed: u64,
        available: u64,
    },
    /// The random generator could not be seeded (`raw_rand` failed); retry.
    RandomnessUnavailable {
        reason: String,
    },
}

/// The URL path of a link.
pub fn link_path(memory_id: MemoryItemId, link_id: u64, secret: &[u8]) -> String {
    let mut path = format!("/s/{}/{link_id}/", memory_id.0);
    for byte in secret {
        path.push_str(&format!("{byte:02x}"));
    }
    path
}

/// The certification scope of a shared memory's links: every path under
/// `/s/<memory_id>`.
pub fn memory_scope(memory_id: MemoryItemId) -> HttpCertificationPath<'static> {
    HttpCertificationPath::wildcard(format!("/s/{}", memory_id.0))
}

/// The scope of everything that is not a link.
pub fn root_scope() -> HttpCertificationPath<'static> {
    HttpCertificationPath::wildcard("/")
}

fn parse_id(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The memory id of a path under `/s/`, if it has one.
pub fn path_memory(path: &str) -> Option<MemoryItemId> {
    let rest = path.strip_prefix("/s/")?;
    parse_id(rest.split('/').next()?).map(MemoryItemId)
}

/// `/s/<memory_id>/<link_id>/<32 hex digits>[/<anything>]` -> (memory id,
/// link id, secret).
pub fn parse_link_path(path: &str) -> Option<(MemoryItemId, u64, [u8; SECRET_BYTES])> {
    let rest = path.strip_prefix("/s/")?;
    let mut segments = rest.splitn(4, '/');
    let memory_id = MemoryItemId(parse_id(segments.next()?)?);
    let link_id = parse_id(segments.next()?)?;
    let hex = segments.next()?.as_bytes();
    if hex.len() != 2 * SECRET_BYTES {
        return None;
    }
    let mut secret = [0u8; SECRET_BYTES];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        secret[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some((memory_id, link_id, secret))
}

fn pair_key(a: u64, b: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&a.to_be_bytes());
    key[8..].copy_from_slice(&b.to_be_bytes());
    key
}

fn chunk_key(memory_id: MemoryItemId, index: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&memory_id.0.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

const NEXT_LINK_ID: u8 = 0;
const CERTIFIED_ENTRIES: u8 = 1;

/// The replies a link of a memory of `byte_len` bytes certifies.
pub fn link_replies(byte_len: u64) -> impl Iterator<Item = Reply> {
    let chunks = http::chunk_count(byte_len);
    let whole = (chunks <= 1).then_some(Reply::Whole);
    whole
        .into_iter()
        .chain((0..chunks).map(Reply::Chunk))
        .chain(FIXED_REPLIES)
}

/// Entries a link of a memory of `byte_len` bytes needs.
pub fn entries_for(byte_len: u64) -> u64 {
    link_replies(byte_len).count() as u64
}

/// Share links, serving-chunk hashes, and the certification tree.
pub struct ShareStore<M: Memory> {
    links: StableBTreeMap<u64, ShareRecord, Vm<M>>,
    by_memory: StableBTreeMap<[u8; 16], (), Vm<M>>,
    by_expiry: StableBTreeMap<[u8; 16], (), Vm<M>>,
    chunk_hashes: StableBTreeMap<[u8; 12], [u8; 32], Vm<M>>,
    /// Shared memories whose chunk responses are being certified (and
    /// their chunk hashes computed where not stored) -> next chunk.
    queue: StableBTreeMap<MemoryItemId, u32, Vm<M>>,
    counters: StableBTreeMap<u8, u64, Vm<M>>,
    /// Heap only: rebuilt by `UploadService::open`.
    tree: HttpCertificationTree,
    /// `MAX_CERTIFIED_ENTRIES`; lowered by tests only.
    entries_cap: u64,
    cel: String,
    cel_hash: [u8; 32],
}

impl<M: Memory + Clone> ShareStore<M> {
    /// Opens the structures (headers only) with a tree that certifies the
    /// root 404 and 405; `UploadService::open` then certifies the links.
    pub fn init(memories: ShareMemories<M>) -> Self {
        let cel = http::cel_expression().to_string();
        let cel_hash = http::sha256(cel.as_bytes());
        let mut store = Self {
            links: StableBTreeMap::init(memories.links),
            by_memory: StableBTreeMap::init(memories.by_memory),
            by_expiry: StableBTreeMap::init(memories.by_expiry),
            chunk_hashes: StableBTreeMap::init(memories.chunk_hashes),
            queue: StableBTreeMap::init(memories.queue),
            counters: StableBTreeMap::init(memories.counters),
            tree: HttpCertificationTree::default(),
            entries_cap: MAX_CERTIFIED_ENTRIES,
            cel,
            cel_hash,
        };
        for reply in [Reply::NotFound, Reply::MethodNotAllowed] {
            let body_hash = http::sha256(http::fixed_body(reply));
            let entry = store.entry(root_scope(), reply, None, body_hash);
            store.tree.insert(&entry);
        }
        store
    }
}

impl<M: Memory> ShareStore<M> {
    pub fn cel(&self) -> &str {
        &self.cel
    }

    /// The tree's root hash: the canister's certified data.
    pub fn root_hash(&self) -> [u8; 32] {
        self.tree.root_hash()
    }

    pub fn tree(&self) -> &HttpCertificationTree {
        &self.tree
    }

    pub fn link(&self, link_id: u64) -> Option<ShareRecord> {
        self.links.get(&link_id)
    }

    pub fn links_of(&self, memory_id: MemoryItemId) -> Vec<u64> {
        self.by_memory
            .keys_range(pair_key(memory_id.0, 0)..=pair_key(memory_id.0, u64::MAX))
            .map(|key| crate::storable::read_u64(&key, 8))
            .collect()
    }

    /// Certified responses that may still be reserved.
    pub fn entries_available(&self) -> u64 {
        self.entries_cap.saturating_sub(self.certified_entries())
    }

    #[cfg(test)]
    pub fn set_entries_cap(&mut self, cap: u64) {
        self.entries_cap = cap;
    }

    pub fn certified_entries(&self) -> u64 {
        self.counters.get(&CERTIFIED_ENTRIES).unwrap_or(0)
    }

    /// Whether the memory has a link.
    pub fn is_shared(&self, memory_id: MemoryItemId) -> bool {
        self.by_memory
            .keys_range(pair_key(memory_id.0, 0)..=pair_key(memory_id.0, u64::MAX))
            .next()
            .is_some()
    }

    /// Stores a new link (reserving its memory's entries if it is the
    /// first); returns its id.
    pub fn insert(&mut self, record: ShareRecord) -> u64 {
        let link_id = self.counters.get(&NEXT_LINK_ID).unwrap_or(0);
        self.counters.insert(NEXT_LINK_ID, link_id + 1);
        if !self.is_shared(record.memory_id) {
            self.counters
                .insert(CERTIFIED_ENTRIES, self.certified_entries() + record.entries);
        }
        self.by_memory
            .insert(pair_key(record.memory_id.0, link_id), ());
        if let Some(at) = record.expires_at {
            self.by_expiry.insert(pair_key(at, link_id), ());
        }
        self.links.insert(link_id, record);
        link_id
    }

    /// Removes a link; with its memory's last link go the memory's
    /// certified responses.
    pub fn remove(&mut self, link_id: u64) -> Option<ShareRecord> {
        let record = self.links.remove(&link_id)?;
        self.by_memory
            .remove(&pair_key(record.memory_id.0, link_id));
        if let Some(at) = record.expires_at {
            self.by_expiry.remove(&pair_key(at, link_id));
        }
        if !self.is_shared(record.memory_id) {
            self.counters.insert(
                CERTIFIED_ENTRIES,
                self.certified_entries().saturating_sub(record.entries),
            );
            self.tree.delete_by_path(&memory_scope(record.memory_id));
        }
        Some(record)
    }

    /// Up to `limit` links whose expiry is at or before `now`.
    pub fn expired(&self, now: u64, limit: usize) -> Vec<u64> {
        self.by_expiry
            .keys_range(..pair_key(now, u64::MAX))
            .take(limit)
            .map(|key| crate::storable::read_u64(&key, 8))
            .collect()
    }

    /// Whether every chunk response of the memory is certified (none left
    /// in the certification queue).
    pub fn chunks_certified(&self, memory_id: MemoryItemId) -> bool {
        !self.queue.contains_key(&memory_id)
    }

    /// Queues the memory's serving chunks for certification from chunk 0.
    pub fn queue_chunks(&mut self, memory_id: MemoryItemId) {
        self.queue.insert(memory_id, 0);
    }

    /// The next memory in the certification queue and its next chunk.
    pub fn next_queued(&self) -> Option<(MemoryItemId, u32)> {
        self.queue.first_key_value()
    }

    /// The first chunk of the memory not certified yet, if any is left.
    pub fn queued(&self, memory_id: MemoryItemId) -> Option<u32> {
        self.queue.get(&memory_id)
    }

    pub fn has_queued_work(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Moves the memory's queue position to `next` (`None`: done).
    pub fn set_queued(&mut self, memory_id: MemoryItemId, next: Option<u32>) {
        match next {
            Some(next) => self.queue.insert(memory_id, next),
            None => self.queue.remove(&memory_id),
        };
    }

    /// The stored hash of serving chunk `index` of a multi-chunk memory.
    pub fn stored_chunk_hash(&self, memory_id: MemoryItemId, index: u32) -> Option<[u8; 32]> {
        self.chunk_hashes.get(&chunk_key(memory_id, index))
    }

    pub fn store_chunk_hash(&mut self, memory_id: MemoryItemId, index: u32, hash: [u8; 32]) {
        self.chunk_hashes.insert(chunk_key(memory_id, index), hash);
    }

    /// SHA-256 of serving chunk `index` of `served` (chunk 0 of a one-chunk
    /// file is the whole file, whose hash the memory record has).
    pub fn chunk_hash(&self, memory_id: MemoryItemId, served: &Served, index: u32) -> [u8; 32] {
        if http::chunk_count(served.byte_len) == 1 {
            return served
                .sha256
                .try_into()
                .expect("bug: a memory's SHA-256 is not 32 bytes");
        }
        self.chunk_hashes
            .get(&chunk_key(memory_id, index))
            .expect("bug: a certified chunk without its hash")
    }

    /// The SHA-256 of the body `reply` carries.
    pub fn body_hash(&self, memory_id: MemoryItemId, served: &Served, reply: Reply) -> [u8; 32] {
        match reply {
            Reply::Whole => served
                .sha256
                .try_into()
                .expect("bug: a memory's SHA-256 is not 32 bytes"),
            Reply::Chunk(index) => self.chunk_hash(memory_id, served, index),
            other => http::sha256(http::fixed_body(other)),
        }
    }

    /// Drops a deleted memory's chunk hashes and queue entry.
    pub fn forget_hashes(&mut self, memory_id: MemoryItemId, chunks: u32) {
        self.queue.remove(&memory_id);
        for index in 0..chunks {
            self.chunk_hashes.remove(&chunk_key(memory_id, index));
        }
    }

    /// The tree entry certifying `reply` under `scope`.
    pub fn entry(
        &self,
        scope: HttpCertificationPath<'static>,
        reply: Reply,
        served: Option<&Served>,
        body_hash: [u8; 32],
    ) -> HttpCertificationTreeEntry<'static> {
        let response_hash = http::response_hash(reply, served, &self.cel, body_hash);
        HttpCertificationTreeEntry::new(
            scope,
            HttpCertification::response_only_prehashed(self.cel_hash, response_hash),
        )
    }

    /// Certifies one response of the memory's links (one tree insertion;
    /// a chunk's hash must be known).
    pub fn certify(&mut self, memory_id: MemoryItemId, served: &Served, reply: Reply) {
        let body_hash = self.body_hash(memory_id, served, reply);
        let entry = self.entry(memory_scope(memory_id), reply, Some(served), body_hash);
        self.tree.insert(&entry);
    }

    /// Certifies the replies that need no chunk hash: the fixed ones, and
    /// for a file of at most one chunk, all of them.
    pub fn certify_without_chunk_hashes(&mut self, memory_id: MemoryItemId, served: &Served) {
        let single = http::chunk_count(served.byte_len) <= 1;
        for reply in link_replies(served.byte_len) {
            if single || !matches!(reply, Reply::Chunk(_)) {
                self.certify(memory_id, served, reply);
            }
        }
    }

    /// The shared memories, each once, in id order (for the rebuild).
    pub fn shared_memories(&self) -> Vec<MemoryItemId> {
        let mut memories: Vec<MemoryItemId> = Vec::new();
        for key in self.by_memory.keys() {
            let memory_id = MemoryItemId(crate::storable::read_u64(&key, 0));
            if memories.last() != Some(&memory_id) {
                memories.push(memory_id);
            }
        }
        memories
    }
}

/// What serving needs of a memory's record.
pub fn served(record: &MemoryRecord) -> Served<'_> {
    Served {
        byte_len: record.byte_len,
        sha256: &record.sha256,
        mime_type: &record.mime_type,
        name: &record.name,
    }
}

impl<M: Memory> ShareStore<M> {
    /// Rebuilds the certification tree from the stored links: one tree
    /// insertion per certified response, at most `MAX_CERTIFIED_ENTRIES`.
    pub fn certify_all(&mut self, memories: &MemoryStore<M>) {
        for memory_id in self.shared_memories() {
            let Some(record) = memories.get(memory_id) else {
                continue;
            };
            let served = served(&record);
            self.certify_without_chunk_hashes(memory_id, &served);
            let chunks = http::chunk_count(record.byte_len);
            if chunks > 1 {
                let done = self.queued(memory_id).unwrap_or(chunks);
                for index in 0..done {
                    self.certify(memory_id, &served, Reply::Chunk(index));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_paths_round_trip_and_reject_everything_else() {
        let secret = [0xa5u8; SECRET_BYTES];
        let m = MemoryItemId(7);
        let path = link_path(m, 42, &secret);
        assert_eq!(path, format!("/s/7/42/{}", "a5".repeat(16)));
        assert_eq!(parse_link_path(&path), Some((m, 42, secret)));
        assert_eq!(
            parse_link_path(&format!("{path}/holiday.png")),
            Some((m, 42, secret))
        );
        assert_eq!(path_memory(&path), Some(m));
        assert_eq!(path_memory("/s/7"), Some(m));
        assert_eq!(path_memory("/s/x/1"), None);
        for bad in [
            "/",
            "/s/",
            "/s/7/42",
            "/s/7/42/",
            "/s/7/x/a5",
            "/s/7/-1/a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5",
            &format!("/s/42/{}", "a5".repeat(16)),
            &format!("/s/7/42/{}", "a5".repeat(15)),
            &format!("/s/7/42/{}zz", "a5".repeat(15)),
            &format!("/t/7/42/{}", "a5".repeat(16)),
            &format!("/s/7/{}/{}", "9".repeat(21), "a5".repeat(16)),
        ] {
            assert_eq!(parse_link_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn entries_cover_whole_file_chunks_and_fixed_replies() {
        assert_eq!(entries_for(0), 6);
        assert_eq!(entries_for(10), 7);
        assert_eq!(entries_for(http::SERVE_CHUNK_BYTES), 7);
        assert_eq!(entries_for(http::SERVE_CHUNK_BYTES + 1), 7);
        assert_eq!(entries_for(5 * http::SERVE_CHUNK_BYTES), 10);
    }
}
