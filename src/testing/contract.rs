//! The error contract on the test side: each method's error type (in the
//! interface the code exports) declares the cases it can answer, and the
//! endpoint traps on any other (`crate::error`). What is left to check is
//! the other direction: that each declared case is one the method really
//! returns. The model drives the upload, read and access methods into
//! theirs; the methods it does not drive are driven here into each
//! declared error (capsules, admin; and `memories_set_thumbnail`, which
//! the model drives but not always into each error), the share links in
//! `sharing::tests`.

use candid::types::{Label, TypeInner};
use candid_parser::utils::CandidSource;
use std::fmt::Debug;

/// The name of a value's enum case, as its derived `Debug` starts: the
/// Candid name too, since no case of the error types is renamed.
pub fn case_name(value: &impl Debug) -> String {
    let debug = format!("{value:?}");
    let end = debug
        .find(|c: char| !c.is_alphanumeric() && c != '_')
        .unwrap_or(debug.len());
    debug[..end].to_string()
}

/// The cases of `method`'s error type, as the exported interface declares
/// them: `Case`, and `QuotaExceeded Quota` for each quota of a
/// `QuotaExceeded`. Empty for a method without a `Result`.
pub fn declared_errors(method: &str) -> Vec<String> {
    let did = crate::canister::exported_interface();
    let (env, actor) = CandidSource::Text(&did)
        .load()
        .expect("the interface parses");
    let actor = actor.expect("a service");
    let service = env.as_service(&actor).expect("a service");
    let (_, ty) = service
        .iter()
        .find(|(name, _)| name == method)
        .unwrap_or_else(|| panic!("{method} is not an endpoint"));
    let func = env.as_func(ty).expect("a method");
    let Some(ret) = func.rets.first() else {
        return Vec::new();
    };
    let cases = |ty: &candid::types::Type| match env.trace_type(ty).expect("a type").as_ref() {
        TypeInner::Variant(fields) => fields.to_vec(),
        _ => Vec::new(),
    };
    let Some(err) = cases(ret)
        .into_iter()
        .find(|f| *f.id == Label::Named("Err".into()))
    else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for case in cases(&err.ty) {
        let name = case.id.to_string();
        let quota = match env.trace_type(&case.ty).expect("a type").as_ref() {
            TypeInner::Record(fields) => fields
                .iter()
                .find(|f| *f.id == Label::Named("quota".into()))
                .map(|f| cases(&f.ty)),
            _ => None,
        };
        match quota {
            Some(quotas) => {
                names.extend(quotas.iter().map(|q| format!("{name} {}", q.id)));
            }
            None => names.push(name),
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::session::SessionId;
    use crate::testing::service::UploadService;
    use crate::upload::{
        AssetMetadata, BeginUpload, CapsuleId, FinishUpload, ListMemories, MemoryItemId,
        PutChunkError, Quota, Thumbnail, UploadError, UploadStatusError,
    };
    use candid::Principal;
    use ic_stable_structures::VectorMemory;
    use serde_bytes::ByteBuf;
    use sha2::{Digest, Sha256};
    use std::collections::BTreeSet;

    fn quota(quota: Quota) -> UploadError {
        UploadError::QuotaExceeded {
            quota,
            limit: 1,
            requested: 2,
        }
    }

    #[test]
    fn a_declared_case_narrows_to_the_same_value() {
        let missing = UploadError::SessionNotFound {
            session_id: SessionId(1),
        };
        let narrow = UploadStatusError::narrow(missing.clone());
        assert_eq!(UploadError::from(narrow), missing);
        let too_big = quota(Quota::ChunkBytes);
        assert_eq!(
            UploadError::from(PutChunkError::narrow(too_big.clone())),
            too_big
        );
    }

    #[test]
    #[should_panic(expected = "a case its error type does not have")]
    fn an_undeclared_case_traps() {
        UploadStatusError::narrow(UploadError::OutOfSpace);
    }

    #[test]
    #[should_panic(expected = "which its error type does not have")]
    fn an_undeclared_quota_traps() {
        PutChunkError::narrow(quota(Quota::FileBytes));
    }

    #[test]
    fn declared_errors_read_the_exported_interface() {
        let put = declared_errors("uploads_put_chunk");
        assert!(put.contains(&"QuotaExceeded ChunkBytes".to_string()));
        assert!(!put.contains(&"QuotaExceeded FileBytes".to_string()));
        assert!(put.contains(&"ChunkConflict".to_string()));
        let mut unshare = declared_errors("memories_unshare");
        unshare.sort();
        assert_eq!(
            unshare,
            ["AnonymousCaller", "LinkNotFound", "NotAuthorized"]
        );
        assert!(declared_errors("stats").is_empty());
    }

    /// Records `result`'s error as `method Case` (`method QuotaExceeded
    /// Quota`).
    fn observe<T>(seen: &mut BTreeSet<String>, method: &str, result: Result<T, UploadError>) {
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

        // A bucket an index manages creates no capsule itself.
        crate::bucket::set_index(&mut service, true, Some(bob)).expect("controller");
        observe(seen, create, service.create_capsule(alice, 0, "c".into()));
        crate::bucket::set_index(&mut service, true, None).expect("controller");

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
            for case in declared_errors(method) {
                if case != "OutOfSpace" {
                    listed.insert(format!("{method} {case}"));
                }
            }
        }
        assert_eq!(*seen, listed);
    }
}
