//! The one table of endpoints, `RULES`: for every method of `backend.did`,
//! which ingress calls the canister agrees to execute, decided in
//! `canister_inspect_message` before it pays for them, and which errors
//! the method can answer (the contract `backend.did` states).
//!
//! Admission is a cheap first filter, not a security boundary (one replica
//! runs it, and calls from canisters skip it): every update checks the same
//! things again and answers with a precise `UploadError`.

use crate::upload::limits::MAX_CHUNK_BYTES;
use crate::upload::thumbnails::MAX_THUMBNAIL_BYTES;
use candid::Principal;
use std::fmt;

/// Who may call a method at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callers {
    Anyone,
    /// Any principal but the anonymous one.
    SignedIn,
    Controllers,
}

/// Room for the Candid header, type table and the small fields beside a
/// chunk's bytes (a full `uploads_put_chunk` uses under 300 bytes of it).
pub const CHUNK_ARG_OVERHEAD_BYTES: usize = 1024;
/// Largest argument of every method but those that carry bytes
/// (`uploads_put_chunk`, and `uploads_begin` and `memories_set_thumbnail`
/// with a thumbnail): the longest valid `uploads_begin` without a
/// thumbnail (name, MIME type, key and digest at their maxima) encodes to
/// under 2 KiB.
pub const SMALL_ARG_BYTES: usize = 8 * 1024;
/// Largest `uploads_begin` argument: the rest of the record as for any
/// small argument, and a thumbnail.
pub const BEGIN_ARG_BYTES: usize = SMALL_ARG_BYTES + MAX_THUMBNAIL_BYTES;
/// Room for the Candid header, type table, memory id and MIME type beside
/// a thumbnail's bytes (a full `memories_set_thumbnail` uses under 100).
pub const THUMBNAIL_ARG_OVERHEAD_BYTES: usize = 1024;

/// What a method admits, and what it can answer in its `Err`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub method: &'static str,
    pub callers: Callers,
    pub max_arg_bytes: usize,
    pub errors: Errors,
}

/// The error cases a method can return, by their Candid names: what its
/// code can answer (read from its code paths, and checked against every
/// error the model and fuzz tests observe), not every case its error type
/// has. Each method's doc comment in `backend.did` lists them
/// (`Errors::contract`), and a test keeps the two equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errors {
    /// The method returns no `Result`.
    None,
    /// `Result<_, UploadError>`.
    Upload {
        /// `UploadError` cases other than `QuotaExceeded`.
        cases: &'static [&'static str],
        /// The `Quota`s of the `QuotaExceeded` it can return; empty when
        /// it returns none.
        quotas: &'static [&'static str],
    },
    /// `Result<_, ShareError>`.
    Share(&'static [&'static str]),
}

impl Errors {
    /// The sentence of the method's doc comment that lists its errors, as
    /// `backend.did` has it: `Errors: A, B, QuotaExceeded (X, Y).`
    pub fn contract(&self) -> Option<String> {
        let names = match *self {
            Errors::None => return None,
            Errors::Upload { cases, quotas } => {
                let mut names: Vec<String> = cases.iter().map(|c| c.to_string()).collect();
                if !quotas.is_empty() {
                    names.push(format!("QuotaExceeded ({})", quotas.join(", ")));
                }
                names
            }
            Errors::Share(cases) => cases.iter().map(|c| c.to_string()).collect(),
        };
        Some(format!("Errors: {}.", names.join(", ")))
    }
}

const fn rule(method: &'static str, callers: Callers, errors: Errors) -> Rule {
    Rule {
        method,
        callers,
        max_arg_bytes: SMALL_ARG_BYTES,
        errors,
    }
}

const fn upload(cases: &'static [&'static str], quotas: &'static [&'static str]) -> Errors {
    Errors::Upload { cases, quotas }
}

/// The rule of `method`, if it is one of the canister's.
pub fn rule_of(method: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.method == method)
}

