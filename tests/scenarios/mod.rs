//! The scenario suite: what users of the upload canister rely on, written
//! once against `IcEnv` and run on the embedded host (`tests/embedded.rs`)
//! and on PocketIC (`tests/pocketic`).

#![allow(dead_code)]

use backend::limits::{Limits, MAX_CHUNK_BYTES};
use backend::upload::*;
use candid::Principal;
use std::time::Duration;
use upload_harness::client::{err, ok, sha256, test_file, UploadClient};
use upload_harness::{backend_wasm, user, IcEnv};

/// A scenario: `Ok` when it held, `Err(reason)` when the environment cannot
/// run it (said, never passed silently). Broken promises panic.
pub type Outcome = Result<(), String>;

/// A scenario run against one environment.
pub type Scenario = fn(&mut dyn IcEnv) -> Outcome;

/// Every scenario, by name.
pub const ALL: &[(&str, Scenario)] = &[
    (
        "out_of_order_upload_reads_back",
        out_of_order_upload_reads_back,
    ),
    (
        "resume_sends_only_missing_chunks",
        resume_sends_only_missing_chunks,
    ),
    (
        "user_errors_are_precise_and_change_nothing",
        user_errors_are_precise_and_change_nothing,
    ),
    ("upgrade_mid_upload_resumes", upgrade_mid_upload_resumes),
    (
        "trap_after_write_leaves_no_trace",
        trap_after_write_leaves_no_trace,
    ),
    (
        "expired_sessions_are_swept_and_space_reused",
        expired_sessions_are_swept_and_space_reused,
    ),
    (
        "large_file_within_message_limits",
        large_file_within_message_limits,
    ),
    ("writers_upload_until_revoked", writers_upload_until_revoked),
    (
        "checksum_mismatch_then_repair",
        checksum_mismatch_then_repair,
    ),
    (
        "thumbnails_make_a_gallery_page_a_query",
        thumbnails_make_a_gallery_page_a_query,
    ),
];

const ALICE: u8 = 1;
const BOB: u8 = 2;

/// Installs the canister and gives Alice a capsule.
fn setup(env: &mut dyn IcEnv) -> (Principal, CapsuleId) {
    let canister = env.install(backend_wasm());
    let capsule = UploadClient::new(env, canister, user(ALICE))
        .create_capsule("family")
        .expect("call")
        .expect("capsule")
        .capsule_id;
    (canister, capsule)
}

/// A call the canister refuses in `canister_inspect_message`, before
/// executing it, with a reject naming `reason`. Where ingress skips
/// inspect_message (`filters_ingress` false: PocketIC's may), the update
/// itself must answer with `update_error`.
fn refused<T: std::fmt::Debug>(
    reply: Result<Result<T, UploadError>, String>,
    filters_ingress: bool,
    reason: &str,
    update_error: UploadError,
) {
    match reply {
        Err(message) => assert!(message.contains(reason), "{message}"),
        Ok(answer) => {
            assert!(
                !filters_ingress,
                "expected a refusal naming {reason:?}, got {answer:?}"
            );
            assert_eq!(answer.expect_err("expected an error"), update_error);
        }
    }
}

/// Whether `env` is known to run `canister_inspect_message` for ingress.
fn filters_ingress(env: &dyn IcEnv) -> bool {
    env.name() == "embedded host"
}

/// Deterministic shuffle, so failures reproduce.
fn shuffled(n: u32, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n).collect();
    let mut state = seed | 1;
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

