//! The canister's Candid entry points, one line each: read the caller and
//! the time, hand the call to its feature function. `mutate` runs the
//! after-effects an update may have (`jobs`' follow-up, certification).

use crate::admin::*;
use crate::bucket::{
    self, BucketHealth, BucketReport, BucketState, IndexCapsule, IndexOnlyError,
    RegisterCapsuleError,
};
use crate::http::{HttpRequest, HttpResponse};
use crate::library::*;
use crate::limits::{Limits, SWEEP_INTERVAL};
use crate::sharing::links::ShareLink;
use crate::sharing::randomness::link_secret;
use crate::sharing::serve::{self, CreateShareError, ListSharesError, UnshareError};
use crate::state::State;
use crate::upload::*;
use candid::Principal;
use ic_cdk::{init, inspect_message, post_upgrade, query, update};
use ic_stable_structures::DefaultMemoryImpl;
use std::cell::{Cell, RefCell};
use std::time::Duration;

thread_local! {
    static STATE: RefCell<State<DefaultMemoryImpl>> =
        RefCell::new(State::init(DefaultMemoryImpl::default()));
    /// When the pending follow-up run of the jobs was scheduled, if one is.
    /// Heap state on purpose: timers do not survive upgrades either, and
    /// `post_upgrade` schedules afresh.
    static FOLLOW_UP_SCHEDULED_AT: Cell<Option<u64>> = const { Cell::new(None) };
}

fn read<R>(f: impl FnOnce(&State<DefaultMemoryImpl>) -> R) -> R {
    STATE.with(|state| f(&state.borrow()))
}

/// What an update may leave behind besides its answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    Nothing,
    /// Work for the jobs (hashing behind, chunks to certify): run them soon.
    FollowUp,
    /// A changed certification tree: publish its root.
    Certify,
    CertifyAndFollowUp,
}

/// An update's body, then its after-effects.
fn mutate<R>(after: After, f: impl FnOnce(&mut State<DefaultMemoryImpl>) -> R) -> R {
    let result = STATE.with(|state| f(&mut state.borrow_mut()));
    if matches!(after, After::Certify | After::CertifyAndFollowUp) {
        certify();
    }
    if matches!(after, After::FollowUp | After::CertifyAndFollowUp) {
        schedule_follow_up(false);
    }
    result
}

