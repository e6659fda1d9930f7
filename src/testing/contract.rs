//! The error contract on the test side: an error a method returned must be
//! one that its entry in `admission::RULES` (and so its doc comment in
//! `backend.did`) lists. The model harness checks every reply it gets, so
//! an error the contract does not name fails the model test and the fuzzer;
//! the methods it does not drive are driven into each listed error below
//! (capsules, admin; and `memories_set_thumbnail`, which the model drives
//! but not always into each error) and in `upload::sharing_tests` (share
//! links).

use crate::admission::{rule_of, Errors};
use crate::upload::{ShareError, UploadError};
use std::fmt::Debug;

/// The name of a value's enum case, as its derived `Debug` starts: the
/// Candid name too, since no case of the error types is renamed (a test
/// in `admission` checks the listed names against the Candid types).
pub fn case_name(value: &impl Debug) -> String {
    let debug = format!("{value:?}");
    let end = debug
        .find(|c: char| !c.is_alphanumeric() && c != '_')
        .unwrap_or(debug.len());
    debug[..end].to_string()
}

/// An error type of the Candid interface.
pub trait ContractError: Debug {
    /// Whether `errors` lists this error; `None` when `errors` is not a
    /// list of this type's cases.
    fn listed_in(&self, errors: &Errors) -> Option<bool>;
}

impl ContractError for UploadError {
    fn listed_in(&self, errors: &Errors) -> Option<bool> {
        let Errors::Upload { cases, quotas } = errors else {
            return None;
        };
        Some(match self {
            UploadError::QuotaExceeded { quota, .. } => quotas.contains(&case_name(quota).as_str()),
            other => cases.contains(&case_name(other).as_str()),
        })
    }
}

impl ContractError for ShareError {
    fn listed_in(&self, errors: &Errors) -> Option<bool> {
        let Errors::Share(cases) = errors else {
            return None;
        };
        Some(cases.contains(&case_name(self).as_str()))
    }
}

