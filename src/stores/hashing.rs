//! Verification of each upload's SHA-256 while it arrives.
//!
//! Every byte is hashed once, in file order: a chunk that arrives next in
//! order is hashed from the message's own bytes; chunks that arrived early
//! wait in the blob and are read back when the gap before them closes. No
//! message hashes more than `HASH_BYTES_PER_MESSAGE` beyond its own chunk;
//! sessions with hashing left to do wait in a backlog that later chunks,
//! `uploads_finish` and a timer work off.

use crate::session::{ChunkSpec, SessionId};
use crate::stable_memory::Vm;
use crate::stores::checksum::Sha256Midstate;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableBTreeMap, Storable};
use std::borrow::Cow;

/// How far hashing of one upload has come.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashProgress {
    pub midstate: Sha256Midstate,
    /// Chunks `[0, next_chunk)` are hashed.
    pub next_chunk: u32,
}

impl HashProgress {
    pub fn hashed_bytes(&self) -> u64 {
        self.midstate.absorbed()
    }

    /// The file's digest, once every chunk is hashed.
    pub fn digest(&self, spec: &ChunkSpec) -> Option<[u8; 32]> {
        (self.next_chunk == spec.chunk_count()).then(|| self.midstate.finalize())
    }
}

const MIDSTATE_BYTES: usize = 105;

impl Storable for HashProgress {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut out = self.midstate.into_bytes();
        out.extend_from_slice(&self.next_chunk.to_be_bytes());
        out
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        Self {
            midstate: Sha256Midstate::from_bytes(Cow::Borrowed(&bytes[..MIDSTATE_BYTES])),
            next_chunk: crate::storable::read_u32(&bytes, MIDSTATE_BYTES),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: MIDSTATE_BYTES as u32 + 4,
        is_fixed_size: true,
    };
}

/// An upload in repair mode (after a `ChecksumMismatch`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Repair {
    /// A chunk that was already hashed has been replaced: the midstate no
    /// longer describes the stored bytes. Nothing is re-hashed until
    /// `uploads_finish` asks for it.
    pub stale: bool,
    /// Re-hashes from byte 0 started so far.
    pub rounds: u32,
}

impl Storable for Repair {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut out = vec![u8::from(self.stale)];
        out.extend_from_slice(&self.rounds.to_be_bytes());
        out
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        Self {
            stale: bytes[0] != 0,
            rounds: crate::storable::read_u32(&bytes, 1),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 5,
        is_fixed_size: true,
    };
}

/// Where hashing reads what it needs from the upload.
pub trait HashSource {
    fn is_received(&self, index: u32) -> bool;
    /// Fills `buf` with the stored bytes of chunk `index`.
    fn read_chunk(&self, index: u32, buf: &mut [u8]);
}

/// Hash progress of every open upload, and the backlog of those with
/// received bytes not yet hashed.
pub struct HashTracker<M: Memory> {
    progress: StableBTreeMap<SessionId, HashProgress, Vm<M>>,
    backlog: StableBTreeMap<SessionId, (), Vm<M>>,
    repairs: StableBTreeMap<SessionId, Repair, Vm<M>>,
    /// Bytes hashed since the tracker was opened, for the model test's
    /// bound on hashing work.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) absorbed: u64,
}

impl<M: Memory + Clone> HashTracker<M> {
    pub fn init(progress: Vm<M>, backlog: Vm<M>, repairs: Vm<M>) -> Self {
        Self {
            progress: StableBTreeMap::init(progress),
            backlog: StableBTreeMap::init(backlog),
            repairs: StableBTreeMap::init(repairs),
            #[cfg(any(test, feature = "fuzzing"))]
            absorbed: 0,
        }
    }
}

impl<M: Memory> HashTracker<M> {
    pub fn start(&mut self, sid: SessionId) {
        self.progress.insert(sid, HashProgress::default());
    }

    pub fn get(&self, sid: SessionId) -> HashProgress {
        self.progress.get(&sid).unwrap_or_default()
    }

    pub fn remove(&mut self, sid: SessionId) {
        self.progress.remove(&sid);
        self.backlog.remove(&sid);
        self.repairs.remove(&sid);
    }

    /// Bytes hashed of the upload as it is now stored: none while a
    /// replaced chunk left the hash stale.
    pub fn hashed_bytes(&self, sid: SessionId) -> u64 {
        if self.repair(sid).stale {
            0
        } else {
            self.get(sid).hashed_bytes()
        }
    }

    /// The upload's repair state (default: not repairing).
    pub fn repair(&self, sid: SessionId) -> Repair {
        self.repairs.get(&sid).unwrap_or_default()
    }

    /// A received chunk was replaced. If it was already hashed the midstate
    /// is stale and hashing stops until `restart`; true if so.
    pub fn chunk_replaced(&mut self, sid: SessionId, index: u32) -> bool {
        let mut repair = self.repair(sid);
        if !repair.stale && index < self.get(sid).next_chunk {
            repair.stale = true;
            self.repairs.insert(sid, repair);
            self.backlog.remove(&sid);
        }
        repair.stale
    }

    /// Starts hashing over from byte 0 (the midstate cannot be rewound), as
    /// one more repair round.
    pub fn restart(&mut self, sid: SessionId) {
        let repair = self.repair(sid);
        self.repairs.insert(
            sid,
            Repair {
                stale: false,
                rounds: repair.rounds + 1,
            },
        );
        self.progress.insert(sid, HashProgress::default());
        self.backlog.insert(sid, ());
    }

    /// Uploads with hashing waiting, at most `limit`.
    pub fn backlog(&self, limit: usize) -> Vec<SessionId> {
        self.backlog.keys().take(limit).collect()
    }

    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Hashes forward from the first unhashed chunk. `fresh` is a chunk the
    /// message carries (index and bytes), hashed without reading it back.
    /// Reads back at most `budget` bytes of earlier-arrived chunks.
    pub fn advance(
        &mut self,
        sid: SessionId,
        spec: &ChunkSpec,
        source: &impl HashSource,
        fresh: Option<(u32, &[u8])>,
        budget: u64,
    ) -> HashProgress {
        let mut progress = self.get(sid);
        let mut spent = 0u64;
        let mut buf = Vec::new();
        loop {
            let index = progress.next_chunk;
            let Some(len) = spec.chunk_len(index) else {
                break;
            };
            match fresh {
                Some((fresh_index, bytes)) if fresh_index == index => {
                    progress.midstate.absorb(bytes);
                    #[cfg(any(test, feature = "fuzzing"))]
                    {
                        self.absorbed += len;
                    }
                }
                _ => {
                    if !source.is_received(index) || spent + len > budget {
                        break;
                    }
                    buf.resize(len as usize, 0);
                    source.read_chunk(index, &mut buf);
                    progress.midstate.absorb(&buf);
                    spent += len;
                    #[cfg(any(test, feature = "fuzzing"))]
                    {
                        self.absorbed += len;
                    }
                }
            }
            progress.next_chunk += 1;
        }
        let waiting = spec.chunk_len(progress.next_chunk).is_some()
            && source.is_received(progress.next_chunk);
        if waiting {
            self.backlog.insert(sid, ());
        } else {
            self.backlog.remove(&sid);
        }
        self.progress.insert(sid, progress.clone());
        progress
    }
}
