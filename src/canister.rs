//! The canister's Candid entry points. Each one reads the caller and the
//! time and hands the call to the `UploadService`; no logic lives here.

use crate::http::{HttpRequest, HttpResponse};
use crate::upload::limits::Limits;
use crate::upload::shares::SECRET_BYTES;
use crate::upload::*;
use candid::Principal;
use ic_cdk::{init, inspect_message, post_upgrade, query, update};
use ic_stable_structures::DefaultMemoryImpl;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::cell::{Cell, RefCell};
use std::time::Duration;

/// How often idle sessions are expired and old records pruned.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

thread_local! {
    static SERVICE: RefCell<UploadService<DefaultMemoryImpl>> =
        RefCell::new(UploadService::init(DefaultMemoryImpl::default()));
    /// When the pending follow-up maintenance run was scheduled, if one is.
    /// Heap state on purpose: timers do not survive upgrades either, and
    /// `post_upgrade` schedules afresh.
    static FOLLOW_UP_SCHEDULED_AT: Cell<Option<u64>> = const { Cell::new(None) };
    /// The generator of share-link secrets, seeded from the management
    /// canister's `raw_rand` on first use after install or upgrade.
    static LINK_RNG: RefCell<Option<ChaCha20Rng>> = const { RefCell::new(None) };
}

/// Publishes the certification tree's root as the canister's certified
/// data. Called after everything that changes the tree.
fn certify() {
    ic_cdk::api::certified_data_set(with_service(|s| s.certified_data()));
}

/// 128 bits for a new link's secret, from a ChaCha20 generator seeded
/// with 32 bytes of `raw_rand` (fetched once per canister version).
async fn link_secret() -> Result<[u8; SECRET_BYTES], ShareError> {
    if LINK_RNG.with(|rng| rng.borrow().is_none()) {
        let unavailable = |reason: String| ShareError::RandomnessUnavailable { reason };
        let reply = ic_cdk::call::Call::bounded_wait(Principal::management_canister(), "raw_rand")
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let bytes: Vec<u8> = reply.candid().map_err(|e| unavailable(e.to_string()))?;
        let seed: [u8; 32] = bytes
            .get(..32)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| unavailable(format!("raw_rand returned {} bytes", bytes.len())))?;
        LINK_RNG.with(|rng| {
            rng.borrow_mut()
                .get_or_insert_with(|| ChaCha20Rng::from_seed(seed));
        });
    }
    let mut secret = [0u8; SECRET_BYTES];
    LINK_RNG.with(|rng| {
        rng.borrow_mut()
            .as_mut()
            .expect("bug: link generator not seeded")
            .fill_bytes(&mut secret)
    });
    Ok(secret)
}

fn with_service<R>(f: impl FnOnce(&mut UploadService<DefaultMemoryImpl>) -> R) -> R {
    SERVICE.with(|service| f(&mut service.borrow_mut()))
}

fn caller() -> Principal {
    ic_cdk::api::msg_caller()
}

fn caller_is_controller() -> bool {
    ic_cdk::api::is_controller(&caller())
}

fn now() -> u64 {
    ic_cdk::api::time()
}

fn start_timers() {
    ic_cdk_timers::set_timer_interval(SWEEP_INTERVAL, || async {
        let report = with_service(|s| s.maintenance(now()));
        let more_sharing = with_service(|s| s.sharing_maintenance(now()));
        certify();
        schedule_follow_up_if_needed(report.more_work || more_sharing);
    });
    schedule_follow_up_if_needed(true);
}

fn run_follow_up() {
    FOLLOW_UP_SCHEDULED_AT.with(|at| at.set(None));
    let report = with_service(|s| s.maintenance(now()));
    let more_sharing = with_service(|s| s.sharing_maintenance(now()));
    certify();
    schedule_follow_up_if_needed(report.more_work || more_sharing);
}

