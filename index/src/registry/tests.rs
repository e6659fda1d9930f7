use super::*;
use crate::placement;
use ic_stable_structures::VectorMemory;

const MIB: u64 = 1 << 20;

fn small_settings() -> Settings {
    Settings {
        close_at_bytes: 8 * MIB,
        seal_at_bytes: 12 * MIB,
        min_open_room_bytes: 4 * MIB,
        expected_capsule_bytes: MIB,
        ..Settings::default()
    }
}

fn registry() -> Registry<VectorMemory> {
    Registry::init(VectorMemory::default(), Some(small_settings()))
}

fn p(n: u8) -> Principal {
    Principal::from_slice(&[n; 29])
}

fn canister(n: u64) -> Principal {
    let mut b = n.to_be_bytes().to_vec();
    b.extend_from_slice(&[1, 1]);
    Principal::from_slice(&b)
}

fn report(used: u64) -> BucketReport {
    BucketReport {
        index: None,
        state: BucketState::Open,
        layout_version: 5,
        package_version: "0.1.0".into(),
        capacity_bytes: 100 * MIB,
        used_bytes: used,
        reserved_bytes: 0,
        capsule_count: 0,
        memory_count: 0,
        uploaded_bytes_total: used,
        cycles: candid::Nat::from(5_000_000_000_000u64),
        time: 0,
    }
}

#[test]
fn placement_spreads_capsules_by_estimated_room() {
    let mut r = registry();
    let subnet = p(9);
    for n in 0..3 {
        r.add_bucket(canister(n), subnet, 0, false).unwrap();
    }
    let mut per_bucket = [0u32; 3];
    for i in 0..30u8 {
        let reg = placement::begin_create(&mut r, p(i % 7 + 1), 0, "c".into(), u128::MAX).unwrap();
        placement::confirm(&mut r, reg.pending.capsule.capsule_id);
        per_bucket[usize::from(reg.pending.bucket_no)] += 1;
        // Each report resets the estimate: keep the estimates apart.
        if i % 3 == 2 {
            for n in 0..3u16 {
                let used = u64::from(per_bucket[usize::from(n)]) * MIB / 8;
                r.apply_report(n, &report(used), 1);
            }
        }
    }
    assert_eq!(per_bucket, [10, 10, 10]);
}

#[test]
fn a_full_bucket_closes_then_seals_and_reserved_cycles_seal_it() {
    let mut r = registry();
    let no = r.add_bucket(canister(0), p(9), 0, false).unwrap();
    assert_eq!(r.apply_report(no, &report(7 * MIB), 1), BucketState::Open);
    assert_eq!(r.apply_report(no, &report(8 * MIB), 2), BucketState::Closed);
    assert_eq!(
        r.apply_report(no, &report(12 * MIB), 3),
        BucketState::Sealed
    );
    let mut b = r.bucket(no).unwrap();
    b.reserved_cycles = 1;
    assert_eq!(r.apply_report(no, &report(0), 4), BucketState::Open);
    r.set_bucket(
        no,
        BucketRecord {
            reserved_cycles: 1,
            ..r.bucket(no).unwrap()
        },
    );
    assert_eq!(r.derived_state(&r.bucket(no).unwrap()), BucketState::Sealed);
}

