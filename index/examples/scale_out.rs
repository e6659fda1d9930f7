//! `cargo run --release -p upload-index --example scale_out`
//!
//! The scale-out demo on the embedded host's local network of three
//! subnets, with cycles charged at a 13-node subnet's prices: the index
//! creates buckets as room runs out, 24 users upload photos and videos
//! into their capsules, a full bucket seals and its capsule continues in
//! another, a new bucket Wasm rolls out (a canary, then batches), and a
//! table per bucket shows state, bytes, capsules, cycles, burn and days
//! left.

#[path = "../tests/support/mod.rs"]
mod support;

use support::*;
use upload_harness::client::test_file;
use upload_harness::user;
use upload_index::types::*;

fn table(fleet: &mut Fleet, title: &str) {
    println!("\n{title}");
    println!(
        "{:<29} {:<7} {:<7} {:>8} {:>9} {:>9} {:>11} {:>11} {:>9} {:>4}",
        "bucket",
        "subnet",
        "state",
        "capsules",
        "used",
        "reserved",
        "cycles",
        "burn/day",
        "days left",
        "wasm"
    );
    let subnets = fleet.subnets.clone();
    for r in fleet.buckets() {
        let subnet = subnets
            .iter()
            .position(|s| *s == r.subnet)
            .map(|n| format!("#{n}"))
            .unwrap_or_default();
        println!(
            "{:<29} {:<7} {:<7} {:>8} {:>9} {:>9} {:>11} {:>11} {:>9} {:>4}",
            r.bucket.to_text(),
            subnet,
            format!("{:?}", r.state),
            r.capsules,
            mib(r.used_bytes),
            mib(r.reserved_bytes),
            tera(r.cycles),
            tera(r.burn_cycles_per_day),
            r.days_left
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
            r.wasm_version
        );
    }
    let s = fleet.status();
    println!(
        "index: {} buckets ({} open), {} capsules, treasury {}{}",
        s.buckets,
        s.open_buckets,
        s.capsules,
        tera(s.treasury_cycles),
        s.creation_blocked
            .map(|w| format!(", cannot create: {w}"))
            .unwrap_or_default()
    );
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / MIB as f64)
}

fn tera(c: u128) -> String {
    format!("{:.3} T", c as f64 / T as f64)
}

fn main() {
    println!("building the index and bucket .wasm files (release)...");
    let mut fleet = Fleet::new(|subnets| Settings {
        close_at_bytes: 6 * MIB,
        seal_at_bytes: 8 * MIB,
        min_open_room_bytes: 10 * MIB,
        expected_capsule_bytes: 512 * KIB,
        max_buckets_per_subnet: 2,
        ..test_settings(subnets)
    });
    fleet.host().set_charge_cycles(true);
    println!(
        "three subnets: {}",
        fleet
            .subnets
            .iter()
            .map(|s| s.to_text())
            .collect::<Vec<_>>()
            .join(", ")
    );
    fleet.run_jobs();
    fleet.run_jobs();
    table(
        &mut fleet,
        "1. the index created buckets until 10 MiB of room was open:",
    );

    let mut capsules = Vec::new();
    for n in 0..24u8 {
        let owner = user(1 + n % 12);
        let location = fleet
            .create_capsule(owner, &format!("family {n}"))
            .expect("placed");
        let len = 256 * KIB as usize + (usize::from(n) * 97_003) % (1_280 * KIB as usize);
        let data = test_file(len, u64::from(n));
        fleet.upload(
            location.upload_bucket,
            owner,
            location.capsule_id,
            &data,
            &format!("photo-{n}"),
        );
        capsules.push((owner, location));
        if n % 6 == 5 {
            fleet.run_jobs();
            fleet
                .host()
                .advance_time(std::time::Duration::from_secs(3600));
        }
    }
    fleet.run_jobs();
    table(
        &mut fleet,
        "2. 24 capsules placed and filled; buckets created on demand:",
    );

    // Fill one capsule's bucket to its seal mark.
    let (owner, location) = capsules[0].clone();
    let mut n = 0;
    while fleet.bucket(location.upload_bucket).state != BucketState::Sealed && n < 12 {
        let data = test_file(MIB as usize, 1_000 + n);
        fleet.upload(
            location.upload_bucket,
            owner,
            location.capsule_id,
            &data,
            &format!("video-{n}"),
        );
        fleet.run_jobs();
        n += 1;
    }
    let moved = fleet.locate(owner, location.capsule_id).expect("located");
    println!(
        "\ncapsule {} filled {} to its seal mark: it continues in {} (buckets {:?})",
        location.capsule_id,
        location.upload_bucket,
        moved.upload_bucket,
        moved
            .buckets
            .iter()
            .map(|b| b.to_text())
            .collect::<Vec<_>>()
    );
    fleet.upload(
        moved.upload_bucket,
        owner,
        location.capsule_id,
        &test_file(300_000, 7),
        "after-seal",
    );
    fleet.run_jobs();
    table(&mut fleet, "3. after the seal:");

    fleet.upload_wasm(2, bucket_wasm_gz()).expect("staged");
    let (r,): (Result<Rollout, AdminError>,) = fleet.call(admin(), "admin_rollout_start", ());
    r.expect("rollout");
    for _ in 0..8 {
        fleet.run_jobs();
        let rollout = fleet.status().rollout.expect("rollout");
        println!(
            "rollout: {:?}, {} upgraded, next batch {}",
            rollout.state, rollout.upgraded, rollout.next_batch
        );
        if rollout.state == RolloutState::Done {
            break;
        }
    }
    table(&mut fleet, "4. every bucket upgraded to Wasm version 2:");
    let report = fleet.invariants();
    println!(
        "\ninvariant check: {} buckets, {} capsules, problems: {:?}",
        report.buckets_checked, report.capsules_checked, report.problems
    );
}
