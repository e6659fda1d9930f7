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
    thumbnails_make_a_gallery_page_a_query,
);

#[test]
fn every_scenario_runs_here() {
    assert_eq!(
        scenarios::ALL.len(),
        10,
        "add new scenarios to the list above"
    );
}

// Instruction budgets per byte (put_chunk, finish, read-back) are asserted
// against measured floors in `bench/tests/performance.rs`.