pub fn out_of_order_upload_reads_back(env: &mut dyn IcEnv) -> Outcome {
    let (canister, capsule) = setup(env);
    let mut alice = UploadClient::new(env, canister, user(ALICE));
    let chunk = 64 * 1024;
    let data = test_file(40 * chunk as usize + 123, 1);
    let started = ok(alice.begin(capsule, "video.mp4", data.len() as u64, chunk, "k1"));
    assert_eq!(started.expected_chunks, 41);
    // A retried begin (lost reply) gets the same session.
    assert_eq!(
        ok(alice.begin(capsule, "video.mp4", data.len() as u64, chunk, "k1")),
        started
    );
    let sid = started.session_id;
    let order = shuffled(41, 7);
    for (n, &index) in order.iter().enumerate() {
        let accepted = ok(alice.put_chunk_of(sid, &data, chunk, index));
        assert!(accepted.newly_stored);
        if n % 5 == 0 {
            // A retry whose first reply was lost: same bytes, no change.
            let again = ok(alice.put_chunk_of(sid, &data, chunk, index));
            assert!(!again.newly_stored);
            assert_eq!(again.received_chunks, accepted.received_chunks);
        }
    }
    let committed = match alice.finish(sid, &data).expect("transport") {
        Ok(done) => done,
        Err(UploadError::VerificationPending { .. }) => {
            alice.env.tick();
            ok(alice.finish(sid, &data))
        }
        Err(other) => panic!("finish failed: {other:?}"),
    };
    assert_eq!(committed.memory_id, started.provisional_memory_id);
    assert_eq!(committed.sha256.as_slice(), sha256(&data));
    assert_eq!(
        ok(alice.finish(sid, &data)),
        committed,
        "finishing twice returns the same"
    );
    assert_eq!(
        alice
            .read_all(committed.memory_id, data.len() as u64)
            .expect("read"),
        data
    );
    let record = ok(alice.memory(committed.memory_id));
    assert_eq!(
        (record.byte_len, record.name.as_str()),
        (data.len() as u64, "video.mp4")
    );
    Ok(())
}

pub fn resume_sends_only_missing_chunks(env: &mut dyn IcEnv) -> Outcome {
    let (canister, capsule) = setup(env);
    let mut alice = UploadClient::new(env, canister, user(ALICE));
    let chunk = 10_000;
    let data = test_file(300 * chunk as usize, 2);
    let sid = ok(alice.begin(capsule, "a.bin", data.len() as u64, chunk, "r")).session_id;
    // The connection drops: only some chunks made it.
    let sent: Vec<u32> = (0..300)
        .filter(|i| i % 7 != 3 && !(100..180).contains(i))
        .collect();
    for &index in &sent {
        ok(alice.put_chunk_of(sid, &data, chunk, index));
    }
    // A reloaded page finds its open upload and asks what is missing.
    let open = alice.open_uploads().expect("uploads_mine");
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].session_id, open[0].received_chunks),
        (sid, sent.len() as u32)
    );
    let first_page = ok(alice.status(sid, 0, 3));
    assert_eq!(first_page.missing.len(), 3, "the reply is paginated");
    assert!(first_page.next_from_chunk.is_some());
    let missing = alice.missing_chunks(sid).expect("status");
    let expected: Vec<u32> = (0..300).filter(|i| !sent.contains(i)).collect();
    assert_eq!(missing, expected);
    for &index in &missing {
        assert!(
            ok(alice.put_chunk_of(sid, &data, chunk, index)).newly_stored,
            "only missing chunks are sent"
        );
    }
    assert!(alice.missing_chunks(sid).expect("status").is_empty());
    let committed = ok(alice.finish(sid, &data));
    assert_eq!(
        alice
            .read_all(committed.memory_id, data.len() as u64)
            .expect("read"),
        data
    );
    assert!(alice.open_uploads().expect("uploads_mine").is_empty());
    Ok(())
}

