//! The bucket rules on `VectorMemory`: who may call what, idempotent
//! registration, sealing, the managed bucket's `capsules_create`, the
//! report's figures, adoption.

use super::*;
use crate::layout::CURRENT_LAYOUT;
use crate::limits::MAX_CAPSULE_NAME_BYTES;
use crate::testing::contract::{case_name, declared_errors};
use crate::upload::tests::{alice, file, Fixture};
use crate::upload::{AssetMetadata, BeginUpload, SessionStatus, UploadError};
use std::collections::BTreeSet;

fn index() -> Principal {
    Principal::from_slice(&[9; 10])
}

fn bob() -> Principal {
    Principal::from_slice(&[2; 29])
}

fn carol() -> Principal {
    Principal::from_slice(&[3; 29])
}

fn placed(id: u64, owner: Principal) -> IndexCapsule {
    IndexCapsule {
        capsule_id: CapsuleId(id),
        owner,
        name: format!("capsule {id}"),
        writers: Vec::new(),
        created_at: 77,
    }
}

/// Alice's capsule 1 on a bucket the index manages.
fn managed() -> Fixture {
    let mut f = Fixture::new();
    f.service
        .set_index(true, Some(index()))
        .expect("controller");
    f
}

#[test]
fn a_standalone_bucket_has_no_index_and_answers_only_its_controllers() {
    let mut f = Fixture::new();
    for caller in [alice(), index(), Principal::anonymous()] {
        assert_eq!(
            f.service.register_capsule(caller, placed(5, bob())),
            Err(BucketError::NotIndex)
        );
        assert_eq!(
            f.service.set_bucket_state(caller, BucketState::Sealed),
            Err(BucketError::NotIndex)
        );
        assert_eq!(
            f.service.bucket_report(caller, false, 1, 0).unwrap_err(),
            BucketError::NotIndex
        );
        assert_eq!(
            f.service.bucket_capsules(caller, false, None, 10),
            Err(BucketError::NotIndex)
        );
        assert_eq!(
            f.service.bucket_health(caller, false),
            Err(BucketError::NotIndex)
        );
    }
    let report = f.service.bucket_report(alice(), true, 1, 0).unwrap();
    assert_eq!((report.index, report.state), (None, BucketState::Open));
    assert_eq!(
        f.service
            .bucket_capsules(bob(), true, None, 10)
            .unwrap()
            .len(),
        1
    );
    assert!(f.service.bucket_health(bob(), true).unwrap().invariants_ok);
}

#[test]
fn the_index_and_controllers_read_others_do_not() {
    let f = managed();
    assert!(f.service.bucket_report(index(), false, 1, 0).is_ok());
    assert!(f.service.bucket_report(bob(), true, 1, 0).is_ok());
    assert_eq!(
        f.service.bucket_report(alice(), false, 1, 0).unwrap_err(),
        BucketError::NotIndex
    );
    assert!(f.service.bucket_capsules(index(), false, None, 1).is_ok());
    assert!(f.service.bucket_health(index(), false).is_ok());
    assert_eq!(
        f.service.bucket_health(alice(), false),
        Err(BucketError::NotIndex)
    );
}

#[test]
fn only_the_index_registers_capsules_and_sets_the_state() {
    let mut f = managed();
    // A controller is not the index.
    for caller in [alice(), bob()] {
        assert_eq!(
            f.service.register_capsule(caller, placed(5, bob())),
            Err(BucketError::NotIndex)
        );
        assert_eq!(
            f.service.set_bucket_state(caller, BucketState::Closed),
            Err(BucketError::NotIndex)
        );
    }
    assert_eq!(f.service.bucket.state(), BucketState::Open);
    f.service
        .set_bucket_state(index(), BucketState::Closed)
        .unwrap();
    assert_eq!(f.service.bucket.state(), BucketState::Closed);
}

