//! The ingress filter: for every method of `backend.did`, who may call it
//! and how large its argument may be, decided in
//! `canister_inspect_message` before the canister pays to execute the
//! call (`RULES`). What each method can answer is its error type's
//! business (`crate::error`), not this table's.
//!
//! Admission is a cheap first filter, not a security boundary (one replica
//! runs it, and calls from canisters skip it): every update checks the same
//! things again and answers with a precise error.

use crate::limits::{
    BEGIN_ARG_BYTES, CHUNK_ARG_OVERHEAD_BYTES, MAX_CHUNK_BYTES, MAX_THUMBNAIL_BYTES,
    SMALL_ARG_BYTES, THUMBNAIL_ARG_OVERHEAD_BYTES,
};
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

/// Who may call a method, and its largest argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub method: &'static str,
    pub callers: Callers,
    pub max_arg_bytes: usize,
}

const fn rule(method: &'static str, callers: Callers) -> Rule {
    Rule {
        method,
        callers,
        max_arg_bytes: SMALL_ARG_BYTES,
    }
}

/// The rule of a method `RULES` does not name: anyone may call it, with a
/// small argument. So a new read-only endpoint needs no entry.
pub const DEFAULT_RULE: Rule = rule("", Callers::Anyone);

/// The rule of `method`: its entry in `RULES`, or `DEFAULT_RULE`. A name
/// the canister does not export gets the default too: the IC rejects the
/// call when it finds no such method, and inspecting costs nothing.
pub fn rule_of(method: &str) -> &'static Rule {
    RULES
        .iter()
        .find(|rule| rule.method == method)
        .unwrap_or(&DEFAULT_RULE)
}

/// The methods of `backend.did` whose rule is not the default: every
/// update (tests keep that so), and the queries listed for clarity (queries
/// may be called as updates for a subnet-agreed answer).
pub const RULES: &[Rule] = &[
    rule("capsules_create", Callers::SignedIn),
    rule("capsules_get", Callers::Anyone),
    rule("capsules_mine", Callers::Anyone),
    rule("capsules_grant_write", Callers::SignedIn),
    rule("capsules_revoke_write", Callers::SignedIn),
    Rule {
        max_arg_bytes: BEGIN_ARG_BYTES,
        ..rule("uploads_begin", Callers::SignedIn)
    },
    Rule {
        max_arg_bytes: MAX_CHUNK_BYTES as usize + CHUNK_ARG_OVERHEAD_BYTES,
        ..rule("uploads_put_chunk", Callers::SignedIn)
    },
    rule("uploads_finish", Callers::SignedIn),
    rule("uploads_abort", Callers::SignedIn),
    rule("uploads_status", Callers::Anyone),
    rule("uploads_mine", Callers::Anyone),
    rule("uploads_chunk_sha256", Callers::Anyone),
    rule("memories_get", Callers::Anyone),
    rule("memories_list", Callers::Anyone),
    rule("memories_read", Callers::Anyone),
    rule("memories_delete", Callers::SignedIn),
    Rule {
        max_arg_bytes: MAX_THUMBNAIL_BYTES + THUMBNAIL_ARG_OVERHEAD_BYTES,
        ..rule("memories_set_thumbnail", Callers::SignedIn)
    },
    rule("memories_share", Callers::SignedIn),
    rule("memories_shares", Callers::Anyone),
    rule("memories_unshare", Callers::SignedIn),
    // The gateway calls it as a query (never upgraded); as an update it is
    // a read like any other query.
    rule("http_request", Callers::Anyone),
    rule("stats", Callers::Anyone),
    rule("admin_usage", Callers::Controllers),
    rule("admin_set_limits", Callers::Controllers),
    rule(
        "admin_set_capsule_creation_restricted",
        Callers::Controllers,
    ),
    rule("admin_allow_capsule_creator", Callers::Controllers),
    rule("admin_capsule_creators", Callers::Controllers),
    rule("admin_set_index", Callers::Controllers),
    // The index calls these (a canister's calls skip `inspect_message`);
    // the endpoints refuse any other caller.
    rule("bucket_register_capsule", Callers::SignedIn),
    rule("bucket_set_state", Callers::SignedIn),
    rule("bucket_report", Callers::Anyone),
    rule("bucket_capsules", Callers::Anyone),
    rule("bucket_health", Callers::Anyone),
];

/// Why an ingress call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    AnonymousCaller,
    NotController,
    ArgumentTooLarge { limit: usize, actual: usize },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
    let rule = rule_of(method);
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
    fn rules_name_methods_of_backend_did_and_every_update() {
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
        let in_rules: Vec<String> = RULES.iter().map(|r| r.method.to_string()).collect();
        for method in &in_rules {
            assert!(
                in_did.contains(method),
                "{method} is in RULES, not in backend.did"
            );
        }
        in_did.retain(|method| {
            let line = did
                .lines()
                .find(|line| line.trim_start().starts_with(&format!("{method} :")))
                .expect("the method's line");
            !line.contains("query")
        });
        for update in in_did {
            assert!(
                in_rules.contains(&update),
                "the update {update} has no rule"
            );
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
        // Not named in RULES: the default rule.
        assert_eq!(admit("a_new_query", &anonymous, 100, || false), Ok(()));
        assert_eq!(
            admit("a_new_query", &user(), SMALL_ARG_BYTES + 1, || false),
            Err(Refusal::ArgumentTooLarge {
                limit: SMALL_ARG_BYTES,
                actual: SMALL_ARG_BYTES + 1
            })
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