pub fn user_errors_are_precise_and_change_nothing(env: &mut dyn IcEnv) -> Outcome {
    let (canister, capsule) = setup(env);
    let filters = filters_ingress(env);
    let mut alice = UploadClient::new(env, canister, user(ALICE));
    let chunk = 1_000;
    let data = test_file(3_500, 3);
    let sid = ok(alice.begin(capsule, "x", 3_500, chunk, "e")).session_id;
    ok(alice.put_chunk_of(sid, &data, chunk, 0));
    let before = ok(alice.status(sid, 0, 10));
    let stats_before = alice.stats().expect("stats");

    let mut wrong = data.clone();
    wrong[0] ^= 1;
    assert_eq!(
        err(alice.put_chunk_of(sid, &wrong, chunk, 0)),
        UploadError::ChunkConflict { index: 0 }
    );
    ok(alice.put_chunk_of(sid, &data, chunk, 1));
    ok(alice.put_chunk_of(sid, &data, chunk, 2));
    // Missing chunk 3.
    assert_eq!(
        err(alice.finish(sid, &data)),
        UploadError::Incomplete { missing_chunks: 1 }
    );
    // Wrong length, a chunk past the end, an oversized chunk.
    assert_eq!(
        err(alice.put_chunk(sid, 3, &data[..600])),
        UploadError::WrongChunkLength {
            index: 3,
            expected: 500,
            actual: 600
        }
    );
    assert_eq!(
        err(alice.put_chunk(sid, 4, &data[..500])),
        UploadError::IndexOutOfRange {
            index: 4,
            expected_chunks: 4
        }
    );
    let oversized = vec![7u8; MAX_CHUNK_BYTES as usize + 1];
    assert!(matches!(
        err(alice.put_chunk(sid, 3, &oversized)),
        UploadError::QuotaExceeded {
            quota: Quota::ChunkBytes,
            ..
        }
    ));
    // A chunk whose own SHA-256 does not match (corrupted in transit).
    assert!(matches!(
        err(alice.put_chunk_checked(sid, 3, &data[3_000..], Some([0; 32]))),
        UploadError::ChunkChecksumMismatch { index: 3, .. }
    ));
    // Unknown session, another principal's session, the anonymous principal.
    assert_eq!(
        err(alice.put_chunk(SessionId(9_999), 0, &data[..1_000])),
        UploadError::SessionNotFound {
            session_id: SessionId(9_999)
        }
    );
    assert_eq!(
        err(alice.as_caller(user(BOB)).put_chunk(sid, 3, &data[3_000..])),
        UploadError::NotAuthorized
    );
    assert_eq!(
        err(alice.as_caller(user(BOB)).status(sid, 0, 1)),
        UploadError::NotAuthorized
    );
    // The anonymous principal is refused before execution; the updates
    // check again (unit tests), as inspect_message is no security boundary.
    refused(
        alice
            .as_caller(Principal::anonymous())
            .put_chunk(sid, 3, &data[3_000..]),
        filters,
        "anonymous principal may not call",
        UploadError::AnonymousCaller,
    );
    refused(
        alice.as_caller(Principal::anonymous()).create_capsule("c"),
        filters,
        "anonymous principal may not call",
        UploadError::AnonymousCaller,
    );
    // Declarations that disagree.
    let mut request = BeginUpload {
        capsule_id: capsule,
        asset: AssetMetadata {
            name: "d".into(),
            mime_type: "m".into(),
            byte_len: 10,
            sha256: None,
        },
        chunk_size: 4,
        expected_chunks: 2,
        idempotency_key: "d".into(),
    };
    assert!(matches!(
        err(alice.begin_request(request.clone())),
        UploadError::DeclaredValuesDisagree {
            declared: 2,
            actual: 3,
            ..
        }
    ));
    request.expected_chunks = 3;
    request.asset.name = "x".into();
    request.idempotency_key = "e".into();
    assert_eq!(
        err(alice.begin_request(request)),
        UploadError::IdempotencyConflict { session_id: sid }
    );

    let mut after = ok(alice.status(sid, 0, 10));
    assert_eq!(after.received_chunks, 3);
    after.received_chunks = before.received_chunks;
    after.missing = before.missing.clone();
    after.hashed_bytes = before.hashed_bytes;
    after.expires_at = before.expires_at;
    assert_eq!(after, before, "nothing else changed");
    let stats_after = alice.stats().expect("stats");
    assert_eq!(
        (stats_after.used_bytes, stats_after.open_sessions),
        (stats_before.used_bytes, stats_before.open_sessions)
    );

    ok(alice.put_chunk_of(sid, &data, chunk, 3));
    let mut wrong_hash = sha256(&data);
    wrong_hash[0] ^= 1;
    assert!(matches!(
        err(alice.finish_with(sid, wrong_hash, 3_500)),
        UploadError::ChecksumMismatch { .. }
    ));
    assert!(matches!(
        err(alice.finish_with(sid, sha256(&data), 3_501)),
        UploadError::DeclaredValuesDisagree { .. }
    ));
    ok(alice.finish(sid, &data));
    Ok(())
}

