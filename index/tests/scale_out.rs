//! The index and its buckets on the embedded host's three subnets, on
//! the release `.wasm`s: placement, creation on demand, sealing and
//! continuation, faults, rollouts and cycles.

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
/// the jobs create three buckets, one per subnet; the capsules spread
/// so that the buckets' bytes stay within 20 % of their mean; every
/// memory reads back byte-exact from the bucket its location names.
#[test]
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
#[test]
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

fn reject(callee: Principal, method: &str) -> embedded_ic_host::host::Fault {
    embedded_ic_host::host::Fault::RejectCall {
        callee,
        method: method.into(),
        code: 5,
        message: format!("injected: {method} fails"),
    }
}

fn jobs(fleet: &mut Fleet) -> Vec<CreationJob> {
    let (r,): (Result<Vec<CreationJob>, AdminError>,) =
        fleet.query(admin(), "admin_creation_jobs", ());
    r.expect("jobs")
}

/// A failed `create_canister`, a failed install, an index upgraded
/// between create and install, and a registration whose answer is lost
/// after the bucket committed it: afterwards no canister is outside the
/// registry, no capsule is registered twice, and the invariant check
/// finds nothing.
#[test]
fn faults_leave_no_orphan_and_no_capsule_twice() {
    let mut fleet = Fleet::new(|subnets| Settings {
        subnets: vec![subnets[0]],
        ..test_settings(subnets)
    });
    let mgmt = Principal::management_canister();

    // create_canister fails: nothing is created, the job retries.
    fleet.host().inject_fault(reject(mgmt, "create_canister"));
    fleet.run_jobs();
    assert!(fleet.other_canisters().is_empty());
    let job = jobs(&mut fleet).pop().expect("a job");
    assert_eq!(job.step, CreationStep::Requested);
    assert!(job.last_error.unwrap().contains("injected"));

    // The install fails: the canister exists, recorded as created.
    fleet.host().inject_fault(reject(mgmt, "install_code"));
    fleet.run_jobs();
    let job = jobs(&mut fleet).pop().expect("a job");
    let CreationStep::Created { canister_id } = job.step else {
        panic!("{job:?}");
    };
    assert_eq!(fleet.other_canisters(), vec![canister_id]);
    assert!(
        fleet.buckets().is_empty(),
        "not a bucket before it runs the Wasm"
    );

    // The index is upgraded before the install is retried.
    let index = fleet.index;
    let arg = candid::encode_one(None::<Settings>).unwrap();
    fleet
        .host()
        .upgrade(index, index_wasm(), arg)
        .expect("upgrade the index");
    fleet.run_jobs();
    let job = jobs(&mut fleet).pop().expect("a job");
    assert_eq!(job.step, CreationStep::Registered { canister_id });
    assert_eq!(fleet.buckets().len(), 1);
    assert_eq!(
        fleet.other_canisters(),
        vec![canister_id],
        "the same canister, not a second"
    );
    assert!(fleet
        .host()
        .controllers(canister_id)
        .unwrap()
        .contains(&index));

    // The bucket registers the capsule, the answer is lost.
    fleet
        .host()
        .inject_fault(embedded_ic_host::host::Fault::TimeoutAfterExecution {
            callee: canister_id,
            method: "bucket_register_capsule".into(),
        });
    let lost = fleet.create_capsule(user(1), "lost answer");
    let Err(PlacementError::RegistrationPending { capsule_id }) = lost else {
        panic!("{lost:?}");
    };
    assert_eq!(fleet.status().pending_registrations, 1);
    let located = fleet.locate(user(1), capsule_id).expect("completed");
    assert_eq!(located.upload_bucket, canister_id);
    assert_eq!(fleet.status().pending_registrations, 0);
    let other = fleet.create_capsule(user(1), "second").expect("placed");
    assert_ne!(other.capsule_id, capsule_id);
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

/// Six buckets, a new Wasm, the third bucket's health check fails: the
/// rollout halts there (a canary, then a batch of two), buckets four to
/// six are untouched, all six serve; a fixed Wasm then finishes it.
#[test]
fn a_rollout_halts_at_a_failed_health_check_and_resumes_with_a_fixed_wasm() {
    let mut fleet = Fleet::new(|subnets| Settings {
        close_at_bytes: MIB,
        seal_at_bytes: 2 * MIB,
        min_open_room_bytes: 6 * MIB - 1,
        max_buckets_per_subnet: 2,
        ..test_settings(subnets)
    });
    fleet.grow_to(6);
    let order: Vec<Principal> = jobs(&mut fleet)
        .into_iter()
        .filter_map(|j| match j.step {
            CreationStep::Registered { canister_id } => Some(canister_id),
            _ => None,
        })
        .collect();
    assert_eq!(order.len(), 6);
    let versions_before: Vec<u64> = order
        .iter()
        .map(|b| fleet.host().canister_version(*b).unwrap())
        .collect();

    fleet.upload_wasm(2, bucket_wasm_gz()).expect("staged");
    assert_eq!(
        fleet.upload_wasm(2, bucket_wasm_gz()),
        Err(AdminError::VersionNotHigher { current: 2 })
    );
    let (r,): (Result<Rollout, AdminError>,) = fleet.call(admin(), "admin_rollout_start", ());
    r.expect("started");
    fleet.host().inject_fault(reject(order[2], "bucket_health"));
    fleet.run_jobs();
    assert_eq!(rollout(&mut fleet).upgraded, 1, "the canary alone first");
    fleet.run_jobs();
    let halted = rollout(&mut fleet);
    match &halted.state {
        RolloutState::Halted { bucket, reason } => {
            assert_eq!(*bucket, order[2]);
            assert!(reason.contains("bucket_health"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    fleet.run_jobs();
    assert_eq!(rollout(&mut fleet), halted, "a halted rollout stays halted");
    for (n, b) in order.iter().enumerate() {
        let record = fleet.bucket(*b);
        let version = fleet.host().canister_version(*b).unwrap();
        if n < 3 {
            assert_eq!(record.wasm_version, 2, "bucket {n}");
            assert!(version > versions_before[n], "bucket {n} was upgraded");
        } else {
            assert_eq!(record.wasm_version, 1, "bucket {n}");
            assert_eq!(version, versions_before[n], "bucket {n} untouched");
        }
        assert!(!fleet.host().is_stopped(*b), "bucket {n} serves");
        let stats: Result<(backend::types::Stats,), String> =
            upload_harness::query(&mut fleet.env, *b, user(1), "stats", ());
        assert!(stats.is_ok(), "bucket {n} answers: {stats:?}");
    }

    fleet
        .upload_wasm(3, bucket_wasm_gz())
        .expect("the fixed wasm");
    let (r,): (Result<Rollout, AdminError>,) = fleet.call(admin(), "admin_rollout_start", ());
    r.expect("started again");
    for _ in 0..6 {
        fleet.run_jobs();
    }
    assert_eq!(rollout(&mut fleet).state, RolloutState::Done);
    for b in &order {
        assert_eq!(fleet.bucket(*b).wasm_version, 3);
    }
    assert_eq!(
        fleet.status().current_wasm.unwrap().version,
        3,
        "new buckets get the new Wasm"
    );
}

/// A bucket under its threshold is topped up from the treasury; an index
/// below its floor creates no bucket and says why.
#[test]
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
    let before = fleet.host().cycles(bucket).unwrap();
    let index = fleet.index;
    let treasury = fleet.host().cycles(index).unwrap();
    let report = fleet.run_jobs();
    assert_eq!(report.topped_up, 1, "{report:?}");
    let after = fleet.host().cycles(bucket).unwrap();
    assert!(after >= before + 4 * T, "{before} -> {after}");
    assert!(fleet.host().cycles(index).unwrap() <= treasury - 4 * T);
    assert_eq!(fleet.bucket(bucket).topped_up_cycles, 4 * T);
    assert_eq!(fleet.run_jobs().topped_up, 0, "above the threshold now");

    // Drain the treasury to just above its floor.
    let floor = 20 * T;
    fleet.host().set_cycles(index, floor + T).unwrap();
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

/// A standalone canister holding data becomes the index's first bucket:
/// its capsules are imported, located and keep their memories; new
/// capsules get ids above its own, and it no longer creates capsules by
/// itself.
#[test]
fn a_standalone_canister_with_data_is_adopted_as_the_first_bucket() {
    use upload_harness::client::{ok, UploadClient};
    let mut fleet = Fleet::new(|subnets| Settings {
        subnets: vec![subnets[0]],
        min_open_room_bytes: 0,
        ..test_settings(subnets)
    });
    let host = fleet.host();
    let standalone = host
        .install(
            upload_harness::backend_wasm(),
            candid::encode_args(()).unwrap(),
            admin(),
        )
        .expect("a standalone canister");
    let mut before = Vec::new();
    for n in 0..3u8 {
        let owner = user(10 + n);
        let capsule = {
            let mut c = UploadClient::new(&mut fleet.env, standalone, owner);
            ok(c.create_capsule(&format!("old {n}"))).capsule_id.0
        };
        let data = test_file(50_000 + usize::from(n) * 1_000, u64::from(n));
        let memory = fleet.upload(standalone, owner, capsule, &data, "old");
        before.push((owner, capsule, memory, data));
    }
    let index = fleet.index;
    let subnet = fleet.host().subnet_of(standalone).unwrap();
    fleet
        .host()
        .set_controllers(standalone, vec![admin(), index])
        .unwrap();
    let (r,): (Result<(), AdminError>,) =
        fleet.call(admin(), "admin_adopt_bucket", (standalone, subnet));
    r.expect("adopted");
    assert_eq!(
        fleet.bucket(standalone).state,
        BucketState::Closed,
        "closed while importing"
    );
    fleet.run_jobs();
    fleet.run_jobs();
    let record = fleet.bucket(standalone);
    assert_eq!(record.importing_after, None);
    assert_eq!(record.capsules, 3);
    assert_eq!(record.state, BucketState::Open);
    for (owner, capsule, memory, data) in &before {
        let location = fleet.locate(*owner, *capsule).expect("located");
        assert_eq!(location.buckets, vec![standalone]);
        assert_eq!(location.owner, *owner);
        assert_eq!(
            fleet.read_back(standalone, *owner, *memory, data.len() as u64),
            *data
        );
    }
    let fresh = fleet.create_capsule(user(10), "new").expect("placed");
    assert_eq!(fresh.upload_bucket, standalone);
    assert!(fresh.capsule_id > before.iter().map(|b| b.1).max().unwrap());
    let refused = {
        let mut c = UploadClient::new(&mut fleet.env, standalone, user(11));
        c.create_capsule("by itself").expect("transport")
    };
    assert!(
        matches!(refused, Err(backend::error::UploadError::ManagedByIndex { index: i }) if i == index),
        "{refused:?}"
    );
    assert_eq!(fleet.invariants().problems, Vec::<String>::new());
}

/// A Wasm that cannot read the buckets' layout is never rolled out:
/// v0.1.0 declares no layout (and would not refuse newer data by itself),
/// so the rollout does not start and every bucket keeps its module.
#[test]
fn a_wasm_older_than_the_buckets_layout_is_not_rolled_out() {
    let mut fleet = Fleet::new(|subnets| Settings {
        subnets: vec![subnets[0]],
        close_at_bytes: MIB,
        min_open_room_bytes: 2 * MIB - 1,
        ..test_settings(subnets)
    });
    fleet.grow_to(2);
    let buckets: Vec<Principal> = fleet.buckets().iter().map(|r| r.bucket).collect();
    let hashes: Vec<_> = buckets
        .iter()
        .map(|b| fleet.host().module_hash(*b))
        .collect();
    let old = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/releases/backend-v0.1.0-6ebf7c7.wasm.gz"),
    )
    .expect("the v0.1.0 release");
    fleet.run_jobs();
    let info = fleet.upload_wasm(2, &old).expect("staged");
    assert_eq!(info.layout, None, "v0.1.0 predates the layout metadata");
    let (r,): (Result<Rollout, AdminError>,) = fleet.call(admin(), "admin_rollout_start", ());
    match r {
        Err(AdminError::InvalidArgument { reason }) => {
            assert!(reason.contains("layout"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    fleet.run_jobs();
    assert_eq!(fleet.status().rollout, None, "nothing was started");
    let current = fleet.status().current_wasm.unwrap();
    assert_eq!(
        current.layout,
        Some(backend::layout::CURRENT_LAYOUT),
        "the bucket build declares its layout"
    );
    for (b, hash) in buckets.iter().zip(&hashes) {
        assert_eq!(fleet.host().module_hash(*b), *hash, "{b} keeps its module");
        assert!(!fleet.host().is_stopped(*b), "{b} serves");
        assert_eq!(fleet.bucket(*b).wasm_version, 1);
    }
}

/// Only the index's controllers manage it; only the index calls a
/// bucket's index endpoints.
#[test]
fn only_controllers_manage_the_index_and_only_the_index_its_buckets() {
    let mut fleet = Fleet::new(|subnets| Settings {
        subnets: vec![subnets[0]],
        ..test_settings(subnets)
    });
    fleet.grow_to(1);
    let bucket = fleet.buckets()[0].bucket;
    let stranger = user(9);
    let settings = fleet.settings();
    let (r,): (Result<(), AdminError>,) = fleet.call(stranger, "admin_set_settings", (settings,));
    assert_eq!(r, Err(AdminError::NotAuthorized));
    let (r,): (Result<JobsReport, AdminError>,) = fleet.call(stranger, "admin_run_jobs", ());
    assert_eq!(r, Err(AdminError::NotAuthorized));
    let (r,): (Result<Rollout, AdminError>,) = fleet.call(stranger, "admin_rollout_start", ());
    assert_eq!(r, Err(AdminError::NotAuthorized));
    let (r,): (Result<(), AdminError>,) = fleet.call(
        stranger,
        "admin_wasm_begin",
        (WasmUpload {
            version: 9,
            sha256: vec![0; 32],
            length: 1,
        },),
    );
    assert_eq!(r, Err(AdminError::NotAuthorized));
    let (r,): (Result<Vec<BucketRow>, AdminError>,) =
        fleet.query(stranger, "admin_buckets", (None::<Principal>, 10u32));
    assert_eq!(r, Err(AdminError::NotAuthorized));
    let (r,): (Result<(), AdminError>,) = fleet.call(
        stranger,
        "admin_set_bucket_state",
        (bucket, Some(BucketState::Sealed)),
    );
    assert_eq!(r, Err(AdminError::NotAuthorized));
    // The bucket takes registrations and states from its index only, even
    // from the index's controller.
    for caller in [stranger, admin()] {
        let capsule = IndexCapsule {
            capsule_id: 999,
            owner: stranger,
            name: "forged".into(),
            writers: vec![],
            created_at: 0,
        };
        let (r,): (Result<candid::Reserved, upload_index::calls::RegisterRefusal>,) =
            upload_harness::update(
                &mut fleet.env,
                bucket,
                caller,
                "bucket_register_capsule",
                (capsule,),
            )
            .unwrap();
        assert_eq!(
            r.unwrap_err(),
            upload_index::calls::RegisterRefusal::NotIndex
        );
        let (r,): (Result<(), upload_index::calls::IndexOnlyError>,) = upload_harness::update(
            &mut fleet.env,
            bucket,
            caller,
            "bucket_set_state",
            (BucketState::Sealed,),
        )
        .unwrap();
        assert_eq!(r, Err(upload_index::calls::IndexOnlyError::NotIndex));
    }
    assert_eq!(fleet.bucket(bucket).state, BucketState::Open);
}