#[test]
fn placement_uses_only_open_buckets_and_says_why_when_none() {
    let mut r = registry();
    let no = r.add_bucket(canister(0), p(9), 0, false).unwrap();
    let mut b = r.bucket(no).unwrap();
    b.state = BucketState::Closed;
    r.set_bucket(no, b);
    assert_eq!(r.choose_bucket(), None);
    let e = placement::begin_create(&mut r, p(1), 0, "c".into(), 0).unwrap_err();
    match e {
        PlacementError::NoOpenBucket { reason } => assert!(reason.contains("treasury"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.counters().capsules, 0);
}

#[test]
fn the_owner_limit_and_the_allowlist_hold() {
    let mut r = registry();
    r.add_bucket(canister(0), p(9), 0, false).unwrap();
    let mut s = small_settings();
    s.max_capsules_per_owner = 2;
    s.creation_restricted = true;
    r.settings.set(crate::storable::Candid(s));
    assert_eq!(
        placement::begin_create(&mut r, p(1), 0, "a".into(), 0),
        Err(PlacementError::NotAuthorized)
    );
    r.creators.insert(p(1), ());
    for _ in 0..2 {
        placement::begin_create(&mut r, p(1), 0, "a".into(), 0).unwrap();
    }
    assert_eq!(
        placement::begin_create(&mut r, p(1), 0, "a".into(), 0),
        Err(PlacementError::CapsulesPerOwnerExceeded { limit: 2 })
    );
    assert_eq!(
        placement::begin_create(&mut r, Principal::anonymous(), 0, "a".into(), 0),
        Err(PlacementError::AnonymousCaller)
    );
}

#[test]
fn an_undone_registration_leaves_nothing_behind() {
    let mut r = registry();
    r.add_bucket(canister(0), p(9), 0, false).unwrap();
    let reg = placement::begin_create(&mut r, p(1), 0, "a".into(), 0).unwrap();
    assert_eq!(r.pending.len(), 1);
    assert_eq!(r.owned_count(&p(1)), 1);
    placement::undo(&mut r, &reg.pending);
    assert_eq!(r.pending.len(), 0);
    assert_eq!(r.owned_count(&p(1)), 0);
    assert_eq!(r.bucket(0).unwrap().capsules, 0);
    assert!(r.location(reg.pending.capsule.capsule_id).is_none());
    assert!(r.owned(&p(1), None, 10).is_empty());
    // Ids are not reused: the bucket may hold the id after a lost answer.
    let next = placement::begin_create(&mut r, p(1), 0, "a".into(), 0).unwrap();
    assert!(next.pending.capsule.capsule_id > reg.pending.capsule.capsule_id);
}

#[test]
fn a_sealed_capsule_continues_in_a_second_bucket_and_lists_both() {
    let mut r = registry();
    let first = r.add_bucket(canister(0), p(9), 0, false).unwrap();
    let reg = placement::begin_create(&mut r, p(1), 0, "a".into(), 0).unwrap();
    let id = reg.pending.capsule.capsule_id;
    placement::confirm(&mut r, id);
    assert!(!placement::needs_continuation(&r, id));
    r.apply_report(first, &report(12 * MIB), 1);
    placement::mark_sealed(&mut r, first);
    assert!(placement::needs_continuation(&r, id));
    let second = r.add_bucket(canister(1), p(8), 0, false).unwrap();
    let cont = placement::begin_continuation(&mut r, reg.pending.capsule.clone(), 0).unwrap();
    assert_eq!(cont.bucket, canister(1));
    assert!(
        !placement::needs_continuation(&r, id),
        "one continuation at a time"
    );
    placement::confirm(&mut r, id);
    let loc = r.location(id).unwrap();
    assert_eq!(loc.buckets, vec![canister(0), canister(1)]);
    assert_eq!(loc.upload_bucket, canister(1));
    assert_eq!(r.bucket(second).unwrap().capsules, 1);
    assert_eq!(r.owned(&p(1), None, 10), vec![loc]);
}

#[test]
fn an_undone_continuation_keeps_the_first_bucket() {
    let mut r = registry();
    r.add_bucket(canister(0), p(9), 0, false).unwrap();
    let reg = placement::begin_create(&mut r, p(1), 0, "a".into(), 0).unwrap();
    let id = reg.pending.capsule.capsule_id;
    placement::confirm(&mut r, id);
    placement::mark_sealed(&mut r, 0);
    r.add_bucket(canister(1), p(8), 0, false).unwrap();
    let cont = placement::begin_continuation(&mut r, reg.pending.capsule.clone(), 0).unwrap();
    placement::undo(&mut r, &cont.pending);
    assert_eq!(r.location(id).unwrap().buckets, vec![canister(0)]);
    assert_eq!(r.bucket(1).unwrap().capsules, 0);
    assert!(placement::needs_continuation(&r, id));
}

#[test]
fn new_buckets_go_to_the_subnet_with_the_fewest() {
    let mut r = registry();
    let mut s = small_settings();
    s.subnets = vec![p(7), p(8), p(9)];
    s.max_buckets_per_subnet = 1;
    r.settings.set(crate::storable::Candid(s));
    r.add_bucket(canister(0), p(7), 0, false).unwrap();
    let job = r.new_job(p(8), 0);
    assert_eq!(r.choose_subnet(p(7)), Some(p(9)));
    r.add_bucket(canister(1), p(9), 0, false).unwrap();
    assert_eq!(r.choose_subnet(p(7)), None);
    r.set_job(CreationJob {
        step: CreationStep::Abandoned { reason: "x".into() },
        ..job
    });
    assert_eq!(r.choose_subnet(p(7)), Some(p(8)));
}

#[test]
fn creation_is_blocked_below_the_treasury_floor_and_without_a_wasm() {
    let mut r = registry();
    let s = r.settings().clone();
    let needed = s.treasury_floor_cycles + s.creation_fee_cycles + s.bucket_initial_cycles;
    assert!(r.creation_blocked(needed - 1).unwrap().contains("floor"));
    assert!(r.creation_blocked(needed).unwrap().contains("Wasm"));
    upload_wasm(&mut r, 1, &[1, 2, 3]).unwrap();
    assert_eq!(r.creation_blocked(needed), None);
}

fn upload_wasm(
    r: &mut Registry<VectorMemory>,
    version: u32,
    bytes: &[u8],
) -> Result<WasmInfo, AdminError> {
    use sha2::{Digest, Sha256};
    r.begin_wasm(WasmUpload {
        version,
        sha256: Sha256::digest(bytes).to_vec(),
        length: bytes.len() as u64,
    })?;
    let half = bytes.len() / 2;
    r.put_wasm_chunk(0, bytes[..half.max(1)].to_vec())?;
    if half >= 1 && bytes.len() > 1 {
        r.put_wasm_chunk(half as u64, bytes[half..].to_vec())?;
    }
    r.commit_wasm()
}

#[test]
fn wasms_are_hash_checked_versioned_and_staged() {
    let mut r = registry();
    let v1 = upload_wasm(&mut r, 1, b"first module").unwrap();
    assert_eq!(r.wasm_meta().current.unwrap().0, v1);
    let (_, slot) = r.wasm_meta().current.unwrap();
    assert_eq!(r.module(slot), b"first module");
    assert_eq!(
        upload_wasm(&mut r, 1, b"same version"),
        Err(AdminError::VersionNotHigher { current: 1 })
    );
    let v2 = upload_wasm(&mut r, 2, b"second module").unwrap();
    assert_eq!(r.wasm_meta().staged.unwrap().0, v2);
    assert_eq!(r.wasm_meta().current.unwrap().0, v1, "staged, not current");
    // A wrong hash is refused and nothing is staged.
    r.begin_wasm(WasmUpload {
        version: 3,
        sha256: vec![0; 32],
        length: 3,
    })
    .unwrap();
    r.put_wasm_chunk(0, vec![1, 2, 3]).unwrap();
    assert!(matches!(
        r.commit_wasm(),
        Err(AdminError::InvalidArgument { .. })
    ));
    assert_eq!(r.wasm_meta().staged.unwrap().0, v2);
    r.promote_staged();
    let (current, slot) = r.wasm_meta().current.unwrap();
    assert_eq!(current, v2);
    assert_eq!(r.module(slot), b"second module");
    // The old module's chunks are gone.
    assert_eq!(r.wasm_chunks.len(), 2);
}

#[test]
fn a_wasm_chunk_sent_twice_is_taken_once() {
    let mut r = registry();
    use sha2::{Digest, Sha256};
    let bytes = b"abcdef";
    r.begin_wasm(WasmUpload {
        version: 1,
        sha256: Sha256::digest(bytes).to_vec(),
        length: 6,
    })
    .unwrap();
    assert_eq!(r.put_wasm_chunk(0, b"abc".to_vec()), Ok(3));
    assert_eq!(r.put_wasm_chunk(0, b"abc".to_vec()), Ok(3));
    assert!(r.put_wasm_chunk(4, b"ef".to_vec()).is_err());
    assert_eq!(r.put_wasm_chunk(3, b"def".to_vec()), Ok(6));
    assert!(r.commit_wasm().is_ok());
}

#[test]
fn the_cycles_table_shows_burn_and_days_left() {
    let mut r = registry();
    let no = r.add_bucket(canister(0), p(9), 0, false).unwrap();
    let mut b = r.bucket(no).unwrap();
    b.cycles = 40_000_000_000_000;
    b.idle_cycles_burned_per_day = 1_000_000_000_000;
    r.set_bucket(no, b);
    let rows = r.rows(None, 10);
    // 30 days of freezing threshold at 1 T a day: 10 days left of 40 T.
    assert_eq!(rows[0].days_left, Some(10));
    assert_eq!(rows[0].burn_cycles_per_day, 1_000_000_000_000);
}

#[test]
fn stable_bytes_per_capsule_stay_under_100() {
    use ic_stable_structures::memory_manager::MemoryManager;
    let memory = VectorMemory::default();
    let mut r = Registry::init(memory.clone(), Some(small_settings()));
    for n in 0..4 {
        r.add_bucket(canister(n), p(9), 0, false).unwrap();
    }
    // What the structures a capsule touches take, in 64 KiB pages of
    // their virtual memories (the manager's 8 MiB buckets are slack).
    let pages = || {
        let mm = MemoryManager::init(memory.clone());
        [
            memory_ids::CAPSULES,
            memory_ids::OWNERS,
            memory_ids::OWNER_PRINCIPALS,
        ]
        .into_iter()
        .map(|id| mm.get(id).size())
        .sum::<u64>()
    };
    let before = pages();
    const N: u64 = 200_000;
    for i in 0..N {
        let owner = Principal::from_slice(&(i % 50_000).to_le_bytes()[..]);
        let id = r.next_capsule_id();
        r.record_capsule(id, owner, (i % 4) as u16, false);
    }
    let per_capsule = ((pages() - before) * 65_536) as f64 / N as f64;
    eprintln!("stable bytes per capsule: {per_capsule:.1}");
    assert!(per_capsule < 100.0, "{per_capsule:.1} bytes a capsule");
}

#[test]
fn an_owners_capsules_list_newest_first_in_pages_and_survive_an_undo_in_the_middle() {
    let mut r = registry();
    r.settings.set(crate::storable::Candid(Settings {
        expected_capsule_bytes: 1,
        ..small_settings()
    }));
    r.add_bucket(canister(0), p(9), 0, false).unwrap();
    let mut ids = Vec::new();
    for n in 0..5u8 {
        let reg = placement::begin_create(&mut r, p(1), 0, format!("c{n}"), 0).unwrap();
        placement::begin_create(&mut r, p(2), 0, "other".into(), 0).unwrap();
        ids.push(reg);
    }
    let listed = |r: &Registry<VectorMemory>, after, limit| -> Vec<u64> {
        r.owned(&p(1), after, limit)
            .iter()
            .map(|l| l.capsule_id)
            .collect()
    };
    let all: Vec<u64> = ids
        .iter()
        .rev()
        .map(|g| g.pending.capsule.capsule_id)
        .collect();
    assert_eq!(listed(&r, None, 10), all);
    assert_eq!(listed(&r, None, 2), all[..2].to_vec());
    assert_eq!(listed(&r, Some(all[1]), 2), all[2..4].to_vec());
    // Undo the middle one (its answer failed while later ones succeeded).
    placement::undo(&mut r, &ids[2].pending);
    let mut expected = all.clone();
    expected.retain(|id| *id != ids[2].pending.capsule.capsule_id);
    assert_eq!(listed(&r, None, 10), expected);
    assert_eq!(r.owned_count(&p(1)), 4);
    placement::undo(&mut r, &ids[4].pending);
    assert_eq!(listed(&r, None, 10), expected[1..].to_vec());
    assert_eq!(r.owned(&p(2), None, 10).len(), 5);
    assert!(
        listed(&r, Some(r.owned(&p(2), None, 1)[0].capsule_id), 10).is_empty(),
        "another owner's id starts no page"
    );
}
