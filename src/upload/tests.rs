//! Native tests of the upload domain on `VectorMemory`.

use super::*;
use crate::limits::{self, Limits, HASH_BYTES_PER_MESSAGE};
use crate::testing::model;
use crate::testing::service::UploadService;
use candid::Principal;
use ic_stable_structures::VectorMemory;
use proptest::prelude::*;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

const HOUR: u64 = 3_600 * 1_000_000_000;

pub(crate) fn alice() -> Principal {
    Principal::from_slice(&[1; 29])
}

fn bob() -> Principal {
    Principal::from_slice(&[2; 29])
}

pub(crate) fn file(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn sha(data: &[u8]) -> ByteBuf {
    ByteBuf::from(Sha256::digest(data).to_vec())
}

/// A service with Alice's capsule.
pub(crate) struct Fixture {
    pub(crate) memory: VectorMemory,
    pub(crate) service: UploadService<VectorMemory>,
    pub(crate) capsule: CapsuleId,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let memory = VectorMemory::default();
        let mut service = UploadService::init(memory.clone());
        let capsule = service
            .create_capsule(alice(), 0, "family".into())
            .unwrap()
            .capsule_id;
        Self {
            memory,
            service,
            capsule,
        }
    }

    /// Drops the service and opens it again on the same stable memory, as
    /// an upgrade does (heap gone, stable memory kept).
    pub(crate) fn upgrade(&mut self) {
        self.service = UploadService::init(self.memory.clone());
    }

    pub(crate) fn begin(
        &mut self,
        data: &[u8],
        chunk: u32,
        key: &str,
    ) -> Result<UploadStarted, UploadError> {
        self.begin_as(alice(), data.len() as u64, chunk, key, 1)
    }

    pub(crate) fn begin_as(
        &mut self,
        who: Principal,
        len: u64,
        chunk: u32,
        key: &str,
        now: u64,
    ) -> Result<UploadStarted, UploadError> {
        self.service.begin(
            who,
            now,
            BeginUpload {
                capsule_id: self.capsule,
                asset: AssetMetadata {
                    name: "photo.jpg".into(),
                    mime_type: "image/jpeg".into(),
                    byte_len: len,
                    sha256: None,
                },
                chunk_size: chunk,
                expected_chunks: len.div_ceil(chunk as u64) as u32,
                idempotency_key: key.into(),
            },
        )
    }

    pub(crate) fn put(
        &mut self,
        sid: SessionId,
        data: &[u8],
        chunk: u32,
        index: u32,
        now: u64,
    ) -> Result<ChunkAccepted, UploadError> {
        let start = index as usize * chunk as usize;
        let end = (start + chunk as usize).min(data.len());
        self.put_as(alice(), sid, index, &data[start..end], now)
    }

    pub(crate) fn put_as(
        &mut self,
        who: Principal,
        sid: SessionId,
        index: u32,
        bytes: &[u8],
        now: u64,
    ) -> Result<ChunkAccepted, UploadError> {
        self.service.put_chunk(
            who,
            now,
            PutChunk {
                session_id: sid,
                index,
                bytes: ByteBuf::from(bytes.to_vec()),
                sha256: None,
            },
        )
    }

    pub(crate) fn finish(
        &mut self,
        sid: SessionId,
        data: &[u8],
        now: u64,
    ) -> Result<CommittedUpload, UploadError> {
        self.service.finish(
            alice(),
            now,
            FinishUpload {
                session_id: sid,
                sha256: sha(data),
                byte_len: data.len() as u64,
            },
        )
    }

    pub(crate) fn read_all(&self, memory_id: MemoryItemId, len: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let step = 1_000_000u64;
        let mut offset = 0;
        while offset < len {
            let length = step.min(len - offset);
            let part = self
                .service
                .read(
                    alice(),
                    ReadRange {
                        memory_id,
                        offset,
                        length,
                    },
                )
                .unwrap();
            out.extend_from_slice(&part);
            offset += length;
        }
        out
    }

    pub(crate) fn status(&self, sid: SessionId, now: u64) -> UploadStatus {
        self.service
            .status(
                alice(),
                now,
                StatusRequest {
                    session_id: sid,
                    from_chunk: 0,
                    max_ranges: 100,
                },
            )
            .unwrap()
    }
}

