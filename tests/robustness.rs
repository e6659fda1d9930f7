//! Faults, upgrades, load and capacity, on the embedded IC host (these need
//! what only it can do: cut a message at any instruction, fingerprint the
//! whole canister state, write stable memory from outside).

use backend::layout::CURRENT_LAYOUT;
use backend::limits::{Limits, DEFAULT_MAX_RESERVED_BYTES_TOTAL, MAX_CHUNK_BYTES};
use backend::upload::*;
use candid::Principal;
use std::io::Read;
use upload_harness::client::{err, ok, sha256, test_file, UploadClient};
use upload_harness::{backend_wasm, user, EmbeddedEnv, IcEnv};

const ALICE: u8 = 1;
const BOB: u8 = 2;

/// The canister as released in v0.1.0 (`tests/releases/`), gunzipped.
fn released_v0_1_0_wasm() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/releases/backend-v0.1.0-6ebf7c7.wasm.gz"
    );
    let gz = std::fs::read(path).expect("the released wasm is in the repository");
    let mut wasm = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut wasm)
        .expect("gunzip");
    wasm
}

fn capsule_of(env: &mut dyn IcEnv, canister: Principal, owner: Principal) -> CapsuleId {
    ok(UploadClient::new(env, canister, owner).create_capsule("c")).capsule_id
}

#[test]
fn upgrade_from_the_released_wasm_keeps_every_session_and_blob() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(&released_v0_1_0_wasm());
    let capsule = capsule_of(&mut env, canister, user(ALICE));
    let chunk = 100_000;
    let kept = test_file(350_000, 1);
    let open = test_file(420_000, 2);
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    let sid = ok(alice.begin(capsule, "kept", kept.len() as u64, chunk, "k")).session_id;
    for index in [3, 0, 2, 1] {
        ok(alice.put_chunk_of(sid, &kept, chunk, index));
    }
    let committed = ok(alice.finish(sid, &kept));
    let open_sid = ok(alice.begin(capsule, "open", open.len() as u64, chunk, "o")).session_id;
    for index in [4, 1, 0] {
        ok(alice.put_chunk_of(open_sid, &open, chunk, index));
    }
    let stats_before = alice.stats().expect("stats");
    assert_eq!(stats_before.limits.max_reserved_bytes_total, None);

    env.upgrade(canister, backend_wasm())
        .expect("upgrade from v0.1.0");

    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    let stats = alice.stats().expect("stats");
    assert_eq!(
        stats.limits.max_reserved_bytes_total,
        Some(DEFAULT_MAX_RESERVED_BYTES_TOTAL),
        "layout 1 -> 2 migration gives the new limit its default"
    );
    assert_eq!(
        (
            stats.limits.max_file_bytes,
            stats.limits.max_reserved_bytes_per_caller
        ),
        (
            Limits::default().max_file_bytes,
            Limits::default().max_reserved_bytes_per_caller
        ),
        "the migrations move v0.1.0's default reservation to today's"
    );
    assert_eq!(
        (
            stats.stored_bytes,
            stats.reserved_bytes,
            stats.open_sessions
        ),
        (
            stats_before.stored_bytes,
            stats_before.reserved_bytes,
            stats_before.open_sessions
        )
    );
    assert_eq!(
        alice
            .read_all(committed.memory_id, kept.len() as u64)
            .expect("read"),
        kept
    );
    assert_eq!(alice.missing_chunks(open_sid).expect("status"), vec![2, 3]);
    // A memory from v0.1.0 has no thumbnail, and takes one.
    assert_eq!(ok(alice.memory(committed.memory_id)).thumbnail, None);
    let mut bytes = test_file(20_000, 9);
    bytes[..12].copy_from_slice(b"RIFF\x00\x00\x00\x00WEBP");
    let thumbnail = Thumbnail {
        mime_type: "image/webp".into(),
        bytes: serde_bytes::ByteBuf::from(bytes),
    };
    ok(alice.set_thumbnail(committed.memory_id, Some(thumbnail.clone())));
    assert_eq!(
        alice.stats().expect("stats").stored_bytes,
        stats_before.stored_bytes + 20_480
    );
    for index in [2, 3] {
        ok(alice.put_chunk_of(open_sid, &open, chunk, index));
    }
    let second = ok(alice.finish(open_sid, &open));
    assert_eq!(
        alice
            .read_all(second.memory_id, open.len() as u64)
            .expect("read"),
        open
    );
    // And the upgraded canister upgrades again, to itself.
    env.upgrade(canister, backend_wasm()).expect("self-upgrade");
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    assert_eq!(
        ok(alice.memory(second.memory_id)).byte_len,
        open.len() as u64
    );
    let page = ok(alice.list_memories(capsule, None, 10));
    assert_eq!(
        page.memories
            .iter()
            .map(|m| (m.memory_id, m.thumbnail.clone()))
            .collect::<Vec<_>>(),
        vec![
            (committed.memory_id, Some(thumbnail)),
            (second.memory_id, None)
        ]
    );
}

#[test]
fn a_newer_stable_layout_is_refused_and_the_running_canister_kept() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let capsule = capsule_of(&mut env, canister, user(ALICE));
    let data = test_file(10_000, 3);
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    let sid = ok(alice.begin(capsule, "f", data.len() as u64, 4_096, "k")).session_id;
    for index in 0..3 {
        ok(alice.put_chunk_of(sid, &data, 4_096, index));
    }
    let memory = ok(alice.finish(sid, &data)).memory_id;

    // Find the version record in stable memory, as a newer build would
    // have left it, and raise the version.
    let size = env.host().stable_memory_bytes(canister);
    let stable = env.host().read_stable_memory(canister, 0, size as usize);
    let at = stable
        .windows(8)
        .position(|w| w == b"UPLAYOUT")
        .expect("the layout record is in stable memory") as u64;
    let version = u32::from_be_bytes(
        stable[at as usize + 8..at as usize + 12]
            .try_into()
            .unwrap(),
    );
    assert_eq!(version, CURRENT_LAYOUT);
    env.host()
        .write_stable_memory(canister, at + 8, &(CURRENT_LAYOUT + 1).to_be_bytes());

    let refused = env
        .upgrade(canister, backend_wasm())
        .expect_err("a build must not open a newer layout");
    assert!(
        refused.contains(&format!(
            "layout version {}, newer than the {CURRENT_LAYOUT} this build knows",
            CURRENT_LAYOUT + 1
        )),
        "{refused}"
    );
    // The running canister was kept and still serves its data.
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    assert_eq!(
        alice.read_all(memory, data.len() as u64).expect("read"),
        data
    );

    env.host()
        .write_stable_memory(canister, at + 8, &CURRENT_LAYOUT.to_be_bytes());
    env.upgrade(canister, backend_wasm())
        .expect("the known layout opens");
}

