//! A plain in-memory model of the upload service, the operations that drive
//! both, and the invariants checked after every step. The property test
//! (`tests::uploads_match_the_model`) and the fuzzer (`crate::testing::fuzz`) run the
//! same [`Harness`].
//!
//! Several principals begin uploads, send chunks in any order (with
//! duplicates, corrupt bytes, wrong lengths and wrong checksums), ask for
//! status, finish with right and wrong hashes, abort, delete memories, grant
//! and revoke write access, set, replace and remove thumbnails (with the
//! upload and after it, of every wrong kind too), let time pass, run
//! maintenance and upgrade (the service is reopened on the same stable
//! memory). The model predicts every reply exactly. After each step the
//! harness checks that:
//!
//! - every session's status, chunks, hash progress and deadline are the
//!   model's, and its state only moves forward
//!   (`Pending -> Committed | Aborted | Expired`, then pruned, never back);
//! - every committed memory reads back byte-identical to the chunks sent;
//! - the live blobs are exactly those of open sessions and memories, no two
//!   overlap, blob and free extents tile the used area, and freed space is
//!   reused before the store grows (the high-water mark never passes the
//!   peak of bytes in use);
//! - each caller's open sessions, reserved and stored bytes (thumbnails
//!   included) are the model's and within the limits, and the totals add up;
//! - memory records (thumbnails included) and list pages are the model's,
//!   and the thumbnail store holds exactly the thumbnails of live memories
//!   and open uploads.

use crate::blob_store::{reserved_bytes, BlobId, Extent, BLOB_BLOCK_BYTES, MAX_EXTENTS_PER_BLOB};
use crate::error::{Quota, UploadError};
use crate::limits::{charged_bytes, Limits, MAX_CHUNK_BYTES, MAX_READ_BYTES, MAX_REPAIR_ROUNDS};
use crate::stores::thumbnails::MAX_THUMBNAIL_BYTES;
use crate::testing::service::UploadService;
use crate::types::*;
use candid::Principal;
use ic_stable_structures::memory_manager::MemoryManager;
use ic_stable_structures::VectorMemory;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Idle timeout and retention of the model's limits (nanoseconds).
const IDLE: u64 = 10_000;
const RETENTION: u64 = 30_000;

/// File sizes an upload may declare: around block boundaries, and one past
/// the file limit.
const SIZES: [u64; 14] = [
    0, 1, 999, 1_000, 2_000, 4_095, 4_096, 4_097, 6_000, 8_192, 10_000, 12_288, 16_384, 16_385,
];
/// Chunk sizes: valid ones, one past the limit, and zero.
const CHUNK_SIZES: [u32; 8] = [1_000, 1_024, 4_096, 3_000, 2_048, 4_096, 4_097, 0];
/// How far time moves in one step: around the idle timeout and the
/// retention period.
const ADVANCES: [u64; 10] = [
    1, 10, 1_000, 2_500, 5_000, 9_999, 10_000, 10_001, 30_000, 40_000,
];

/// Small limits, so that every quota is reached.
pub fn model_limits() -> Limits {
    Limits {
        max_file_bytes: 16_384,
        max_chunk_bytes: 4_096,
        max_chunks_per_session: 12,
        max_open_sessions_per_caller: 3,
        max_reserved_bytes_per_caller: 6 * BLOB_BLOCK_BYTES,
        max_stored_bytes_per_caller: 10 * BLOB_BLOCK_BYTES,
        max_total_bytes: 20 * BLOB_BLOCK_BYTES,
        max_reserved_bytes_total: Some(12 * BLOB_BLOCK_BYTES),
        max_writers_per_capsule: 1,
        max_capsules_per_owner: 4,
        session_idle_timeout_ns: IDLE,
        finished_retention_ns: RETENTION,
    }
}

/// Alice owns capsule 1 (Carol may write to it at the start), Bob owns
/// capsule 2; the fourth is the anonymous principal.
const ANONYMOUS: usize = 3;

fn principal(index: usize) -> Principal {
    match index {
        ANONYMOUS => Principal::anonymous(),
        i => Principal::from_slice(&[i as u8 + 1; 29]),
    }
}

fn sha(bytes: &[u8]) -> ByteBuf {
    ByteBuf::from(Sha256::digest(bytes).to_vec())
}

/// The file a principal uploads under a key: the same request always sends
/// the same bytes, so retries look like retries.
fn content(who: usize, key: u8, len: u64) -> Vec<u8> {
    let mut x = (who as u64) << 8 | u64::from(key);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

/// A thumbnail of `len` bytes that starts as `magic` says (`b"jpeg"`,
/// `b"webp"`, or anything else for no image at all), declared `mime_type`.
fn thumbnail(mime_type: &str, magic: &[u8], len: usize, seed: u64) -> Thumbnail {
    let mut bytes = content(seed as usize, (seed >> 8) as u8, len as u64);
    match magic {
        b"jpeg" => bytes[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]),
        b"webp" => {
            bytes[..4].copy_from_slice(b"RIFF");
            bytes[8..12].copy_from_slice(b"WEBP");
        }
        _ => {}
    }
    Thumbnail {
        mime_type: mime_type.into(),
        bytes: ByteBuf::from(bytes),
    }
}

/// A thumbnail `selector` picks, of every size and kind: `None`, small
/// and large valid ones, one past the size limit, and of the wrong type.
fn any_thumbnail(selector: u8, seed: u64) -> Option<Thumbnail> {
    let seed = seed << 16 | u64::from(selector / 8);
    Some(match selector % 8 {
        0 => return None,
        1 => thumbnail("image/jpeg", b"jpeg", 100, seed),
        2 => thumbnail("image/webp", b"webp", 600, seed),
        3 => thumbnail("image/jpeg", b"jpeg", 4_097, seed),
        4 => thumbnail("image/jpeg", b"jpeg", MAX_THUMBNAIL_BYTES, seed),
        5 => thumbnail("image/webp", b"webp", MAX_THUMBNAIL_BYTES + 1, seed),
        6 => match selector / 8 % 4 {
            0 => thumbnail("image/png", b"jpeg", 100, seed),
            1 => thumbnail("image/jpeg", b"webp", 100, seed),
            2 => thumbnail("image/webp", b"jpeg", 100, seed),
            _ => thumbnail("image/jpeg", b"none", 2, seed),
        },
        _ => thumbnail("image/webp", b"webp", 12, seed),
    })
}

/// The thumbnail an upload begins with: mostly the one its principal and
/// key always send (so retries look like retries), now and then any.
fn begin_thumbnail(selector: u8, who: usize, key: u8) -> Option<Thumbnail> {
    if selector.is_multiple_of(8) {
        return any_thumbnail(selector / 8, 1_000 + who as u64);
    }
    let seed = (who as u64) << 8 | u64::from(key);
    match (key, who % 3) {
        (3, 0) => Some(thumbnail("image/jpeg", b"jpeg", 100, seed)),
        (3, 1) => Some(thumbnail("image/webp", b"webp", 600, seed)),
        (3, _) => Some(thumbnail("image/jpeg", b"jpeg", 4_097, seed)),
        _ => None,
    }
}

/// The rule, as the interface states it: at most 32 KiB, a JPEG declared
/// `image/jpeg` or a WebP declared `image/webp`.
fn thumbnail_is_valid(t: &Thumbnail) -> bool {
    let b = t.bytes.as_slice();
    b.len() <= MAX_THUMBNAIL_BYTES
        && match t.mime_type.as_str() {
            "image/jpeg" => b.starts_with(&[0xFF, 0xD8, 0xFF]),
            "image/webp" => b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP",
            _ => false,
        }
}

fn thumbnail_charge(t: &Option<Thumbnail>) -> u64 {
    t.as_ref()
        .map_or(0, |t| charged_bytes(t.bytes.len() as u64))
}

/// A SHA-256 declared at `uploads_begin` or sent to `uploads_finish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// None declared (at begin); the right one (at finish).
    Absent,
    Right,
    Wrong,
    /// 31 bytes: not a SHA-256 at all.
    Short,
}

/// How a chunk is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutKind {
    Right,
    RightWithSha,
    /// The first byte flipped.
    Corrupt,
    WrongSha,
    ShortSha,
    OneByteLong,
    OneByteShort,
    /// More than `MAX_CHUNK_BYTES`.
    Huge,
}

/// How an upload is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishKind {
    Right,
    WrongHash,
    WrongLength,
    ShortHash,
}

/// One step. Sessions and memories are named by their position among those
/// created so far (modulo their number); principals by selectors that
/// mostly pick the session's own caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Begin {
        who: u8,
        capsule: u8,
        size: u8,
        chunk: u8,
        extra_chunk: bool,
        key: u8,
        declared: Hash,
        /// Picks the thumbnail (`begin_thumbnail`).
        thumbnail: u8,
    },
    Put {
        session: u8,
        who: u8,
        index: u8,
        kind: PutKind,
    },
    Status {
        session: u8,
        who: u8,
        from: u8,
        max_ranges: u8,
    },
    Finish {
        session: u8,
        who: u8,
        kind: FinishKind,
    },
    Abort {
        session: u8,
        who: u8,
    },
    Delete {
        memory: u8,
        who: u8,
    },
    /// A byte range of a memory, around its ends and past any limit.
    Read {
        memory: u8,
        who: u8,
        offset: u8,
        length: u8,
    },
    Grant {
        capsule: u8,
        by: u8,
        writer: u8,
    },
    Revoke {
        capsule: u8,
        by: u8,
        writer: u8,
    },
    /// The session's caller sends up to `count` missing chunks, rightly,
    /// from the `start`th missing one on (a client resuming).
    Send {
        session: u8,
        start: u8,
        count: u8,
    },
    Advance {
        step: u8,
    },
    /// The session's caller replaces a chunk from `index` on (with corrupt
    /// bytes if it holds the right ones, else with the right ones) and
    /// finishes, up to 11 times: repair rounds, when the session is
    /// repairing.
    Repair {
        session: u8,
        index: u8,
    },
    Maintenance,
    Upgrade,
    /// Sets (or removes) a memory's thumbnail (`any_thumbnail`).
    SetThumbnail {
        memory: u8,
        who: u8,
        thumbnail: u8,
    },
}

