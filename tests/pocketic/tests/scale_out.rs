//! The index's scale-out scenarios (`index/tests/scale_out.rs`, on the
//! embedded host) on PocketIC, the replica's execution environment, with
//! several application subnets, when a server binary is available.
//!
//! `POCKET_IC_BIN` must name a PocketIC server (16.x, matching the crate).
//! Without it the run prints one line saying it was skipped and why, and
//! reports nothing as passed. `cargo test -p pocketic-scenarios --test
//! scale_out -- NAME` runs the scenarios whose names contain `NAME`.
//!
//! The fleet (`scale_out_support`): an NNS subnet with the real cycles
//! minting canister (PocketIC's `cycles_minting` ICP feature: the server
//! ships the CMC's Wasm, nothing is downloaded), three application
//! subnets, the index's release `.wasm` on the first and the bucket's
//! release `.wasm`, gzipped, uploaded to the index. The index creates
//! buckets on its own subnet through the management canister and on the
//! others through the CMC, exactly as on the IC: the most faithful
//! placement PocketIC allows, with no scenario limited to one subnet for
//! want of a CMC. (Faults and cycles run on the index's own subnet only,
//! as on the embedded host.)
//!
//! What PocketIC cannot do is the embedded host's fault injection
//! (`Host::inject_fault`: reject a chosen call, lose a chosen answer) and
//! setting a balance (`Host::set_cycles`). Each scenario says how it
//! produces its fault instead, with what really happens on a replica:
//!
//! - a failed `create_canister`: too few cycles for the subnet's creation
//!   fee (the management canister refuses), instead of an injected reject;
//! - a failed install: the index's first bucket Wasm is not a valid
//!   module (the replica refuses it), instead of an injected reject;
//! - the index upgraded between steps: the same, a real upgrade;
//! - a registration whose answer is lost after the bucket committed it
//!   (`Fault::TimeoutAfterExecution`): NOT RUN here. PocketIC has no way to
//!   drop one chosen reply; timing a bounded-wait call's deadline against
//!   PocketIC's rounds would test PocketIC's scheduling, not the index.
//!   The embedded scenario covers it;
//! - a failed health check in a rollout: a bucket release whose
//!   `bucket_health` query is removed from the module's exports, so the
//!   replica rejects the index's check. Stopping a bucket out-of-band does
//!   not do it: the rollout starts every bucket it upgraded before asking
//!   for its health. Every bucket gets the same release, so this halts at
//!   the canary; the embedded scenario's halt further in (after the canary
//!   and a batch of two) is produced by removing the index from the third
//!   bucket's controllers (an operator's real mistake): that bucket's
//!   `stop_canister` is refused and the rollout halts there;
//! - a poor treasury: the index's floor is raised to just under its
//!   balance (PocketIC can add cycles, not take them).

#[path = "scale_out_support/mod.rs"]
mod support;

use candid::Principal;
use support::*;
use upload_harness::client::test_file;
use upload_harness::user;
use upload_index::types::*;

fn owner(n: usize) -> Principal {
    user(1 + (n % 50) as u8)
}