/// Panics unless `result` is `Ok` or an error that `method` lists.
pub fn assert_listed<T, E: ContractError>(method: &str, result: &Result<T, E>) {
    let Err(error) = result else {
        return;
    };
    let rule = rule_of(method).unwrap_or_else(|| panic!("{method} is not an endpoint"));
    match error.listed_in(&rule.errors) {
        Some(true) => {}
        Some(false) => panic!(
            "{method} returned {error:?}, an error its entry in admission::RULES \
             (and backend.did) does not list"
        ),
        None => panic!("{method} returned {error:?}, an error type its rule does not name"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionId;
    use crate::upload::limits::Limits;
    use crate::upload::{
        AssetMetadata, BeginUpload, CapsuleId, FinishUpload, ListMemories, MemoryItemId, Quota,
        Thumbnail, UploadService,
    };
    use candid::Principal;
    use ic_stable_structures::VectorMemory;
    use serde_bytes::ByteBuf;
    use sha2::{Digest, Sha256};
    use std::collections::BTreeSet;

    fn quota(quota: Quota) -> Result<(), UploadError> {
        Err(UploadError::QuotaExceeded {
            quota,
            limit: 1,
            requested: 2,
        })
    }

    #[test]
    fn listed_errors_pass() {
        assert_listed("uploads_status", &Ok::<(), UploadError>(()));
        assert_listed(
            "uploads_status",
            &Err::<(), _>(UploadError::SessionNotFound {
                session_id: SessionId(1),
            }),
        );
        assert_listed("uploads_put_chunk", &quota(Quota::ChunkBytes));
    }

    #[test]
    #[should_panic(expected = "does not list")]
    fn an_unlisted_case_fails() {
        assert_listed("uploads_status", &Err::<(), _>(UploadError::OutOfSpace));
    }

    #[test]
    #[should_panic(expected = "does not list")]
    fn an_unlisted_quota_fails() {
        assert_listed("uploads_put_chunk", &quota(Quota::FileBytes));
    }

    #[test]
    #[should_panic(expected = "an error type its rule does not name")]
    fn an_error_from_a_method_without_one_fails() {
        assert_listed("stats", &Err::<(), _>(UploadError::NotAuthorized));
    }

    #[test]
    #[should_panic(expected = "an error type its rule does not name")]
    fn an_upload_error_from_a_share_method_fails() {
        assert_listed("memories_shares", &Err::<(), _>(UploadError::NotAuthorized));
    }

    #[test]
    #[should_panic(expected = "does not list")]
    fn an_unlisted_share_error_fails() {
        assert_listed(
            "memories_shares",
            &Err::<(), _>(ShareError::LinkNotFound { link_id: 1 }),
        );
    }

    /// Records `result`'s error as `method Case` (`method QuotaExceeded
    /// Quota`), after checking that `method` lists it.
    fn observe<T>(seen: &mut BTreeSet<String>, method: &str, result: Result<T, UploadError>) {
        assert_listed(method, &result);
        if let Err(error) = result {
            let case = match &error {
                UploadError::QuotaExceeded { quota, .. } => format!("QuotaExceeded {quota:?}"),
                other => case_name(other),
            };
            seen.insert(format!("{method} {case}"));
        }
    }

    /// The model drives the upload, read and access methods; the capsule
    /// and admin methods it does not (and `memories_get`, whose
    /// `NotAuthorized` it sees only in some histories) are driven here into
    /// every error their entry lists, so that each listed error is one they really
    /// return. All but `OutOfSpace`: the subnet refusing to grow stable
    /// memory is provoked on the real canister (`tests/robustness.rs`).
    #[test]
    fn the_methods_the_model_does_not_drive_return_each_listed_error() {
        let alice = Principal::from_slice(&[1; 29]);
        let bob = Principal::from_slice(&[2; 29]);
        let mut service = UploadService::init(VectorMemory::default());
        let mut seen = BTreeSet::new();
        let seen = &mut seen;

        let capsule = service
            .create_capsule(alice, 0, "family".into())
            .expect("a capsule")
            .capsule_id;
        let create = "capsules_create";
        observe(
            seen,
            create,
            service.create_capsule(Principal::anonymous(), 0, "a".into()),
        );
        observe(
            seen,
            create,
            service.create_capsule(alice, 0, "n".repeat(257)),
        );
        service
            .set_capsule_creation_restricted(true, true)
            .expect("controller");
        observe(seen, create, service.create_capsule(bob, 0, "b".into()));
        service
            .set_capsule_creation_restricted(true, false)
            .expect("controller");
        let one_each = Limits {
            max_capsules_per_owner: 1,
            ..Limits::default()
        };
        service.set_limits(true, one_each).expect("valid limits");
        observe(
            seen,
            create,
            service.create_capsule(alice, 0, "second".into()),
        );

        // An empty file commits at once: a memory that Bob may not see.
        let empty = BeginUpload {
            capsule_id: capsule,
            asset: AssetMetadata {
                name: "empty".into(),
                mime_type: "text/plain".into(),
                byte_len: 0,
                sha256: None,
            },
            chunk_size: 1,
            expected_chunks: 0,
            idempotency_key: "empty".into(),
        };
        let session_id = service.begin(alice, 0, empty).expect("begun").session_id;
        let finish = FinishUpload {
            session_id,
            sha256: ByteBuf::from(Sha256::digest([]).to_vec()),
            byte_len: 0,
        };
        let memory = service.finish(alice, 0, finish).expect("committed");
        observe(
            seen,
            "memories_get",
            service.memory(alice, MemoryItemId(99)),
        );
        observe(seen, "memories_get", service.memory(bob, memory.memory_id));

        let set = "memories_set_thumbnail";
        let jpeg = |len: usize| {
            let mut bytes = vec![0; len];
            bytes[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
            Some(Thumbnail {
                mime_type: "image/jpeg".into(),
                bytes: ByteBuf::from(bytes),
            })
        };
        let id = memory.memory_id;
        observe(
            seen,
            set,
            service.set_thumbnail(Principal::anonymous(), id, None),
        );
        let png = Thumbnail {
            mime_type: "image/png".into(),
            bytes: ByteBuf::from(b"\x89PNG".to_vec()),
        };
        observe(seen, set, service.set_thumbnail(alice, id, Some(png)));
        observe(
            seen,
            set,
            service.set_thumbnail(alice, MemoryItemId(99), jpeg(10)),
        );
        observe(seen, set, service.set_thumbnail(bob, id, jpeg(10)));
        let tight = |limits: Limits| Limits {
            max_capsules_per_owner: 1,
            ..limits
        };
        service
            .set_limits(
                true,
                tight(Limits {
                    max_stored_bytes_per_caller: 4_096,
                    ..Limits::default()
                }),
            )
            .expect("valid limits");
        observe(seen, set, service.set_thumbnail(alice, id, jpeg(10)));
        service
            .set_limits(
                true,
                tight(Limits {
                    max_total_bytes: 4_096,
                    ..Limits::default()
                }),
            )
            .expect("valid limits");
        observe(seen, set, service.set_thumbnail(alice, id, jpeg(10)));
        service
            .set_limits(true, tight(Limits::default()))
            .expect("valid limits");
        observe(seen, set, service.set_thumbnail(alice, id, jpeg(10)));

        let missing = CapsuleId(99);
        observe(seen, "capsules_get", service.capsule(alice, missing));
        observe(seen, "capsules_get", service.capsule(bob, capsule));
        let list = |capsule_id| ListMemories {
            capsule_id,
            after: None,
            limit: 10,
        };
        observe(
            seen,
            "memories_list",
            service.list_memories(alice, list(missing)),
        );
        observe(
            seen,
            "memories_list",
            service.list_memories(bob, list(capsule)),
        );

        observe(seen, "admin_usage", service.admin_usage(false, None, 10));
        observe(
            seen,
            "admin_set_limits",
            service.set_limits(false, Limits::default()),
        );
        let absurd = Limits {
            max_chunk_bytes: 0,
            ..Limits::default()
        };
        observe(seen, "admin_set_limits", service.set_limits(true, absurd));
        observe(
            seen,
            "admin_set_capsule_creation_restricted",
            service.set_capsule_creation_restricted(false, true),
        );
        observe(
            seen,
            "admin_allow_capsule_creator",
            service.allow_capsule_creator(false, bob, true),
        );
        observe(
            seen,
            "admin_capsule_creators",
            service.admin_capsule_creators(false, None, 10),
        );

        let methods = [
            "capsules_create",
            "capsules_get",
            "memories_get",
            "memories_list",
            "memories_set_thumbnail",
            "admin_usage",
            "admin_set_limits",
            "admin_set_capsule_creation_restricted",
            "admin_allow_capsule_creator",
            "admin_capsule_creators",
        ];
        let mut listed = BTreeSet::new();
        for method in methods {
            let Errors::Upload { cases, quotas } = rule_of(method).expect("a method").errors else {
                panic!("{method} returns UploadError");
            };
            for case in cases.iter().filter(|case| **case != "OutOfSpace") {
                listed.insert(format!("{method} {case}"));
            }
            for quota in quotas {
                listed.insert(format!("{method} QuotaExceeded {quota}"));
            }
        }
        assert_eq!(*seen, listed);
    }
}