impl Op {
    /// Reads one op from the front of `bytes` (a fuzzer's input), or `None`
    /// when they run out. Every byte string decodes to some ops.
    pub fn decode(bytes: &mut &[u8]) -> Option<Op> {
        let mut next = || -> Option<u8> {
            let (first, rest) = bytes.split_first()?;
            *bytes = rest;
            Some(*first)
        };
        let tag = next()?;
        let mut arg = || next().unwrap_or(0);
        Some(match tag % 19 {
            0..=1 => Op::Begin {
                who: arg(),
                capsule: arg(),
                size: arg(),
                chunk: arg(),
                extra_chunk: arg() % 16 == 0,
                key: arg(),
                declared: [
                    Hash::Absent,
                    Hash::Absent,
                    Hash::Right,
                    Hash::Wrong,
                    Hash::Short,
                ][usize::from(arg() % 5)],
                thumbnail: arg(),
            },
            2..=6 => Op::Put {
                session: arg(),
                who: arg(),
                index: arg(),
                kind: {
                    use PutKind::*;
                    [
                        Right,
                        Right,
                        Right,
                        Right,
                        Right,
                        Right,
                        Right,
                        RightWithSha,
                        RightWithSha,
                        Corrupt,
                        Corrupt,
                        WrongSha,
                        ShortSha,
                        OneByteLong,
                        OneByteShort,
                        Huge,
                    ][usize::from(arg() % 16)]
                },
            },
            7 => Op::Status {
                session: arg(),
                who: arg(),
                from: arg(),
                max_ranges: arg(),
            },
            8..=9 => Op::Finish {
                session: arg(),
                who: arg(),
                kind: [
                    FinishKind::Right,
                    FinishKind::Right,
                    FinishKind::WrongHash,
                    FinishKind::WrongLength,
                    FinishKind::ShortHash,
                ][usize::from(arg() % 5)],
            },
            10 => Op::Abort {
                session: arg(),
                who: arg(),
            },
            11 => Op::Delete {
                memory: arg(),
                who: arg(),
            },
            12 => {
                let (capsule, by, writer) = (arg(), arg(), arg());
                if writer % 2 == 0 {
                    Op::Grant {
                        capsule,
                        by,
                        writer: writer / 2,
                    }
                } else {
                    Op::Revoke {
                        capsule,
                        by,
                        writer: writer / 2,
                    }
                }
            }
            13 => {
                let (session, start, count) = (arg(), arg(), arg());
                if count % 2 == 0 {
                    Op::Send {
                        session,
                        start,
                        count: count / 2,
                    }
                } else {
                    Op::Advance { step: count / 2 }
                }
            }
            14 => Op::Maintenance,
            15 => Op::Upgrade,
            17 => Op::Repair {
                session: arg(),
                index: arg(),
            },
            18 => Op::SetThumbnail {
                memory: arg(),
                who: arg(),
                thumbnail: arg(),
            },
            _ => Op::Read {
                memory: arg(),
                who: arg(),
                offset: arg(),
                length: arg(),
            },
        })
    }

    /// The bytes [`Op::decode`] reads back as this op, so that sequences
    /// found by the property test can seed the fuzzer's corpus.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let hash = |h: Hash| match h {
            Hash::Absent => 0,
            Hash::Right => 2,
            Hash::Wrong => 3,
            Hash::Short => 4,
        };
        match *self {
            Op::Begin {
                who,
                capsule,
                size,
                chunk,
                extra_chunk,
                key,
                declared,
                thumbnail,
            } => out.extend([
                0,
                who,
                capsule,
                size,
                chunk,
                u8::from(!extra_chunk),
                key,
                hash(declared),
                thumbnail,
            ]),
            Op::Put {
                session,
                who,
                index,
                kind,
            } => {
                let kind = match kind {
                    PutKind::Right => 0,
                    PutKind::RightWithSha => 7,
                    PutKind::Corrupt => 9,
                    PutKind::WrongSha => 11,
                    PutKind::ShortSha => 12,
                    PutKind::OneByteLong => 13,
                    PutKind::OneByteShort => 14,
                    PutKind::Huge => 15,
                };
                out.extend([2, session, who, index, kind]);
            }
            Op::Status {
                session,
                who,
                from,
                max_ranges,
            } => out.extend([7, session, who, from, max_ranges]),
            Op::Finish { session, who, kind } => {
                let kind = match kind {
                    FinishKind::Right => 0,
                    FinishKind::WrongHash => 2,
                    FinishKind::WrongLength => 3,
                    FinishKind::ShortHash => 4,
                };
                out.extend([8, session, who, kind]);
            }
            Op::Abort { session, who } => out.extend([10, session, who]),
            Op::Delete { memory, who } => out.extend([11, memory, who]),
            Op::Grant {
                capsule,
                by,
                writer,
            } => out.extend([12, capsule, by, writer % 4 * 2]),
            Op::Revoke {
                capsule,
                by,
                writer,
            } => out.extend([12, capsule, by, writer % 4 * 2 + 1]),
            Op::Send {
                session,
                start,
                count,
            } => out.extend([13, session, start, count % 16 * 2]),
            Op::Advance { step } => out.extend([13, 0, 0, step % 10 * 2 + 1]),
            Op::Maintenance => out.push(14),
            Op::Upgrade => out.push(15),
            Op::Read {
                memory,
                who,
                offset,
                length,
            } => out.extend([16, memory, who, offset, length]),
            Op::Repair { session, index } => out.extend([17, session, index]),
            Op::SetThumbnail {
                memory,
                who,
                thumbnail,
            } => out.extend([18, memory, who, thumbnail]),
        }
    }

    /// Decodes a fuzzer's input into at most `max` ops.
    pub fn decode_all(mut bytes: &[u8], max: usize) -> Vec<Op> {
        std::iter::from_fn(|| Op::decode(&mut bytes))
            .take(max)
            .collect()
    }
}

/// Ops as the property test draws them: mostly valid puts, sends and
/// finishes, every kind of mistake now and then.
#[cfg(test)]
pub fn op_strategy() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    let byte = any::<u8>;
    prop_oneof![
        4 => (byte(), byte(), byte(), byte(), proptest::bool::weighted(0.05), byte(),
              prop_oneof![6 => Just(Hash::Absent), 2 => Just(Hash::Right), 1 => Just(Hash::Wrong), 1 => Just(Hash::Short)], byte())
            .prop_map(|(who, capsule, size, chunk, extra_chunk, key, declared, thumbnail)| Op::Begin { who, capsule, size, chunk, extra_chunk, key, declared, thumbnail }),
        14 => (byte(), byte(), byte(), prop_oneof![
                12 => Just(PutKind::Right), 2 => Just(PutKind::RightWithSha), 2 => Just(PutKind::Corrupt),
                1 => Just(PutKind::WrongSha), 1 => Just(PutKind::ShortSha), 1 => Just(PutKind::OneByteLong),
                1 => Just(PutKind::OneByteShort), 1 => Just(PutKind::Huge)])
            .prop_map(|(session, who, index, kind)| Op::Put { session, who, index, kind }),
        1 => (byte(), byte(), byte(), byte()).prop_map(|(session, who, from, max_ranges)| Op::Status { session, who, from, max_ranges }),
        3 => (byte(), byte(), prop_oneof![6 => Just(FinishKind::Right), 1 => Just(FinishKind::WrongHash), 1 => Just(FinishKind::WrongLength), 1 => Just(FinishKind::ShortHash)])
            .prop_map(|(session, who, kind)| Op::Finish { session, who, kind }),
        1 => (byte(), byte()).prop_map(|(session, who)| Op::Abort { session, who }),
        1 => (byte(), byte()).prop_map(|(memory, who)| Op::Delete { memory, who }),
        1 => (byte(), byte(), byte(), byte()).prop_map(|(memory, who, offset, length)| Op::Read { memory, who, offset, length }),
        1 => (byte(), byte(), byte(), any::<bool>()).prop_map(|(capsule, by, writer, grant)| if grant {
            Op::Grant { capsule, by, writer }
        } else {
            Op::Revoke { capsule, by, writer }
        }),
        3 => (byte(), byte(), byte()).prop_map(|(session, start, count)| Op::Send { session, start, count }),
        1 => byte().prop_map(|step| Op::Advance { step }),
        2 => (byte(), byte()).prop_map(|(session, index)| Op::Repair { session, index }),
        1 => Just(Op::Maintenance),
        1 => Just(Op::Upgrade),
        2 => (byte(), byte(), byte()).prop_map(|(memory, who, thumbnail)| Op::SetThumbnail { memory, who, thumbnail }),
    ]
}