/// 200 capsules of 50 principals, an upload of its own size in each:
/// the jobs create three buckets, one per subnet (two through the CMC);
/// the capsules spread so that the buckets' bytes stay within 20 % of
/// their mean; every memory reads back byte-exact from the bucket its
/// location names.
fn two_hundred_capsules_spread_over_buckets_on_three_subnets() {
    let mut fleet = Fleet::new(|subnets| Settings {
        close_at_bytes: 8 * MIB,
        seal_at_bytes: 12 * MIB,
        // Room for about three open buckets: the jobs create them.
        min_open_room_bytes: 20 * MIB,
        expected_capsule_bytes: 40 * KIB,
        max_buckets_per_subnet: 1,
        ..test_settings(subnets)
    });
    assert!(matches!(
        fleet.create_capsule(owner(0), "before any bucket"),
        Err(PlacementError::NoOpenBucket { .. })
    ));
    fleet.grow_to(3);
    let rows = fleet.buckets();
    let mut subnets: Vec<Principal> = rows.iter().map(|r| r.subnet).collect();
    subnets.sort();
    subnets.dedup();
    assert_eq!(subnets.len(), 3, "one bucket on each subnet: {rows:?}");
    for r in &rows {
        assert_eq!(
            fleet.pic().get_subnet(r.bucket),
            Some(r.subnet),
            "bucket {} is where the index recorded it",
            r.bucket
        );
    }

    let mut memories = Vec::new();
    for n in 0..200usize {
        let location = fleet
            .create_capsule(owner(n), &format!("capsule {n}"))
            .expect("placed");
        let len = 8 * KIB as usize + (n * 7919) % (72 * KIB as usize);
        let data = test_file(len, n as u64);
        let memory = fleet.upload(
            location.upload_bucket,
            owner(n),
            location.capsule_id,
            &data,
            &format!("k{n}"),
        );
        memories.push((location, memory, data));
        if n % 20 == 19 {
            fleet.run_jobs();
        }
    }
    fleet.run_jobs();
    let rows = fleet.buckets();
    for r in &rows {
        eprintln!(
            "{} on {}: {:?}, {} capsules, {} bytes, {} cycles",
            r.bucket, r.subnet, r.state, r.capsules, r.used_bytes, r.cycles
        );
    }
    assert_eq!(rows.len(), 3, "no bucket was needed beyond three: {rows:?}");
    let used: Vec<f64> = rows.iter().map(|r| r.used_bytes as f64).collect();
    let mean = used.iter().sum::<f64>() / used.len() as f64;
    for (row, u) in rows.iter().zip(&used) {
        assert!(
            (u - mean).abs() <= 0.2 * mean,
            "bucket {} holds {u} bytes, the mean is {mean}: {rows:?}",
            row.bucket
        );
    }
    assert_eq!(rows.iter().map(|r| r.capsules).sum::<u64>(), 200);
    for (location, memory, data) in &memories {
        let back = fleet.read_back(
            location.upload_bucket,
            location.owner,
            *memory,
            data.len() as u64,
        );
        assert!(
            back == *data,
            "memory {memory} of capsule {} differs",
            location.capsule_id
        );
    }
    let (mine,): (Vec<CapsuleLocation>,) =
        fleet.query(owner(7), "capsules_mine", (None::<u64>, 100u32));
    assert_eq!(mine.len(), 4, "each principal owns four capsules");
    assert_eq!(fleet.invariants().problems, Vec::<String>::new());
}

fn list(fleet: &mut Fleet, bucket: Principal, caller: Principal, capsule: u64) -> Vec<u64> {
    use upload_harness::client::{ok, UploadClient};
    let mut c = UploadClient::new(&mut fleet.env, bucket, caller);
    let page = ok(c.list_memories(backend::types::CapsuleId(capsule), None, 100));
    page.memories.iter().map(|m| m.memory_id.0).collect()
}