/// Publishes the certification tree's root as the canister's certified
/// data. Setting it to the same root costs a few thousand instructions.
fn certify() {
    ic_cdk::api::certified_data_set(read(serve::certified_data));
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

fn run_jobs() {
    let report = STATE.with(|state| crate::jobs::run(&mut state.borrow_mut(), now()));
    certify();
    schedule_follow_up(report.more_work);
}

/// Runs the jobs again right away while they have work left, so backlog
/// hashing and large sweeps proceed in bounded steps (`jobs::follow_up_due`).
fn schedule_follow_up(more_work: bool) {
    let work_left = more_work || read(crate::jobs::has_work);
    let now = now();
    if crate::jobs::follow_up_due(work_left, FOLLOW_UP_SCHEDULED_AT.with(Cell::get), now) {
        FOLLOW_UP_SCHEDULED_AT.with(|at| at.set(Some(now)));
        ic_cdk_timers::set_timer(Duration::ZERO, async {
            FOLLOW_UP_SCHEDULED_AT.with(|at| at.set(None));
            run_jobs();
        });
    }
}

fn start() {
    // Opening the state reads the structures' headers, then rebuilds the
    // share links' certification tree (bounded by `MAX_CERTIFIED_ENTRIES`).
    read(|_| ());
    certify();
    ic_cdk_timers::set_timer_interval(SWEEP_INTERVAL, || async { run_jobs() });
    schedule_follow_up(true);
}

#[init]
fn init() {
    start();
}

#[post_upgrade]
fn post_upgrade() {
    start();
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
#[update]
fn capsules_create(name: String) -> Result<Capsule, CreateCapsuleError> {
    mutate(After::Nothing, |s| create_capsule(s, caller(), now(), name))
}

/// A capsule, for its owner and writers.
#[query]
fn capsules_get(capsule_id: CapsuleId) -> Result<Capsule, GetCapsuleError> {
    read(|s| capsule(s, caller(), capsule_id))
}

/// The capsules the caller owns, a page at a time.
#[query]
fn capsules_mine(after: Option<CapsuleId>, limit: u32) -> Vec<Capsule> {
    read(|s| my_capsules(s, caller(), after, limit))
}

/// The owner lets a principal upload into the capsule.
#[update]
fn capsules_grant_write(
    capsule_id: CapsuleId,
    writer: Principal,
) -> Result<Capsule, GrantWriteError> {
    mutate(After::Nothing, |s| {
        grant_write(s, caller(), capsule_id, writer)
    })
}

/// The owner takes a writer's access away.
#[update]
fn capsules_revoke_write(
    capsule_id: CapsuleId,
    writer: Principal,
) -> Result<Capsule, RevokeWriteError> {
    mutate(After::Nothing, |s| {
        revoke_write(s, caller(), capsule_id, writer)
    })
}

/// Starts an upload, or returns the session the same idempotency key
/// already started for the same request.
#[update]
fn uploads_begin(request: BeginUploadRequest) -> Result<UploadStarted, BeginUploadError> {
    mutate(After::Nothing, |s| begin(s, caller(), now(), request))
}

/// Stores one chunk at its place in the upload.
#[update]
fn uploads_put_chunk(request: PutChunk) -> Result<ChunkAccepted, PutChunkError> {
    mutate(After::FollowUp, |s| put_chunk(s, caller(), now(), request))
}

/// Verifies and commits an upload; finishing a committed upload again
/// returns the same answer.
#[update]
fn uploads_finish(request: FinishUpload) -> Result<CommittedUpload, FinishUploadError> {
    mutate(After::FollowUp, |s| finish(s, caller(), now(), request))
}

/// Abandons an upload and frees its space; aborting twice is harmless.
#[update]
fn uploads_abort(session_id: SessionId) -> Result<(), AbortUploadError> {
    mutate(After::Nothing, |s| abort(s, caller(), now(), session_id))
}

/// Where an upload stands, with a page of its missing chunks.
#[query]
fn uploads_status(request: StatusRequest) -> Result<UploadStatus, UploadStatusError> {
    read(|s| status(s, caller(), now(), request))
}

/// The caller's pending uploads, so that a reloaded page can resume them.
#[query]
fn uploads_mine() -> Vec<OpenUpload> {
    read(|s| open_uploads(s, caller(), now()))
}

/// SHA-256 of a received chunk as stored, to find the chunks to re-send
/// after a checksum mismatch.
#[query]
fn uploads_chunk_sha256(
    session_id: SessionId,
    index: u32,
) -> Result<serde_bytes::ByteBuf, ChunkHashError> {
    read(|s| chunk_sha256(s, caller(), now(), session_id, index))
}

/// A committed memory's record, thumbnail included, for its capsule's
/// owner and writers.
#[query]
fn memories_get(memory_id: MemoryItemId) -> Result<MemoryRecord, GetMemoryError> {
    read(|s| memory(s, caller(), memory_id))
}

/// A page of a capsule's memories with their thumbnails: at most `limit`,
/// fewer when more would not fit in about 1.5 MiB; `next_after` says where
/// the next page starts.
#[query]
fn memories_list(request: ListMemories) -> Result<MemoriesPage, ListMemoriesError> {
    read(|s| list_memories(s, caller(), request))
}

/// A byte range of a committed memory, at most `MAX_READ_BYTES`.
#[query]
fn memories_read(request: ReadRange) -> Result<serde_bytes::ByteBuf, ReadMemoryError> {
    read(|s| crate::library::read(s, caller(), request))
}

/// Deletes a memory (its uploader, or the capsule's owner) and frees its
/// space, its thumbnail's too; its share links go with it.
#[update]
fn memories_delete(memory_id: MemoryItemId) -> Result<(), DeleteMemoryError> {
    mutate(After::Certify, |s| delete_memory(s, caller(), memory_id))
}

/// Sets a memory's thumbnail (a JPEG or WebP of at most 32 KiB), or
/// removes it (`null`): its uploader or its capsule's owner. It counts
/// against the caller's stored bytes; the one replaced is released.
#[update]
fn memories_set_thumbnail(
    memory_id: MemoryItemId,
    thumbnail: Option<Thumbnail>,
) -> Result<(), SetThumbnailError> {
    mutate(After::Nothing, |s| {
        set_thumbnail(s, caller(), memory_id, thumbnail)
    })
}

/// Creates a share link to a memory (its capsule's owner or its uploader).
#[update]
async fn memories_share(
    memory_id: MemoryItemId,
    expires_at: Option<u64>,
) -> Result<ShareLink, CreateShareError> {
    let (caller, secret) = (
        caller(),
        link_secret().await.map_err(CreateShareError::narrow)?,
    );
    mutate(After::CertifyAndFollowUp, |s| {
        serve::share(s, caller, now(), memory_id, expires_at, secret)
    })
}

/// A memory's share links (its capsule's owner or its uploader).
#[query]
fn memories_shares(memory_id: MemoryItemId) -> Result<Vec<ShareLink>, ListSharesError> {
    read(|s| serve::shares(s, caller(), memory_id))
}

/// Revokes a share link: from then on its path answers 404.
#[update]
fn memories_unshare(link_id: u64) -> Result<(), UnshareError> {
    mutate(After::Certify, |s| serve::unshare(s, caller(), link_id))
}

/// The HTTP gateway's entry point: serves memories through share links,
/// every response certified (`crate::http`).
#[query]
fn http_request(request: HttpRequest) -> HttpResponse {
    read(|s| {
        serve::http_request(
            s,
            &request,
            now(),
            ic_cdk::api::data_certificate().as_deref(),
        )
    })
}

/// Totals of the store, its limits, the caller's usage and the stable
/// memory held.
#[query]
fn stats() -> Stats {
    read(|s| crate::admin::stats(s, caller()))
}

/// Controllers: every caller's usage, a page at a time.
#[query]
fn admin_usage(
    after: Option<Principal>,
    limit: u32,
) -> Result<Vec<(Principal, CallerUsage)>, AdminReadError> {
    read(|s| crate::admin::admin_usage(s, caller_is_controller(), after, limit))
}

/// Controllers: sets the limits.
#[update]
fn admin_set_limits(limits: Limits) -> Result<(), SetLimitsError> {
    mutate(After::Nothing, |s| {
        set_limits(s, caller_is_controller(), limits)
    })
}

/// Controllers: whether only allowed principals may create capsules from
/// now on.
#[update]
fn admin_set_capsule_creation_restricted(restricted: bool) -> Result<(), AdminSetError> {
    mutate(After::Nothing, |s| {
        set_capsule_creation_restricted(s, caller_is_controller(), restricted)
    })
}

/// Controllers: allows a principal to create capsules, or stops allowing
/// it.
#[update]
fn admin_allow_capsule_creator(principal: Principal, allowed: bool) -> Result<(), AdminSetError> {
    mutate(After::Nothing, |s| {
        allow_capsule_creator(s, caller_is_controller(), principal, allowed)
    })
}

/// Controllers: whether capsule creation is restricted, and a page of the
/// allowed creators.
#[query]
fn admin_capsule_creators(
    after: Option<Principal>,
    limit: u32,
) -> Result<CapsuleCreators, AdminReadError> {
    read(|s| crate::admin::admin_capsule_creators(s, caller_is_controller(), after, limit))
}

/// Controllers: this canister is a bucket managed by that index canister
/// from now on (adopting a standalone canister, or set by the index right
/// after it installed the bucket), or standalone again (`null`).
#[update]
fn admin_set_index(index: Option<Principal>) -> Result<(), AdminSetError> {
    mutate(After::Nothing, |s| {
        bucket::set_index(s, caller_is_controller(), index)
    })
}

/// The index: stores a capsule it placed here, under its id. The same
/// capsule (id and owner) again returns the stored one; refused when
/// sealed.
#[update]
fn bucket_register_capsule(capsule: IndexCapsule) -> Result<Capsule, RegisterCapsuleError> {
    mutate(After::Nothing, |s| {
        bucket::register_capsule(s, caller(), capsule)
    })
}

/// The index: sets the bucket's state (`Sealed`: no new capsule, no new
/// upload session; uploads in progress finish).
#[update]
fn bucket_set_state(state: BucketState) -> Result<(), IndexOnlyError> {
    mutate(After::Nothing, |s| bucket::set_state(s, caller(), state))
}

/// The index and controllers: the bucket's state, space, load and
/// cycles.
#[query]
fn bucket_report() -> Result<BucketReport, IndexOnlyError> {
    let (controller, cycles) = (
        caller_is_controller(),
        ic_cdk::api::canister_cycle_balance(),
    );
    read(|s| bucket::report(s, caller(), controller, now(), cycles))
}

/// The index and controllers: a page of all capsules in id order after
/// the given id (an empty page is the end), to adopt an existing canister.
#[query]
fn bucket_capsules(
    after: Option<CapsuleId>,
    limit: u32,
) -> Result<Vec<IndexCapsule>, IndexOnlyError> {
    read(|s| bucket::capsules(s, caller(), caller_is_controller(), after, limit))
}

/// The index and controllers: a self check of bounded cost, e.g. after an
/// upgrade.
#[query]
fn bucket_health() -> Result<BucketHealth, IndexOnlyError> {
    read(|s| bucket::health(s, caller(), caller_is_controller()))
}

ic_cdk::export_candid!();

/// The Candid interface the entry points export, as `export_candid!`
/// writes it (without the `Errors:` lines `backend.did` adds).
#[cfg(test)]
pub(crate) fn exported_interface() -> String {
    __export_service()
}

#[cfg(test)]
mod tests {
    use crate::testing::contract::declared_errors;

    /// The sentence listing a method's errors, from its error type:
    /// `Errors: A, B, QuotaExceeded (X, Y).`
    fn errors_sentence(method: &str) -> Option<String> {
        let mut names: Vec<String> = Vec::new();
        let mut quotas: Vec<String> = Vec::new();
        for case in declared_errors(method) {
            match case.split_once(' ') {
                Some((_, quota)) => quotas.push(quota.to_string()),
                None => names.push(case),
            }
        }
        if !quotas.is_empty() {
            names.push(format!("QuotaExceeded ({})", quotas.join(", ")));
        }
        (!names.is_empty()).then(|| format!("Errors: {}.", names.join(", ")))
    }

    /// `text` as comment lines of at most 78 columns, indented as a method.
    fn comment_lines(text: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::from("  //");
        for word in text.split(' ') {
            if line.len() + 1 + word.len() > 78 && line != "  //" {
                lines.push(std::mem::replace(&mut line, String::from("  //")));
            }
            line.push(' ');
            line.push_str(word);
        }
        lines.push(line);
        lines
    }

    /// `backend.did`: the interface the code exports, with each method's
    /// doc comment ending in the errors its error type declares.
    pub(crate) fn documented_interface() -> String {
        let exported = super::exported_interface();
        let start = exported.find("\nservice :").expect("a service");
        let mut out: Vec<String> = exported[..start].lines().map(String::from).collect();
        for line in exported[start..].lines() {
            let method = line
                .strip_prefix("  ")
                .filter(|rest| !rest.starts_with("//"))
                .and_then(|rest| rest.split_once(" :"))
                .map(|(name, _)| name);
            if let Some(sentence) = method.and_then(errors_sentence) {
                out.extend(comment_lines(&sentence));
            }
            out.push(line.to_string());
        }
        out.join("\n") + "\n"
    }

    /// `backend.did` is the interface users build against: it must be
    /// exactly what the code exports, errors included.
    /// `UPDATE_DID=1 cargo test` rewrites it.
    #[test]
    fn backend_did_is_the_exported_interface_with_each_methods_errors() {
        let documented = documented_interface();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("backend.did");
        if std::env::var_os("UPDATE_DID").is_some() {
            std::fs::write(&path, &documented).expect("write backend.did");
        }
        let declared = std::fs::read_to_string(&path).expect("read backend.did");
        assert!(
            declared == documented,
            "backend.did differs from the code (UPDATE_DID=1 cargo test -p backend --lib \
             regenerates it):\n{documented}"
        );
    }

    #[test]
    fn errors_sentence_groups_the_quotas() {
        let sentence = errors_sentence("uploads_begin").expect("uploads_begin has errors");
        assert!(sentence.starts_with("Errors: "), "{sentence}");
        let quotas = sentence
            .split_once("QuotaExceeded (")
            .and_then(|(_, rest)| rest.strip_suffix(")."))
            .unwrap_or_else(|| panic!("no quotas at the end: {sentence}"));
        let mut quotas: Vec<&str> = quotas.split(", ").collect();
        quotas.sort();
        assert_eq!(
            quotas,
            [
                "ChunkBytes",
                "ChunksPerSession",
                "FileBytes",
                "OpenSessionsPerCaller",
                "ReservedBytesPerCaller",
                "ReservedBytesTotal",
                "StoredBytesPerCaller",
                "TotalBytes"
            ]
        );
        for case in ["AnonymousCaller", "IdempotencyConflict", "SessionExpired"] {
            assert!(sentence.contains(case), "{sentence}");
        }
        assert_eq!(errors_sentence("stats"), None);
    }
}
