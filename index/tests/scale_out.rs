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