#[test]
fn adoption_is_for_controllers_only() {
    let mut f = Fixture::new();
    assert_eq!(
        f.service.set_index(false, Some(index())),
        Err(UploadError::NotAuthorized)
    );
    assert_eq!(
        f.service.set_index(true, Some(Principal::anonymous())),
        Err(UploadError::NotAuthorized)
    );
    assert_eq!(f.service.bucket.index(), None);
    f.service.set_index(true, Some(index())).unwrap();
    assert_eq!(f.service.bucket.index(), Some(index()));
    // The index pages through the capsules the canister already has.
    let adopted = f.service.bucket_capsules(index(), false, None, 10).unwrap();
    assert_eq!(adopted.len(), 1);
    assert_eq!(adopted[0].capsule_id, f.capsule);
    assert_eq!(adopted[0].owner, alice());

    // Standalone again: open, and capsules_create works as before.
    f.service
        .set_bucket_state(index(), BucketState::Sealed)
        .unwrap();
    assert_eq!(
        f.service.set_index(false, None),
        Err(UploadError::NotAuthorized)
    );
    f.service.set_index(true, None).unwrap();
    assert_eq!(f.service.bucket.index(), None);
    assert_eq!(f.service.bucket.state(), BucketState::Open);
    assert!(f.service.create_capsule(alice(), 2, "again".into()).is_ok());
}

#[test]
fn registering_is_idempotent_and_an_id_belongs_to_one_owner() {
    let mut f = managed();
    let first = f
        .service
        .register_capsule(index(), placed(100, bob()))
        .unwrap();
    assert_eq!(first.capsule_id, CapsuleId(100));
    assert_eq!((first.owner, first.created_at), (bob(), 77));
    // The same capsule again (even named otherwise): the stored one.
    let mut again = placed(100, bob());
    again.name = "renamed".into();
    assert_eq!(
        f.service.register_capsule(index(), again),
        Ok(first.clone())
    );
    assert_eq!(
        f.service.register_capsule(index(), placed(100, carol())),
        Err(BucketError::CapsuleIdTaken {
            capsule_id: CapsuleId(100)
        })
    );
    // The standalone canister's own capsule 1 is Alice's.
    assert_eq!(
        f.service.register_capsule(index(), placed(1, bob())),
        Err(BucketError::CapsuleIdTaken {
            capsule_id: CapsuleId(1)
        })
    );
    assert_eq!(
        f.service
            .register_capsule(index(), placed(1, alice()))
            .unwrap()
            .name,
        "family"
    );
    // Bob owns and uses it as any capsule.
    assert_eq!(f.service.capsule(bob(), CapsuleId(100)), Ok(first));
    assert_eq!(f.service.my_capsules(bob(), None, 10).len(), 1);
    assert_eq!(
        f.service
            .bucket_report(index(), false, 1, 0)
            .unwrap()
            .capsule_count,
        2
    );
}

#[test]
fn registered_capsules_are_checked() {
    let mut f = managed();
    let invalid =
        |r: Result<Capsule, BucketError>| matches!(r, Err(BucketError::InvalidArgument { .. }));
    assert!(invalid(
        f.service.register_capsule(index(), placed(0, bob()))
    ));
    assert!(invalid(
        f.service.register_capsule(index(), placed(u64::MAX, bob()))
    ));
    assert!(invalid(
        f.service
            .register_capsule(index(), placed(5, Principal::anonymous()))
    ));
    let mut long = placed(5, bob());
    long.name = "n".repeat(MAX_CAPSULE_NAME_BYTES + 1);
    assert!(invalid(f.service.register_capsule(index(), long)));
    let mut anonymous_writer = placed(5, bob());
    anonymous_writer.writers = vec![Principal::anonymous()];
    assert!(invalid(
        f.service.register_capsule(index(), anonymous_writer)
    ));
    let mut crowded = placed(5, bob());
    crowded.writers = (0..=32u8).map(|i| Principal::from_slice(&[i, 1])).collect();
    assert!(invalid(f.service.register_capsule(index(), crowded)));
    assert_eq!(f.service.capsules.len(), 1, "nothing was stored");

    // Writers are kept once each, the owner not among them.
    let mut writers = placed(5, bob());
    writers.writers = vec![carol(), bob(), carol(), alice()];
    let stored = f.service.register_capsule(index(), writers).unwrap();
    assert_eq!(stored.writers, vec![carol(), alice()]);
}