#[test]
fn out_of_order_upload_with_duplicates_reads_back_identical() {
    let mut fx = Fixture::new();
    let data = file(10_000, 7);
    let chunk = 1_024;
    let started = fx.begin(&data, chunk, "k1").unwrap();
    assert_eq!(started.expected_chunks, 10);
    let sid = started.session_id;
    for index in [9, 3, 0, 3, 1, 2, 8, 7, 9, 6, 5, 4] {
        fx.put(sid, &data, chunk, index, 2).unwrap();
    }
    let status = fx.status(sid, 3);
    assert_eq!((status.received_chunks, status.missing.len()), (10, 0));
    assert_eq!(
        status.hashed_bytes,
        data.len() as u64,
        "hashing caught up in file order"
    );
    let committed = fx.finish(sid, &data, 4).unwrap();
    assert_eq!(committed.memory_id, started.provisional_memory_id);
    assert_eq!(fx.read_all(committed.memory_id, data.len() as u64), data);
    assert_eq!(
        fx.finish(sid, &data, 5),
        Ok(committed.clone()),
        "finishing twice"
    );
    let usage = fx.service.stats(alice()).caller;
    let charged = (
        usage.open_sessions,
        usage.reserved_bytes,
        usage.stored_bytes,
    );
    assert_eq!(charged, (0, 0, 12_288), "charged in whole 4 KiB blocks");
}

#[test]
fn resume_lists_missing_ranges_and_survives_upgrade() {
    let mut fx = Fixture::new();
    let data = file(20 * 100, 1);
    let sid = fx.begin(&data, 100, "k").unwrap().session_id;
    for index in (0..20).filter(|i| i % 5 != 0) {
        fx.put(sid, &data, 100, index, 2).unwrap();
    }
    fx.upgrade();
    assert_eq!(fx.service.open_uploads(alice(), 3).len(), 1);
    let status = fx.status(sid, 3);
    let missing: Vec<(u32, u32)> = status.missing.iter().map(|r| (r.start, r.end)).collect();
    assert_eq!(missing, vec![(0, 1), (5, 6), (10, 11), (15, 16)]);
    let paged = fx
        .service
        .status(
            alice(),
            3,
            StatusRequest {
                session_id: sid,
                from_chunk: 6,
                max_ranges: 1,
            },
        )
        .unwrap();
    assert_eq!(
        (paged.missing[0].start, paged.next_from_chunk),
        (10, Some(15))
    );
    for range in status.missing {
        fx.put(sid, &data, 100, range.start, 4).unwrap();
    }
    fx.upgrade();
    let committed = fx.finish(sid, &data, 5).unwrap();
    fx.upgrade();
    assert_eq!(fx.read_all(committed.memory_id, data.len() as u64), data);
}

#[test]
fn hashing_catches_up_in_bounded_steps() {
    let mut fx = Fixture::new();
    let chunk = 1 << 20;
    let chunks = (HASH_BYTES_PER_MESSAGE / chunk as u64) as u32 * 2 + 3;
    let data = file(chunks as usize * chunk as usize, 3);
    let sid = fx.begin(&data, chunk, "big").unwrap().session_id;
    // Everything but chunk 0 first: nothing can be hashed yet.
    for index in (1..chunks).rev() {
        assert_eq!(fx.put(sid, &data, chunk, index, 2).unwrap().hashed_bytes, 0);
    }
    // Chunk 0 closes the gap; its message hashes itself plus at most the
    // per-message budget.
    let accepted = fx.put(sid, &data, chunk, 0, 3).unwrap();
    assert_eq!(accepted.hashed_bytes, chunk as u64 + HASH_BYTES_PER_MESSAGE);
    match fx.finish(sid, &data, 4) {
        Err(UploadError::VerificationPending {
            hashed_bytes,
            total_bytes,
        }) => {
            assert_eq!(hashed_bytes, chunk as u64 + 2 * HASH_BYTES_PER_MESSAGE);
            assert_eq!(total_bytes, data.len() as u64);
        }
        other => panic!("expected VerificationPending, got {other:?}"),
    }
    assert_eq!(
        fx.status(sid, 4).expires_at,
        Some(4 + Limits::default().session_idle_timeout_ns),
        "polling finish keeps the session alive"
    );
    let report = fx.service.maintenance(5);
    assert_eq!(report.hashed_bytes, 2 * chunk as u64);
    assert!(!report.more_work);
    assert!(fx.finish(sid, &data, 6).is_ok());
}