pub fn upgrade_mid_upload_resumes(env: &mut dyn IcEnv) -> Outcome {
    let (canister, capsule) = setup(env);
    let chunk = 100_000;
    let first = test_file(25 * chunk as usize, 4);
    let second = test_file(12 * chunk as usize + 5, 5);
    let committed = {
        let mut alice = UploadClient::new(env, canister, user(ALICE));
        let sid = ok(alice.begin(capsule, "first", first.len() as u64, chunk, "u1")).session_id;
        for index in 0..25 {
            ok(alice.put_chunk_of(sid, &first, chunk, index));
        }
        ok(alice.finish(sid, &first))
    };
    let sid = {
        let mut alice = UploadClient::new(env, canister, user(ALICE));
        let sid = ok(alice.begin(capsule, "second", second.len() as u64, chunk, "u2")).session_id;
        for index in (0..13).filter(|i| i % 2 == 0) {
            ok(alice.put_chunk_of(sid, &second, chunk, index));
        }
        sid
    };
    env.upgrade(canister, backend_wasm()).expect("upgrade");
    let mut alice = UploadClient::new(env, canister, user(ALICE));
    assert_eq!(
        alice.open_uploads().expect("mine").len(),
        1,
        "the half-finished session survived"
    );
    for index in alice.missing_chunks(sid).expect("status") {
        ok(alice.put_chunk_of(sid, &second, chunk, index));
    }
    let second_committed = ok(alice.finish(sid, &second));
    for _ in 0..3 {
        alice
            .env
            .upgrade(canister, backend_wasm())
            .expect("upgrade");
        assert_eq!(
            alice
                .read_all(committed.memory_id, first.len() as u64)
                .expect("read"),
            first
        );
        assert_eq!(
            alice
                .read_all(second_committed.memory_id, second.len() as u64)
                .expect("read"),
            second
        );
        assert_eq!(ok(alice.finish(sid, &second)), second_committed);
    }
    // Counters survived too: ids are not reused after upgrades.
    let next = ok(alice.begin(capsule, "third", 10, 10, "u3"));
    assert!(
        next.session_id.0 > sid.0 && next.provisional_memory_id.0 > second_committed.memory_id.0
    );
    Ok(())
}

pub fn trap_after_write_leaves_no_trace(env: &mut dyn IcEnv) -> Outcome {
    let (canister, capsule) = setup(env);
    let chunk = 1_000_000;
    let data = test_file(3 * chunk as usize, 6);
    let mut alice = UploadClient::new(env, canister, user(ALICE));
    let sid = ok(alice.begin(capsule, "t", data.len() as u64, chunk, "t")).session_id;
    ok(alice.put_chunk_of(sid, &data, chunk, 0));
    let full_cost = alice.env.last_instructions();
    let before = ok(alice.status(sid, 0, 10));
    let stats_before = alice.stats().expect("stats");
    // Run out of instructions half-way through the next chunk: after its
    // bytes were written to stable memory, before its hash was absorbed.
    let Some(full_cost) = full_cost else {
        return Err("cannot lower the instruction limit here".into());
    };
    if !alice.env.limit_update_instructions(Some(full_cost / 2)) {
        return Err("cannot lower the instruction limit here".into());
    }
    let trapped = alice.put_chunk_of(sid, &data, chunk, 1);
    alice.env.limit_update_instructions(None);
    let message = trapped.expect_err("the message must fail");
    assert!(message.to_lowercase().contains("instruction"), "{message}");
    assert_eq!(
        ok(alice.status(sid, 0, 10)),
        before,
        "no trace in the session"
    );
    assert_eq!(
        alice.stats().expect("stats"),
        stats_before,
        "no trace in the totals"
    );
    // The same chunk then goes through and the file verifies.
    assert!(ok(alice.put_chunk_of(sid, &data, chunk, 1)).newly_stored);
    ok(alice.put_chunk_of(sid, &data, chunk, 2));
    let committed = ok(alice.finish(sid, &data));
    assert_eq!(
        alice
            .read_all(committed.memory_id, data.len() as u64)
            .expect("read"),
        data
    );
    Ok(())
}