#[derive(Debug, Clone)]
struct ModelSession {
    sid: SessionId,
    caller: usize,
    capsule: CapsuleId,
    key: u8,
    data: Vec<u8>,
    chunk_size: u32,
    declared: Option<ByteBuf>,
    /// The thumbnail begun with: reserved while open, the memory's after.
    thumbnail: Option<Thumbnail>,
    memory_id: MemoryItemId,
    blob: BlobId,
    /// Chunks received, with the bytes stored.
    stored: BTreeMap<u32, Vec<u8>>,
    /// The status as recorded (an idle session stays `Pending` until
    /// something records its expiry).
    status: SessionStatus,
    deadline: u64,
    repairing: bool,
    /// Chunks `[0, hashed)` are hashed; `None` once hashing was dropped.
    hashed: Option<u32>,
    /// A hashed chunk was replaced: the hash waits for `uploads_finish`.
    stale: bool,
    /// Re-hashes from byte 0 so far.
    rounds: u32,
    committed: Option<CommittedUpload>,
    pruned: bool,
    /// A begin under the same key started another session (this one's
    /// memory had been deleted).
    key_released: bool,
}

impl ModelSession {
    fn chunk_count(&self) -> u32 {
        self.data.len().div_ceil(self.chunk_size as usize) as u32
    }

    fn chunk(&self, index: u32) -> Option<&[u8]> {
        let start = index as usize * self.chunk_size as usize;
        (index < self.chunk_count())
            .then(|| &self.data[start..(start + self.chunk_size as usize).min(self.data.len())])
    }

    fn status_at(&self, now: u64) -> SessionStatus {
        match self.status {
            SessionStatus::Pending if now >= self.deadline => SessionStatus::Expired,
            status => status,
        }
    }

    fn hashed_bytes(&self) -> u64 {
        if self.stale {
            return 0;
        }
        let next = u64::from(self.hashed.unwrap_or(0));
        (next * u64::from(self.chunk_size)).min(self.data.len() as u64)
    }

    /// Hashing moves over every received chunk in file order.
    fn hash_forward(&mut self) {
        let mut next = self.hashed.unwrap_or(0);
        while self.stored.contains_key(&next) {
            next += 1;
        }
        self.hashed = Some(next);
    }

    fn hash_backlogged(&self) -> bool {
        !self.stale
            && self.hashed.is_some_and(|next| {
                self.stored.contains_key(&next) && self.status == SessionStatus::Pending
            })
    }

    fn assembled(&self) -> Vec<u8> {
        self.stored.values().flatten().copied().collect()
    }

    fn holds_blob(&self) -> bool {
        !self.pruned && self.status == SessionStatus::Pending
    }

    fn same_request(
        &self,
        capsule: CapsuleId,
        len: u64,
        chunk: u32,
        declared: &Option<ByteBuf>,
        thumbnail: &Option<Thumbnail>,
    ) -> bool {
        self.capsule == capsule
            && self.data.len() as u64 == len
            && self.chunk_size == chunk
            && self.declared == *declared
            && self.thumbnail == *thumbnail
    }
}

#[derive(Debug, Clone)]
struct ModelMemory {
    /// Its thumbnail included.
    record: MemoryRecord,
    data: Vec<u8>,
    uploader: usize,
    /// Whose stored bytes the thumbnail counts in.
    thumbnail_charged_to: usize,
    live: bool,
}

#[derive(Debug, Clone)]
struct ModelCapsule {
    id: CapsuleId,
    owner: usize,
    writers: Vec<usize>,
}

/// What the service should hold, in plain collections.
#[derive(Debug, Default)]
struct Model {
    now: u64,
    capsules: Vec<ModelCapsule>,
    sessions: Vec<ModelSession>,
    memories: Vec<ModelMemory>,
    next_sid: u64,
    next_memory_id: u64,
    next_blob_id: u64,
}

impl Model {
    fn limits(&self) -> Limits {
        model_limits()
    }

    fn capsule(&self, id: CapsuleId) -> Option<&ModelCapsule> {
        self.capsules.iter().find(|c| c.id == id)
    }

    fn writable(&self, id: CapsuleId, who: usize) -> Result<&ModelCapsule, UploadError> {
        let capsule = self
            .capsule(id)
            .ok_or(UploadError::CapsuleNotFound { capsule_id: id })?;
        if capsule.owner == who || capsule.writers.contains(&who) {
            Ok(capsule)
        } else {
            Err(UploadError::NotAuthorized)
        }
    }

    fn capsule_record(&self, capsule: &ModelCapsule) -> Capsule {
        Capsule {
            capsule_id: capsule.id,
            name: format!("capsule {}", capsule.id.0),
            owner: principal(capsule.owner),
            writers: capsule.writers.iter().map(|w| principal(*w)).collect(),
            created_at: 0,
        }
    }

    fn usage(&self, who: usize) -> CallerUsage {
        let mut usage = CallerUsage::default();
        for s in self
            .sessions
            .iter()
            .filter(|s| s.caller == who && s.holds_blob())
        {
            usage.open_sessions += 1;
            usage.reserved_bytes +=
                charged_bytes(s.data.len() as u64) + thumbnail_charge(&s.thumbnail);
        }
        for m in self.memories.iter().filter(|m| m.live) {
            if m.uploader == who {
                usage.stored_bytes += charged_bytes(m.record.byte_len);
            }
            if m.thumbnail_charged_to == who {
                usage.stored_bytes += thumbnail_charge(&m.record.thumbnail);
            }
        }
        usage
    }

    /// Thumbnails the service must hold: live memories' and open uploads'.
    fn thumbnails_held(&self) -> u64 {
        let sessions = self
            .sessions
            .iter()
            .filter(|s| s.holds_blob() && s.thumbnail.is_some())
            .count();
        let memories = self
            .memories
            .iter()
            .filter(|m| m.live && m.record.thumbnail.is_some())
            .count();
        (sessions + memories) as u64
    }

    /// Whether session `i` committed a memory that has been deleted since.
    fn memory_deleted(&self, i: usize) -> bool {
        let s = &self.sessions[i];
        s.status_at(self.now) == SessionStatus::Committed
            && !self
                .memories
                .iter()
                .any(|m| m.live && m.record.memory_id == s.memory_id)
    }

    /// Blobs that must be live, with their lengths.
    fn live_blobs(&self) -> BTreeMap<BlobId, u64> {
        let sessions = self
            .sessions
            .iter()
            .filter(|s| s.holds_blob())
            .map(|s| (s.blob, s.data.len() as u64));
        let memories = self
            .memories
            .iter()
            .filter(|m| m.live)
            .map(|m| (m.record.blob_id, m.record.byte_len));
        sessions.chain(memories).collect()
    }

    /// Mostly a session that still takes chunks, sometimes any.
    fn pick_session(&self, selector: u8) -> Option<usize> {
        let open: Vec<usize> = (0..self.sessions.len())
            .filter(|i| {
                !self.sessions[*i].pruned
                    && self.sessions[*i].status_at(self.now) == SessionStatus::Pending
            })
            .collect();
        let selector = usize::from(selector);
        if selector % 4 != 0 && !open.is_empty() {
            Some(open[selector / 4 % open.len()])
        } else {
            (!self.sessions.is_empty()).then(|| selector / 4 % self.sessions.len())
        }
    }

    /// A session's caller most of the time, else any principal.
    fn pick_who(selector: u8, own: usize) -> usize {
        match selector % 16 {
            0..=11 => own,
            n => usize::from(n - 12),
        }
    }

    /// Records an idle session's expiry, freeing what it held.
    fn expire(&mut self, i: usize) {
        let now = self.now;
        let s = &mut self.sessions[i];
        s.status = SessionStatus::Expired;
        s.deadline = now + RETENTION;
        s.repairing = false;
        s.hashed = None;
        s.stale = false;
    }

    /// The refusal for a session that no longer takes work; an idle one is
    /// recorded as expired on the way (as the service does).
    fn refuse_final(&mut self, i: usize) -> UploadError {
        let session_id = self.sessions[i].sid;
        match self.sessions[i].status_at(self.now) {
            SessionStatus::Committed => UploadError::AlreadyCommitted { session_id },
            SessionStatus::Aborted => UploadError::SessionAborted { session_id },
            SessionStatus::Expired => {
                if self.sessions[i].status == SessionStatus::Pending {
                    self.expire(i);
                }
                UploadError::SessionExpired { session_id }
            }
            SessionStatus::Pending => unreachable!("a pending session refused"),
        }
    }

    /// The session `selector` names, if it belongs to `who`.
    fn owned(&self, selector: u8, who: usize) -> Result<usize, UploadError> {
        let Some(i) = self.pick_session(selector) else {
            return Err(UploadError::SessionNotFound {
                session_id: MISSING_SESSION,
            });
        };
        let s = &self.sessions[i];
        if s.pruned {
            return Err(UploadError::SessionNotFound { session_id: s.sid });
        }
        if s.caller != who {
            return Err(UploadError::NotAuthorized);
        }
        Ok(i)
    }

    fn status_of(&self, s: &ModelSession, from: u32, max_ranges: u32) -> UploadStatus {
        let max = max_ranges.clamp(1, 1_000) as usize;
        let mut missing: Vec<ChunkRange> = Vec::new();
        let mut next_from_chunk = None;
        let mut open = None;
        for index in from..s.chunk_count() {
            match (s.stored.contains_key(&index), open) {
                (false, None) => {
                    if missing.len() == max {
                        next_from_chunk = Some(index);
                        break;
                    }
                    open = Some(index);
                }
                (true, Some(start)) => {
                    missing.push(ChunkRange { start, end: index });
                    open = None;
                }
                _ => {}
            }
        }
        if let (Some(start), None) = (open, next_from_chunk) {
            missing.push(ChunkRange {
                start,
                end: s.chunk_count(),
            });
        }
        let status = s.status_at(self.now);
        UploadStatus {
            session_id: s.sid,
            capsule_id: s.capsule,
            status,
            provisional_memory_id: s.memory_id,
            byte_len: s.data.len() as u64,
            chunk_size: s.chunk_size,
            expected_chunks: s.chunk_count(),
            received_chunks: s.stored.len() as u32,
            missing,
            next_from_chunk,
            hashed_bytes: s.hashed_bytes(),
            repairing: s.repairing,
            expires_at: (status == SessionStatus::Pending).then_some(s.deadline),
            committed: (status == SessionStatus::Committed)
                .then(|| s.committed.clone().expect("committed session")),
        }
    }
}