/// Every method of `backend.did` (queries too: they may be called as
/// updates for a subnet-agreed answer). A test keeps it equal to the did.
///
/// Cases the types allow but no path reaches are left out: capsules are
/// never deleted, so a session's or memory's capsule is always found
/// (`CapsuleNotFound` only where the caller names the capsule), and a
/// memory's links go with it (`memories_unshare` finds the memory of any
/// link it finds).
pub const RULES: &[Rule] = &[
    rule(
        "capsules_create",
        Callers::SignedIn,
        upload(
            &[
                "AnonymousCaller",
                "OutOfSpace",
                "InvalidArgument",
                "NotAuthorized",
            ],
            &["CapsulesPerOwner"],
        ),
    ),
    rule(
        "capsules_get",
        Callers::Anyone,
        upload(&["CapsuleNotFound", "NotAuthorized"], &[]),
    ),
    rule("capsules_mine", Callers::Anyone, Errors::None),
    rule(
        "capsules_grant_write",
        Callers::SignedIn,
        upload(
            &[
                "AnonymousCaller",
                "OutOfSpace",
                "CapsuleNotFound",
                "NotAuthorized",
                "InvalidArgument",
            ],
            &["WritersPerCapsule"],
        ),
    ),
    rule(
        "capsules_revoke_write",
        Callers::SignedIn,
        upload(
            &[
                "AnonymousCaller",
                "OutOfSpace",
                "CapsuleNotFound",
                "NotAuthorized",
            ],
            &[],
        ),
    ),
    Rule {
        max_arg_bytes: BEGIN_ARG_BYTES,
        ..rule(
            "uploads_begin",
            Callers::SignedIn,
            upload(
                &[
                    "AnonymousCaller",
                    "OutOfSpace",
                    "InvalidArgument",
                    "DeclaredValuesDisagree",
                    "CapsuleNotFound",
                    "NotAuthorized",
                    "IdempotencyConflict",
                    "SessionAborted",
                    "SessionExpired",
                ],
                &[
                    "ChunkBytes",
                    "FileBytes",
                    "ChunksPerSession",
                    "OpenSessionsPerCaller",
                    "ReservedBytesPerCaller",
                    "StoredBytesPerCaller",
                    "ReservedBytesTotal",
                    "TotalBytes",
                ],
            ),
        )
    },
    Rule {
        max_arg_bytes: MAX_CHUNK_BYTES as usize + CHUNK_ARG_OVERHEAD_BYTES,
        ..rule(
            "uploads_put_chunk",
            Callers::SignedIn,
            upload(
                &[
                    "AnonymousCaller",
                    "OutOfSpace",
                    "SessionNotFound",
                    "NotAuthorized",
                    "SessionExpired",
                    "SessionAborted",
                    "AlreadyCommitted",
                    "InvalidArgument",
                    "ChunkChecksumMismatch",
                    "IndexOutOfRange",
                    "WrongChunkLength",
                    "ChunkConflict",
                ],
                &["ChunkBytes"],
            ),
        )
    },
    rule(
        "uploads_finish",
        Callers::SignedIn,
        upload(
            &[
                "AnonymousCaller",
                "OutOfSpace",
                "InvalidArgument",
                "SessionNotFound",
                "NotAuthorized",
                "DeclaredValuesDisagree",
                "AlreadyCommitted",
                "MemoryNotFound",
                "SessionExpired",
                "SessionAborted",
                "DeclaredHashesDisagree",
                "Incomplete",
                "VerificationPending",
                "ChecksumMismatch",
            ],
            &["RepairRounds"],
        ),
    ),
    rule(
        "uploads_abort",
        Callers::SignedIn,
        upload(
            &[
                "AnonymousCaller",
                "SessionNotFound",
                "NotAuthorized",
                "AlreadyCommitted",
                "SessionExpired",
            ],
            &[],
        ),
    ),
    rule(
        "uploads_status",
        Callers::Anyone,
        upload(&["SessionNotFound", "NotAuthorized"], &[]),
    ),
    rule("uploads_mine", Callers::Anyone, Errors::None),
    rule(
        "uploads_chunk_sha256",
        Callers::Anyone,
        upload(
            &[
                "SessionNotFound",
                "NotAuthorized",
                "IndexOutOfRange",
                "AlreadyCommitted",
                "SessionAborted",
                "SessionExpired",
                "ChunkNotReceived",
            ],
            &[],
        ),
    ),
    rule(
        "memories_get",
        Callers::Anyone,
        upload(&["MemoryNotFound", "NotAuthorized"], &[]),
    ),
    rule(
        "memories_list",
        Callers::Anyone,
        upload(&["CapsuleNotFound", "NotAuthorized"], &[]),
    ),
    rule(
        "memories_read",
        Callers::Anyone,
        upload(
            &["MemoryNotFound", "NotAuthorized", "RangeOutOfBounds"],
            &["ReadBytes"],
        ),
    ),
    rule(
        "memories_delete",
        Callers::SignedIn,
        upload(&["AnonymousCaller", "MemoryNotFound", "NotAuthorized"], &[]),
    ),
    Rule {
        max_arg_bytes: MAX_THUMBNAIL_BYTES + THUMBNAIL_ARG_OVERHEAD_BYTES,
        ..rule(
            "memories_set_thumbnail",
            Callers::SignedIn,
            upload(
                &[
                    "AnonymousCaller",
                    "OutOfSpace",
                    "InvalidArgument",
                    "MemoryNotFound",
                    "NotAuthorized",
                ],
                &["StoredBytesPerCaller", "TotalBytes"],
            ),
        )
    },
    rule(
        "memories_share",
        Callers::SignedIn,
        Errors::Share(&[
            "RandomnessUnavailable",
            "AnonymousCaller",
            "MemoryNotFound",
            "NotAuthorized",
            "InvalidArgument",
            "TooManyLinks",
            "CapacityExhausted",
        ]),
    ),
    rule(
        "memories_shares",
        Callers::Anyone,
        Errors::Share(&["AnonymousCaller", "MemoryNotFound", "NotAuthorized"]),
    ),
    rule(
        "memories_unshare",
        Callers::SignedIn,
        Errors::Share(&["LinkNotFound", "AnonymousCaller", "NotAuthorized"]),
    ),
    // The gateway calls it as a query (never upgraded); as an update it is
    // a read like any other query.
    rule("http_request", Callers::Anyone, Errors::None),
    rule("stats", Callers::Anyone, Errors::None),
    rule(
        "admin_usage",
        Callers::Controllers,
        upload(&["NotAuthorized"], &[]),
    ),
    rule(
        "admin_set_limits",
        Callers::Controllers,
        upload(&["NotAuthorized", "OutOfSpace", "InvalidArgument"], &[]),
    ),
    rule(
        "admin_set_capsule_creation_restricted",
        Callers::Controllers,
        upload(&["NotAuthorized", "OutOfSpace"], &[]),
    ),
    rule(
        "admin_allow_capsule_creator",
        Callers::Controllers,
        upload(&["NotAuthorized", "OutOfSpace"], &[]),
    ),
    rule(
        "admin_capsule_creators",
        Callers::Controllers,
        upload(&["NotAuthorized"], &[]),
    ),
];