/// Runs maintenance again right away while it has work left, so backlog
/// hashing and large sweeps proceed in bounded steps. One follow-up at a
/// time; one that never ran (its message trapped) is replaced after a sweep
/// interval.
fn schedule_follow_up_if_needed(more_work: bool) {
    let needed = more_work || with_service(|s| s.has_hashing_backlog() || s.has_sharing_work());
    let now = now();
    let stale = |scheduled: u64| now.saturating_sub(scheduled) > SWEEP_INTERVAL.as_nanos() as u64;
    let pending = FOLLOW_UP_SCHEDULED_AT
        .with(|at| at.get())
        .is_some_and(|t| !stale(t));
    if needed && !pending {
        FOLLOW_UP_SCHEDULED_AT.with(|at| at.set(Some(now)));
        ic_cdk_timers::set_timer(Duration::ZERO, async { run_follow_up() });
    }
}

#[init]
fn init() {
    with_service(|_| ());
    certify();
    start_timers();
}

#[post_upgrade]
fn post_upgrade() {
    // Opening the structures reads their headers, then rebuilds the heap
    // certification tree of the share links (bounded by
    // `MAX_CERTIFIED_ENTRIES`; see the README).
    with_service(|_| ());
    certify();
    start_timers();
}

/// Drops ingress calls that can never succeed before the canister pays to
/// execute them (`crate::admission`). Trapping, not just not accepting,
/// gives the client the reason.
#[inspect_message]
fn inspect_message() {
    let method = ic_cdk::api::msg_method_name();
    let caller = caller();
    let verdict = crate::admission::admit(&method, &caller, ic0::msg_arg_data_size(), || {
        ic_cdk::api::is_controller(&caller)
    });
    match verdict {
        Ok(()) => ic_cdk::api::accept_message(),
        Err(refusal) => ic_cdk::trap(format!("{method}: {refusal}")),
    }
}

/// Creates a capsule owned by the caller.
/// Errors: AnonymousCaller, OutOfSpace, InvalidArgument, NotAuthorized,
/// QuotaExceeded (CapsulesPerOwner).
#[update]
fn capsules_create(name: String) -> Result<Capsule, UploadError> {
    with_service(|s| s.create_capsule(caller(), now(), name))
}

/// A capsule, for its owner and writers.
/// Errors: CapsuleNotFound, NotAuthorized.
#[query]
fn capsules_get(capsule_id: CapsuleId) -> Result<Capsule, UploadError> {
    with_service(|s| s.capsule(caller(), capsule_id))
}

/// The capsules the caller owns, a page at a time.
#[query]
fn capsules_mine(after: Option<CapsuleId>, limit: u32) -> Vec<Capsule> {
    with_service(|s| s.my_capsules(caller(), after, limit))
}

/// The owner lets a principal upload into the capsule.
/// Errors: AnonymousCaller, OutOfSpace, CapsuleNotFound, NotAuthorized,
/// InvalidArgument, QuotaExceeded (WritersPerCapsule).
#[update]
fn capsules_grant_write(capsule_id: CapsuleId, writer: Principal) -> Result<Capsule, UploadError> {
    with_service(|s| s.grant_write(caller(), capsule_id, writer))
}

/// The owner takes a writer's access away.
/// Errors: AnonymousCaller, OutOfSpace, CapsuleNotFound, NotAuthorized.
#[update]
fn capsules_revoke_write(capsule_id: CapsuleId, writer: Principal) -> Result<Capsule, UploadError> {
    with_service(|s| s.revoke_write(caller(), capsule_id, writer))
}

/// Starts an upload, or returns the session the same idempotency key
/// already started for the same request.
/// Errors: AnonymousCaller, OutOfSpace, InvalidArgument,
/// DeclaredValuesDisagree, CapsuleNotFound, NotAuthorized,
/// IdempotencyConflict, SessionAborted, SessionExpired, QuotaExceeded
/// (ChunkBytes, FileBytes, ChunksPerSession, OpenSessionsPerCaller,
/// ReservedBytesPerCaller, StoredBytesPerCaller, ReservedBytesTotal,
/// TotalBytes).
#[update]
fn uploads_begin(request: BeginUploadRequest) -> Result<UploadStarted, UploadError> {
    with_service(|s| s.begin(caller(), now(), request))
}