pub fn expired_sessions_are_swept_and_space_reused(env: &mut dyn IcEnv) -> Outcome {
    let (canister, capsule) = setup(env);
    let filters = filters_ingress(env);
    let controller = env.controller();
    let idle = Duration::from_secs(600);
    let limits = Limits {
        session_idle_timeout_ns: idle.as_nanos() as u64,
        ..Limits::default()
    };
    refused(
        UploadClient::new(env, canister, user(ALICE)).set_limits(limits.clone()),
        filters,
        "only controllers",
        UploadError::NotAuthorized,
    );
    ok(UploadClient::new(env, canister, controller).set_limits(limits));
    let mut alice = UploadClient::new(env, canister, user(ALICE));
    let chunk = 256 * 1024;
    let data = test_file(8 * chunk as usize, 7);
    let sid = ok(alice.begin(capsule, "abandoned", data.len() as u64, chunk, "x1")).session_id;
    ok(alice.put_chunk_of(sid, &data, chunk, 0));
    let reserved = alice.stats().expect("stats");
    assert!(reserved.used_bytes >= data.len() as u64);
    // Activity refreshes the deadline.
    alice.env.advance_time(idle / 2);
    ok(alice.put_chunk_of(sid, &data, chunk, 1));
    alice.env.advance_time(idle / 2 + Duration::from_secs(1));
    alice.env.tick();
    assert_eq!(
        ok(alice.status(sid, 0, 1)).status,
        SessionStatus::Pending,
        "refreshed by the chunk"
    );
    alice.env.advance_time(idle);
    // The sweep runs every minute; give it two.
    for _ in 0..2 {
        alice.env.advance_time(Duration::from_secs(61));
        alice.env.tick();
    }
    let status = ok(alice.status(sid, 0, 1));
    assert_eq!(status.status, SessionStatus::Expired);
    let swept = alice.stats().expect("stats");
    assert_eq!(
        (swept.used_bytes, swept.open_sessions, swept.reserved_bytes),
        (0, 0, 0),
        "the timer reclaimed the space"
    );
    assert_eq!(
        err(alice.put_chunk_of(sid, &data, chunk, 2)),
        UploadError::SessionExpired { session_id: sid }
    );
    let next = ok(alice.begin(capsule, "next", data.len() as u64, chunk, "x2")).session_id;
    for index in 0..8 {
        ok(alice.put_chunk_of(next, &data, chunk, index));
    }
    ok(alice.finish(next, &data));
    assert_eq!(
        alice.stats().expect("stats").high_water_bytes,
        reserved.high_water_bytes,
        "space reused, not grown"
    );
    Ok(())
}

/// Bytes of the large-file scenario: at least 256 MiB in full-size chunks.
pub const LARGE_FILE_BYTES: usize = 256 << 20;

pub fn large_file_within_message_limits(env: &mut dyn IcEnv) -> Outcome {
    let (canister, capsule) = setup(env);
    let mut alice = UploadClient::new(env, canister, user(ALICE));
    let chunk = MAX_CHUNK_BYTES;
    let data = test_file(LARGE_FILE_BYTES, 8);
    let started = ok(alice.begin(capsule, "large.mov", data.len() as u64, chunk, "L"));
    let chunks = started.expected_chunks;
    let mut max_chunk_instructions = 0;
    // Twelve calls in flight: chunks land out of order, in twelve strides.
    let lanes = 12;
    for round in 0..chunks.div_ceil(lanes) {
        for lane in (0..lanes).rev() {
            let index = round * lanes + lane;
            if index < chunks {
                ok(alice.put_chunk_of(started.session_id, &data, chunk, index));
                max_chunk_instructions =
                    max_chunk_instructions.max(alice.env.last_instructions().unwrap_or(0));
            }
        }
    }
    let committed = ok(alice.finish(started.session_id, &data));
    let finish_instructions = alice.env.last_instructions();
    assert_eq!(
        alice
            .read_all(committed.memory_id, data.len() as u64)
            .expect("read"),
        data
    );
    if let Some(finish) = finish_instructions {
        // Limits the replica enforces: 40 B per update. Ours are far below:
        // a chunk costs its decode, write and hash (~80/B plus catch-up of
        // at most one lane's worth), finish is constant.
        assert!(
            max_chunk_instructions < 2_000_000_000,
            "largest chunk message: {max_chunk_instructions}"
        );
        assert!(
            finish < 50_000_000,
            "finish of {} bytes took {finish} instructions",
            data.len()
        );
        eprintln!(
            "[{}] {} MiB in {chunks} chunks: largest chunk message {max_chunk_instructions} instructions, finish {finish}",
            alice.env.name(),
            data.len() >> 20
        );
    }
    Ok(())
}