/// The id the model uses when no session exists yet: never allocated.
const MISSING_SESSION: SessionId = SessionId(1 << 40);
const MISSING_MEMORY: MemoryItemId = MemoryItemId(1 << 40);

/// InvalidArgument reasons are prose; only the variant is compared.
fn normalize<T>(result: Result<T, UploadError>) -> Result<T, UploadError> {
    result.map_err(|error| match error {
        UploadError::InvalidArgument { .. } => UploadError::InvalidArgument {
            reason: String::new(),
        },
        other => other,
    })
}

fn exceeded(quota: Quota, limit: u64, requested: u64) -> UploadError {
    UploadError::QuotaExceeded {
        quota,
        limit,
        requested,
    }
}

fn invalid() -> UploadError {
    UploadError::InvalidArgument {
        reason: String::new(),
    }
}

/// The service on a `VectorMemory`, the model beside it, and what has been
/// observed so far (to check that states only move forward).
pub struct Harness {
    memory: VectorMemory,
    service: UploadService<VectorMemory>,
    model: Model,
    /// Last observed status of each session (`None`: gone).
    seen: BTreeMap<SessionId, Option<SessionStatus>>,
    /// Most blocks ever in use: the store's mark may not pass it.
    peak_used_blocks: u64,
    /// Set once the free list is so fragmented that an allocation may
    /// stop at `MAX_EXTENTS_PER_BLOB` and grow the store early.
    fragmented: bool,
    /// Logical blocks of the blob store chunk bytes were ever written to,
    /// and the bytes: stable memory must follow them.
    written_blocks: std::collections::BTreeSet<u64>,
    written_bytes: u64,
    /// Bytes placed in each blob's space: a new chunk goes where the
    /// previous one ended, whatever its index.
    placed: BTreeMap<crate::upload::BlobId, u64>,
    steps: usize,
    /// Bytes the service hashed before its last reopening.
    hashed_before_upgrades: u64,
    /// Replies seen, by operation and outcome (`MODEL_TRACE=1` prints them).
    outcomes: BTreeMap<String, usize>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A fresh service with the model's limits and two capsules.
    pub fn new() -> Self {
        let memory = VectorMemory::default();
        // One-page buckets instead of the default 128: each structure then
        // starts at 64 KiB rather than 8 MiB, which makes a fresh harness
        // cheap (the fuzzer makes one per input). Reopening reads the bucket
        // size back from the header, as an upgrade does.
        MemoryManager::init_with_bucket_size(memory.clone(), 1);
        let mut service = UploadService::init(memory.clone());
        service
            .set_limits(true, model_limits())
            .expect("the model's limits are valid");
        let mut model = Model {
            now: 10,
            next_sid: 1,
            next_memory_id: 1,
            next_blob_id: 1,
            ..Model::default()
        };
        for (owner, writers) in [(0, vec![2]), (1, vec![])] {
            let id = CapsuleId(model.capsules.len() as u64 + 1);
            let created = service
                .create_capsule(principal(owner), 0, format!("capsule {}", id.0))
                .expect("capsule");
            assert_eq!(created.capsule_id, id);
            for w in &writers {
                service
                    .grant_write(principal(owner), id, principal(*w))
                    .expect("grant");
            }
            model.capsules.push(ModelCapsule { id, owner, writers });
        }
        let mut harness = Self {
            memory,
            service,
            model,
            seen: BTreeMap::new(),
            peak_used_blocks: 0,
            fragmented: false,
            written_blocks: Default::default(),
            written_bytes: 0,
            placed: BTreeMap::new(),
            steps: 0,
            hashed_before_upgrades: 0,
            outcomes: BTreeMap::new(),
        };
        harness.check();
        harness
    }

    /// Runs `ops` from a fresh start, checking every invariant after each.
    pub fn run(ops: &[Op]) {
        Self::run_checking_every(ops, 1);
    }