/// One call of the upload API, with what to send.
#[derive(Clone, Copy, Debug)]
enum Step {
    CreateCapsule(u8),
    Grant { owner: u8, writer: u8 },
    Revoke { owner: u8, writer: u8 },
    Begin { who: u8, file: usize },
    Put { who: u8, file: usize, index: u32 },
    PutWrong { who: u8, file: usize, index: u32 },
    Finish { who: u8, file: usize },
    FinishWrongHash { who: u8, file: usize },
    Abort { who: u8, file: usize },
    Status { who: u8, file: usize },
    Read { who: u8, file: usize },
    Delete { who: u8, file: usize },
    Thumbnail { who: u8, file: usize },
    Get { who: u8, file: usize },
    Stats,
}

const CHUNK: u32 = 3_000;

/// Runs an upload workload step by step, remembering what calls return
/// so later steps can name the sessions and memories earlier ones made.
struct Workload {
    files: Vec<Vec<u8>>,
    capsule: Option<CapsuleId>,
    sessions: Vec<Option<SessionId>>,
    memories: Vec<Option<MemoryItemId>>,
}

impl Workload {
    fn new() -> Self {
        let files: Vec<Vec<u8>> = [9_500, 3_000, 1, 7_000]
            .iter()
            .enumerate()
            .map(|(i, len)| test_file(*len, 10 + i as u64))
            .collect();
        Self {
            sessions: vec![None; files.len()],
            memories: vec![None; files.len()],
            files,
            capsule: None,
        }
    }

    fn script() -> Vec<Step> {
        use Step::*;
        vec![
            CreateCapsule(ALICE),
            Grant {
                owner: ALICE,
                writer: BOB,
            },
            Begin {
                who: ALICE,
                file: 0,
            },
            Begin { who: BOB, file: 1 },
            Put {
                who: ALICE,
                file: 0,
                index: 3,
            },
            Put {
                who: ALICE,
                file: 0,
                index: 1,
            },
            PutWrong {
                who: ALICE,
                file: 0,
                index: 1,
            },
            Status {
                who: ALICE,
                file: 0,
            },
            Put {
                who: BOB,
                file: 1,
                index: 0,
            },
            Begin {
                who: ALICE,
                file: 2,
            },
            Put {
                who: ALICE,
                file: 0,
                index: 0,
            },
            Put {
                who: ALICE,
                file: 0,
                index: 1,
            },
            Finish {
                who: ALICE,
                file: 0,
            },
            Put {
                who: ALICE,
                file: 0,
                index: 2,
            },
            FinishWrongHash {
                who: ALICE,
                file: 0,
            },
            Finish {
                who: ALICE,
                file: 0,
            },
            Finish {
                who: ALICE,
                file: 0,
            },
            Finish { who: BOB, file: 1 },
            Thumbnail {
                who: ALICE,
                file: 1,
            },
            Thumbnail { who: BOB, file: 0 },
            Revoke {
                owner: ALICE,
                writer: BOB,
            },
            Begin { who: BOB, file: 3 },
            Abort {
                who: ALICE,
                file: 2,
            },
            Put {
                who: ALICE,
                file: 2,
                index: 0,
            },
            Read {
                who: ALICE,
                file: 0,
            },
            Read {
                who: ALICE,
                file: 1,
            },
            Get {
                who: ALICE,
                file: 1,
            },
            Delete {
                who: ALICE,
                file: 1,
            },
            Read {
                who: ALICE,
                file: 1,
            },
            Begin {
                who: ALICE,
                file: 3,
            },
            Put {
                who: ALICE,
                file: 3,
                index: 2,
            },
            Stats,
        ]
    }