pub fn writers_upload_until_revoked(env: &mut dyn IcEnv) -> Outcome {
    let (canister, capsule) = setup(env);
    let data = test_file(5_000, 9);
    let mut alice = UploadClient::new(env, canister, user(ALICE));
    assert_eq!(
        err(alice.as_caller(user(BOB)).grant_write(capsule, user(BOB))),
        UploadError::NotAuthorized
    );
    assert_eq!(
        err(alice
            .as_caller(user(BOB))
            .begin(capsule, "b", 5_000, 1_000, "b0")),
        UploadError::NotAuthorized
    );
    ok(alice.grant_write(capsule, user(BOB)));
    let committed = {
        let mut bob = alice.as_caller(user(BOB));
        let sid = ok(bob.begin(capsule, "from bob", 5_000, 1_000, "b1")).session_id;
        for index in 0..5 {
            ok(bob.put_chunk_of(sid, &data, 1_000, index));
        }
        ok(bob.finish(sid, &data))
    };
    assert_eq!(
        alice
            .read_all(committed.memory_id, 5_000)
            .expect("owner reads"),
        data
    );
    let sid = {
        let mut bob = alice.as_caller(user(BOB));
        let sid = ok(bob.begin(capsule, "second", 5_000, 1_000, "b2")).session_id;
        ok(bob.put_chunk_of(sid, &data, 1_000, 0));
        sid
    };
    ok(alice.revoke_write(capsule, user(BOB)));
    let mut bob = alice.as_caller(user(BOB));
    assert_eq!(
        err(bob.put_chunk_of(sid, &data, 1_000, 1)),
        UploadError::NotAuthorized
    );
    assert_eq!(
        err(bob.begin(capsule, "third", 5_000, 1_000, "b3")),
        UploadError::NotAuthorized
    );
    assert_eq!(
        err(bob.read(committed.memory_id, 0, 10)),
        UploadError::NotAuthorized
    );
    ok(bob.abort(sid));
    Ok(())
}

pub fn checksum_mismatch_then_repair(env: &mut dyn IcEnv) -> Outcome {
    let (canister, capsule) = setup(env);
    let mut alice = UploadClient::new(env, canister, user(ALICE));
    let chunk = 50_000;
    let data = test_file(4 * chunk as usize, 10);
    let mut corrupt = data.clone();
    corrupt[2 * chunk as usize + 17] ^= 0x40;
    let sid = ok(alice.begin(capsule, "r", data.len() as u64, chunk, "r")).session_id;
    for index in 0..4 {
        ok(alice.put_chunk_of(sid, &corrupt, chunk, index));
    }
    assert!(matches!(
        err(alice.finish(sid, &data)),
        UploadError::ChecksumMismatch { .. }
    ));
    let status = ok(alice.status(sid, 0, 1));
    assert!(status.repairing && status.status == SessionStatus::Pending);
    ok(alice.put_chunk_of(sid, &data, chunk, 2));
    let committed = loop {
        match alice.finish(sid, &data).expect("transport") {
            Ok(done) => break done,
            Err(UploadError::VerificationPending { .. }) => alice.env.tick(),
            Err(other) => panic!("finish after repair: {other:?}"),
        }
    };
    assert_eq!(
        alice
            .read_all(committed.memory_id, data.len() as u64)
            .expect("read"),
        data
    );
    Ok(())
}

