//! The canister's Candid entry points. Each one reads the caller and the
//! time and hands the call to the `UploadService`; no logic lives here.

use crate::upload::limits::Limits;
use crate::upload::*;
use candid::Principal;
use ic_cdk::{init, inspect_message, post_upgrade, query, update};
use ic_stable_structures::DefaultMemoryImpl;
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
}

fn with_service<R>(f: impl FnOnce(&mut UploadService<DefaultMemoryImpl>) -> R) -> R {
    SERVICE.with(|service| f(&mut service.borrow_mut()))
}

fn caller() -> Principal {
    ic_cdk::api::msg_caller()
}

fn now() -> u64 {
    ic_cdk::api::time()
}

fn start_timers() {
    ic_cdk_timers::set_timer_interval(SWEEP_INTERVAL, || async {
        let report = with_service(|s| s.maintenance(now()));
        schedule_follow_up_if_needed(report.more_work);
    });
    schedule_follow_up_if_needed(true);
}

fn run_follow_up() {
    FOLLOW_UP_SCHEDULED_AT.with(|at| at.set(None));
    let report = with_service(|s| s.maintenance(now()));
    schedule_follow_up_if_needed(report.more_work);
}

/// Runs maintenance again right away while it has work left, so backlog
/// hashing and large sweeps proceed in bounded steps. One follow-up at a
/// time; one that never ran (its message trapped) is replaced after a sweep
/// interval.
fn schedule_follow_up_if_needed(more_work: bool) {
    let needed = more_work || with_service(|s| s.has_hashing_backlog());
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
    start_timers();
}

#[post_upgrade]
fn post_upgrade() {
    // Opening the structures reads their headers only: O(1).
    with_service(|_| ());
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

#[update]
fn capsules_create(name: String) -> Result<Capsule, UploadError> {
    with_service(|s| s.create_capsule(caller(), now(), name))
}

#[query]
fn capsules_get(capsule_id: CapsuleId) -> Result<Capsule, UploadError> {
    with_service(|s| s.capsule(caller(), capsule_id))
}

#[query]
fn capsules_mine(after: Option<CapsuleId>, limit: u32) -> Vec<Capsule> {
    with_service(|s| s.my_capsules(caller(), after, limit))
}

#[update]
fn capsules_grant_write(capsule_id: CapsuleId, writer: Principal) -> Result<Capsule, UploadError> {
    with_service(|s| s.grant_write(caller(), capsule_id, writer))
}

#[update]
fn capsules_revoke_write(capsule_id: CapsuleId, writer: Principal) -> Result<Capsule, UploadError> {
    with_service(|s| s.revoke_write(caller(), capsule_id, writer))
}

#[update]
fn uploads_begin(request: BeginUpload) -> Result<UploadStarted, UploadError> {
    with_service(|s| s.begin(caller(), now(), request))
}

#[update]
fn uploads_put_chunk(request: PutChunk) -> Result<ChunkAccepted, UploadError> {
    let result = with_service(|s| s.put_chunk(caller(), now(), request));
    schedule_follow_up_if_needed(false);
    result
}

#[update]
fn uploads_finish(request: FinishUpload) -> Result<CommittedUpload, UploadError> {
    let result = with_service(|s| s.finish(caller(), now(), request));
    schedule_follow_up_if_needed(false);
    result
}

#[update]
fn uploads_abort(session_id: SessionId) -> Result<(), UploadError> {
    with_service(|s| s.abort(caller(), now(), session_id))
}

#[query]
fn uploads_status(request: StatusRequest) -> Result<UploadStatus, UploadError> {
    with_service(|s| s.status(caller(), now(), request))
}

#[query]
fn uploads_mine() -> Vec<OpenUpload> {
    with_service(|s| s.open_uploads(caller(), now()))
}

#[query]
fn uploads_chunk_sha256(
    session_id: SessionId,
    index: u32,
) -> Result<serde_bytes::ByteBuf, UploadError> {
    with_service(|s| s.chunk_sha256(caller(), now(), session_id, index))
}

#[query]
fn memories_get(memory_id: MemoryItemId) -> Result<MemoryRecord, UploadError> {
    with_service(|s| s.memory(caller(), memory_id))
}

#[query]
fn memories_list(request: ListMemories) -> Result<MemoriesPage, UploadError> {
    with_service(|s| s.list_memories(caller(), request))
}

#[query]
fn memories_read(request: ReadRange) -> Result<serde_bytes::ByteBuf, UploadError> {
    with_service(|s| s.read(caller(), request))
}

#[update]
fn memories_delete(memory_id: MemoryItemId) -> Result<(), UploadError> {
    with_service(|s| s.delete_memory(caller(), memory_id))
}

#[query]
fn stats() -> Stats {
    with_service(|s| s.stats(caller()))
}

#[query]
fn admin_usage(
    after: Option<Principal>,
    limit: u32,
) -> Result<Vec<(Principal, CallerUsage)>, UploadError> {
    if !ic_cdk::api::is_controller(&caller()) {
        return Err(UploadError::NotAuthorized);
    }
    Ok(with_service(|s| s.usage_page(after, limit)))
}

#[update]
fn admin_set_limits(limits: Limits) -> Result<(), UploadError> {
    let is_controller = ic_cdk::api::is_controller(&caller());
    with_service(|s| s.set_limits(is_controller, limits))
}

#[update]
fn admin_set_capsule_creation_restricted(restricted: bool) -> Result<(), UploadError> {
    let is_controller = ic_cdk::api::is_controller(&caller());
    with_service(|s| s.set_capsule_creation_restricted(is_controller, restricted))
}

#[update]
fn admin_allow_capsule_creator(principal: Principal, allowed: bool) -> Result<(), UploadError> {
    let is_controller = ic_cdk::api::is_controller(&caller());
    with_service(|s| s.allow_capsule_creator(is_controller, principal, allowed))
}

#[query]
fn admin_capsule_creators(
    after: Option<Principal>,
    limit: u32,
) -> Result<CapsuleCreators, UploadError> {
    if !ic_cdk::api::is_controller(&caller()) {
        return Err(UploadError::NotAuthorized);
    }
    Ok(with_service(|s| s.capsule_creators(after, limit)))
}

ic_cdk::export_candid!();

#[cfg(test)]
mod tests {
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
}