    /// Runs `step`; returns what the caller saw, for comparison.
    fn run(&mut self, env: &mut dyn IcEnv, canister: Principal, step: Step) -> String {
        let who = |n: u8| user(n);
        match step {
            Step::CreateCapsule(owner) => {
                let reply = UploadClient::new(env, canister, who(owner)).create_capsule("c");
                if let Ok(Ok(capsule)) = &reply {
                    self.capsule = Some(capsule.capsule_id);
                }
                format!("{reply:?}")
            }
            Step::Grant { owner, writer } => format!(
                "{:?}",
                UploadClient::new(env, canister, who(owner))
                    .grant_write(self.capsule.unwrap(), who(writer))
            ),
            Step::Revoke { owner, writer } => format!(
                "{:?}",
                UploadClient::new(env, canister, who(owner))
                    .revoke_write(self.capsule.unwrap(), who(writer))
            ),
            Step::Begin { who: w, file } => {
                let len = self.files[file].len() as u64;
                let reply = UploadClient::new(env, canister, who(w)).begin(
                    self.capsule.unwrap(),
                    "f",
                    len,
                    CHUNK,
                    &format!("key-{file}"),
                );
                if let Ok(Ok(started)) = &reply {
                    self.sessions[file] = Some(started.session_id);
                }
                format!("{reply:?}")
            }
            Step::Put {
                who: w,
                file,
                index,
            } => format!(
                "{:?}",
                UploadClient::new(env, canister, who(w)).put_chunk_of(
                    self.session(file),
                    &self.files[file],
                    CHUNK,
                    index
                )
            ),
            Step::PutWrong {
                who: w,
                file,
                index,
            } => format!(
                "{:?}",
                UploadClient::new(env, canister, who(w)).put_chunk(
                    self.session(file),
                    index,
                    &vec![0xEE; CHUNK as usize]
                )
            ),
            Step::Finish { who: w, file } => {
                let reply = UploadClient::new(env, canister, who(w))
                    .finish(self.session(file), &self.files[file]);
                if let Ok(Ok(committed)) = &reply {
                    self.memories[file] = Some(committed.memory_id);
                }
                format!("{reply:?}")
            }
            Step::FinishWrongHash { who: w, file } => format!(
                "{:?}",
                UploadClient::new(env, canister, who(w)).finish_with(
                    self.session(file),
                    [9; 32],
                    self.files[file].len() as u64
                )
            ),
            Step::Abort { who: w, file } => format!(
                "{:?}",
                UploadClient::new(env, canister, who(w)).abort(self.session(file))
            ),
            Step::Status { who: w, file } => format!(
                "{:?}",
                UploadClient::new(env, canister, who(w)).status(self.session(file), 0, 10)
            ),
            Step::Read { who: w, file } => {
                let memory = self.memories[file].unwrap_or(MemoryItemId(999));
                let read = UploadClient::new(env, canister, who(w))
                    .read_all(memory, self.files[file].len() as u64);
                match read {
                    Ok(bytes) => format!("read {} intact: {}", file, bytes == self.files[file]),
                    Err(e) => e,
                }
            }
            Step::Delete { who: w, file } => format!(
                "{:?}",
                UploadClient::new(env, canister, who(w))
                    .delete_memory(self.memories[file].unwrap_or(MemoryItemId(999)))
            ),
            Step::Thumbnail { who: w, file } => {
                let mut bytes = test_file(100, file as u64);
                bytes[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
                let thumbnail = Thumbnail {
                    mime_type: "image/jpeg".into(),
                    bytes: serde_bytes::ByteBuf::from(bytes),
                };
                format!(
                    "{:?}",
                    UploadClient::new(env, canister, who(w)).set_thumbnail(
                        self.memories[file].unwrap_or(MemoryItemId(999)),
                        Some(thumbnail)
                    )
                )
            }
            Step::Get { who: w, file } => format!(
                "{:?}",
                UploadClient::new(env, canister, who(w))
                    .memory(self.memories[file].unwrap_or(MemoryItemId(999)))
            ),
            Step::Stats => {
                let stats = UploadClient::new(env, canister, who(ALICE))
                    .stats()
                    .expect("stats");
                format!(
                    "{:?}",
                    (
                        stats.reserved_bytes,
                        stats.stored_bytes,
                        stats.open_sessions,
                        stats.memories,
                        stats.used_bytes
                    )
                )
            }
        }
    }

    fn session(&self, file: usize) -> SessionId {
        self.sessions[file].unwrap_or(SessionId(999))
    }
}

/// The workload's replies with the canister upgraded before the steps in
/// `upgrade_before` (by index).
fn replies_with_upgrades(upgrade_before: impl Fn(usize) -> bool) -> Vec<String> {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let mut workload = Workload::new();
    Workload::script()
        .into_iter()
        .enumerate()
        .map(|(i, step)| {
            if upgrade_before(i) {
                env.upgrade(canister, backend_wasm()).expect("upgrade");
            }
            format!("{step:?} -> {}", workload.run(&mut env, canister, step))
        })
        .collect()
}

#[test]
fn an_upgrade_between_any_two_calls_changes_no_reply() {
    let reference = replies_with_upgrades(|_| false);
    // The workload exercises what it should: every kind of outcome.
    let text = reference.join("\n");
    for expected in [
        "ChunkConflict",
        "ChecksumMismatch",
        "Incomplete",
        "NotAuthorized",
        "SessionAborted",
        "read 0 intact: true",
        "read 1 intact: true",
        "MemoryNotFound",
        "thumbnail: Some(Thumbnail",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    let upgraded = replies_with_upgrades(|_| true);
    for (i, (want, got)) in reference.iter().zip(&upgraded).enumerate() {
        assert_eq!(want, got, "step {i} after upgrades before every call");
    }
    // And each upgrade point on its own (upgrading changes no time, so
    // replies, deadlines included, must be identical).
    for point in (0..reference.len()).step_by(3) {
        assert_eq!(
            replies_with_upgrades(|i| i == point),
            reference,
            "upgrade before step {point}"
        );
    }
}

/// Calls `call` with the instruction limit raised step by step from tiny
/// until it completes. Every attempt cut short must leave the canister
/// exactly as it was. Returns the completed reply and the number of cuts.
fn cut_anywhere<T>(
    env: &mut EmbeddedEnv,
    canister: Principal,
    mut call: impl FnMut(&mut EmbeddedEnv) -> Result<T, String>,
) -> (T, u32) {
    let before = env.host().state_fingerprint(canister);
    let mut limit: u64 = 2_000;
    let mut cuts = 0;
    loop {
        env.limit_update_instructions(Some(limit));
        let reply = call(env);
        env.limit_update_instructions(None);
        match reply {
            Ok(reply) => return (reply, cuts),
            Err(message) => {
                assert!(
                    message.contains("instruction"),
                    "only the limit may stop the call: {message}"
                );
                assert_eq!(
                    env.host().state_fingerprint(canister),
                    before,
                    "a call cut at {limit} instructions left a trace"
                );
                cuts += 1;
                limit = limit * 3 / 2;
            }
        }
    }
}

#[test]
fn a_trap_anywhere_in_any_update_leaves_no_trace() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let chunk = 200_000;
    let data = test_file(3 * chunk as usize + 5, 4);
    let alice = user(ALICE);
    let c = canister;

    let (capsule, mut cuts) = cut_anywhere(&mut env, c, |env| {
        UploadClient::new(env, c, alice).create_capsule("c")
    });
    let capsule = capsule.expect("capsule").capsule_id;
    let mut total = |n: u32| cuts += n;
    let (_, n) = cut_anywhere(&mut env, c, |env| {
        UploadClient::new(env, c, alice).grant_write(capsule, user(BOB))
    });
    total(n);
    let (_, n) = cut_anywhere(&mut env, c, |env| {
        UploadClient::new(env, c, alice).revoke_write(capsule, user(BOB))
    });
    total(n);
    let (started, n) = cut_anywhere(&mut env, c, |env| {
        UploadClient::new(env, c, alice).begin(capsule, "f", data.len() as u64, chunk, "k")
    });
    total(n);
    let sid = started.expect("begin").session_id;
    // Out of order: the chunk that closes the gap also hashes the ones that
    // came early, so the cuts fall inside catch-up hashing too.
    for index in [3, 1, 2, 0] {
        let (accepted, n) = cut_anywhere(&mut env, c, |env| {
            UploadClient::new(env, c, alice).put_chunk_of(sid, &data, chunk, index)
        });
        assert!(accepted.expect("chunk").newly_stored);
        total(n);
    }
    let (committed, n) = cut_anywhere(&mut env, c, |env| {
        UploadClient::new(env, c, alice).finish(sid, &data)
    });
    total(n);
    let memory = committed.expect("finish").memory_id;
    let other =
        ok(UploadClient::new(&mut env, c, alice).begin(capsule, "g", 10, 5, "g")).session_id;
    let (aborted, n) = cut_anywhere(&mut env, c, |env| {
        UploadClient::new(env, c, alice).abort(other)
    });
    aborted.expect("abort");
    total(n);
    let controller = env.controller();
    let (set, n) = cut_anywhere(&mut env, c, |env| {
        UploadClient::new(env, c, controller).set_limits(Limits::default())
    });
    set.expect("limits");
    total(n);
    let mut alice_client = UploadClient::new(&mut env, c, alice);
    assert_eq!(
        alice_client
            .read_all(memory, data.len() as u64)
            .expect("read"),
        data
    );
    for len in [32 * 1024, 5_000] {
        let mut bytes = test_file(len, len as u64);
        bytes[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
        let thumbnail = Thumbnail {
            mime_type: "image/jpeg".into(),
            bytes: serde_bytes::ByteBuf::from(bytes),
        };
        let (thumbnailed, n) = cut_anywhere(&mut env, c, |env| {
            UploadClient::new(env, c, alice).set_thumbnail(memory, Some(thumbnail.clone()))
        });
        thumbnailed.expect("thumbnail");
        total(n);
    }
    let (deleted, n) = cut_anywhere(&mut env, c, |env| {
        UploadClient::new(env, c, alice).delete_memory(memory)
    });
    deleted.expect("delete");
    total(n);
    assert!(cuts > 150, "only {cuts} cut points were tried");
    eprintln!("{cuts} calls cut short, none left a trace");
}

/// The README's figure: at the default limits, blocking everyone else's
/// uploads takes 24 principals each reserving all it may (4 GiB); 23 leave
/// room for others.
#[test]
fn blocking_others_takes_twenty_four_principals_at_the_defaults() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let limits = Limits::default();
    let cap = limits.max_reserved_bytes_total.expect("a default cap");
    let per_caller = limits.max_reserved_bytes_per_caller;
    assert_eq!(cap / per_caller, 24);
    let chunk = MAX_CHUNK_BYTES;
    let alice_capsule = capsule_of(&mut env, canister, user(ALICE));
    let try_alice = |env: &mut EmbeddedEnv, key: &str| {
        let mut alice = UploadClient::new(env, canister, user(ALICE));
        let reply = alice
            .begin(alice_capsule, "photo", 1_000_000, chunk, key)
            .expect("transport");
        if let Ok(started) = &reply {
            ok(alice.abort(started.session_id));
        }
        reply
    };
    for n in 0..24u8 {
        let squatter = user(100 + n);
        let capsule = capsule_of(&mut env, canister, squatter);
        let mut client = UploadClient::new(&mut env, canister, squatter);
        ok(client.begin(capsule, "squat", per_caller, chunk, "s"));
        // A squatter cannot hold more than its share.
        assert!(matches!(
            err(client.begin(capsule, "more", 1_000_000, chunk, "t")),
            UploadError::QuotaExceeded {
                quota: Quota::ReservedBytesPerCaller,
                ..
            }
        ));
        let reply = try_alice(&mut env, &format!("a{n}"));
        if n < 23 {
            assert!(reply.is_ok(), "blocked after {} principals", n + 1);
        } else {
            assert!(matches!(
                reply,
                Err(UploadError::QuotaExceeded {
                    quota: Quota::ReservedBytesTotal,
                    ..
                })
            ));
        }
    }
}

#[test]
fn one_principal_cannot_exhaust_space_for_others() {
    const MIB: u64 = 1 << 20;
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let controller = env.controller();
    let limits = Limits {
        max_total_bytes: 64 * MIB,
        max_reserved_bytes_per_caller: 16 * MIB,
        max_stored_bytes_per_caller: 20 * MIB,
        max_reserved_bytes_total: Some(40 * MIB),
        ..Limits::default()
    };
    ok(UploadClient::new(&mut env, canister, controller).set_limits(limits));
    let mallory = user(66);
    let capsule = capsule_of(&mut env, canister, mallory);
    let mut m = UploadClient::new(&mut env, canister, mallory);
    // Reserving without sending: stopped at the per-caller reservation.
    let chunk = MAX_CHUNK_BYTES;
    let mut held = Vec::new();
    let refusal = loop {
        match m
            .begin(capsule, "hog", 4 * MIB, chunk, &format!("h{}", held.len()))
            .expect("transport")
        {
            Ok(started) => held.push(started.session_id),
            Err(e) => break e,
        }
    };
    assert_eq!(held.len(), 4);
    assert!(matches!(
        refusal,
        UploadError::QuotaExceeded {
            quota: Quota::ReservedBytesPerCaller,
            limit,
            ..
        } if limit == 16 * MIB
    ));
    // Storing: stopped at the per-caller stored bytes.
    for sid in held.drain(..) {
        ok(m.abort(sid));
    }
    let file = test_file(8 * MIB as usize, 5);
    for i in 0..2 {
        let sid =
            ok(m.begin(capsule, "big", file.len() as u64, chunk, &format!("s{i}"))).session_id;
        for index in 0..(file.len() as u32).div_ceil(chunk) {
            ok(m.put_chunk_of(sid, &file, chunk, index));
        }
        ok(m.finish(sid, &file));
    }
    assert!(matches!(
        err(m.begin(capsule, "more", 8 * MIB, chunk, "s3")),
        UploadError::QuotaExceeded {
            quota: Quota::StoredBytesPerCaller,
            ..
        }
    ));
    // Mallory holds what the limits let one principal hold; others still
    // upload.
    let alice_capsule = capsule_of(&mut env, canister, user(ALICE));
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    let sid = ok(alice.begin(alice_capsule, "mine", file.len() as u64, chunk, "a")).session_id;
    for index in 0..(file.len() as u32).div_ceil(chunk) {
        ok(alice.put_chunk_of(sid, &file, chunk, index));
    }
    let mine = ok(alice.finish(sid, &file));
    assert_eq!(mine.byte_len, file.len() as u64);
    // Several principals together meet the cap on all reservations.
    let mut refusals = Vec::new();
    for n in 70..76 {
        let capsule = capsule_of(&mut env, canister, user(n));
        let reply = UploadClient::new(&mut env, canister, user(n)).begin(
            capsule,
            "r",
            16 * MIB,
            chunk,
            "r",
        );
        if let Err(e) = reply.expect("transport") {
            refusals.push(e);
        }
    }
    assert!(matches!(
        refusals.first(),
        Some(UploadError::QuotaExceeded {
            quota: Quota::ReservedBytesTotal,
            ..
        })
    ));
}

#[test]
fn capacity_is_refused_at_begin_and_a_full_subnet_loses_nothing() {
    const GIB: u64 = 1 << 30;
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let controller = env.controller();
    // The largest total the canister accepts: the MemoryManager addresses
    // 256 GiB with default buckets, and indexes need room beside the blobs.
    let limits = Limits {
        max_file_bytes: 32 * GIB,
        max_total_bytes: 240 * GIB,
        max_reserved_bytes_per_caller: 300 * GIB,
        max_stored_bytes_per_caller: 300 * GIB,
        max_reserved_bytes_total: None,
        ..Limits::default()
    };
    ok(UploadClient::new(&mut env, canister, controller).set_limits(limits.clone()));
    assert!(matches!(
        err(
            UploadClient::new(&mut env, canister, controller).set_limits(Limits {
                max_total_bytes: 250 * GIB,
                ..limits
            })
        ),
        UploadError::InvalidArgument { .. }
    ));
    let capsule = capsule_of(&mut env, canister, user(ALICE));
    let stable_before = env.host().stable_memory_bytes(canister);
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    let chunk = MAX_CHUNK_BYTES;
    for i in 0..7 {
        ok(alice.begin(capsule, "huge", 32 * GIB, chunk, &format!("{i}")));
    }
    let refusal = err(alice.begin(capsule, "huge", 32 * GIB, chunk, "7"));
    assert_eq!(
        refusal,
        UploadError::QuotaExceeded {
            quota: Quota::TotalBytes,
            limit: 240 * GIB,
            requested: 256 * GIB,
        }
    );
    // Reserving 224 GiB grew stable memory by at most a few buckets of
    // indexes: space is taken as bytes arrive.
    let grown = env.host().stable_memory_bytes(canister) - stable_before;
    assert!(grown <= 64 << 20, "begin grew stable memory by {grown}");

    // A subnet that refuses to grow stable memory mid-upload:
    // `a_subnet_out_of_stable_memory_gets_out_of_space_and_nothing_changes`.
}

#[test]
fn load_1000_sessions_from_100_principals_interleaved() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let principals: Vec<Principal> = (1..=100).map(user).collect();
    let chunk = 1_024;
    let mut uploads = Vec::new();
    let mut max_instructions = 0u64;
    let mut total_instructions = 0u64;
    let mut count = |env: &EmbeddedEnv| {
        let used = env.last_instructions().unwrap_or(0);
        max_instructions = max_instructions.max(used);
        total_instructions += used;
    };
    for (p, principal) in principals.iter().enumerate() {
        let capsule = capsule_of(&mut env, canister, *principal);
        count(&env);
        for s in 0..10 {
            let seed = (p * 10 + s) as u64;
            let data = test_file(2 * chunk + 1 + (seed as usize % 700), seed);
            let sid = ok(UploadClient::new(&mut env, canister, *principal).begin(
                capsule,
                "f",
                data.len() as u64,
                chunk as u32,
                &format!("{s}"),
            ))
            .session_id;
            count(&env);
            uploads.push((*principal, sid, data));
        }
    }
    // Chunk by chunk across all sessions, the last chunk first.
    for index in [2u32, 0, 1] {
        for (principal, sid, data) in &uploads {
            ok(
                UploadClient::new(&mut env, canister, *principal).put_chunk_of(
                    *sid,
                    data,
                    chunk as u32,
                    index,
                ),
            );
            count(&env);
        }
    }
    let mut committed = Vec::new();
    for (principal, sid, data) in &uploads {
        let done = ok(UploadClient::new(&mut env, canister, *principal).finish(*sid, data));
        count(&env);
        assert_eq!(done.sha256.as_slice(), sha256(data));
        committed.push(done.memory_id);
    }
    for ((principal, _, data), memory) in uploads.iter().zip(&committed) {
        let read = UploadClient::new(&mut env, canister, *principal)
            .read_all(*memory, data.len() as u64)
            .expect("read");
        assert!(read == *data, "memory {memory:?} differs");
    }
    let stats = UploadClient::new(&mut env, canister, principals[0])
        .stats()
        .expect("stats");
    assert_eq!(stats.memories, 1_000);
    assert_eq!(stats.open_sessions, 0);
    let live: u64 = uploads.iter().map(|(_, _, d)| d.len() as u64).sum();
    let stable = env.host().stable_memory_bytes(canister);
    assert!(max_instructions < 20_000_000, "{max_instructions}");
    eprintln!(
        "1000 sessions x 3 chunks from 100 principals: {} update calls, {} instructions \
         ({:.0} per call, largest {}); live data {} bytes in {} blocks of 4 KiB, stable \
         memory {} bytes",
        100 + 5_000,
        total_instructions,
        total_instructions as f64 / 5_100.0,
        max_instructions,
        live,
        stats.used_bytes / 4096,
        stable
    );
}