/// A bucket past its seal mark: the upload in flight finishes, a new one
/// is refused there, new capsules go to a new bucket, and the full
/// capsule continues in it, listing across both.
fn a_sealed_bucket_finishes_uploads_in_flight_and_its_capsule_continues_elsewhere() {
    use upload_harness::client::{err, ok, UploadClient};
    let mut fleet = Fleet::new(|subnets| Settings {
        close_at_bytes: MIB,
        seal_at_bytes: 2 * MIB,
        min_open_room_bytes: 512 * KIB,
        max_buckets_per_subnet: 1,
        ..test_settings(subnets)
    });
    fleet.grow_to(1);
    let alice = user(1);
    let a = fleet.create_capsule(alice, "full").expect("placed");
    let first = a.upload_bucket;

    // An upload in flight: one of two chunks sent.
    let in_flight = test_file(512 * KIB as usize, 1);
    let chunk = 256 * KIB as u32;
    let started = {
        let mut c = UploadClient::new(&mut fleet.env, first, alice);
        let s = ok(c.begin(
            backend::types::CapsuleId(a.capsule_id),
            "in flight",
            in_flight.len() as u64,
            chunk,
            "x",
        ));
        ok(c.put_chunk_of(s.session_id, &in_flight, chunk, 0));
        s
    };
    let mut kept = Vec::new();
    for n in 0..2 {
        let data = test_file(MIB as usize, 10 + n);
        let id = fleet.upload(first, alice, a.capsule_id, &data, &format!("big{n}"));
        kept.push((id, data));
    }
    fleet.run_jobs();
    assert_eq!(fleet.bucket(first).state, BucketState::Sealed);
    assert_eq!(
        fleet.buckets().len(),
        2,
        "a new bucket replaced the sealed one's room"
    );

    {
        let mut c = UploadClient::new(&mut fleet.env, first, alice);
        ok(c.put_chunk_of(started.session_id, &in_flight, chunk, 1));
        ok(c.finish(started.session_id, &in_flight));
        let refused = err(c.begin(
            backend::types::CapsuleId(a.capsule_id),
            "new",
            10,
            chunk,
            "new",
        ));
        assert_eq!(refused, backend::error::UploadError::BucketSealed);
    }

    let b = fleet.create_capsule(user(2), "fresh").expect("placed");
    assert_ne!(b.upload_bucket, first, "new capsules go to the open bucket");

    let moved = fleet.locate(alice, a.capsule_id).expect("located");
    assert_eq!(moved.buckets.len(), 2);
    assert_eq!(moved.buckets[0], first);
    let second = moved.upload_bucket;
    assert_eq!(moved.buckets[1], second);
    assert_eq!(
        fleet.locate(alice, a.capsule_id).expect("again"),
        moved,
        "one continuation"
    );
    eprintln!(
        "capsule {} continues from {first} ({:?}) in {second} ({:?})",
        a.capsule_id,
        fleet.pic().get_subnet(first),
        fleet.pic().get_subnet(second)
    );
    let later = test_file(100 * KIB as usize, 3);
    let later_id = fleet.upload(second, alice, a.capsule_id, &later, "later");

    let on_first = list(&mut fleet, first, alice, a.capsule_id);
    let on_second = list(&mut fleet, second, alice, a.capsule_id);
    assert_eq!(on_first.len(), 3, "two big files and the one in flight");
    assert_eq!(on_second, vec![later_id]);
    assert_eq!(
        fleet.read_back(second, alice, later_id, later.len() as u64),
        later
    );
    for (id, data) in kept {
        assert_eq!(fleet.read_back(first, alice, id, data.len() as u64), data);
    }
    assert_eq!(fleet.invariants().problems, Vec::<String>::new());
}