/// A JPEG-looking thumbnail of `len` bytes.
fn jpeg_thumbnail(len: usize, seed: u64) -> Thumbnail {
    let mut bytes = test_file(len, seed);
    bytes[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
    Thumbnail {
        mime_type: "image/jpeg".into(),
        bytes: serde_bytes::ByteBuf::from(bytes),
    }
}

/// The issue's gallery: 130 photos with 32 KiB thumbnails, half given with
/// the upload and half set after it, come back from `memories_list` in
/// pages that each fit the reply limit (the real one, on the real
/// canister), all 130 across the pages; thumbnails survive an upgrade,
/// are replaced and removed, and their quota is released with them.
pub fn thumbnails_make_a_gallery_page_a_query(env: &mut dyn IcEnv) -> Outcome {
    const PHOTOS: u64 = 130;
    const THUMBNAIL: usize = 32 * 1024;
    let (canister, capsule) = setup(env);
    let mut alice = UploadClient::new(env, canister, user(ALICE));
    let mut ids = Vec::new();
    for i in 0..PHOTOS {
        let data = test_file(1_000, 100 + i);
        let thumbnail = jpeg_thumbnail(THUMBNAIL, i);
        let request = BeginUpload {
            capsule_id: capsule,
            asset: AssetMetadata {
                name: format!("photo-{i:03}.jpg"),
                mime_type: "image/jpeg".into(),
                byte_len: data.len() as u64,
                sha256: None,
            },
            chunk_size: 1_000,
            expected_chunks: 1,
            idempotency_key: format!("photo-{i}"),
        };
        let with_upload = i % 2 == 0;
        let request = request.with_thumbnail(with_upload.then(|| thumbnail.clone()));
        let started = ok(alice.begin_request(request));
        ok(alice.put_chunk(started.session_id, 0, &data));
        let memory = ok(alice.finish(started.session_id, &data)).memory_id;
        if !with_upload {
            ok(alice.set_thumbnail(memory, Some(thumbnail.clone())));
        }
        ids.push(memory);
    }
    let first = ok(alice.memory(ids[0]));
    assert_eq!(first.thumbnail, Some(jpeg_thumbnail(THUMBNAIL, 0)));
    let stats = alice.stats()?;
    assert_eq!(
        stats.caller.stored_bytes,
        PHOTOS * (4_096 + THUMBNAIL as u64),
        "each photo's block and its thumbnail's eight"
    );

    let pages = |alice: &mut UploadClient| -> Result<usize, String> {
        let mut seen = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let arg = candid::encode_one(ListMemories {
                capsule_id: capsule,
                after,
                limit: 1_000,
            })
            .map_err(|e| e.to_string())?;
            let reply = alice
                .env
                .query_raw(alice.canister, alice.caller, "memories_list", arg)?;
            assert!(
                reply.len() < 2 * 1024 * 1024 * 4 / 5,
                "a page is {} bytes",
                reply.len()
            );
            let page: Result<MemoriesPage, UploadError> =
                candid::decode_one(&reply).map_err(|e| e.to_string())?;
            let page = page.expect("the owner lists");
            assert!(page.memories.iter().all(|m| m.thumbnail.is_some()));
            seen.extend(page.memories.iter().map(|m| m.memory_id));
            pages += 1;
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ids, "every photo once, in order");
        Ok(pages)
    };
    assert!(pages(&mut alice)? > 1, "4.3 MB of thumbnails in one page");

    alice.env.upgrade(canister, backend_wasm())?;
    let mut alice = UploadClient::new(env, canister, user(ALICE));
    assert!(pages(&mut alice)? > 1);
    let small = jpeg_thumbnail(100, 7);
    ok(alice.set_thumbnail(ids[1], Some(small.clone())));
    assert_eq!(ok(alice.memory(ids[1])).thumbnail, Some(small));
    ok(alice.set_thumbnail(ids[2], None));
    assert_eq!(ok(alice.memory(ids[2])).thumbnail, None);
    let png = Thumbnail {
        mime_type: "image/png".into(),
        bytes: serde_bytes::ByteBuf::from(b"\x89PNG\r\n\x1a\n".to_vec()),
    };
    assert!(matches!(
        err(alice.set_thumbnail(ids[3], Some(png))),
        UploadError::InvalidArgument { .. }
    ));
    assert_eq!(
        err(alice.as_caller(user(BOB)).set_thumbnail(ids[3], None)),
        UploadError::NotAuthorized
    );
    for memory in &ids {
        ok(alice.delete_memory(*memory));
    }
    let stats = alice.stats()?;
    assert_eq!((stats.stored_bytes, stats.caller.stored_bytes), (0, 0));
    Ok(())
}