#[test]
fn checksum_mismatch_keeps_the_session_open_for_repair() {
    let mut fx = Fixture::new();
    let data = file(4_000, 9);
    let mut corrupt = data.clone();
    corrupt[2_500] ^= 0xff;
    let sid = fx.begin(&data, 1_000, "k").unwrap().session_id;
    for index in 0..4 {
        fx.put(sid, &corrupt, 1_000, index, 2).unwrap();
    }
    match fx.finish(sid, &data, 3) {
        Err(UploadError::ChecksumMismatch { actual, .. }) => assert_eq!(actual, sha(&corrupt)),
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    let status = fx.status(sid, 3);
    assert_eq!(
        (status.status, status.repairing),
        (SessionStatus::Pending, true)
    );
    // The client finds the bad chunk by comparing per-chunk hashes.
    let bad: Vec<u32> = (0..4)
        .filter(|&i| {
            fx.service.chunk_sha256(alice(), 4, sid, i).unwrap()
                != sha(&data[i as usize * 1_000..(i as usize + 1) * 1_000])
        })
        .collect();
    assert_eq!(bad, vec![2]);
    assert!(fx.put(sid, &data, 1_000, 2, 4).unwrap().newly_stored);
    let committed = fx.finish(sid, &data, 5).unwrap();
    assert_eq!(fx.read_all(committed.memory_id, 4_000), data);
}

#[test]
fn chunk_errors_are_precise_and_change_nothing() {
    let mut fx = Fixture::new();
    let data = file(2_500, 4);
    let sid = fx.begin(&data, 1_000, "k").unwrap().session_id;
    fx.put(sid, &data, 1_000, 0, 2).unwrap();
    let before = fx.status(sid, 2);
    let wrong = fx.service.put_chunk(
        alice(),
        3,
        PutChunk {
            session_id: sid,
            index: 1,
            bytes: ByteBuf::from(data[1_000..2_000].to_vec()),
            sha256: Some(sha(b"x")),
        },
    );
    assert!(matches!(
        wrong,
        Err(UploadError::ChunkChecksumMismatch { index: 1, .. })
    ));
    assert_eq!(
        fx.put_as(alice(), sid, 3, &data[..500], 3),
        Err(UploadError::IndexOutOfRange {
            index: 3,
            expected_chunks: 3
        })
    );
    assert_eq!(
        fx.put_as(alice(), sid, 2, &data[..501], 3),
        Err(UploadError::WrongChunkLength {
            index: 2,
            expected: 500,
            actual: 501
        })
    );
    assert_eq!(
        fx.put_as(alice(), sid, 0, &data[1..1_001], 3),
        Err(UploadError::ChunkConflict { index: 0 })
    );
    assert_eq!(
        fx.put_as(bob(), sid, 1, &data[1_000..2_000], 3),
        Err(UploadError::NotAuthorized)
    );
    assert_eq!(
        fx.put_as(Principal::anonymous(), sid, 1, &data[1_000..2_000], 3),
        Err(UploadError::AnonymousCaller)
    );
    assert_eq!(
        fx.put_as(alice(), SessionId(999), 1, &data[1_000..2_000], 3),
        Err(UploadError::SessionNotFound {
            session_id: SessionId(999)
        })
    );
    let oversized = vec![0u8; limits::MAX_CHUNK_BYTES as usize + 1];
    assert!(matches!(
        fx.put_as(alice(), sid, 1, &oversized, 3),
        Err(UploadError::QuotaExceeded {
            quota: Quota::ChunkBytes,
            ..
        })
    ));
    assert_eq!(
        fx.finish(sid, &data, 3),
        Err(UploadError::Incomplete { missing_chunks: 2 })
    );
    let after = fx.status(sid, 3);
    assert_eq!(
        (
            after.received_chunks,
            after.missing.clone(),
            after.hashed_bytes
        ),
        (before.received_chunks, before.missing, before.hashed_bytes)
    );
    fx.put(sid, &data, 1_000, 1, 4).unwrap();
    fx.put(sid, &data, 1_000, 2, 4).unwrap();
    let mut wrong_len = data.clone();
    wrong_len.push(0);
    assert!(matches!(
        fx.finish(sid, &wrong_len, 5),
        Err(UploadError::DeclaredValuesDisagree { .. })
    ));
    assert!(fx.finish(sid, &data, 5).is_ok());
}

#[test]
fn begin_validates_declarations_and_is_idempotent() {
    let mut fx = Fixture::new();
    let bad_count = fx.service.begin(
        alice(),
        1,
        BeginUpload {
            capsule_id: fx.capsule,
            asset: AssetMetadata {
                name: "a".into(),
                mime_type: "text/plain".into(),
                byte_len: 10,
                sha256: None,
            },
            chunk_size: 4,
            expected_chunks: 2,
            idempotency_key: "k".into(),
        },
    );
    assert!(matches!(
        bad_count,
        Err(UploadError::DeclaredValuesDisagree {
            declared: 2,
            actual: 3,
            ..
        })
    ));
    let first = fx.begin_as(alice(), 10, 4, "k", 1).unwrap();
    let again = fx.begin_as(alice(), 10, 4, "k", 2).unwrap();
    assert_eq!(first, again);
    assert_eq!(
        fx.begin_as(alice(), 11, 4, "k", 2),
        Err(UploadError::IdempotencyConflict {
            session_id: first.session_id
        })
    );
    assert_eq!(fx.service.stats(alice()).caller.open_sessions, 1);
    assert_eq!(
        fx.begin_as(Principal::anonymous(), 10, 4, "k", 1),
        Err(UploadError::AnonymousCaller)
    );
    assert_eq!(
        fx.begin_as(bob(), 10, 4, "k", 1),
        Err(UploadError::NotAuthorized)
    );
}

#[test]
fn quotas_are_enforced_at_the_door() {
    let mut fx = Fixture::new();
    let limits = Limits {
        max_open_sessions_per_caller: 2,
        max_file_bytes: 10_000,
        max_total_bytes: 20_000,
        max_capsules_per_owner: 2,
        ..Limits::default()
    };
    assert_eq!(
        fx.service.set_limits(false, limits.clone()),
        Err(UploadError::NotAuthorized)
    );
    fx.service.set_limits(true, limits.clone()).unwrap();
    let quota = |result: Result<UploadStarted, UploadError>| match result {
        Err(UploadError::QuotaExceeded { quota, .. }) => Some(quota),
        _ => None,
    };
    assert_eq!(
        quota(fx.begin_as(alice(), 10_001, 100, "a", 1)),
        Some(Quota::FileBytes)
    );
    // Quotas count whole 4 KiB blocks: 10 000 bytes are charged 12 288.
    fx.begin_as(alice(), 10_000, 100, "b", 1).unwrap();
    assert_eq!(fx.service.stats(alice()).caller.reserved_bytes, 12_288);
    assert_eq!(
        quota(fx.begin_as(alice(), 6_000, 100, "c", 1)),
        Some(Quota::TotalBytes)
    );
    fx.begin_as(alice(), 10, 100, "d", 1).unwrap();
    assert_eq!(
        quota(fx.begin_as(alice(), 10, 100, "e", 1)),
        Some(Quota::OpenSessionsPerCaller)
    );
    assert_eq!(
        quota(fx.begin_as(alice(), 10, limits::MAX_CHUNK_BYTES + 1, "f", 1)),
        Some(Quota::ChunkBytes)
    );
    let tight = Limits {
        max_stored_bytes_per_caller: 16_384,
        ..limits.clone()
    };
    fx.service.set_limits(true, tight).unwrap();
    fx.service
        .abort(
            alice(),
            2,
            fx.service.open_uploads(alice(), 2)[1].session_id,
        )
        .unwrap();
    assert_eq!(
        quota(fx.begin_as(alice(), 4_097, 100, "g", 2)),
        Some(Quota::StoredBytesPerCaller)
    );
    // One capsule exists (the fixture's); a second is allowed, a third not.
    fx.service
        .create_capsule(alice(), 2, "second".into())
        .unwrap();
    assert!(matches!(
        fx.service.create_capsule(alice(), 2, "third".into()),
        Err(UploadError::QuotaExceeded {
            quota: Quota::CapsulesPerOwner,
            ..
        })
    ));
    let absurd = Limits {
        max_chunks_per_session: u32::MAX,
        ..limits
    };
    assert!(matches!(
        fx.service.set_limits(true, absurd),
        Err(UploadError::InvalidArgument { .. })
    ));
}

#[test]
fn idle_sessions_expire_and_their_space_is_reused() {
    let mut fx = Fixture::new();
    let data = file(50_000, 2);
    let sid = fx.begin(&data, 10_000, "k").unwrap().session_id;
    fx.put(sid, &data, 10_000, 0, HOUR).unwrap();
    let high_water = fx.service.stats(alice()).high_water_bytes;
    let idle = Limits::default().session_idle_timeout_ns;
    assert_eq!(
        fx.service.maintenance(HOUR + idle - 1).expired,
        0,
        "a chunk refreshed the deadline"
    );
    fx.upgrade();
    assert_eq!(fx.service.maintenance(HOUR + idle).expired, 1);
    assert_eq!(fx.status(sid, HOUR + idle).status, SessionStatus::Expired);
    assert_eq!(
        fx.put(sid, &data, 10_000, 1, HOUR + idle),
        Err(UploadError::SessionExpired { session_id: sid })
    );
    // The same request under the same key names the expired session.
    assert_eq!(
        fx.begin_as(alice(), 50_000, 10_000, "k", HOUR + idle),
        Err(UploadError::SessionExpired { session_id: sid })
    );
    let stats = fx.service.stats(alice());
    assert_eq!(
        (stats.used_bytes, stats.reserved_bytes, stats.open_sessions),
        (0, 0, 0)
    );
    let next = fx
        .begin_as(alice(), 50_000, 10_000, "k2", HOUR + idle)
        .unwrap();
    assert_eq!(
        fx.service.stats(alice()).high_water_bytes,
        high_water,
        "space reused"
    );
    // Finished records are pruned after the retention period, keys with them.
    let retention = Limits::default().finished_retention_ns;
    assert_eq!(fx.service.maintenance(HOUR + idle + retention).pruned, 1);
    assert_eq!(
        fx.service
            .status(
                alice(),
                0,
                StatusRequest {
                    session_id: sid,
                    from_chunk: 0,
                    max_ranges: 1
                }
            )
            .unwrap_err(),
        UploadError::SessionNotFound { session_id: sid }
    );
    assert_eq!(
        fx.begin_as(alice(), 50_000, 10_000, "k", HOUR + idle + retention)
            .unwrap()
            .session_id
            .0,
        next.session_id.0 + 1
    );
}

#[test]
fn writers_upload_until_revoked_and_deletion_frees_space() {
    let mut fx = Fixture::new();
    let capsule = fx.capsule;
    assert_eq!(
        fx.service.grant_write(bob(), capsule, bob()),
        Err(UploadError::NotAuthorized)
    );
    fx.service.grant_write(alice(), capsule, bob()).unwrap();
    let data = file(300, 5);
    let sid = fx.begin_as(bob(), 300, 100, "bob", 1).unwrap().session_id;
    fx.put_as(bob(), sid, 0, &data[..100], 2).unwrap();
    fx.service.revoke_write(alice(), capsule, bob()).unwrap();
    assert_eq!(
        fx.put_as(bob(), sid, 1, &data[100..200], 3),
        Err(UploadError::NotAuthorized)
    );
    assert_eq!(
        fx.begin_as(bob(), 300, 100, "bob2", 1),
        Err(UploadError::NotAuthorized)
    );
    fx.service.abort(bob(), 4, sid).unwrap();
    fx.service.abort(bob(), 5, sid).unwrap();

    let sid = fx.begin(&data, 100, "mine").unwrap().session_id;
    for index in 0..3 {
        fx.put(sid, &data, 100, index, 6).unwrap();
    }
    let committed = fx.finish(sid, &data, 7).unwrap();
    let page = fx
        .service
        .list_memories(
            alice(),
            ListMemories {
                capsule_id: capsule,
                after: None,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(page.memories.len(), 1);
    assert_eq!(
        fx.service.memory(bob(), committed.memory_id),
        Err(UploadError::NotAuthorized)
    );
    assert!(fx.service.stats(alice()).used_bytes > 0);
    fx.service
        .delete_memory(alice(), committed.memory_id)
        .unwrap();
    let stats = fx.service.stats(alice());
    assert_eq!(
        (stats.used_bytes, stats.stored_bytes, stats.memories),
        (0, 0, 0)
    );
}

#[test]
fn empty_files_commit() {
    let mut fx = Fixture::new();
    let sid = fx.begin(&[], 100, "empty").unwrap().session_id;
    let committed = fx.finish(sid, &[], 2).unwrap();
    assert_eq!(
        (committed.byte_len, committed.sha256.clone()),
        (0, sha(&[]))
    );
}

proptest! {
    // 256 cases of up to 150 steps (a few seconds); `PROPTEST_CASES` runs
    // more.
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Several principals begin, send chunks in any order (duplicates,
    /// corrupt bytes, wrong lengths and checksums), finish with right and
    /// wrong hashes, abort, delete, change access, let time pass, run
    /// maintenance and upgrade; every reply is the model's and every
    /// invariant of `model` holds after each step.
    #[test]
    fn uploads_match_the_model(ops in proptest::collection::vec(model::op_strategy(), 1..150)) {
        model::Harness::run(&ops);
    }
}

#[test]
fn reservations_cost_no_stable_memory_until_bytes_arrive() {
    let mut fx = Fixture::new();
    let before = ic_stable_structures::Memory::size(&fx.memory);
    let sid = fx
        .begin_as(alice(), 4 << 30, 1_000_000, "huge", 1)
        .unwrap()
        .session_id;
    let reserved = ic_stable_structures::Memory::size(&fx.memory);
    assert!(
        (reserved - before) * 65_536 < 64 << 20,
        "a 4 GiB reservation grew stable memory by {} pages",
        reserved - before
    );
    let chunk = vec![5u8; 1_000_000];
    fx.put_as(alice(), sid, 3, &chunk, 2).unwrap();
    let written = ic_stable_structures::Memory::size(&fx.memory);
    assert!(
        (written - reserved) * 65_536 < 64 << 20,
        "one chunk grows memory by about a chunk"
    );
}

#[test]
fn writers_delete_only_what_they_uploaded() {
    let mut fx = Fixture::new();
    fx.service.grant_write(alice(), fx.capsule, bob()).unwrap();
    let data = file(100, 1);
    let sid = fx.begin(&data, 100, "a").unwrap().session_id;
    fx.put(sid, &data, 100, 0, 2).unwrap();
    let owners = fx.finish(sid, &data, 3).unwrap().memory_id;
    assert_eq!(
        fx.service.delete_memory(bob(), owners),
        Err(UploadError::NotAuthorized)
    );
    let sid = fx.begin_as(bob(), 100, 100, "b", 4).unwrap().session_id;
    fx.put_as(bob(), sid, 0, &data, 5).unwrap();
    let bobs = fx
        .service
        .finish(
            bob(),
            6,
            FinishUpload {
                session_id: sid,
                sha256: sha(&data),
                byte_len: 100,
            },
        )
        .unwrap()
        .memory_id;
    fx.service.delete_memory(bob(), bobs).unwrap();
    fx.service.delete_memory(alice(), owners).unwrap();
}

#[test]
fn a_replaced_chunk_marks_the_hash_stale_until_finish() {
    let mut fx = Fixture::new();
    let data = file(3_000, 3);
    let mut corrupt = data.clone();
    corrupt[2_000] ^= 1;
    let sid = fx.begin(&data, 1_000, "k").unwrap().session_id;
    for index in 0..3 {
        fx.put(sid, &corrupt, 1_000, index, 2).unwrap();
    }
    assert!(matches!(
        fx.finish(sid, &data, 3),
        Err(UploadError::ChecksumMismatch { .. })
    ));
    let replaced = fx.put(sid, &data, 1_000, 2, 4).unwrap();
    assert_eq!(
        replaced.hashed_bytes, 0,
        "the message that replaced a chunk reads nothing back"
    );
    // Nothing is re-hashed until finish asks for it.
    assert!(!fx.service.has_hashing_backlog());
    assert_eq!(fx.service.maintenance(5).hashed_bytes, 0);
    assert_eq!(fx.status(sid, 5).hashed_bytes, 0);
    // Replacing it again and again costs no hashing either.
    fx.put(sid, &corrupt, 1_000, 2, 5).unwrap();
    fx.put(sid, &data, 1_000, 2, 5).unwrap();
    assert_eq!(fx.service.maintenance(5).hashed_bytes, 0);
    // Finish re-hashes the file once (it is small: in the same message).
    fx.finish(sid, &data, 6).unwrap();
}

/// A session record as stored by this version. Decoding it must keep
/// working after any change to the record types, or upgraded canisters
/// lose their open uploads; re-encoding pins the current layout.
const STORED_SESSION_HEX: &str = "4449444c076c0adbb70178b2ceef2f01b7fff5810178c595e5c20402bbbce3e2040684f89f9005799891bea00678aaacd9d00678f18f9a830f0593b099de0f7e6b049cc4bf6d7f858fee950f7fefafe6980f7fb780f7c90f7f6c07f0d3e5b10203ed8eb9c40378bdd9b0a204788ba9a1b70b68da8289d90b789396eac50d79f18f9a830f716c04e7c8eae70104cbe4fdc70471dea7c3a70578e5a88eea05716e056d7b6c03f09c83d90478bdc4a5c009799396eac50d790100070000000000000003c8000000000000000120090909090909090909090909090909090909090909090909090909090909090905612e6a70670a000000000000000a696d6167652f6a70656703000000000000000600000000000000011d0101010101010101010101010101010101010101010101010101010101050000000000000004000000036b65790a000000000000000300000004000000020000002c01000000000000640000000000000020010101010101010101010101010101010101010101010101010101010101010100";

fn sample_session() -> UploadSession {
    use crate::session::{ChunkSpec, IdempotencyKey, Session};
    Session {
        id: SessionId(7),
        meta: UploadSessionMeta {
            capsule_id: CapsuleId(3),
            caller: alice(),
            idempotency_key: "key".into(),
            asset: AssetMetadata {
                name: "a.jpg".into(),
                mime_type: "image/jpeg".into(),
                byte_len: 10,
                sha256: Some(ByteBuf::from(vec![9; 32])),
            },
            chunk_size: 4,
            provisional_memory_id: MemoryItemId(5),
            blob_id: BlobId(6),
        },
        spec: ChunkSpec::new(10, 4, 3).unwrap(),
        idempotency_key: IdempotencyKey([1; 32]),
        status: SessionStatus::Pending,
        created_at: 100,
        updated_at: 200,
        deadline: 300,
        received_chunks: 2,
        rewritable: false,
    }
}

#[test]
fn stored_session_layout_is_pinned() {
    use ic_stable_structures::Storable;
    let encoded: String = sample_session()
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stored: Vec<u8> = (0..STORED_SESSION_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&STORED_SESSION_HEX[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(
        UploadSession::from_bytes(std::borrow::Cow::Owned(stored)),
        sample_session()
    );
    assert_eq!(
        encoded, STORED_SESSION_HEX,
        "the stored layout changed: keep old records decodable"
    );
}