/// A `create_canister` the management canister refuses (too few cycles
/// for the creation fee), an install the replica refuses (the index's
/// first bucket Wasm is no valid module), and an index upgraded before
/// the install is retried: afterwards no canister is outside the
/// registry, no capsule is registered twice, and the invariant check
/// finds nothing. (The lost registration answer of the embedded scenario
/// is not run: see the file's doc.)
fn faults_leave_no_orphan_and_no_capsule_twice() {
    let mut fleet = Fleet::with_first_wasm(
        |subnets| Settings {
            subnets: vec![subnets[0]],
            // Attached to `create_canister`: far below any subnet's fee.
            creation_fee_cycles: 0,
            bucket_initial_cycles: 1_000_000,
            ..test_settings(subnets)
        },
        &invalid_wasm_gz(),
    );
    let own = fleet.subnets[0];

    // create_canister is refused: nothing is created, the job retries.
    fleet.run_jobs();
    assert!(fleet.canisters_after_index().is_empty());
    let job = fleet.jobs().pop().expect("a job");
    assert_eq!(job.step, CreationStep::Requested);
    let error = job.last_error.expect("the refusal");
    assert!(error.contains("create_canister"), "{error}");

    // The fee paid, the install is refused: the canister exists, recorded
    // as created.
    fleet.set_settings(Settings {
        subnets: vec![own],
        ..test_settings(fleet.subnets.clone())
    });
    fleet.run_jobs();
    let job = fleet.jobs().pop().expect("a job");
    let CreationStep::Created { canister_id } = job.step else {
        panic!("{job:?}");
    };
    let error = job.last_error.clone().expect("the refusal");
    assert!(error.contains("install_code"), "{error}");
    assert_eq!(fleet.canisters_after_index(), vec![canister_id]);
    assert_eq!(fleet.module_hash(canister_id), None, "an empty canister");
    assert!(
        fleet.buckets().is_empty(),
        "not a bucket before it runs the Wasm"
    );

    // A valid Wasm replaces the broken one: staged, then made what new
    // buckets get by a rollout over no bucket at all.
    fleet
        .upload_wasm(2, bucket_wasm_gz())
        .expect("the valid wasm");
    let (r,): (Result<Rollout, AdminError>,) = fleet.call(admin(), "admin_rollout_start", ());
    r.expect("started");
    // The index is upgraded before the install is retried.
    fleet.upgrade_index();
    // This run retries the install with the broken Wasm once more (the
    // job comes first), then finishes the empty rollout; the next one
    // installs the valid Wasm.
    fleet.run_jobs();
    assert_eq!(
        fleet.status().current_wasm.map(|w| w.version),
        Some(2),
        "the valid Wasm is current"
    );
    fleet.run_jobs();
    let job = fleet.jobs().pop().expect("a job");
    assert_eq!(job.step, CreationStep::Registered { canister_id });
    assert_eq!(fleet.buckets().len(), 1);
    assert_eq!(
        fleet.canisters_after_index(),
        vec![canister_id],
        "the same canister, not a second"
    );
    assert!(fleet
        .pic()
        .get_controllers(canister_id)
        .contains(&fleet.index));
    assert_eq!(
        fleet.module_hash(canister_id),
        Some(sha256(bucket_wasm_gz())),
        "it runs the valid Wasm"
    );

    let first = fleet.create_capsule(user(1), "first").expect("placed");
    let second = fleet.create_capsule(user(1), "second").expect("placed");
    assert_ne!(first.capsule_id, second.capsule_id);
    assert_eq!(first.upload_bucket, canister_id);
    assert_eq!(fleet.status().pending_registrations, 0);
    let row = fleet.buckets().pop().unwrap();
    assert_eq!(row.capsules, 2);
    let report = fleet.invariants();
    assert_eq!(report.problems, Vec::<String>::new());
    assert_eq!(
        report.capsules_checked, 2,
        "the bucket holds each capsule once"
    );
}

fn rollout(fleet: &mut Fleet) -> Rollout {
    fleet.status().rollout.expect("a rollout")
}

fn start_rollout(fleet: &mut Fleet) {
    let (r,): (Result<Rollout, AdminError>,) = fleet.call(admin(), "admin_rollout_start", ());
    r.expect("started");
}

/// Every bucket is running and answers a query.
fn assert_all_serve(fleet: &mut Fleet, order: &[Principal]) {
    for (n, b) in order.iter().enumerate() {
        assert!(fleet.is_running(*b), "bucket {n} runs");
        let stats: Result<(backend::types::Stats,), String> =
            upload_harness::query(&mut fleet.env, *b, user(1), "stats", ());
        assert!(stats.is_ok(), "bucket {n} answers: {stats:?}");
    }
}