#[test]
fn inspect_message_refuses_hopeless_ingress_cheaply() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let capsule = capsule_of(&mut env, canister, user(ALICE));
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    let sid = ok(alice.begin(capsule, "f", 10, 10, "k")).session_id;

    let refused = |env: &mut EmbeddedEnv, caller: Principal, method: &str, arg: Vec<u8>| {
        let message = env
            .update_raw(canister, caller, method, arg)
            .expect_err("refused");
        let cost = env.last_instructions().expect("counted");
        assert!(cost < 2_000_000, "{method}: inspect used {cost}");
        message
    };
    let begin = candid::encode_one(BeginUpload {
        capsule_id: capsule,
        asset: AssetMetadata {
            name: "n".into(),
            mime_type: "m".into(),
            byte_len: 10,
            sha256: None,
        },
        chunk_size: 10,
        expected_chunks: 1,
        // Room for a thumbnail (32 KiB) beside the rest, no more.
        idempotency_key: "x".repeat(41_000),
    })
    .unwrap();
    let message = refused(&mut env, user(ALICE), "uploads_begin", begin.clone());
    assert!(message.contains("takes at most 40960"), "{message}");
    let thumbnail = candid::encode_args((
        MemoryItemId(1),
        Some(Thumbnail {
            mime_type: "image/jpeg".into(),
            bytes: serde_bytes::ByteBuf::from(vec![0xFF; 40_000]),
        }),
    ))
    .unwrap();
    let message = refused(&mut env, user(ALICE), "memories_set_thumbnail", thumbnail);
    assert!(message.contains("takes at most 33792"), "{message}");
    let small = candid::encode_args((MemoryItemId(1), None::<Thumbnail>)).unwrap();
    let message = refused(
        &mut env,
        Principal::anonymous(),
        "memories_set_thumbnail",
        small,
    );
    assert!(message.contains("anonymous"), "{message}");
    let small = candid::encode_one(SessionId(1)).unwrap();
    let message = refused(&mut env, Principal::anonymous(), "uploads_abort", small);
    assert!(message.contains("anonymous"), "{message}");
    let oversized = candid::encode_one(PutChunk {
        session_id: sid,
        index: 0,
        bytes: serde_bytes::ByteBuf::from(vec![1; MAX_CHUNK_BYTES as usize + 50_000]),
        sha256: None,
    })
    .unwrap();
    let message = refused(&mut env, user(ALICE), "uploads_put_chunk", oversized);
    assert!(message.contains("takes at most 1901024"), "{message}");
    let limits = candid::encode_one(Limits::default()).unwrap();
    let message = refused(&mut env, user(ALICE), "admin_set_limits", limits);
    assert!(message.contains("only controllers"), "{message}");
    env.update_raw(
        canister,
        user(ALICE),
        "no_such_method",
        candid::encode_args(()).unwrap(),
    )
    .expect_err("an unknown method is refused");
    // What may succeed still gets in, and the update checks again.
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    assert!(ok(alice.put_chunk(sid, 0, b"0123456789")).newly_stored);
}