#[test]
fn the_capsule_id_counter_stays_above_every_registered_id() {
    let mut f = managed();
    f.service
        .register_capsule(index(), placed(500, bob()))
        .unwrap();
    f.service
        .register_capsule(index(), placed(40, bob()))
        .unwrap();
    assert_eq!(f.service.accounting.ledger().next_capsule_id, 500);
    assert!(
        f.service
            .bucket_health(index(), false)
            .unwrap()
            .invariants_ok
    );
    // Were the canister standalone again, its own capsules come after.
    f.service.set_index(true, None).unwrap();
    let own = f.service.create_capsule(carol(), 1, "own".into()).unwrap();
    assert_eq!(own.capsule_id, CapsuleId(501));
}

#[test]
fn a_managed_bucket_creates_no_capsule_itself() {
    let mut f = managed();
    assert_eq!(
        f.service.create_capsule(bob(), 1, "mine".into()),
        Err(UploadError::ManagedByIndex { index: index() })
    );
    // Whatever the state; the anonymous principal is still told so first.
    f.service
        .set_bucket_state(index(), BucketState::Closed)
        .unwrap();
    assert_eq!(
        f.service.create_capsule(bob(), 1, "mine".into()),
        Err(UploadError::ManagedByIndex { index: index() })
    );
    assert_eq!(
        f.service
            .create_capsule(Principal::anonymous(), 1, "x".into()),
        Err(UploadError::AnonymousCaller)
    );
}

#[test]
fn a_standalone_bucket_works_as_before() {
    let mut f = Fixture::new();
    let own = f.service.create_capsule(bob(), 1, "mine".into()).unwrap();
    assert_eq!(own.capsule_id, CapsuleId(2));
    let data = file(10_000, 1);
    let sid = f.begin(&data, 4_096, "k").unwrap().session_id;
    for index in 0..3 {
        f.put(sid, &data, 4_096, index, 2).unwrap();
    }
    let memory = f.finish(sid, &data, 3).unwrap();
    assert_eq!(f.read_all(memory.memory_id, data.len() as u64), data);
}

#[test]
fn a_sealed_bucket_begins_no_new_session_but_finishes_those_in_flight() {
    let mut f = managed();
    let data = file(10_000, 2);
    let started = f.begin(&data, 4_096, "in flight").unwrap();
    let sid = started.session_id;
    f.put(sid, &data, 4_096, 0, 2).unwrap();
    f.service
        .set_bucket_state(index(), BucketState::Sealed)
        .unwrap();

    assert_eq!(f.begin(&data, 4_096, "new"), Err(UploadError::BucketSealed));
    // The same key again: the same session.
    let retried = f.begin(&data, 4_096, "in flight").unwrap();
    assert_eq!(
        (retried.session_id, retried.provisional_memory_id),
        (sid, started.provisional_memory_id)
    );
    f.put(sid, &data, 4_096, 1, 3).unwrap();
    assert_eq!(f.status(sid, 3).received_chunks, 2);
    f.put(sid, &data, 4_096, 2, 4).unwrap();
    let memory = f.finish(sid, &data, 5).unwrap();
    assert_eq!(f.read_all(memory.memory_id, data.len() as u64), data);
    // Finished and begun again: still that upload.
    assert!(f.begin(&data, 4_096, "in flight").is_ok());
    // Reads, deletes and aborts go on.
    let other = f.service.begin(
        alice(),
        5,
        BeginUpload {
            capsule_id: f.capsule,
            asset: AssetMetadata {
                name: "b".into(),
                mime_type: "text/plain".into(),
                byte_len: 1,
                sha256: None,
            },
            chunk_size: 1,
            expected_chunks: 1,
            idempotency_key: "other".into(),
        },
    );
    assert_eq!(other, Err(UploadError::BucketSealed));
    f.service.delete_memory(alice(), memory.memory_id).unwrap();
    // The deleted memory's key would upload the file again: a new session.
    assert_eq!(
        f.begin(&data, 4_096, "in flight"),
        Err(UploadError::BucketSealed)
    );

    // No new capsule either, but a registered one is still answered.
    assert_eq!(
        f.service.register_capsule(index(), placed(7, bob())),
        Err(BucketError::Sealed)
    );
    assert_eq!(
        f.service
            .register_capsule(index(), placed(1, alice()))
            .unwrap()
            .capsule_id,
        CapsuleId(1)
    );

    // Open again: uploads begin.
    f.service
        .set_bucket_state(index(), BucketState::Open)
        .unwrap();
    assert!(f.begin(&data, 4_096, "new").is_ok());
}