/// Stores one chunk at its place in the upload.
/// Errors: AnonymousCaller, OutOfSpace, SessionNotFound, NotAuthorized,
/// SessionExpired, SessionAborted, AlreadyCommitted, InvalidArgument,
/// ChunkChecksumMismatch, IndexOutOfRange, WrongChunkLength, ChunkConflict,
/// QuotaExceeded (ChunkBytes).
#[update]
fn uploads_put_chunk(request: PutChunk) -> Result<ChunkAccepted, UploadError> {
    let result = with_service(|s| s.put_chunk(caller(), now(), request));
    schedule_follow_up_if_needed(false);
    result
}

/// Verifies and commits an upload; finishing a committed upload again
/// returns the same answer.
/// Errors: AnonymousCaller, OutOfSpace, InvalidArgument, SessionNotFound,
/// NotAuthorized, DeclaredValuesDisagree, AlreadyCommitted, MemoryNotFound,
/// SessionExpired, SessionAborted, DeclaredHashesDisagree, Incomplete,
/// VerificationPending, ChecksumMismatch, QuotaExceeded (RepairRounds).
#[update]
fn uploads_finish(request: FinishUpload) -> Result<CommittedUpload, UploadError> {
    let result = with_service(|s| s.finish(caller(), now(), request));
    schedule_follow_up_if_needed(false);
    result
}

/// Abandons an upload and frees its space; aborting twice is harmless.
/// Errors: AnonymousCaller, SessionNotFound, NotAuthorized,
/// AlreadyCommitted, SessionExpired.
#[update]
fn uploads_abort(session_id: SessionId) -> Result<(), UploadError> {
    with_service(|s| s.abort(caller(), now(), session_id))
}

/// Where an upload stands, with a page of its missing chunks.
/// Errors: SessionNotFound, NotAuthorized.
#[query]
fn uploads_status(request: StatusRequest) -> Result<UploadStatus, UploadError> {
    with_service(|s| s.status(caller(), now(), request))
}

/// The caller's pending uploads, so that a reloaded page can resume them.
#[query]
fn uploads_mine() -> Vec<OpenUpload> {
    with_service(|s| s.open_uploads(caller(), now()))
}

/// SHA-256 of a received chunk as stored, to find the chunks to re-send
/// after a checksum mismatch.
/// Errors: SessionNotFound, NotAuthorized, IndexOutOfRange,
/// AlreadyCommitted, SessionAborted, SessionExpired, ChunkNotReceived.
#[query]
fn uploads_chunk_sha256(
    session_id: SessionId,
    index: u32,
) -> Result<serde_bytes::ByteBuf, UploadError> {
    with_service(|s| s.chunk_sha256(caller(), now(), session_id, index))
}

/// A committed memory's record, thumbnail included, for its capsule's
/// owner and writers.
/// Errors: MemoryNotFound, NotAuthorized.
#[query]
fn memories_get(memory_id: MemoryItemId) -> Result<MemoryRecord, UploadError> {
    with_service(|s| s.memory(caller(), memory_id))
}

/// A page of a capsule's memories with their thumbnails: at most `limit`,
/// fewer when more would not fit in about 1.5 MiB; `next_after` says where
/// the next page starts.
/// Errors: CapsuleNotFound, NotAuthorized.
#[query]
fn memories_list(request: ListMemories) -> Result<MemoriesPage, UploadError> {
    with_service(|s| s.list_memories(caller(), request))
}

/// A byte range of a committed memory, at most `MAX_READ_BYTES`.
/// Errors: MemoryNotFound, NotAuthorized, RangeOutOfBounds, QuotaExceeded
/// (ReadBytes).
#[query]
fn memories_read(request: ReadRange) -> Result<serde_bytes::ByteBuf, UploadError> {
    with_service(|s| s.read(caller(), request))
}

/// Deletes a memory (its uploader, or the capsule's owner) and frees its
/// space, its thumbnail's too.
/// Errors: AnonymousCaller, MemoryNotFound, NotAuthorized.
#[update]
fn memories_delete(memory_id: MemoryItemId) -> Result<(), UploadError> {
    let result = with_service(|s| s.delete_memory(caller(), memory_id));
    certify();
    result
}