    /// Runs `ops`, comparing every reply with the model's and checking
    /// every invariant after each `every`th op and after the last. The
    /// checks read back everything the service holds, which dominates the
    /// fuzzer's time; states persist, so a broken invariant is still seen a
    /// few steps later.
    pub fn run_checking_every(ops: &[Op], every: usize) {
        let mut harness = Harness::new();
        for (i, op) in ops.iter().enumerate() {
            harness.apply(op);
            if (i + 1) % every.max(1) == 0 || i + 1 == ops.len() {
                harness.check();
            }
        }
        if std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!("{:?}", harness.outcomes);
        }
    }

    /// Applies one op to both and compares the replies.
    pub fn apply(&mut self, op: &Op) {
        self.apply_op(op);
        // Followed at every step, checked or not.
        let used_blocks = self.service.blobs.stats().used_bytes / BLOB_BLOCK_BYTES;
        self.peak_used_blocks = self.peak_used_blocks.max(used_blocks);
        self.fragmented |= self.service.blobs.free_extents().len() + 1 >= MAX_EXTENTS_PER_BLOB;
    }

    fn apply_op(&mut self, op: &Op) {
        self.steps += 1;
        match *op {
            Op::Begin {
                who,
                capsule,
                size,
                chunk,
                extra_chunk,
                key,
                declared,
                thumbnail,
            } => self.begin(
                who,
                capsule,
                size,
                chunk,
                extra_chunk,
                key,
                declared,
                thumbnail,
            ),
            Op::Put {
                session,
                who,
                index,
                kind,
            } => self.put(session, who, index, kind),
            Op::Status {
                session,
                who,
                from,
                max_ranges,
            } => self.status(session, who, from, max_ranges),
            Op::Finish { session, who, kind } => self.finish(session, who, kind),
            Op::Abort { session, who } => self.abort(session, who),
            Op::Delete { memory, who } => self.delete(memory, who),
            Op::Read {
                memory,
                who,
                offset,
                length,
            } => self.read(memory, who, offset, length),
            Op::Grant {
                capsule,
                by,
                writer,
            } => self.grant(capsule, by, writer, true),
            Op::Revoke {
                capsule,
                by,
                writer,
            } => self.grant(capsule, by, writer, false),
            Op::Send {
                session,
                start,
                count,
            } => self.send(session, start, count),
            Op::Advance { step } => {
                self.model.now += ADVANCES[usize::from(step) % ADVANCES.len()];
            }
            Op::Repair { session, index } => self.repair(session, index),
            Op::Maintenance => self.maintenance(),
            Op::Upgrade => {
                self.hashed_before_upgrades += self.service.hashing.absorbed;
                self.service = UploadService::init(self.memory.clone());
            }
            Op::SetThumbnail {
                memory,
                who,
                thumbnail,
            } => self.set_thumbnail(memory, who, thumbnail),
        }
    }

    fn capsule_id(&self, selector: u8, who: usize) -> CapsuleId {
        match selector % 8 {
            // The principal's own capsule (Carol writes to Alice's).
            0..=4 => CapsuleId(if who == 1 { 2 } else { 1 }),
            5 => CapsuleId(1),
            6 => CapsuleId(2),
            _ => CapsuleId(99),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn begin(
        &mut self,
        who: u8,
        capsule: u8,
        size: u8,
        chunk: u8,
        extra_chunk: bool,
        key: u8,
        declared: Hash,
        thumbnail: u8,
    ) {
        let who = [0, 0, 0, 0, 1, 1, 1, 2, 2, ANONYMOUS][usize::from(who % 10)];
        let capsule_id = self.capsule_id(capsule, who);
        let len = SIZES[usize::from(size) % SIZES.len()];
        let chunk_size = CHUNK_SIZES[usize::from(chunk) % CHUNK_SIZES.len()];
        let key = key % 4;
        let data = content(who, key, len);
        let declared = match declared {
            Hash::Absent => None,
            Hash::Right => Some(sha(&data)),
            Hash::Wrong => Some(sha(b"another file")),
            Hash::Short => Some(ByteBuf::from(vec![0; 31])),
        };
        let derived = if chunk_size == 0 {
            0
        } else {
            len.div_ceil(u64::from(chunk_size))
        };
        let expected_chunks = derived as u32 + u32::from(extra_chunk);
        let thumbnail = begin_thumbnail(thumbnail, who, key);
        let request = BeginUploadRequest {
            capsule_id,
            asset: AssetMetadata {
                name: format!("file {key}"),
                mime_type: "application/octet-stream".into(),
                byte_len: len,
                sha256: declared.clone(),
            },
            chunk_size,
            expected_chunks,
            idempotency_key: format!("key {key}"),
            thumbnail: thumbnail.clone(),
        };
        let before = self.service.blobs.stats();
        let free_extents_before = self.service.blobs.free_extents().len();
        let sessions_before = self.model.next_sid;
        let expected = self.model_begin(
            who,
            capsule_id,
            data,
            chunk_size,
            expected_chunks,
            key,
            declared,
            thumbnail,
        );
        let created = self.model.next_sid != sessions_before;
        let actual = self.service.begin(principal(who), self.model.now, request);
        self.note("begin", &expected);
        assert_eq!(normalize(actual), expected, "begin by {who}");
        if created {
            // Freed space is taken before the store grows.
            let after = self.service.blobs.stats();
            let need = reserved_bytes(len);
            if free_extents_before + 1 < MAX_EXTENTS_PER_BLOB {
                assert_eq!(
                    after.high_water_bytes - before.high_water_bytes,
                    need.saturating_sub(before.free_bytes),
                    "the store grew while free space was left"
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn model_begin(
        &mut self,
        who: usize,
        capsule_id: CapsuleId,
        data: Vec<u8>,
        chunk_size: u32,
        expected_chunks: u32,
        key: u8,
        declared: Option<ByteBuf>,
        thumbnail: Option<Thumbnail>,
    ) -> Result<UploadStarted, UploadError> {
        let m = &mut self.model;
        let limits = m.limits();
        let len = data.len() as u64;
        if who == ANONYMOUS {
            return Err(UploadError::AnonymousCaller);
        }
        if declared.as_ref().is_some_and(|d| d.len() != 32) {
            return Err(invalid());
        }
        if thumbnail.as_ref().is_some_and(|t| !thumbnail_is_valid(t)) {
            return Err(invalid());
        }
        if chunk_size > limits.max_chunk_bytes {
            return Err(exceeded(
                Quota::ChunkBytes,
                u64::from(limits.max_chunk_bytes),
                u64::from(chunk_size),
            ));
        }
        if len > limits.max_file_bytes {
            return Err(exceeded(Quota::FileBytes, limits.max_file_bytes, len));
        }
        if chunk_size == 0 {
            return Err(invalid());
        }
        let derived = len.div_ceil(u64::from(chunk_size));
        if derived != u64::from(expected_chunks) {
            return Err(UploadError::DeclaredValuesDisagree {
                what: "expected_chunks vs ceil(byte_len / chunk_size)".into(),
                declared: u64::from(expected_chunks),
                actual: derived,
            });
        }
        if derived > u64::from(limits.max_chunks_per_session) {
            return Err(exceeded(
                Quota::ChunksPerSession,
                u64::from(limits.max_chunks_per_session),
                derived,
            ));
        }
        m.writable(capsule_id, who)?;
        let existing = m
            .sessions
            .iter()
            .position(|s| !s.pruned && !s.key_released && s.caller == who && s.key == key);
        // A key whose memory was deleted starts a new upload.
        let existing = existing.filter(|i| !m.memory_deleted(*i));
        let replaced = m
            .sessions
            .iter()
            .position(|s| !s.pruned && !s.key_released && s.caller == who && s.key == key);
        if let Some(i) = existing {
            let s = &m.sessions[i];
            if !s.same_request(capsule_id, len, chunk_size, &declared, &thumbnail) {
                return Err(UploadError::IdempotencyConflict { session_id: s.sid });
            }
            return match s.status_at(m.now) {
                SessionStatus::Pending | SessionStatus::Committed => Ok(UploadStarted {
                    session_id: s.sid,
                    provisional_memory_id: s.memory_id,
                    expected_chunks: s.chunk_count(),
                    chunk_size,
                    expires_at: s.deadline,
                }),
                SessionStatus::Aborted => Err(UploadError::SessionAborted { session_id: s.sid }),
                SessionStatus::Expired => Err(UploadError::SessionExpired { session_id: s.sid }),
            };
        }
        let charged = charged_bytes(len) + thumbnail_charge(&thumbnail);
        let usage = m.usage(who);
        if usage.open_sessions >= limits.max_open_sessions_per_caller {
            return Err(exceeded(
                Quota::OpenSessionsPerCaller,
                u64::from(limits.max_open_sessions_per_caller),
                u64::from(usage.open_sessions) + 1,
            ));
        }
        let reserved = usage.reserved_bytes + charged;
        if reserved > limits.max_reserved_bytes_per_caller {
            return Err(exceeded(
                Quota::ReservedBytesPerCaller,
                limits.max_reserved_bytes_per_caller,
                reserved,
            ));
        }
        let held = reserved + usage.stored_bytes;
        if held > limits.max_stored_bytes_per_caller {
            return Err(exceeded(
                Quota::StoredBytesPerCaller,
                limits.max_stored_bytes_per_caller,
                held,
            ));
        }
        let reserved_total: u64 = (0..ANONYMOUS).map(|p| m.usage(p).reserved_bytes).sum();
        let stored_total: u64 = (0..ANONYMOUS).map(|p| m.usage(p).stored_bytes).sum();
        if let Some(cap) = limits.max_reserved_bytes_total {
            if reserved_total + charged > cap {
                return Err(exceeded(
                    Quota::ReservedBytesTotal,
                    cap,
                    reserved_total + charged,
                ));
            }
        }
        let everyone = reserved_total + stored_total;
        if everyone + charged > limits.max_total_bytes {
            return Err(exceeded(
                Quota::TotalBytes,
                limits.max_total_bytes,
                everyone + charged,
            ));
        }
        let session = ModelSession {
            sid: SessionId(m.next_sid),
            caller: who,
            capsule: capsule_id,
            key,
            data,
            chunk_size,
            declared,
            thumbnail,
            memory_id: MemoryItemId(m.next_memory_id),
            blob: BlobId(m.next_blob_id),
            stored: BTreeMap::new(),
            status: SessionStatus::Pending,
            deadline: m.now + IDLE,
            repairing: false,
            hashed: Some(0),
            stale: false,
            rounds: 0,
            committed: None,
            pruned: false,
            key_released: false,
        };
        if let Some(old) = replaced {
            m.sessions[old].key_released = true;
        }
        m.next_sid += 1;
        m.next_memory_id += 1;
        m.next_blob_id += 1;
        let started = UploadStarted {
            session_id: session.sid,
            provisional_memory_id: session.memory_id,
            expected_chunks: session.chunk_count(),
            chunk_size,
            expires_at: session.deadline,
        };
        m.sessions.push(session);
        Ok(started)
    }

    fn send(&mut self, session: u8, start: u8, count: u8) {
        let Some(i) = self.model.pick_session(session) else {
            return;
        };
        let s = &self.model.sessions[i];
        let missing: Vec<u32> = (0..s.chunk_count())
            .filter(|c| !s.stored.contains_key(c))
            .collect();
        let (sid, who) = (s.sid, s.caller);
        for k in 0..missing.len().min(usize::from(count % 16)) {
            let index = missing[(usize::from(start) + k) % missing.len()];
            let piece = self.model.sessions[i]
                .chunk(index)
                .expect("in range")
                .to_vec();
            self.put_resolved(session, sid, who, index, piece, PutKind::Right);
        }
    }

    /// `1 + index % 11` rounds of: replace a chunk, finish.
    fn repair(&mut self, session: u8, index: u8) {
        for round in 0..=u32::from(index % 11) {
            let Some(i) = self.model.pick_session(session) else {
                return;
            };
            let s = &self.model.sessions[i];
            if s.chunk_count() == 0 {
                return;
            }
            let at = (u32::from(index) + round) % s.chunk_count();
            let right = s.chunk(at).expect("in range").to_vec();
            let bytes = if s.stored.get(&at) == Some(&right) {
                let mut corrupt = right;
                corrupt[0] ^= 0x80;
                corrupt
            } else {
                right
            };
            let (sid, who) = (s.sid, s.caller);
            self.put_resolved(session, sid, who, at, bytes, PutKind::Right);
            // Selector 0 picks the session's own caller.
            self.finish(session, 0, FinishKind::Right);
        }
    }

    fn put(&mut self, session: u8, who: u8, index: u8, kind: PutKind) {
        let (sid, who, index, piece) = match self.model.pick_session(session) {
            Some(i) => {
                let s = &self.model.sessions[i];
                let count = s.chunk_count();
                let index = if index.is_multiple_of(8) || count == 0 {
                    count + u32::from(index / 8 % 2)
                } else {
                    u32::from(index) % count
                };
                let piece = s.chunk(index).map_or(vec![7], <[u8]>::to_vec);
                (s.sid, Model::pick_who(who, s.caller), index, piece)
            }
            None => (MISSING_SESSION, 0, u32::from(index), vec![7]),
        };
        self.put_resolved(session, sid, who, index, piece, kind);
    }

    fn put_resolved(
        &mut self,
        session: u8,
        sid: SessionId,
        who: usize,
        index: u32,
        piece: Vec<u8>,
        kind: PutKind,
    ) {
        let (bytes, chunk_sha) = match kind {
            PutKind::Right => (piece, None),
            PutKind::RightWithSha => (piece.clone(), Some(sha(&piece))),
            PutKind::Corrupt => {
                let mut bytes = piece;
                bytes[0] ^= 1;
                (bytes, None)
            }
            PutKind::WrongSha => (piece, Some(sha(b"another chunk"))),
            PutKind::ShortSha => (piece, Some(ByteBuf::from(vec![0; 31]))),
            PutKind::OneByteLong => {
                let mut bytes = piece;
                bytes.push(0);
                (bytes, None)
            }
            PutKind::OneByteShort => {
                let mut bytes = piece;
                bytes.pop();
                (bytes, None)
            }
            PutKind::Huge => (vec![0; MAX_CHUNK_BYTES as usize + 1], None),
        };
        let received_before = self
            .model
            .sessions
            .iter()
            .find(|s| s.sid == sid)
            .map_or(0, |s| s.stored.len() as u32);
        let expected = self.model_put(session, who, index, &bytes, &chunk_sha);
        let len = bytes.len() as u64;
        let actual = self.service.put_chunk(
            principal(who),
            self.model.now,
            PutChunk {
                session_id: sid,
                index,
                bytes: ByteBuf::from(bytes),
                sha256: chunk_sha,
            },
        );
        self.note("put", &expected);
        assert_eq!(
            normalize(actual),
            expected,
            "put chunk {index} of {sid:?} by {who}"
        );
        // A chunk's first arrival is placed; a replaced one is rewritten
        // where it is.
        if let Ok(accepted) = &expected {
            if accepted.received_chunks > received_before {
                self.note_written(sid, len);
            }
        }
    }

    /// Records the logical blocks a stored chunk covers, and the bytes.
    fn note_written(&mut self, sid: SessionId, len: u64) {
        let s = self
            .model
            .sessions
            .iter()
            .find(|s| s.sid == sid)
            .expect("a stored chunk's session");
        let placed = self.placed.entry(s.blob).or_default();
        let offset = *placed;
        *placed += len;
        let extents = self
            .service
            .blobs
            .live_blobs()
            .into_iter()
            .find(|(id, _, _)| *id == s.blob)
            .expect("an open session's blob")
            .2;
        let (mut pos, end, mut extent_start) = (offset, offset + len, 0);
        for extent in extents {
            let extent_end = extent_start + extent.blocks * BLOB_BLOCK_BYTES;
            while pos < end && pos < extent_end {
                let block = extent.start_block + (pos - extent_start) / BLOB_BLOCK_BYTES;
                self.written_blocks.insert(block);
                pos = (pos / BLOB_BLOCK_BYTES + 1) * BLOB_BLOCK_BYTES;
            }
            extent_start = extent_end;
        }
        self.written_bytes += len;
    }

    fn model_put(
        &mut self,
        selector: u8,
        who: usize,
        index: u32,
        bytes: &[u8],
        chunk_sha: &Option<ByteBuf>,
    ) -> Result<ChunkAccepted, UploadError> {
        let m = &mut self.model;
        if who == ANONYMOUS {
            return Err(UploadError::AnonymousCaller);
        }
        if bytes.len() > MAX_CHUNK_BYTES as usize {
            return Err(exceeded(
                Quota::ChunkBytes,
                u64::from(MAX_CHUNK_BYTES),
                bytes.len() as u64,
            ));
        }
        let i = m.owned(selector, who)?;
        if m.sessions[i].status_at(m.now) != SessionStatus::Pending {
            return Err(m.refuse_final(i));
        }
        m.writable(m.sessions[i].capsule, who)?;
        if let Some(expected) = chunk_sha {
            if expected.len() != 32 {
                return Err(invalid());
            }
            if *expected != sha(bytes) {
                return Err(UploadError::ChunkChecksumMismatch {
                    index,
                    actual: sha(bytes),
                });
            }
        }
        let now = m.now;
        let s = &mut m.sessions[i];
        let Some(right) = s.chunk(index) else {
            return Err(UploadError::IndexOutOfRange {
                index,
                expected_chunks: s.chunk_count(),
            });
        };
        if bytes.len() != right.len() {
            return Err(UploadError::WrongChunkLength {
                index,
                expected: right.len() as u64,
                actual: bytes.len() as u64,
            });
        }
        let newly_stored = match s.stored.get(&index) {
            Some(previous) if previous == bytes => false,
            Some(_) if !s.repairing => return Err(UploadError::ChunkConflict { index }),
            Some(_) => {
                // Replaced: a chunk already hashed makes the hash stale;
                // one not hashed yet is hashed if it comes next.
                s.stored.insert(index, bytes.to_vec());
                let next = s.hashed.unwrap_or(0);
                if index < next {
                    s.stale = true;
                } else if !s.stale && index == next {
                    s.hashed = Some(next + 1);
                }
                true
            }
            None => {
                s.stored.insert(index, bytes.to_vec());
                s.hash_forward();
                // Only new bytes move the deadline.
                s.deadline = now + IDLE;
                true
            }
        };
        Ok(ChunkAccepted {
            newly_stored,
            received_chunks: s.stored.len() as u32,
            expected_chunks: s.chunk_count(),
            hashed_bytes: s.hashed_bytes(),
            expires_at: s.deadline,
        })
    }

    fn status(&mut self, session: u8, who: u8, from: u8, max_ranges: u8) {
        let (sid, who) = match self.model.pick_session(session) {
            Some(i) => {
                let s = &self.model.sessions[i];
                (s.sid, Model::pick_who(who, s.caller))
            }
            None => (MISSING_SESSION, 0),
        };
        let (from, max_ranges) = (u32::from(from % 16), u32::from(max_ranges % 4));
        let expected = self.model.owned(session, who).map(|i| {
            self.model
                .status_of(&self.model.sessions[i], from, max_ranges)
        });
        let actual = self.service.status(
            principal(who),
            self.model.now,
            StatusRequest {
                session_id: sid,
                from_chunk: from,
                max_ranges,
            },
        );
        self.note("status", &expected);
        assert_eq!(actual, expected, "status of {sid:?} by {who}");

        // The stored chunk's SHA-256, at the same index.
        let expected = self.model.owned(session, who).and_then(|i| {
            let s = &self.model.sessions[i];
            if s.chunk(from).is_none() {
                return Err(UploadError::IndexOutOfRange {
                    index: from,
                    expected_chunks: s.chunk_count(),
                });
            }
            match s.status_at(self.model.now) {
                SessionStatus::Pending => {}
                SessionStatus::Committed => {
                    return Err(UploadError::AlreadyCommitted { session_id: sid })
                }
                SessionStatus::Aborted => {
                    return Err(UploadError::SessionAborted { session_id: sid })
                }
                SessionStatus::Expired => {
                    return Err(UploadError::SessionExpired { session_id: sid })
                }
            }
            s.stored
                .get(&from)
                .map(|bytes| sha(bytes))
                .ok_or(UploadError::ChunkNotReceived { index: from })
        });
        let actual = self
            .service
            .chunk_sha256(principal(who), self.model.now, sid, from);
        self.note("chunk_sha256", &expected);
        assert_eq!(actual, expected, "chunk_sha256 {from} of {sid:?} by {who}");
    }

    fn read(&mut self, memory: u8, who: u8, offset: u8, length: u8) {
        let m = &self.model;
        let picked = (!m.memories.is_empty()).then(|| usize::from(memory) % m.memories.len());
        let (memory_id, who, len) = match picked {
            Some(i) => (
                m.memories[i].record.memory_id,
                Model::pick_who(who, m.memories[i].uploader),
                m.memories[i].record.byte_len,
            ),
            None => (MISSING_MEMORY, usize::from(who % 4), 0),
        };
        // Around the ends of the memory, and past what any range may be.
        let pick = |selector: u8| match selector % 8 {
            0 => 0,
            1 => len,
            2 => len + 1,
            3 => len / 2,
            4 => u64::MAX - u64::from(selector),
            5 => MAX_READ_BYTES + 1,
            _ => u64::from(selector) * 97 % (len + 1),
        };
        let (offset, length) = (pick(offset), pick(length));
        let expected = (|| {
            let i = picked
                .filter(|i| m.memories[*i].live)
                .ok_or(UploadError::MemoryNotFound { memory_id })?;
            m.writable(m.memories[i].record.capsule_id, who)?;
            if length > MAX_READ_BYTES {
                return Err(exceeded(Quota::ReadBytes, MAX_READ_BYTES, length));
            }
            match offset.checked_add(length) {
                Some(end) if end <= len => Ok(ByteBuf::from(
                    m.memories[i].data[offset as usize..end as usize].to_vec(),
                )),
                _ => Err(UploadError::RangeOutOfBounds {
                    offset,
                    length,
                    byte_len: len,
                }),
            }
        })();
        let actual = self.service.read(
            principal(who),
            ReadRange {
                memory_id,
                offset,
                length,
            },
        );
        self.note("read", &expected);
        assert_eq!(
            actual, expected,
            "read {offset}+{length} of {memory_id:?} by {who}"
        );
    }

    fn finish(&mut self, session: u8, who: u8, kind: FinishKind) {
        let (sid, who, data) = match self.model.pick_session(session) {
            Some(i) => {
                let s = &self.model.sessions[i];
                (s.sid, Model::pick_who(who, s.caller), s.data.clone())
            }
            None => (MISSING_SESSION, 0, Vec::new()),
        };
        let (digest, byte_len) = match kind {
            FinishKind::Right => (sha(&data), data.len() as u64),
            FinishKind::WrongHash => (sha(b"another file"), data.len() as u64),
            FinishKind::WrongLength => (sha(&data), data.len() as u64 + 1),
            FinishKind::ShortHash => (ByteBuf::from(vec![0; 31]), data.len() as u64),
        };
        let expected = self.model_finish(session, who, &digest, byte_len);
        let actual = self.service.finish(
            principal(who),
            self.model.now,
            FinishUpload {
                session_id: sid,
                sha256: digest,
                byte_len,
            },
        );
        self.note("finish", &expected);
        assert_eq!(normalize(actual), expected, "finish {sid:?} by {who}");
    }

    fn model_finish(
        &mut self,
        selector: u8,
        who: usize,
        digest: &ByteBuf,
        byte_len: u64,
    ) -> Result<CommittedUpload, UploadError> {
        let m = &mut self.model;
        if who == ANONYMOUS {
            return Err(UploadError::AnonymousCaller);
        }
        if digest.len() != 32 {
            return Err(invalid());
        }
        let i = m.owned(selector, who)?;
        match m.sessions[i].status_at(m.now) {
            SessionStatus::Pending => {}
            SessionStatus::Committed => {
                let committed = m.sessions[i].committed.clone().expect("committed");
                if byte_len != committed.byte_len {
                    return Err(UploadError::DeclaredValuesDisagree {
                        what: "byte_len at finish vs at begin".into(),
                        declared: committed.byte_len,
                        actual: byte_len,
                    });
                }
                if committed.sha256 != *digest {
                    return Err(UploadError::AlreadyCommitted {
                        session_id: m.sessions[i].sid,
                    });
                }
                if m.memory_deleted(i) {
                    return Err(UploadError::MemoryNotFound {
                        memory_id: committed.memory_id,
                    });
                }
                return Ok(committed);
            }
            _ => return Err(m.refuse_final(i)),
        }
        m.writable(m.sessions[i].capsule, who)?;
        let now = m.now;
        let s = &mut m.sessions[i];
        let len = s.data.len() as u64;
        if byte_len != len {
            return Err(UploadError::DeclaredValuesDisagree {
                what: "byte_len at finish vs at begin".into(),
                declared: len,
                actual: byte_len,
            });
        }
        if let Some(at_begin) = &s.declared {
            if at_begin != digest {
                return Err(UploadError::DeclaredHashesDisagree {
                    at_begin: at_begin.clone(),
                    at_finish: digest.clone(),
                });
            }
        }
        let missing = s.chunk_count() - s.stored.len() as u32;
        if missing > 0 {
            return Err(UploadError::Incomplete {
                missing_chunks: missing,
            });
        }
        if s.stale {
            if s.rounds >= MAX_REPAIR_ROUNDS {
                return Err(exceeded(
                    Quota::RepairRounds,
                    u64::from(MAX_REPAIR_ROUNDS),
                    u64::from(s.rounds) + 1,
                ));
            }
            s.rounds += 1;
            s.stale = false;
            s.hashed = Some(0);
        }
        s.hash_forward();
        let stored = s.assembled();
        let actual = sha(&stored);
        if actual != *digest {
            s.repairing = true;
            return Err(UploadError::ChecksumMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        let committed = CommittedUpload {
            memory_id: s.memory_id,
            blob_id: s.blob,
            capsule_id: s.capsule,
            byte_len: len,
            sha256: actual,
        };
        s.status = SessionStatus::Committed;
        s.deadline = now + RETENTION;
        s.repairing = false;
        s.committed = Some(committed.clone());
        let record = MemoryRecord {
            memory_id: s.memory_id,
            capsule_id: s.capsule,
            name: format!("file {}", s.key),
            mime_type: "application/octet-stream".into(),
            byte_len: len,
            sha256: committed.sha256.clone(),
            blob_id: s.blob,
            uploaded_by: principal(who),
            created_at: now,
            thumbnail: s.thumbnail.clone(),
        };
        m.memories.push(ModelMemory {
            record,
            data: stored,
            uploader: who,
            thumbnail_charged_to: who,
            live: true,
        });
        Ok(committed)
    }

    fn abort(&mut self, session: u8, who: u8) {
        let (sid, who) = match self.model.pick_session(session) {
            Some(i) => {
                let s = &self.model.sessions[i];
                (s.sid, Model::pick_who(who, s.caller))
            }
            None => (MISSING_SESSION, 0),
        };
        let expected = (|| {
            let m = &mut self.model;
            if who == ANONYMOUS {
                return Err(UploadError::AnonymousCaller);
            }
            let i = m.owned(session, who)?;
            match m.sessions[i].status_at(m.now) {
                SessionStatus::Pending => {
                    let now = m.now;
                    let s = &mut m.sessions[i];
                    s.status = SessionStatus::Aborted;
                    s.deadline = now + RETENTION;
                    s.repairing = false;
                    s.hashed = None;
                    s.stale = false;
                    Ok(())
                }
                SessionStatus::Aborted => Ok(()),
                _ => Err(m.refuse_final(i)),
            }
        })();
        let actual = self.service.abort(principal(who), self.model.now, sid);
        self.note("abort", &expected);
        assert_eq!(actual, expected, "abort {sid:?} by {who}");
    }

    fn delete(&mut self, memory: u8, who: u8) {
        let m = &mut self.model;
        let picked = (!m.memories.is_empty()).then(|| usize::from(memory) % m.memories.len());
        let (memory_id, who) = match picked {
            Some(i) => (
                m.memories[i].record.memory_id,
                Model::pick_who(who, m.memories[i].uploader),
            ),
            None => (MISSING_MEMORY, usize::from(who % 4)),
        };
        let expected = (|| {
            if who == ANONYMOUS {
                return Err(UploadError::AnonymousCaller);
            }
            let i = picked
                .filter(|i| m.memories[*i].live)
                .ok_or(UploadError::MemoryNotFound { memory_id })?;
            // The uploader deletes its own, with or without write access.
            if who != m.memories[i].uploader {
                let owner = m.writable(m.memories[i].record.capsule_id, who)?.owner;
                if who != owner {
                    return Err(UploadError::NotAuthorized);
                }
            }
            m.memories[i].live = false;
            Ok(())
        })();
        let actual = self.service.delete_memory(principal(who), memory_id);
        self.note("delete", &expected);
        assert_eq!(actual, expected, "delete {memory_id:?} by {who}");
    }

    fn set_thumbnail(&mut self, memory: u8, who: u8, selector: u8) {
        let m = &mut self.model;
        let picked = (!m.memories.is_empty()).then(|| usize::from(memory) % m.memories.len());
        let (memory_id, who) = match picked {
            Some(i) => (
                m.memories[i].record.memory_id,
                Model::pick_who(who, m.memories[i].uploader),
            ),
            None => (MISSING_MEMORY, usize::from(who % 4)),
        };
        let thumbnail = any_thumbnail(selector, u64::from(memory));
        let limits = m.limits();
        let expected = (|| {
            if who == ANONYMOUS {
                return Err(UploadError::AnonymousCaller);
            }
            if thumbnail.as_ref().is_some_and(|t| !thumbnail_is_valid(t)) {
                return Err(invalid());
            }
            let i = picked
                .filter(|i| m.memories[*i].live)
                .ok_or(UploadError::MemoryNotFound { memory_id })?;
            // As for deleting: the uploader, or the capsule's owner.
            if who != m.memories[i].uploader {
                let owner = m.writable(m.memories[i].record.capsule_id, who)?.owner;
                if who != owner {
                    return Err(UploadError::NotAuthorized);
                }
            }
            let freed = thumbnail_charge(&m.memories[i].record.thumbnail);
            let added = thumbnail_charge(&thumbnail);
            if thumbnail.is_some() {
                let usage = m.usage(who);
                let own_freed = if m.memories[i].thumbnail_charged_to == who {
                    freed
                } else {
                    0
                };
                let held = usage.reserved_bytes + usage.stored_bytes - own_freed + added;
                if held > limits.max_stored_bytes_per_caller {
                    return Err(exceeded(
                        Quota::StoredBytesPerCaller,
                        limits.max_stored_bytes_per_caller,
                        held,
                    ));
                }
                let everyone: u64 = (0..ANONYMOUS)
                    .map(|p| {
                        let u = m.usage(p);
                        u.reserved_bytes + u.stored_bytes
                    })
                    .sum();
                let total = everyone - freed + added;
                if total > limits.max_total_bytes {
                    return Err(exceeded(Quota::TotalBytes, limits.max_total_bytes, total));
                }
            }
            m.memories[i].record.thumbnail = thumbnail.clone();
            m.memories[i].thumbnail_charged_to = who;
            Ok(())
        })();
        let actual = self
            .service
            .set_thumbnail(principal(who), memory_id, thumbnail);
        self.note("set_thumbnail", &expected);
        assert_eq!(
            normalize(actual),
            expected,
            "set the thumbnail of {memory_id:?} by {who}"
        );
    }

    fn grant(&mut self, capsule: u8, by: u8, writer: u8, grant: bool) {
        let capsule_id = CapsuleId(u64::from(capsule % 3) + 1);
        let (by, writer) = (usize::from(by % 4), usize::from(writer % 4));
        let m = &mut self.model;
        let expected = (|| {
            if by == ANONYMOUS {
                return Err(UploadError::AnonymousCaller);
            }
            let i = m
                .capsules
                .iter()
                .position(|c| c.id == capsule_id)
                .ok_or(UploadError::CapsuleNotFound { capsule_id })?;
            if m.capsules[i].owner != by {
                return Err(UploadError::NotAuthorized);
            }
            let max = m.limits().max_writers_per_capsule;
            let c = &mut m.capsules[i];
            if grant {
                if writer == ANONYMOUS {
                    return Err(invalid());
                }
                if writer != c.owner && !c.writers.contains(&writer) {
                    if c.writers.len() as u32 >= max {
                        return Err(exceeded(
                            Quota::WritersPerCapsule,
                            u64::from(max),
                            c.writers.len() as u64 + 1,
                        ));
                    }
                    c.writers.push(writer);
                }
            } else {
                c.writers.retain(|w| *w != writer);
            }
            Ok(m.capsule_record(&m.capsules[i]))
        })();
        let actual = if grant {
            self.service
                .grant_write(principal(by), capsule_id, principal(writer))
        } else {
            self.service
                .revoke_write(principal(by), capsule_id, principal(writer))
        };
        self.note("grant", &expected);
        assert_eq!(
            normalize(actual),
            expected,
            "grant {grant} on {capsule_id:?}"
        );
    }

    fn maintenance(&mut self) {
        let m = &mut self.model;
        let now = m.now;
        let mut due: Vec<(u64, SessionId, usize)> = m
            .sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.pruned && s.deadline <= now)
            .map(|(i, s)| (s.deadline, s.sid, i))
            .collect();
        due.sort();
        due.truncate(crate::limits::SWEEP_BATCH);
        let mut expected = crate::jobs::MaintenanceReport {
            more_work: due.len() == crate::limits::SWEEP_BATCH,
            ..Default::default()
        };
        for (_, _, i) in due {
            if m.sessions[i].status == SessionStatus::Pending {
                m.expire(i);
                expected.expired += 1;
            } else {
                m.sessions[i].pruned = true;
                m.sessions[i].hashed = None;
                expected.pruned += 1;
            }
        }
        // Every upload waiting for hashing catches up (files are small).
        let mut backlog: Vec<usize> = (0..m.sessions.len())
            .filter(|i| !m.sessions[*i].pruned && m.sessions[*i].hash_backlogged())
            .collect();
        backlog.truncate(16);
        for i in backlog {
            let before = m.sessions[i].hashed_bytes();
            m.sessions[i].hash_forward();
            expected.hashed_bytes += m.sessions[i].hashed_bytes() - before;
        }
        expected.more_work |= m.sessions.iter().any(|s| !s.pruned && s.hash_backlogged());
        let actual = self.service.maintenance(now);
        assert_eq!(actual, expected, "maintenance at {now}");
    }

    fn note<T>(&mut self, op: &str, result: &Result<T, UploadError>) {
        let outcome = match result {
            Ok(_) => "Ok".to_string(),
            Err(e) => format!("{e:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or("")
                .to_string(),
        };
        *self.outcomes.entry(format!("{op} {outcome}")).or_default() += 1;
    }

    /// Every invariant, against the service as it now is.
    fn check(&mut self) {
        let now = self.model.now;
        let limits = self.model.limits();
        let step = self.steps;
        let service = &self.service;
        let model = &self.model;

        // Sessions: as the model says, and only moving forward.
        for s in &model.sessions {
            let observed = service.status(
                principal(s.caller),
                now,
                StatusRequest {
                    session_id: s.sid,
                    from_chunk: 0,
                    max_ranges: 1_000,
                },
            );
            if s.pruned {
                assert_eq!(
                    observed,
                    Err(UploadError::SessionNotFound { session_id: s.sid }),
                    "step {step}"
                );
            } else {
                assert_eq!(observed, Ok(model.status_of(s, 0, 1_000)), "step {step}");
            }
            let status = observed.ok().map(|o| o.status);
            let stored = service.sessions.get(s.sid).map(|r| r.status);
            if let Some(previous) = self.seen.insert(s.sid, status) {
                let forward = match (previous, status) {
                    (None, now) => now.is_none(),
                    (Some(SessionStatus::Pending), _) => true,
                    (Some(before), now) => now.is_none() || now == Some(before),
                };
                assert!(
                    forward,
                    "step {step}: {:?} went from {previous:?} to {status:?}",
                    s.sid
                );
            }
            // The recorded state is never ahead of what callers see.
            assert!(
                stored.is_none() == status.is_none()
                    && (stored == status || stored == Some(SessionStatus::Pending)),
                "step {step}: {:?} recorded {stored:?}, seen {status:?}",
                s.sid
            );
        }

        // Memories: records and bytes exactly as committed.
        for memory in &model.memories {
            let id = memory.record.memory_id;
            let who = principal(memory.uploader);
            let record = service.memory(who, id);
            if !memory.live {
                assert_eq!(
                    record,
                    Err(UploadError::MemoryNotFound { memory_id: id }),
                    "step {step}"
                );
                continue;
            }
            let capsule = model.capsule(memory.record.capsule_id).expect("capsule");
            let reader = principal(capsule.owner);
            assert_eq!(
                service.memory(reader, id),
                Ok(memory.record.clone()),
                "step {step}"
            );
            let bytes = service
                .read(
                    reader,
                    ReadRange {
                        memory_id: id,
                        offset: 0,
                        length: memory.record.byte_len,
                    },
                )
                .expect("a live memory reads");
            assert!(
                bytes.as_slice() == memory.data.as_slice(),
                "step {step}: {id:?} reads back different bytes"
            );
        }
        for capsule in &model.capsules {
            let page = service
                .list_memories(
                    principal(capsule.owner),
                    ListMemories {
                        capsule_id: capsule.id,
                        after: None,
                        limit: 1_000,
                    },
                )
                .expect("owner lists");
            let mut expected: Vec<MemoryRecord> = model
                .memories
                .iter()
                .filter(|m| m.live && m.record.capsule_id == capsule.id)
                .map(|m| m.record.clone())
                .collect();
            expected.sort_by_key(|m| m.memory_id);
            assert_eq!(page.memories, expected, "step {step}");
        }

        // Thumbnails: those of live memories and open uploads, no others;
        // what each upload was begun with, until its record is pruned.
        assert_eq!(
            service.thumbnails.len(),
            model.thumbnails_held(),
            "step {step}: thumbnails held"
        );
        assert_eq!(
            service.thumbnails.sessions_len(),
            model
                .sessions
                .iter()
                .filter(|s| !s.pruned && s.thumbnail.is_some())
                .count() as u64,
            "step {step}: uploads' thumbnails remembered"
        );

        // Blobs: exactly the live ones, disjoint, freed space reused.
        service.blobs.check_invariants();
        let live = service.blobs.live_blobs();
        let live_lengths: BTreeMap<BlobId, u64> =
            live.iter().map(|(id, len, _)| (*id, *len)).collect();
        assert_eq!(live_lengths, model.live_blobs(), "step {step}: live blobs");
        let mut extents: Vec<Extent> = live.iter().flat_map(|(_, _, e)| e.clone()).collect();
        extents.sort();
        for pair in extents.windows(2) {
            assert!(
                pair[0].start_block + pair[0].blocks <= pair[1].start_block,
                "step {step}: blobs overlap: {pair:?}"
            );
        }
        let used_blocks: u64 = live_lengths
            .values()
            .map(|len| reserved_bytes(*len) / BLOB_BLOCK_BYTES)
            .sum();
        let stats = service.blobs.stats();
        assert_eq!(
            stats.used_bytes,
            used_blocks * BLOB_BLOCK_BYTES,
            "step {step}"
        );
        self.peak_used_blocks = self.peak_used_blocks.max(used_blocks);
        self.fragmented |= service.blobs.free_extents().len() + 1 >= MAX_EXTENTS_PER_BLOB;
        if !self.fragmented {
            assert!(
                stats.high_water_bytes <= self.peak_used_blocks * BLOB_BLOCK_BYTES,
                "step {step}: the store grew to {} bytes with at most {} in use",
                stats.high_water_bytes,
                self.peak_used_blocks * BLOB_BLOCK_BYTES
            );
        }

        // Stable memory follows the bytes written, whatever their order:
        // one physical block for each logical block ever written to, and
        // each blob fills its space from the start, so at most the bytes
        // plus one partial block a blob.
        let mapped = service.blobs.mapped_blocks();
        assert_eq!(
            mapped,
            self.written_blocks.len() as u64,
            "step {step}: blocks mapped"
        );
        assert!(
            mapped * BLOB_BLOCK_BYTES
                <= self.written_bytes + BLOB_BLOCK_BYTES * self.placed.len() as u64,
            "step {step}: {mapped} blocks mapped for {} bytes in {} blobs",
            self.written_bytes,
            self.placed.len()
        );

        // Hashing work: each file once, plus once more per repair round,
        // however its chunks arrived and whatever was replaced.
        let hashed = self.hashed_before_upgrades + service.hashing.absorbed;
        let bound: u64 = model
            .sessions
            .iter()
            .map(|s| (1 + u64::from(s.rounds)) * s.data.len() as u64)
            .sum();
        assert!(
            hashed <= bound,
            "step {step}: {hashed} bytes hashed, at most {bound} allowed"
        );
        assert!(model.sessions.iter().all(|s| s.rounds <= MAX_REPAIR_ROUNDS));

        // Quotas: per caller as the model says, within the limits.
        let mut totals = CallerUsage::default();
        let mut page = Vec::new();
        for p in 0..ANONYMOUS {
            let usage = model.usage(p);
            assert_eq!(
                service.stats(principal(p)).caller,
                usage,
                "step {step}: usage of {p}"
            );
            assert!(usage.open_sessions <= limits.max_open_sessions_per_caller);
            assert!(usage.reserved_bytes <= limits.max_reserved_bytes_per_caller);
            assert!(
                usage.reserved_bytes + usage.stored_bytes <= limits.max_stored_bytes_per_caller
            );
            totals.open_sessions += usage.open_sessions;
            totals.reserved_bytes += usage.reserved_bytes;
            totals.stored_bytes += usage.stored_bytes;
            if usage != CallerUsage::default() {
                page.push((principal(p), usage));
            }
            let open: Vec<SessionId> = service
                .open_uploads(principal(p), now)
                .iter()
                .map(|o| o.session_id)
                .collect();
            let expected: Vec<SessionId> = model
                .sessions
                .iter()
                .filter(|s| {
                    s.caller == p && s.holds_blob() && s.status_at(now) == SessionStatus::Pending
                })
                .map(|s| s.sid)
                .collect();
            assert_eq!(open, expected, "step {step}: open uploads of {p}");
        }
        page.sort_by_key(|(p, _)| *p);
        assert_eq!(service.usage_page(None, 1_000), page, "step {step}");
        let stats = service.stats(principal(0));
        assert_eq!(
            (
                stats.open_sessions,
                stats.reserved_bytes,
                stats.stored_bytes
            ),
            (
                u64::from(totals.open_sessions),
                totals.reserved_bytes,
                totals.stored_bytes
            ),
            "step {step}: totals"
        );
        assert!(stats.reserved_bytes + stats.stored_bytes <= limits.max_total_bytes);
        if let Some(cap) = limits.max_reserved_bytes_total {
            assert!(stats.reserved_bytes <= cap);
        }
        assert_eq!(
            stats.session_records,
            model.sessions.iter().filter(|s| !s.pruned).count() as u64
        );
        assert_eq!(
            stats.memories,
            model.memories.iter().filter(|m| m.live).count() as u64
        );
    }
}