#[test]
fn an_abort_goes_on_when_sealed() {
    let mut f = managed();
    let data = file(5_000, 3);
    let sid = f.begin(&data, 4_096, "k").unwrap().session_id;
    f.service
        .set_bucket_state(index(), BucketState::Sealed)
        .unwrap();
    f.service.abort(alice(), 2, sid).unwrap();
    assert_eq!(f.status(sid, 2).status, SessionStatus::Aborted);
}

#[test]
fn a_closed_bucket_changes_nothing_on_the_bucket() {
    let mut f = managed();
    f.service
        .set_bucket_state(index(), BucketState::Closed)
        .unwrap();
    assert!(f
        .service
        .register_capsule(index(), placed(9, bob()))
        .is_ok());
    let data = file(100, 4);
    let sid = f.begin(&data, 4_096, "k").unwrap().session_id;
    f.put(sid, &data, 4_096, 0, 2).unwrap();
    assert!(f.finish(sid, &data, 3).is_ok());
}

#[test]
fn the_report_counts_an_upload() {
    let mut f = managed();
    let empty = f.service.bucket_report(index(), false, 42, 7).unwrap();
    assert_eq!(empty.index, Some(index()));
    assert_eq!(empty.state, BucketState::Open);
    assert_eq!(empty.layout_version, CURRENT_LAYOUT);
    assert_eq!(empty.package_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        empty.capacity_bytes,
        f.service.accounting.limits().max_total_bytes
    );
    assert_eq!(
        (empty.used_bytes, empty.reserved_bytes, empty.open_sessions),
        (0, 0, 0)
    );
    assert_eq!((empty.capsule_count, empty.memory_count), (1, 0));
    assert_eq!(empty.uploaded_bytes_total, 0);
    assert_eq!((empty.cycles.clone(), empty.time), (Nat::from(7u32), 42));
    assert_eq!(empty.stable_memory_bytes, f.service.stable_memory_bytes());

    let data = file(10_000, 5);
    let sid = f.begin(&data, 4_096, "k").unwrap().session_id;
    f.put(sid, &data, 4_096, 0, 2).unwrap();
    // A duplicate is not counted.
    f.put(sid, &data, 4_096, 0, 2).unwrap();
    f.put(sid, &data, 4_096, 2, 2).unwrap();
    let open = f.service.bucket_report(index(), false, 43, 7).unwrap();
    assert_eq!(open.open_sessions, 1);
    assert_eq!(open.reserved_bytes, 12_288);
    assert_eq!(open.used_bytes, 0);
    assert_eq!(open.uploaded_bytes_total, 4_096 + 10_000 - 8_192);

    f.put(sid, &data, 4_096, 1, 3).unwrap();
    f.finish(sid, &data, 4).unwrap();
    let done = f.service.bucket_report(index(), false, 44, 7).unwrap();
    assert_eq!((done.open_sessions, done.reserved_bytes), (0, 0));
    assert_eq!(done.used_bytes, 12_288);
    assert_eq!(done.memory_count, 1);
    assert_eq!(done.uploaded_bytes_total, data.len() as u64);
    assert_eq!(done.stable_memory_bytes, f.service.stable_memory_bytes());

    // The counter and the settings survive an upgrade.
    f.upgrade();
    let after = f.service.bucket_report(index(), false, 45, 7).unwrap();
    assert_eq!(after.uploaded_bytes_total, data.len() as u64);
    assert_eq!(after.index, Some(index()));
}