/// Sets a memory's thumbnail (a JPEG or WebP of at most 32 KiB), or
/// removes it (`null`): its uploader or its capsule's owner. It counts
/// against the caller's stored bytes; the one replaced is released.
/// Errors: AnonymousCaller, OutOfSpace, InvalidArgument, MemoryNotFound,
/// NotAuthorized, QuotaExceeded (StoredBytesPerCaller, TotalBytes).
#[update]
fn memories_set_thumbnail(
    memory_id: MemoryItemId,
    thumbnail: Option<Thumbnail>,
) -> Result<(), UploadError> {
    with_service(|s| s.set_thumbnail(caller(), memory_id, thumbnail))
}

/// Creates a share link to a memory (its capsule's owner or its uploader).
/// Errors: RandomnessUnavailable, AnonymousCaller, MemoryNotFound,
/// NotAuthorized, InvalidArgument, TooManyLinks, CapacityExhausted.
#[update]
async fn memories_share(
    memory_id: MemoryItemId,
    expires_at: Option<u64>,
) -> Result<ShareLink, ShareError> {
    let caller = caller();
    let secret = link_secret().await?;
    let result = with_service(|s| s.share(caller, now(), memory_id, expires_at, secret));
    certify();
    schedule_follow_up_if_needed(false);
    result
}

/// A memory's share links (its capsule's owner or its uploader).
/// Errors: AnonymousCaller, MemoryNotFound, NotAuthorized.
#[query]
fn memories_shares(memory_id: MemoryItemId) -> Result<Vec<ShareLink>, ShareError> {
    with_service(|s| s.shares(caller(), memory_id))
}

/// Revokes a share link: from then on its path answers 404.
/// Errors: LinkNotFound, AnonymousCaller, NotAuthorized.
#[update]
fn memories_unshare(link_id: u64) -> Result<(), ShareError> {
    let result = with_service(|s| s.unshare(caller(), link_id));
    certify();
    result
}

/// The HTTP gateway's entry point: serves memories through share links,
/// every response certified (`crate::http`).
#[query]
fn http_request(request: HttpRequest) -> HttpResponse {
    let certificate = ic_cdk::api::data_certificate();
    with_service(|s| s.http_request(&request, now(), certificate.as_deref()))
}

/// Totals of the store, its limits, and the caller's usage.
#[query]
fn stats() -> Stats {
    with_service(|s| s.stats(caller()))
}

/// Controllers: every caller's usage, a page at a time.
/// Errors: NotAuthorized.
#[query]
fn admin_usage(
    after: Option<Principal>,
    limit: u32,
) -> Result<Vec<(Principal, CallerUsage)>, UploadError> {
    with_service(|s| s.admin_usage(caller_is_controller(), after, limit))
}

/// Controllers: sets the limits.
/// Errors: NotAuthorized, OutOfSpace, InvalidArgument.
#[update]
fn admin_set_limits(limits: Limits) -> Result<(), UploadError> {
    with_service(|s| s.set_limits(caller_is_controller(), limits))
}

/// Controllers: whether only allowed principals may create capsules from
/// now on.
/// Errors: NotAuthorized, OutOfSpace.
#[update]
fn admin_set_capsule_creation_restricted(restricted: bool) -> Result<(), UploadError> {
    with_service(|s| s.set_capsule_creation_restricted(caller_is_controller(), restricted))
}

/// Controllers: allows a principal to create capsules, or stops allowing
/// it.
/// Errors: NotAuthorized, OutOfSpace.
#[update]
fn admin_allow_capsule_creator(principal: Principal, allowed: bool) -> Result<(), UploadError> {
    with_service(|s| s.allow_capsule_creator(caller_is_controller(), principal, allowed))
}

/// Controllers: whether capsule creation is restricted, and a page of the
/// allowed creators.
/// Errors: NotAuthorized.
#[query]
fn admin_capsule_creators(
    after: Option<Principal>,
    limit: u32,
) -> Result<CapsuleCreators, UploadError> {
    with_service(|s| s.admin_capsule_creators(caller_is_controller(), after, limit))
}

