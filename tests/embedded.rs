//! The scenario suite on the embedded IC host, one test per scenario.

mod scenarios;

use upload_harness::EmbeddedEnv;

macro_rules! on_embedded_host {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            scenarios::$name(&mut EmbeddedEnv::new()).expect("the embedded host runs every scenario");
        }
    )*};
}

on_embedded_host!(
    out_of_order_upload_reads_back,
    resume_sends_only_missing_chunks,
    user_errors_are_precise_and_change_nothing,
    upgrade_mid_upload_resumes,
    trap_after_write_leaves_no_trace,
    expired_sessions_are_swept_and_space_reused,
    large_file_within_message_limits,
    writers_upload_until_revoked,
    checksum_mismatch_then_repair,
);

#[test]
fn every_scenario_runs_here() {
    assert_eq!(
        scenarios::ALL.len(),
        9,
        "add new scenarios to the list above"
    );
}

/// Instruction counts are deterministic: the embedded host counts like the
/// replica, so these budgets hold on the IC.
#[test]
fn instruction_budgets_per_byte() {
    use backend::upload::limits::{MAX_CHUNK_BYTES, MAX_READ_BYTES};
    use upload_harness::client::{test_file, UploadClient};
    use upload_harness::{backend_wasm, user, IcEnv};

    let mut env = EmbeddedEnv::new();
    let canister = env.install(backend_wasm());
    let mut alice = UploadClient::new(&mut env, canister, user(1));
    let capsule = alice.create_capsule("c").unwrap().unwrap().capsule_id;
    let chunk = MAX_CHUNK_BYTES;
    let data = test_file(4 * chunk as usize, 1);
    let sid = alice
        .begin(capsule, "f", data.len() as u64, chunk, "k")
        .unwrap()
        .unwrap()
        .session_id;
    let mut per_byte = Vec::new();
    for index in 0..4 {
        alice
            .put_chunk_of(sid, &data, chunk, index)
            .unwrap()
            .unwrap();
        per_byte.push(alice.env.last_instructions().unwrap() as f64 / chunk as f64);
    }
    // Decode (~1/B), stable write (~1.24/B) and one SHA-256 pass (~76/B):
    // the floor is about 80 instructions a byte.
    for cost in &per_byte {
        assert!(
            (75.0..90.0).contains(cost),
            "in-order chunk costs {cost:.1} instructions/byte"
        );
    }
    let committed = alice.finish(sid, &data).unwrap().unwrap();
    let finish = alice.env.last_instructions().unwrap();
    assert!(finish < 5_000_000, "finish took {finish}");
    alice
        .read(committed.memory_id, 0, MAX_READ_BYTES)
        .unwrap()
        .unwrap();
    let read = alice.env.last_instructions().unwrap() as f64 / MAX_READ_BYTES as f64;
    // A reply costs 50 instructions a byte on the IC: reading is bound by it.
    assert!(
        (50.0..60.0).contains(&read),
        "reading costs {read:.1} instructions/byte"
    );
    eprintln!("put_chunk {per_byte:.1?} instructions/byte, finish {finish}, read {read:.1}/byte");
}