// ---- Attacks that once got through (issue 11) ----

/// Uploads `data` in `chunk`-sized pieces under `key` and finishes it.
fn upload(
    env: &mut dyn IcEnv,
    canister: Principal,
    who: Principal,
    capsule: CapsuleId,
    data: &[u8],
    chunk: u32,
    key: &str,
) -> CommittedUpload {
    let mut client = UploadClient::new(env, canister, who);
    let sid = ok(client.begin(capsule, key, data.len() as u64, chunk, key)).session_id;
    for index in 0..(data.len() as u32).div_ceil(chunk) {
        ok(client.put_chunk_of(sid, data, chunk, index));
    }
    ok(client.finish(sid, data))
}

#[test]
fn a_re_upload_after_delete_stores_the_file_again() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let capsule = capsule_of(&mut env, canister, user(ALICE));
    let data = test_file(30_000, 21);
    let first = upload(&mut env, canister, user(ALICE), capsule, &data, 10_000, "K");
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    ok(alice.delete_memory(first.memory_id));
    // Finishing the old session again must not claim the deleted memory.
    assert_eq!(
        err(alice.finish(SessionId(1), &data)),
        UploadError::MemoryNotFound {
            memory_id: first.memory_id
        }
    );
    // The same idempotency key within the retention period: a new session.
    let again = ok(alice.begin(capsule, "K", data.len() as u64, 10_000, "K"));
    assert_ne!(again.session_id, SessionId(1));
    assert_ne!(again.provisional_memory_id, first.memory_id);
    for index in 0..3 {
        ok(alice.put_chunk_of(again.session_id, &data, 10_000, index));
    }
    let second = ok(alice.finish(again.session_id, &data));
    assert_eq!(second.memory_id, again.provisional_memory_id);
    assert_eq!(
        alice
            .read_all(second.memory_id, data.len() as u64)
            .expect("read"),
        data
    );
    // The retried begin returns the new session, and the old record's
    // pruning leaves the new key alone.
    assert_eq!(
        ok(alice.begin(capsule, "K", data.len() as u64, 10_000, "K")).session_id,
        again.session_id
    );
    env.advance_time(std::time::Duration::from_secs(25 * 3600));
    env.tick();
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    assert_eq!(ok(alice.memory(second.memory_id)).byte_len, 30_000);
}