/// Six buckets on three subnets and three rollouts. A release whose
/// health check the replica rejects halts at the canary, the other five
/// untouched; a good release halts at the third bucket, whose controllers
/// an operator broke (after the canary and a batch of two), the three
/// after it untouched; all six serve throughout; repaired, a further
/// release finishes on all six.
fn a_rollout_halts_at_a_failed_health_check_and_resumes_with_a_fixed_wasm() {
    let mut fleet = Fleet::new(|subnets| Settings {
        close_at_bytes: MIB,
        seal_at_bytes: 2 * MIB,
        min_open_room_bytes: 6 * MIB - 1,
        max_buckets_per_subnet: 2,
        ..test_settings(subnets)
    });
    fleet.grow_to(6);
    let order: Vec<Principal> = fleet
        .jobs()
        .into_iter()
        .filter_map(|j| match j.step {
            CreationStep::Registered { canister_id } => Some(canister_id),
            _ => None,
        })
        .collect();
    assert_eq!(order.len(), 6);
    let mut on: Vec<Principal> = order
        .iter()
        .map(|b| fleet.pic().get_subnet(*b).expect("a subnet"))
        .collect();
    on.sort();
    on.dedup();
    assert_eq!(on.len(), 3, "buckets on all three subnets");
    let v1 = sha256(bucket_wasm_gz());
    for b in &order {
        assert_eq!(fleet.module_hash(*b), Some(v1.clone()));
    }

    // 1. A release without `bucket_health`: the canary's check fails.
    let broken = bucket_wasm_gz_without_health();
    fleet.upload_wasm(2, &broken).expect("staged");
    assert_eq!(
        fleet.upload_wasm(2, &broken),
        Err(AdminError::VersionNotHigher { current: 2 })
    );
    start_rollout(&mut fleet);
    fleet.run_jobs();
    let halted = rollout(&mut fleet);
    match &halted.state {
        RolloutState::Halted { bucket, reason } => {
            assert_eq!(*bucket, order[0], "the canary");
            assert!(reason.contains("bucket_health"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(halted.upgraded, 0);
    fleet.run_jobs();
    assert_eq!(rollout(&mut fleet), halted, "a halted rollout stays halted");
    for (n, b) in order.iter().enumerate() {
        let (version, hash) = if n == 0 {
            (2, sha256(&broken))
        } else {
            (1, v1.clone())
        };
        assert_eq!(fleet.bucket(*b).wasm_version, version, "bucket {n}");
        assert_eq!(fleet.module_hash(*b), Some(hash), "bucket {n}'s module");
    }
    assert_all_serve(&mut fleet, &order);

    // 2. A good release, but the third bucket no longer lets the index
    // stop it: canary, a batch of two halting at the third.
    let v3 = bucket_wasm_gz_tagged("3");
    fleet.upload_wasm(3, &v3).expect("staged");
    let pic_admin = Some(admin());
    fleet
        .pic()
        .set_controllers(order[2], pic_admin, vec![admin()])
        .expect("the operator drops the index");
    start_rollout(&mut fleet);
    fleet.run_jobs();
    assert_eq!(rollout(&mut fleet).upgraded, 1, "the canary alone first");
    fleet.run_jobs();
    let halted = rollout(&mut fleet);
    match &halted.state {
        RolloutState::Halted { bucket, reason } => {
            assert_eq!(*bucket, order[2]);
            assert!(reason.contains("stop_canister"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(halted.upgraded, 2);
    fleet.run_jobs();
    assert_eq!(rollout(&mut fleet), halted, "a halted rollout stays halted");
    for (n, b) in order.iter().enumerate() {
        let (version, hash) = if n < 2 {
            (3, sha256(&v3))
        } else {
            (1, v1.clone())
        };
        assert_eq!(fleet.bucket(*b).wasm_version, version, "bucket {n}");
        assert_eq!(fleet.module_hash(*b), Some(hash), "bucket {n}'s module");
    }
    assert_all_serve(&mut fleet, &order);

    // 3. Repaired, a further release finishes everywhere.
    let index = fleet.index;
    fleet
        .pic()
        .set_controllers(order[2], pic_admin, vec![index, admin()])
        .expect("the operator restores the index");
    let v4 = bucket_wasm_gz_tagged("4");
    fleet.upload_wasm(4, &v4).expect("the fixed wasm");
    start_rollout(&mut fleet);
    for _ in 0..6 {
        fleet.run_jobs();
    }
    assert_eq!(rollout(&mut fleet).state, RolloutState::Done);
    for (n, b) in order.iter().enumerate() {
        assert_eq!(fleet.bucket(*b).wasm_version, 4, "bucket {n}");
        assert_eq!(fleet.module_hash(*b), Some(sha256(&v4)), "bucket {n}");
    }
    assert_all_serve(&mut fleet, &order);
    assert_eq!(
        fleet.status().current_wasm.unwrap().version,
        4,
        "new buckets get the new Wasm"
    );
    assert_eq!(fleet.invariants().problems, Vec::<String>::new());
}

/// What a bucket may burn between two balance readings around a top-up:
/// it pays for the calls it answers (the index's report and status
/// calls), which the embedded host does not charge.
const BURN_MARGIN: u128 = 20_000_000_000;

/// A bucket under its threshold is topped up from the treasury; an index
/// below its floor creates no bucket and says why.
fn buckets_are_topped_up_and_a_poor_index_stops_creating() {
    let mut fleet = Fleet::new(|subnets| Settings {
        subnets: vec![subnets[0]],
        bucket_initial_cycles: T,
        top_up_below_cycles: 2 * T,
        top_up_cycles: 4 * T,
        ..test_settings(subnets)
    });
    fleet.grow_to(1);
    let bucket = fleet.buckets()[0].bucket;
    let index = fleet.index;
    let before = fleet.pic().cycle_balance(bucket);
    let treasury = fleet.pic().cycle_balance(index);
    let report = fleet.run_jobs();
    assert_eq!(report.topped_up, 1, "{report:?}");
    let after = fleet.pic().cycle_balance(bucket);
    assert!(after + BURN_MARGIN >= before + 4 * T, "{before} -> {after}");
    assert!(fleet.pic().cycle_balance(index) <= treasury - 4 * T);
    assert_eq!(fleet.bucket(bucket).topped_up_cycles, 4 * T);
    assert_eq!(fleet.run_jobs().topped_up, 0, "above the threshold now");

    // The floor raised to just under the treasury (PocketIC cannot take
    // cycles away): the treasury is just above its floor.
    let mut s = fleet.settings();
    s.treasury_floor_cycles = fleet.status().treasury_cycles - T;
    fleet.set_settings(s);
    let status = fleet.status();
    let why = status.creation_blocked.expect("blocked");
    assert!(why.contains("floor"), "{why}");
    let (r,): (Result<CreationJob, AdminError>,) =
        fleet.call(admin(), "admin_create_bucket", (None::<Principal>,));
    assert!(
        matches!(r, Err(AdminError::TreasuryBelowFloor { .. })),
        "{r:?}"
    );
    let mut s = fleet.settings();
    s.min_open_room_bytes = 100 * MIB;
    fleet.set_settings(s);
    let report = fleet.run_jobs();
    assert!(
        report.notes.iter().any(|n| n.contains("floor")),
        "{report:?}"
    );
    assert_eq!(
        fleet.buckets().len(),
        1,
        "no bucket created below the floor"
    );
}

type Scenario = (&'static str, fn());

const SCENARIOS: &[Scenario] = &[
    (
        "two_hundred_capsules_spread_over_buckets_on_three_subnets",
        two_hundred_capsules_spread_over_buckets_on_three_subnets,
    ),
    (
        "a_sealed_bucket_finishes_uploads_in_flight_and_its_capsule_continues_elsewhere",
        a_sealed_bucket_finishes_uploads_in_flight_and_its_capsule_continues_elsewhere,
    ),
    (
        "faults_leave_no_orphan_and_no_capsule_twice",
        faults_leave_no_orphan_and_no_capsule_twice,
    ),
    (
        "a_rollout_halts_at_a_failed_health_check_and_resumes_with_a_fixed_wasm",
        a_rollout_halts_at_a_failed_health_check_and_resumes_with_a_fixed_wasm,
    ),
    (
        "buckets_are_topped_up_and_a_poor_index_stops_creating",
        buckets_are_topped_up_and_a_poor_index_stops_creating,
    ),
];

fn main() {
    if let Err(reason) = server_binary() {
        println!("PocketIC scale-out scenarios skipped: {reason}");
        return;
    }
    // Names to run (any argument not starting with `-`); none: all.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in SCENARIOS {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        match std::panic::catch_unwind(scenario) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("pocketic scale-out: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