ic_cdk::export_candid!();

#[cfg(test)]
mod tests {
    use crate::admission::Errors;
    use candid::types::{Label, Type, TypeEnv, TypeInner};
    use candid_parser::utils::CandidSource;
    use std::collections::BTreeMap;

    /// `backend.did` is the interface users build against: it must be
    /// exactly what the code exports. `UPDATE_DID=1 cargo test` rewrites it.
    #[test]
    fn candid_interface_matches_backend_did() {
        let exported = super::__export_service();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("backend.did");
        if std::env::var_os("UPDATE_DID").is_some() {
            std::fs::write(&path, &exported).expect("write backend.did");
        }
        let declared = std::fs::read_to_string(&path).expect("read backend.did");
        candid_parser::utils::service_equal(
            candid_parser::utils::CandidSource::Text(&declared),
            candid_parser::utils::CandidSource::Text(&exported),
        )
        .unwrap_or_else(|e| {
            panic!("backend.did differs from the code: {e}\nexported:\n{exported}")
        });
    }

    /// The doc comment above each method of a service's Candid text, its
    /// lines joined by spaces.
    fn method_docs(did: &str) -> BTreeMap<String, String> {
        let start = did.find("\nservice :").expect("a service");
        let mut docs = BTreeMap::new();
        let mut comment: Vec<&str> = Vec::new();
        for line in did[start..].lines().skip(2) {
            let line = line.trim();
            if let Some(text) = line.strip_prefix("//") {
                comment.push(text.trim());
            } else if let Some((method, _)) = line.split_once(" :") {
                docs.insert(method.to_string(), comment.join(" "));
                comment.clear();
            }
        }
        docs
    }

    /// The name of the error type in `Err` of a method's `Result`, if it
    /// returns one.
    fn error_type(env: &TypeEnv, method: &Type) -> Option<String> {
        let func = env.as_func(method).expect("a method");
        let [ret] = func.rets.as_slice() else {
            return None;
        };
        let TypeInner::Variant(fields) = env.trace_type(ret).expect("a type").as_ref().clone()
        else {
            return None;
        };
        let err = fields
            .iter()
            .find(|f| *f.id == Label::Named("Err".into()))?;
        match err.ty.as_ref() {
            TypeInner::Var(name) => Some(name.to_string()),
            other => panic!("Err of a method is {other:?}, not a named error type"),
        }
    }

    /// The contract: each method's doc comment in `backend.did`, and in the
    /// interface the code exports, ends with the sentence listing the
    /// errors `admission::RULES` says it can return (and methods without
    /// a `Result` list none), and each `Err` is of the type the table says.
    #[test]
    fn backend_did_lists_each_methods_errors_as_the_table_does() {
        let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/backend.did"))
            .expect("read backend.did");
        for (source, did) in [
            ("backend.did", file),
            ("exported", super::__export_service()),
        ] {
            let (env, actor) = CandidSource::Text(&did).load().expect("the did parses");
            let service = env
                .as_service(&actor.expect("a service"))
                .expect("a service")
                .to_vec();
            let docs = method_docs(&did);
            assert_eq!(docs.len(), service.len(), "{source}: one doc per method");
            for (method, ty) in &service {
                let rule = crate::admission::rule_of(method)
                    .unwrap_or_else(|| panic!("{method} is not in admission::RULES"));
                let doc = &docs[method.as_str()];
                let listed = doc.find("Errors:").map(|at| &doc[at..]);
                assert_eq!(
                    listed,
                    rule.errors.contract().as_deref(),
                    "{source}: the errors of {method} (UPDATE_DID=1 regenerates backend.did \
                     from the entry points' doc comments)"
                );
                let expected_type = match rule.errors {
                    Errors::None => None,
                    Errors::Upload { .. } => Some("UploadError"),
                    Errors::Share(_) => Some("ShareError"),
                };
                assert_eq!(
                    error_type(&env, ty).as_deref(),
                    expected_type,
                    "{source}: the error type of {method}"
                );
            }
        }
    }
}