/// Why an ingress call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownMethod,
    AnonymousCaller,
    NotController,
    ArgumentTooLarge { limit: usize, actual: usize },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownMethod => write!(f, "refused: no such method"),
            Refusal::AnonymousCaller => {
                write!(
                    f,
                    "refused: the anonymous principal may not call this method"
                )
            }
            Refusal::NotController => write!(f, "refused: only controllers may call this method"),
            Refusal::ArgumentTooLarge { limit, actual } => write!(
                f,
                "refused: the argument is {actual} bytes, this method takes at most {limit}"
            ),
        }
    }
}

/// Decides whether to execute an ingress call. `is_controller` is asked
/// only for controller-only methods.
pub fn admit(
    method: &str,
    caller: &Principal,
    arg_bytes: usize,
    is_controller: impl FnOnce() -> bool,
) -> Result<(), Refusal> {
    let rule = rule_of(method).ok_or(Refusal::UnknownMethod)?;
    if arg_bytes > rule.max_arg_bytes {
        return Err(Refusal::ArgumentTooLarge {
            limit: rule.max_arg_bytes,
            actual: arg_bytes,
        });
    }
    match rule.callers {
        Callers::Anyone => Ok(()),
        Callers::SignedIn if *caller == Principal::anonymous() => Err(Refusal::AnonymousCaller),
        Callers::SignedIn => Ok(()),
        Callers::Controllers if is_controller() => Ok(()),
        Callers::Controllers => Err(Refusal::NotController),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::{
        AssetMetadata, BeginUpload, CapsuleId, MemoryItemId, PutChunk, SessionId, Thumbnail,
    };
    use serde_bytes::ByteBuf;

    fn user() -> Principal {
        Principal::from_slice(&[7; 29])
    }

    #[test]
    fn rules_name_exactly_the_methods_of_backend_did() {
        let did = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/backend.did"))
            .expect("read backend.did");
        let (env, service) = candid_parser::utils::CandidSource::Text(&did)
            .load()
            .expect("parse backend.did");
        let service = service.expect("backend.did has a service");
        let mut in_did: Vec<String> = env
            .as_service(&service)
            .expect("a service type")
            .iter()
            .map(|(name, _)| name.to_string())
            .collect();
        let mut in_rules: Vec<String> = RULES.iter().map(|r| r.method.to_string()).collect();
        in_did.sort();
        in_rules.sort();
        assert_eq!(in_rules, in_did);
    }

    /// The Candid names of a variant type's cases.
    fn case_names<T: candid::CandidType>() -> Vec<String> {
        match T::ty().as_ref() {
            candid::types::TypeInner::Variant(fields) => {
                fields.iter().map(|f| f.id.to_string()).collect()
            }
            other => panic!("not a variant: {other:?}"),
        }
    }

    /// Every name in the table is a case of its error type, once; the
    /// quotas are under `quotas`, not `QuotaExceeded` among the cases.
    #[test]
    fn listed_errors_are_cases_of_their_types() {
        let upload = case_names::<crate::upload::UploadError>();
        let quota = case_names::<crate::upload::Quota>();
        let share = case_names::<crate::upload::ShareError>();
        for rule in RULES {
            let lists: Vec<(&[&str], &Vec<String>)> = match rule.errors {
                Errors::None => vec![],
                Errors::Upload { cases, quotas } => vec![(cases, &upload), (quotas, &quota)],
                Errors::Share(cases) => vec![(cases, &share)],
            };
            for (names, of_type) in lists {
                for name in names {
                    assert!(
                        of_type.iter().any(|case| case == name) && *name != "QuotaExceeded",
                        "{}: {name} is not a case of its type",
                        rule.method
                    );
                }
                let mut unique = names.to_vec();
                unique.sort_unstable();
                unique.dedup();
                assert_eq!(unique.len(), names.len(), "{}: listed twice", rule.method);
            }
        }
    }

    #[test]
    fn signed_in_methods_are_the_updates_of_backend_did_but_admin() {
        let did = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/backend.did"))
            .expect("read backend.did");
        for rule in RULES {
            let line = did
                .lines()
                .find(|line| line.trim_start().starts_with(&format!("{} :", rule.method)))
                .unwrap_or_else(|| panic!("{} not in backend.did", rule.method));
            let is_query = line.contains("query");
            match rule.callers {
                Callers::SignedIn => assert!(!is_query, "{}", rule.method),
                Callers::Anyone => assert!(is_query, "{}", rule.method),
                Callers::Controllers => assert!(rule.method.starts_with("admin_")),
            }
        }
    }

    #[test]
    fn refuses_what_can_never_succeed() {
        let anonymous = Principal::anonymous();
        assert_eq!(admit("uploads_begin", &user(), 100, || false), Ok(()));
        assert_eq!(
            admit("uploads_begin", &anonymous, 100, || false),
            Err(Refusal::AnonymousCaller)
        );
        assert_eq!(admit("stats", &anonymous, 100, || false), Ok(()));
        assert_eq!(
            admit("http_request_update", &user(), 10, || true),
            Err(Refusal::UnknownMethod)
        );
        assert_eq!(
            admit("admin_set_limits", &user(), 10, || false),
            Err(Refusal::NotController)
        );
        assert_eq!(admit("admin_set_limits", &user(), 10, || true), Ok(()));
        assert_eq!(
            admit("uploads_abort", &user(), SMALL_ARG_BYTES + 1, || false),
            Err(Refusal::ArgumentTooLarge {
                limit: SMALL_ARG_BYTES,
                actual: SMALL_ARG_BYTES + 1
            })
        );
        assert_eq!(
            admit("uploads_begin", &user(), BEGIN_ARG_BYTES + 1, || false),
            Err(Refusal::ArgumentTooLarge {
                limit: BEGIN_ARG_BYTES,
                actual: BEGIN_ARG_BYTES + 1
            })
        );
    }

    #[test]
    fn the_largest_valid_arguments_fit() {
        let chunk = candid::encode_one(PutChunk {
            session_id: SessionId(u64::MAX),
            index: u32::MAX,
            bytes: ByteBuf::from(vec![0; MAX_CHUNK_BYTES as usize]),
            sha256: Some(ByteBuf::from(vec![0; 32])),
        })
        .expect("encode");
        assert_eq!(
            admit("uploads_put_chunk", &user(), chunk.len(), || false),
            Ok(())
        );
        assert!(chunk.len() < MAX_CHUNK_BYTES as usize + 300);
        assert!(admit("uploads_put_chunk", &user(), chunk.len() + 1024, || false).is_err());

        let begin = candid::encode_one(BeginUpload {
            capsule_id: CapsuleId(u64::MAX),
            asset: AssetMetadata {
                name: "n".repeat(1024),
                mime_type: "m".repeat(256),
                byte_len: u64::MAX,
                sha256: Some(ByteBuf::from(vec![0; 32])),
            },
            chunk_size: u32::MAX,
            expected_chunks: u32::MAX,
            idempotency_key: "k".repeat(128),
        })
        .expect("encode");
        assert!(begin.len() < 2048, "{}", begin.len());
        assert_eq!(
            admit("uploads_begin", &user(), begin.len(), || false),
            Ok(())
        );

        let thumbnail = Thumbnail {
            mime_type: "image/webp".into(),
            bytes: ByteBuf::from(vec![0; MAX_THUMBNAIL_BYTES]),
        };
        let begin = candid::encode_one(
            BeginUpload {
                capsule_id: CapsuleId(u64::MAX),
                asset: AssetMetadata {
                    name: "n".repeat(1024),
                    mime_type: "m".repeat(256),
                    byte_len: u64::MAX,
                    sha256: Some(ByteBuf::from(vec![0; 32])),
                },
                chunk_size: u32::MAX,
                expected_chunks: u32::MAX,
                idempotency_key: "k".repeat(128),
            }
            .with_thumbnail(Some(thumbnail.clone())),
        )
        .expect("encode");
        assert!(begin.len() < 2048 + MAX_THUMBNAIL_BYTES, "{}", begin.len());
        assert_eq!(
            admit("uploads_begin", &user(), begin.len(), || false),
            Ok(())
        );
        let set = candid::encode_args((MemoryItemId(u64::MAX), Some(thumbnail))).expect("encode");
        assert!(set.len() < MAX_THUMBNAIL_BYTES + 100, "{}", set.len());
        assert_eq!(
            admit("memories_set_thumbnail", &user(), set.len(), || false),
            Ok(())
        );
        assert!(admit(
            "memories_set_thumbnail",
            &user(),
            set.len() + THUMBNAIL_ARG_OVERHEAD_BYTES,
            || false
        )
        .is_err());
        assert_eq!(
            admit(
                "memories_set_thumbnail",
                &Principal::anonymous(),
                10,
                || false
            ),
            Err(Refusal::AnonymousCaller)
        );
    }
}
