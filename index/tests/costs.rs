//! What the index costs, in instructions and cycles (no wall time): a
//! capsule's creation and location against an upload straight to its
//! bucket, and the index's cost per call as the registry grows.
//!
//! `cargo test --release -p upload-index --test costs -- --nocapture`
//! prints the figures; `INDEX_SCALE=full` grows the registry to 1 000
//! buckets and 1 000 000 capsules (43 minutes on 2 cores, most of it
//! filling the registry), the default to 100 buckets and 20 000 capsules.

mod support;

use candid::{Encode, Principal};
use std::path::Path;
use support::*;
use upload_harness::client::test_file;
use upload_harness::user;
use upload_index::types::*;

/// Instructions of every message since `f` began, and the cycles each of
/// `canisters` spent.
fn measure<R>(
    fleet: &mut Fleet,
    canisters: &[Principal],
    f: impl FnOnce(&mut Fleet) -> R,
) -> (R, u64, Vec<u128>) {
    let before: Vec<u128> = canisters
        .iter()
        .map(|c| fleet.host().cycles(*c).unwrap())
        .collect();
    fleet.host().record_messages(true);
    let r = f(fleet);
    fleet.host().tick();
    let log = fleet.host().take_message_log();
    fleet.host().record_messages(false);
    let instructions = log.iter().map(|m| m.instructions).sum();
    let spent = canisters
        .iter()
        .zip(before)
        .map(|(c, b)| b.saturating_sub(fleet.host().cycles(*c).unwrap()))
        .collect();
    (r, instructions, spent)
}

#[test]
fn locating_costs_under_one_percent_of_an_upload() {
    let mut fleet = Fleet::new(|subnets| Settings {
        subnets: vec![subnets[0]],
        ..test_settings(subnets)
    });
    fleet.grow_to(1);
    fleet.host().set_charge_cycles(true);
    let bucket = fleet.buckets()[0].bucket;
    let index = fleet.index;
    let alice = user(1);
    let (location, create_instructions, create_cycles) =
        measure(&mut fleet, &[index, bucket], |f| {
            f.create_capsule(alice, "costs").expect("placed")
        });
    let (_, locate_instructions, locate_cycles) = measure(&mut fleet, &[index], |f| {
        f.locate(alice, location.capsule_id).expect("located")
    });
    let data = test_file(8 * MIB as usize, 1);
    let (_, upload_instructions, upload_cycles) = measure(&mut fleet, &[bucket], |f| {
        f.upload(bucket, alice, location.capsule_id, &data, "eight")
    });
    let share = locate_cycles[0] as f64 / upload_cycles[0] as f64;
    println!(
        "capsules_create: {create_instructions} instructions; cycles: index {}, bucket {}",
        create_cycles[0], create_cycles[1]
    );
    println!(
        "capsules_locate: {locate_instructions} instructions, {} cycles",
        locate_cycles[0]
    );
    println!(
        "8 MiB upload straight to the bucket: {upload_instructions} instructions, {} cycles",
        upload_cycles[0]
    );
    println!(
        "locate / upload: {:.3} % of the cycles, {:.3} % of the instructions",
        100.0 * share,
        100.0 * locate_instructions as f64 / upload_instructions as f64
    );
    assert!(
        share < 0.01,
        "locating costs {:.2} % of an 8 MiB upload",
        100.0 * share
    );
    assert!(locate_instructions * 100 < upload_instructions);
    // A capsule's creation: one index call and one bucket call.
    assert!(create_instructions < 10_000_000, "{create_instructions}");
}

fn bench_index_wasm() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target").join("canister-wasm-bench");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "upload-index",
            "--features",
            "bench",
            "--target-dir",
        ])
        .arg(&target)
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(target.join("wasm32-unknown-unknown/release/upload_index.wasm"))
        .expect("the bench wasm")
}

/// The index's cost per call as the registry grows: a query and an update
/// that read and write the capsule map, and its stable bytes per capsule.
#[test]
fn the_index_cost_per_call_stays_flat_as_the_registry_grows() {
    let full = std::env::var("INDEX_SCALE").as_deref() == Ok("full");
    let steps: &[(u16, u64)] = if full {
        &[(10, 1_000), (100, 100_000), (1_000, 1_000_000)]
    } else {
        &[(10, 1_000), (100, 20_000)]
    };
    let mut host = embedded_ic_host::Host::new();
    host.set_echo_logs(false);
    let settings = test_settings(vec![host.default_subnet()]);
    let index = host
        .install(
            &bench_index_wasm(),
            Encode!(&Some(settings)).unwrap(),
            admin(),
        )
        .expect("install");
    let call =
        |host: &mut embedded_ic_host::Host, caller: Principal, method: &str, arg: Vec<u8>| {
            let r = host
                .update(index, caller, method, arg)
                .unwrap_or_else(|e| panic!("{method}: {e}"));
            (r, host.last_instructions())
        };
    let mut rows = Vec::new();
    for &(buckets, capsules) in steps {
        loop {
            let (r, _) = call(
                &mut host,
                admin(),
                "bench_fill",
                Encode!(&buckets, &capsules).unwrap(),
            );
            let filled = candid::decode_one::<u64>(&r).unwrap();
            if filled >= capsules {
                break;
            }
        }
        // An owner of four capsules, in the middle of the id range.
        let id = capsules / 2;
        let owner = Principal::from_slice(&(id / 4).to_le_bytes());
        let (_, locate) = call(&mut host, owner, "capsules_locate", Encode!(&id).unwrap());
        let (_, mine) = {
            let r = host
                .query(
                    index,
                    owner,
                    "capsules_mine",
                    Encode!(&None::<u64>, &10u32).unwrap(),
                )
                .expect("mine");
            (r, host.last_instructions())
        };
        let (_, status) = {
            let r = host
                .query(index, admin(), "index_status", Encode!().unwrap())
                .expect("status");
            (r, host.last_instructions())
        };
        let bytes = host
            .query(
                index,
                admin(),
                "bench_capsule_structure_bytes",
                Encode!().unwrap(),
            )
            .map(|r| candid::decode_one::<u64>(&r).unwrap())
            .expect("structure bytes");
        rows.push((buckets, capsules, locate, mine, status, bytes));
    }
    println!(
        "{:>8} {:>10} {:>16} {:>14} {:>14} {:>14}",
        "buckets", "capsules", "locate (update)", "capsules_mine", "index_status", "capsule bytes"
    );
    for (b, c, l, m, s, bytes) in &rows {
        println!("{b:>8} {c:>10} {l:>16} {m:>14} {s:>14} {bytes:>14}");
    }
    let (first, last) = (rows[0], rows[rows.len() - 1]);
    assert!(
        last.2 < 2 * first.2,
        "locate grew from {} to {} instructions",
        first.2,
        last.2
    );
    assert!(
        last.3 < 2 * first.3,
        "capsules_mine grew from {} to {}",
        first.3,
        last.3
    );
    assert!(
        last.4 < 2 * first.4,
        "index_status grew from {} to {}",
        first.4,
        last.4
    );
    let per_capsule = (last.5 - rows[0].5) as f64 / (last.1 - first.1) as f64;
    println!("stable bytes per capsule between the first and last step: {per_capsule:.1}");
    assert!(
        per_capsule < 100.0,
        "{per_capsule:.1} stable bytes a capsule"
    );
}