#[test]
fn finishing_a_committed_upload_checks_its_arguments() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let capsule = capsule_of(&mut env, canister, user(ALICE));
    let data = test_file(25_000, 22);
    let committed = upload(&mut env, canister, user(ALICE), capsule, &data, 10_000, "F");
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    let sid = SessionId(1);
    assert_eq!(
        err(alice.finish_with(sid, sha256(&data), 24_999)),
        UploadError::DeclaredValuesDisagree {
            what: "byte_len at finish vs at begin".into(),
            declared: 25_000,
            actual: 24_999,
        }
    );
    assert_eq!(
        err(alice.finish_with(sid, [7; 32], 25_000)),
        UploadError::AlreadyCommitted { session_id: sid }
    );
    // The identical call again: the same answer, as often as asked.
    for _ in 0..2 {
        assert_eq!(ok(alice.finish(sid, &data)), committed);
    }
}

#[test]
fn a_revoked_writer_may_still_delete_what_it_uploaded() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let capsule = capsule_of(&mut env, canister, user(ALICE));
    ok(UploadClient::new(&mut env, canister, user(ALICE)).grant_write(capsule, user(BOB)));
    let data = test_file(20_000, 23);
    let bobs = upload(&mut env, canister, user(BOB), capsule, &data, 10_000, "b");
    let alices = upload(&mut env, canister, user(ALICE), capsule, &data, 10_000, "a");
    ok(UploadClient::new(&mut env, canister, user(ALICE)).revoke_write(capsule, user(BOB)));
    let mut bob = UploadClient::new(&mut env, canister, user(BOB));
    assert_eq!(bob.stats().expect("stats").caller.stored_bytes, 20_480);
    // Not what others uploaded, and no reading.
    assert_eq!(
        err(bob.delete_memory(alices.memory_id)),
        UploadError::NotAuthorized
    );
    assert_eq!(err(bob.memory(bobs.memory_id)), UploadError::NotAuthorized);
    ok(bob.delete_memory(bobs.memory_id));
    assert_eq!(bob.stats().expect("stats").caller.stored_bytes, 0);
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    assert_eq!(
        err(alice.memory(bobs.memory_id)),
        UploadError::MemoryNotFound {
            memory_id: bobs.memory_id
        }
    );
}

#[test]
fn a_duplicate_chunk_does_not_keep_a_reservation_alive() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let capsule = capsule_of(&mut env, canister, user(ALICE));
    let data = test_file(40_000, 24);
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    let started = ok(alice.begin(capsule, "d", data.len() as u64, 10_000, "d"));
    let sid = started.session_id;
    let first = ok(alice.put_chunk_of(sid, &data, 10_000, 0));
    assert!(first.newly_stored);
    let hour = std::time::Duration::from_secs(3600);
    // A duplicate a day: the deadline stays where the last new bytes put it.
    for _ in 0..23 {
        alice.env.advance_time(hour);
    }
    let duplicate = ok(alice.put_chunk_of(sid, &data, 10_000, 0));
    assert!(!duplicate.newly_stored);
    assert_eq!(duplicate.expires_at, first.expires_at);
    alice.env.advance_time(2 * hour);
    alice.env.tick();
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    assert_eq!(
        err(alice.put_chunk_of(sid, &data, 10_000, 0)),
        UploadError::SessionExpired { session_id: sid }
    );
    let stats = alice.stats().expect("stats");
    assert_eq!((stats.reserved_bytes, stats.open_sessions), (0, 0));
}