#[test]
fn capsules_page_in_id_order() {
    let mut f = managed();
    for id in [30, 10, 20] {
        f.service
            .register_capsule(index(), placed(id, bob()))
            .unwrap();
    }
    let ids =
        |page: Vec<IndexCapsule>| -> Vec<u64> { page.iter().map(|c| c.capsule_id.0).collect() };
    let all = f
        .service
        .bucket_capsules(index(), false, None, 100)
        .unwrap();
    assert_eq!(ids(all), [1, 10, 20, 30]);
    let page = f
        .service
        .bucket_capsules(index(), false, Some(CapsuleId(10)), 2)
        .unwrap();
    assert_eq!(ids(page), [20, 30]);
    // A limit of 0 is one.
    let page = f.service.bucket_capsules(index(), false, None, 0).unwrap();
    assert_eq!(ids(page), [1]);
    assert!(f
        .service
        .bucket_capsules(index(), false, Some(CapsuleId(30)), 10)
        .unwrap()
        .is_empty());
    assert!(f
        .service
        .bucket_capsules(index(), false, Some(CapsuleId(u64::MAX)), 10)
        .unwrap()
        .is_empty());
}

#[test]
fn health_checks_itself_after_an_upgrade() {
    let mut f = managed();
    let data = file(5_000, 6);
    let sid = f.begin(&data, 4_096, "k").unwrap().session_id;
    f.put(sid, &data, 4_096, 0, 2).unwrap();
    f.upgrade();
    let health = f.service.bucket_health(index(), false).unwrap();
    assert_eq!(
        health,
        BucketHealth {
            layout_version: CURRENT_LAYOUT,
            package_version: env!("CARGO_PKG_VERSION").into(),
            capsule_count: 1,
            memory_count: 0,
            invariants_ok: true,
            detail: "ok".into(),
        }
    );
    // A broken rule shows.
    f.service.bucket.set_index(None);
    f.service.bucket.set_state(BucketState::Sealed);
    let health = f.service.bucket_health(alice(), true).unwrap();
    assert!(!health.invariants_ok);
    assert_eq!(health.detail, "standalone but Sealed");
}

/// Every error the bucket methods list, each provoked, the set compared
/// with their error types in the exported interface: all but
/// `OutOfSpace`, which only a subnet refusing stable memory gives.
#[test]
fn bucket_methods_return_each_listed_error() {
    let mut f = Fixture::new();
    let mut seen = BTreeSet::new();
    let set = "admin_set_index";
    let refused = f.service.set_index(false, Some(index())).unwrap_err();
    seen.insert(format!("{set} {}", case_name(&refused)));
    let mut observe = |method: &str, error: Option<BucketError>| {
        let error = error.unwrap_or_else(|| panic!("{method} succeeded"));
        seen.insert(format!("{method} {}", case_name(&error)));
    };
    let register = "bucket_register_capsule";
    observe(
        register,
        f.service.register_capsule(bob(), placed(5, bob())).err(),
    );
    f.service.set_index(true, Some(index())).unwrap();
    observe(
        register,
        f.service.register_capsule(index(), placed(1, bob())).err(),
    );
    observe(
        register,
        f.service.register_capsule(index(), placed(0, bob())).err(),
    );
    f.service
        .set_bucket_state(index(), BucketState::Sealed)
        .unwrap();
    observe(
        register,
        f.service.register_capsule(index(), placed(5, bob())).err(),
    );
    observe(
        "bucket_set_state",
        f.service.set_bucket_state(bob(), BucketState::Open).err(),
    );
    observe(
        "bucket_report",
        f.service.bucket_report(bob(), false, 1, 0).err(),
    );
    observe(
        "bucket_capsules",
        f.service.bucket_capsules(bob(), false, None, 1).err(),
    );
    observe("bucket_health", f.service.bucket_health(bob(), false).err());

    let mut listed = BTreeSet::new();
    for method in [
        set,
        register,
        "bucket_set_state",
        "bucket_report",
        "bucket_capsules",
        "bucket_health",
    ] {
        for case in declared_errors(method) {
            if case != "OutOfSpace" {
                listed.insert(format!("{method} {case}"));
            }
        }
    }
    assert_eq!(seen, listed);

    // And the new cases of the upload methods.
    assert!(declared_errors("uploads_begin").contains(&"BucketSealed".to_string()));
    assert!(declared_errors("capsules_create").contains(&"ManagedByIndex".to_string()));
}