#[test]
fn many_principals_are_needed_to_fill_the_reservations_by_default() {
    let limits = Limits::default();
    let cap = limits.max_reserved_bytes_total.expect("a cap by default");
    // Each principal reserves at most its share; a full-size file fits it.
    assert!(limits.max_file_bytes <= limits.max_reserved_bytes_per_caller);
    assert!(
        cap / limits.max_reserved_bytes_per_caller >= 12,
        "{} principals fill the reservations",
        cap / limits.max_reserved_bytes_per_caller
    );
}

#[test]
fn controllers_may_restrict_who_creates_capsules() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let controller = env.controller();
    // Open by default.
    let before = capsule_of(&mut env, canister, user(ALICE));
    let mut admin = UploadClient::new(&mut env, canister, controller);
    ok(admin.set_capsule_creators_restricted(true));
    ok(admin.allow_capsule_creator(user(BOB), true));
    // Others are refused (by `canister_inspect_message` for ingress).
    let refused = admin
        .as_caller(user(ALICE))
        .set_capsule_creators_restricted(false);
    assert!(
        matches!(&refused, Err(reason) if reason.contains("only controllers")),
        "{refused:?}"
    );
    assert_eq!(
        ok(admin.capsule_creators(None, 10)),
        CapsuleCreators {
            restricted: true,
            allowed: vec![user(BOB)],
            next_after: None,
        }
    );
    assert_eq!(
        err(admin.as_caller(user(ALICE)).create_capsule("no")),
        UploadError::NotAuthorized
    );
    ok(admin.as_caller(user(BOB)).create_capsule("yes"));
    // Existing capsules keep working.
    let data = test_file(5_000, 25);
    upload(&mut env, canister, user(ALICE), before, &data, 4_096, "x");
    let mut admin = UploadClient::new(&mut env, canister, controller);
    ok(admin.allow_capsule_creator(user(BOB), false));
    assert_eq!(
        err(admin.as_caller(user(BOB)).create_capsule("no")),
        UploadError::NotAuthorized
    );
    ok(admin.set_capsule_creators_restricted(false));
    ok(admin.as_caller(user(ALICE)).create_capsule("open again"));
    // The setting survives an upgrade.
    ok(admin.set_capsule_creators_restricted(true));
    env.upgrade(canister, backend_wasm()).expect("upgrade");
    assert_eq!(
        err(UploadClient::new(&mut env, canister, user(ALICE)).create_capsule("no")),
        UploadError::NotAuthorized
    );
}

#[test]
fn repairing_costs_one_re_hash_per_finish_whatever_is_replaced() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let capsule = capsule_of(&mut env, canister, user(ALICE));
    let chunk = 1_000_000;
    // Four full chunks and a last chunk of one byte.
    let data = test_file(4 * chunk as usize + 1, 26);
    let mut wrong = data.clone();
    *wrong.last_mut().unwrap() ^= 1;
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    let sid = ok(alice.begin(capsule, "r", data.len() as u64, chunk, "r")).session_id;
    for index in 0..5 {
        ok(alice.put_chunk_of(sid, &wrong, chunk, index));
    }
    assert!(matches!(
        err(alice.finish(sid, &data)),
        UploadError::ChecksumMismatch { .. }
    ));
    // Alternating the one-byte chunk: each replacement costs about what a
    // duplicate does, however often it is done.
    alice.env.tick();
    env.host().record_messages(true);
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    for round in 0..20u8 {
        let byte = [data.last().unwrap() ^ (round % 2)];
        let reply = ok(alice.put_chunk(sid, 4, &byte));
        assert!(reply.newly_stored);
        assert_eq!(reply.hashed_bytes, 0, "the hash is stale");
        alice.env.tick();
    }
    let log = env.host().take_message_log();
    let work: u64 = log.iter().map(|m| m.instructions).sum();
    // Hashing the file once costs about 80 instructions a byte.
    let one_hash = 80 * data.len() as u64;
    assert!(
        work < one_hash / 4,
        "20 one-byte replacements cost {work} instructions in {} messages (one hash: {one_hash})",
        log.len()
    );
    // The last replacement put the wrong byte back; finishing re-hashes once.
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    ok(alice.put_chunk(sid, 4, &data[data.len() - 1..]));
    let committed = loop {
        match alice.finish(sid, &data).expect("transport") {
            Ok(done) => break done,
            Err(UploadError::VerificationPending { .. }) => alice.env.tick(),
            Err(other) => panic!("finish after repair: {other:?}"),
        }
    };
    assert_eq!(committed.byte_len, data.len() as u64);
}

#[test]
fn repair_rounds_are_bounded() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let capsule = capsule_of(&mut env, canister, user(ALICE));
    let data = test_file(9_000, 27);
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    let sid = ok(alice.begin(capsule, "r", 9_000, 3_000, "r")).session_id;
    let mut wrong = data.clone();
    wrong[0] ^= 1;
    for index in 0..3 {
        ok(alice.put_chunk_of(sid, &wrong, 3_000, index));
    }
    assert!(matches!(
        err(alice.finish(sid, &data)),
        UploadError::ChecksumMismatch { .. }
    ));
    let mut rounds = 0;
    let refusal = loop {
        // Replace a hashed chunk, then ask to verify again.
        let chunk = if rounds % 2 == 0 { &data } else { &wrong };
        ok(alice.put_chunk_of(sid, chunk, 3_000, 0));
        match err(alice.finish_with(sid, [0xAB; 32], 9_000)) {
            UploadError::ChecksumMismatch { .. } => rounds += 1,
            other => break other,
        }
        assert!(rounds < 100, "repair rounds are not bounded");
    };
    assert_eq!(
        refusal,
        UploadError::QuotaExceeded {
            quota: Quota::RepairRounds,
            limit: rounds,
            requested: rounds + 1,
        }
    );
    // The upload may still be aborted, which frees its space.
    ok(alice.abort(sid));
}

/// SHA-256 of the canister's whole stable memory: its durable state.
fn stable_state(env: &mut EmbeddedEnv, canister: Principal) -> [u8; 32] {
    let size = env.host().stable_memory_bytes(canister);
    sha256(&env.host().read_stable_memory(canister, 0, size as usize))
}

#[test]
fn a_subnet_out_of_stable_memory_gets_out_of_space_and_nothing_changes() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let capsule = capsule_of(&mut env, canister, user(ALICE));
    let chunk = MAX_CHUNK_BYTES;
    // Enough chunks to need more than the headroom kept ahead.
    let data = test_file(40 * chunk as usize, 28);
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    let sid = ok(alice.begin(capsule, "f", data.len() as u64, chunk, "f")).session_id;
    ok(alice.put_chunk_of(sid, &data, chunk, 0));
    let small = ok(alice.begin(capsule, "t", 3, 3, "t")).session_id;
    ok(alice.put_chunk(small, 0, b"abc"));
    let small = ok(alice.finish(small, b"abc")).memory_id;
    let jpeg = |seed: u64| {
        let mut bytes = test_file(30_000, seed);
        bytes[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
        Some(Thumbnail {
            mime_type: "image/jpeg".into(),
            bytes: serde_bytes::ByteBuf::from(bytes),
        })
    };
    ok(alice.set_thumbnail(small, jpeg(1)));
    let size = env.host().stable_memory_bytes(canister);
    let normal = env.host().limits();
    let mut full = normal;
    full.max_stable_bytes = size;
    env.set_limits(full);
    let mut refused = None;
    for index in 1..40 {
        let before = stable_state(&mut env, canister);
        let reply = UploadClient::new(&mut env, canister, user(ALICE))
            .put_chunk_of(sid, &data, chunk, index)
            .expect("an answer, not a trap");
        match reply {
            Ok(_) => {}
            Err(error) => {
                assert_eq!(error, UploadError::OutOfSpace);
                assert_eq!(stable_state(&mut env, canister), before);
                refused = Some(index);
                break;
            }
        }
    }
    let index = refused.expect("some chunk finds no room");
    // Other updates answer too, and change nothing.
    let before = stable_state(&mut env, canister);
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    let other = alice.begin(capsule, "g", 1, 1, "g").expect("an answer");
    assert_eq!(other, Err(UploadError::OutOfSpace));
    let thumbnail = alice.set_thumbnail(small, jpeg(2)).expect("an answer");
    assert_eq!(thumbnail, Err(UploadError::OutOfSpace));
    assert_eq!(stable_state(&mut env, canister), before);
    // Removing a thumbnail takes no stable memory: it works.
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    ok(alice.set_thumbnail(small, None));
    assert_eq!(ok(alice.memory(small)).thumbnail, None);
    env.set_limits(normal);
    let mut alice = UploadClient::new(&mut env, canister, user(ALICE));
    for index in index..40 {
        ok(alice.put_chunk_of(sid, &data, chunk, index));
    }
    let committed = ok(alice.finish(sid, &data));
    assert_eq!(
        alice
            .read_all(committed.memory_id, data.len() as u64)
            .expect("read"),
        data
    );
}

/// Small chunks sent far apart: each used to take a 4 KiB block of stable
/// memory (1.2 MiB for 300 chunks of 100 bytes); placed one after another
/// they take the blocks they fill, whatever the order.
#[test]
fn small_chunks_sent_far_apart_take_the_stable_memory_they_fill() {
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let who = user(73);
    let capsule = capsule_of(&mut env, canister, who);
    let mut client = UploadClient::new(&mut env, canister, who);
    let (chunk, chunks) = (100u32, 600u32);
    let len = u64::from(chunk * chunks);
    let data: Vec<u8> = (0..chunks).flat_map(|i| [i as u8; 100]).collect();
    let sid = ok(client.begin(capsule, "sparse", len, chunk, "s")).session_id;
    // Every other chunk, last first.
    let sent: Vec<u32> = (0..chunks).step_by(2).rev().collect();
    for &index in &sent {
        ok(client.put_chunk_of(sid, &data, chunk, index));
    }
    let written = u64::from(chunk) * sent.len() as u64;
    let mapped = client.stats().expect("stats").mapped_bytes.expect("set");
    // The bytes, and one partial block for the session.
    assert!(
        mapped <= written + 4096,
        "{mapped} bytes of stable memory for {written} written"
    );
    // The rest, then the file reads back whole; a block per 4 KiB.
    for index in (1..chunks).step_by(2) {
        ok(client.put_chunk_of(sid, &data, chunk, index));
    }
    let committed = ok(client.finish(sid, &data));
    assert_eq!(
        client.read_all(committed.memory_id, len).expect("read"),
        data
    );
    assert_eq!(
        client.stats().expect("stats").mapped_bytes,
        Some(len.div_ceil(4096) * 4096)
    );
}

#[test]
fn sparse_writes_grow_stable_memory_only_by_what_is_written() {
    const MIB: u64 = 1 << 20;
    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let limits = Limits::default();
    let chunk = MAX_CHUNK_BYTES;
    let len = limits.max_file_bytes;
    let chunks = len.div_ceil(u64::from(chunk)) as u32;
    let last_len = len - u64::from(chunks - 1) * u64::from(chunk);
    let mut grown = Vec::new();
    // Two principals each declare the largest file and send only its last
    // chunk, then abort; a third sends only far chunks, in reverse.
    for (who, sent) in [
        (70, vec![chunks - 1]),
        (71, vec![chunks - 1]),
        (72, vec![chunks - 1, chunks / 2, 1]),
    ] {
        let capsule = capsule_of(&mut env, canister, user(who));
        let before = env.host().stable_memory_bytes(canister);
        let mut client = UploadClient::new(&mut env, canister, user(who));
        let sid = ok(client.begin(capsule, "sparse", len, chunk, "s")).session_id;
        let mut written = 0;
        for index in sent {
            let bytes = if index == chunks - 1 {
                last_len
            } else {
                u64::from(chunk)
            };
            ok(client.put_chunk(sid, index, &vec![who; bytes as usize]));
            written += bytes;
        }
        ok(client.abort(sid));
        let after = env.host().stable_memory_bytes(canister);
        grown.push((after - before, written));
    }
    for (growth, written) in &grown {
        // The bytes, the block table (4 bytes per 4 KiB of the span) and
        // whole buckets: tens of MiB, not the declared 4 GiB.
        assert!(
            *growth <= written + len / 1024 + 48 * MIB,
            "stable memory grew by {growth} bytes for {written} written: {grown:?}"
        );
    }
    let total: u64 = grown.iter().map(|(g, _)| g).sum();
    assert!(total < 128 * MIB, "{grown:?}");
}
