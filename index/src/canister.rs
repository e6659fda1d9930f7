//! The index's entry points: read the caller and the time, run the pure
//! step in `placement`/`registry`, make the calls (`calls`) and record
//! their outcome. The jobs (creation, reports, top-ups, adoption,
//! rollouts) run on a timer and on `admin_run_jobs`.

use crate::calls::{self, CallError, InstallMode, RegisterRefusal};
use crate::placement::{self, Registration};
use crate::registry::{nat_to_u128, Registry};
use crate::types::*;
use candid::{Nat, Principal};
use ic_cdk::{init, post_upgrade, query, update};
use ic_stable_structures::DefaultMemoryImpl;
use std::cell::{Cell, RefCell};
use std::time::Duration;

thread_local! {
    static REGISTRY: RefCell<Registry<DefaultMemoryImpl>> =
        RefCell::new(Registry::init(DefaultMemoryImpl::default(), None));
    /// A run of the jobs is under way (heap: a run does not outlive an
    /// upgrade, which waits for its calls).
    static JOBS_RUNNING: Cell<bool> = const { Cell::new(false) };
}

fn read<R>(f: impl FnOnce(&Registry<DefaultMemoryImpl>) -> R) -> R {
    REGISTRY.with(|r| f(&r.borrow()))
}

fn mutate<R>(f: impl FnOnce(&mut Registry<DefaultMemoryImpl>) -> R) -> R {
    REGISTRY.with(|r| f(&mut r.borrow_mut()))
}

fn caller() -> Principal {
    ic_cdk::api::msg_caller()
}

fn now() -> u64 {
    ic_cdk::api::time()
}

fn treasury() -> u128 {
    ic_cdk::api::canister_liquid_cycle_balance()
}

fn timeout() -> u32 {
    read(|r| r.settings().call_timeout_seconds)
}

fn controller_only() -> Result<(), AdminError> {
    if ic_cdk::api::is_controller(&caller()) {
        Ok(())
    } else {
        Err(AdminError::NotAuthorized)
    }
}

fn start_timer() {
    let interval = read(|r| r.settings().jobs_interval_seconds).max(1);
    ic_cdk_timers::set_timer_interval_serial(Duration::from_secs(interval), async || {
        run_jobs().await;
    });
}

#[init]
fn init(settings: Option<Settings>) {
    if let Some(s) = settings {
        mutate(|r| r.settings.set(crate::storable::Candid(s)));
    }
    start_timer();
}

#[post_upgrade]
fn post_upgrade(settings: Option<Settings>) {
    init(settings);
}

// --- placement ---

/// Creates a capsule owned by the caller on the open bucket with the most
/// room, and says where it lives.
#[update]
async fn capsules_create(name: String) -> Result<CapsuleLocation, PlacementError> {
    let caller = caller();
    // Two tries: the first bucket may have sealed since its last report.
    for _ in 0..2 {
        let registration =
            mutate(|r| placement::begin_create(r, caller, now(), name.clone(), treasury()))?;
        match register(&registration).await {
            Err(PlacementError::BucketUnavailable { .. }) if bucket_sealed(&registration) => {
                continue
            }
            other => return other,
        }
    }
    Err(PlacementError::NoOpenBucket {
        reason: "the buckets sealed while placing the capsule; retry".into(),
    })
}

fn bucket_sealed(reg: &Registration) -> bool {
    read(|r| {
        r.bucket(reg.pending.bucket_no)
            .is_some_and(|b| b.state == BucketState::Sealed)
    })
}

/// Sends a recorded registration and settles it.
async fn register(reg: &Registration) -> Result<CapsuleLocation, PlacementError> {
    let capsule_id = reg.pending.capsule.capsule_id;
    let outcome = calls::register_capsule(timeout(), reg.bucket, &reg.pending.capsule).await;
    match outcome {
        Ok(Ok(_)) => {
            mutate(|r| placement::confirm(r, capsule_id));
            read(|r| r.location(capsule_id)).ok_or(PlacementError::CapsuleNotFound { capsule_id })
        }
        Ok(Err(refusal)) => {
            mutate(|r| {
                placement::undo(r, &reg.pending);
                if refusal == RegisterRefusal::Sealed {
                    placement::mark_sealed(r, reg.pending.bucket_no);
                }
            });
            Err(PlacementError::BucketUnavailable {
                bucket: reg.bucket,
                reason: format!("{refusal:?}"),
            })
        }
        Err(CallError::Failed(reason)) => {
            mutate(|r| placement::undo(r, &reg.pending));
            Err(PlacementError::BucketUnavailable {
                bucket: reg.bucket,
                reason,
            })
        }
        Err(CallError::Unknown(_)) => Err(PlacementError::RegistrationPending { capsule_id }),
    }
}

/// Where a capsule lives, for routing its uploads and reads. An update
/// call (answered by consensus), because a single replica's answer could
/// send a user's photos to a foreign canister. It completes a pending
/// registration, and when the capsule's newest bucket is sealed it
/// continues the capsule in a further bucket first.
#[update]
async fn capsules_locate(capsule_id: CapsuleId) -> Result<CapsuleLocation, PlacementError> {
    let pending = read(|r| r.pending.get(&capsule_id).map(|p| p.0));
    if let Some(pending) = pending {
        let bucket = read(|r| r.bucket_id(pending.bucket_no))
            .ok_or(PlacementError::CapsuleNotFound { capsule_id })?;
        register(&Registration { bucket, pending }).await?;
    }
    if read(|r| placement::needs_continuation(r, capsule_id)) && caller() != Principal::anonymous()
    {
        continue_capsule(capsule_id).await?;
    }
    read(|r| r.location(capsule_id)).ok_or(PlacementError::CapsuleNotFound { capsule_id })
}

async fn continue_capsule(capsule_id: CapsuleId) -> Result<(), PlacementError> {
    let newest = read(|r| {
        r.slot(capsule_id)
            .and_then(|s| s.newest_bucket())
            .and_then(|no| r.bucket_id(no))
    })
    .ok_or(PlacementError::CapsuleNotFound { capsule_id })?;
    let page = calls::capsules_page(timeout(), newest, capsule_id.checked_sub(1), 1)
        .await
        .map_err(|e| PlacementError::BucketUnavailable {
            bucket: newest,
            reason: e.reason(),
        })?;
    let capsule = page
        .into_iter()
        .find(|c| c.capsule_id == capsule_id)
        .ok_or(PlacementError::CapsuleNotFound { capsule_id })?;
    // Another call may have started the continuation meanwhile.
    if !read(|r| placement::needs_continuation(r, capsule_id)) {
        return Ok(());
    }
    let registration = mutate(|r| placement::begin_continuation(r, capsule, treasury()))?;
    register(&registration).await.map(|_| ())
}

/// The capsules the caller owns with their buckets, a page at a time. A
/// query: for listing, not for routing (use `capsules_locate`).
#[query]
fn capsules_mine(after: Option<CapsuleId>, limit: u32) -> Vec<CapsuleLocation> {
    read(|r| r.owned(&caller(), after, limit.min(100) as usize))
}

/// The index at a glance.
#[query]
fn index_status() -> IndexStatus {
    read(|r| r.status(treasury()))
}

// --- controllers ---

/// Controllers: the cycles table, a page of buckets.
#[query]
fn admin_buckets(after: Option<Principal>, limit: u32) -> Result<Vec<BucketRow>, AdminError> {
    controller_only()?;
    Ok(read(|r| r.rows(after, limit.min(200) as usize)))
}

/// Controllers: one bucket's full record.
#[query]
fn admin_bucket(bucket: Principal) -> Result<BucketRecord, AdminError> {
    controller_only()?;
    read(|r| r.bucket_no(&bucket).and_then(|no| r.bucket(no)))
        .ok_or(AdminError::BucketNotFound { bucket })
}

/// Controllers: the bucket-creation jobs, newest last.
#[query]
fn admin_creation_jobs() -> Result<Vec<CreationJob>, AdminError> {
    controller_only()?;
    Ok(read(|r| {
        let n = r.jobs.len().saturating_sub(100);
        r.jobs
            .iter()
            .skip(n as usize)
            .map(|e| e.value().0)
            .collect()
    }))
}

#[query]
fn admin_settings() -> Result<Settings, AdminError> {
    controller_only()?;
    Ok(read(|r| r.settings().clone()))
}

#[update]
fn admin_set_settings(settings: Settings) -> Result<(), AdminError> {
    controller_only()?;
    if settings.close_at_bytes > settings.seal_at_bytes {
        return Err(AdminError::InvalidArgument {
            reason: "close_at_bytes is at most seal_at_bytes".into(),
        });
    }
    if settings.operators.len() > 9 {
        return Err(AdminError::InvalidArgument {
            reason: "at most 9 operators (a canister has at most 10 controllers)".into(),
        });
    }
    mutate(|r| r.settings.set(crate::storable::Candid(settings)));
    Ok(())
}

/// Controllers: lets a principal create capsules (when creation is
/// restricted), or stops letting it.
#[update]
fn admin_allow_creator(principal: Principal, allowed: bool) -> Result<(), AdminError> {
    controller_only()?;
    mutate(|r| {
        if allowed {
            r.creators.insert(principal, ());
        } else {
            r.creators.remove(&principal);
        }
    });
    Ok(())
}

/// Controllers: starts uploading a bucket Wasm (gzip, at most 2 MB) of a
/// version higher than every one the index holds.
#[update]
fn admin_wasm_begin(upload: WasmUpload) -> Result<(), AdminError> {
    controller_only()?;
    mutate(|r| r.begin_wasm(upload))
}

/// Controllers: the next chunk (at most 1 MiB) at `offset`; returns the
/// bytes received.
#[update]
fn admin_wasm_put_chunk(offset: u64, bytes: serde_bytes::ByteBuf) -> Result<u64, AdminError> {
    controller_only()?;
    mutate(|r| r.put_wasm_chunk(offset, bytes.into_vec()))
}

/// Controllers: checks the module's length and SHA-256. The first module
/// is what new buckets get; a later one is staged for a rollout.
#[update]
fn admin_wasm_commit() -> Result<WasmInfo, AdminError> {
    controller_only()?;
    mutate(|r| r.commit_wasm())
}

/// Controllers: creates a bucket now (on `subnet`, or where the index
/// would choose).
#[update]
async fn admin_create_bucket(subnet: Option<Principal>) -> Result<CreationJob, AdminError> {
    controller_only()?;
    let balance = treasury();
    if let Some(why) = read(|r| r.creation_blocked(balance)) {
        let s = read(|r| r.settings().clone());
        return Err(if why.contains("treasury") {
            AdminError::TreasuryBelowFloor {
                balance,
                floor: s.treasury_floor_cycles,
                needed: s.creation_fee_cycles + s.bucket_initial_cycles,
            }
        } else {
            AdminError::NoWasm
        });
    }
    let subnet = subnet.unwrap_or_else(|| {
        read(|r| r.choose_subnet(ic_cdk::api::subnet_self())).unwrap_or(ic_cdk::api::subnet_self())
    });
    let job = mutate(|r| r.new_job(subnet, now()));
    Ok(advance_job(job).await)
}

/// Controllers: makes an existing canister (standalone, holding data)
/// a bucket of this index. The index must be one of its controllers; its
/// capsules are imported by the jobs, a page per run, and it takes new
/// capsules once they are all in.
#[update]
async fn admin_adopt_bucket(bucket: Principal, subnet: Principal) -> Result<(), AdminError> {
    controller_only()?;
    calls::set_index(timeout(), bucket, ic_cdk::api::canister_self())
        .await
        .map_err(|e| AdminError::CallFailed { reason: e.reason() })?;
    mutate(|r| r.add_bucket(bucket, subnet, now(), true)).map(|_| ())
}

/// Controllers: sets a bucket's state by hand (it stays so until set to
/// `None`, when reports decide again).
#[update]
async fn admin_set_bucket_state(
    bucket: Principal,
    state: Option<BucketState>,
) -> Result<(), AdminError> {
    controller_only()?;
    let no = read(|r| r.bucket_no(&bucket)).ok_or(AdminError::BucketNotFound { bucket })?;
    let mut record = read(|r| r.bucket(no)).ok_or(AdminError::BucketNotFound { bucket })?;
    record.state_pinned = state.is_some();
    if let Some(s) = state {
        record.state = s;
    }
    let target = read(|r| r.derived_state(&record));
    calls::set_state(timeout(), bucket, target)
        .await
        .map_err(|e| AdminError::CallFailed { reason: e.reason() })?;
    record.state = target;
    mutate(|r| r.set_bucket(no, record));
    Ok(())
}

/// Controllers: starts upgrading every bucket to the staged Wasm.
#[update]
fn admin_rollout_start() -> Result<Rollout, AdminError> {
    controller_only()?;
    let staged = read(|r| r.wasm_meta().staged).ok_or(AdminError::NoWasm)?;
    read(|r| r.check_rollout(&staged.0))?;
    let rollout = Rollout {
        wasm: staged.0,
        state: RolloutState::Running,
        next_batch: 1,
        upgraded: 0,
        started_at: now(),
    };
    mutate(|r| r.set_rollout(Some(rollout.clone())));
    Ok(rollout)
}

/// Controllers: runs the jobs now (reports, top-ups, creation, adoption,
/// rollout) instead of waiting for the timer.
#[update]
async fn admin_run_jobs() -> Result<JobsReport, AdminError> {
    controller_only()?;
    if JOBS_RUNNING.with(Cell::get) {
        return Err(AdminError::Busy);
    }
    Ok(run_jobs().await)
}

/// Controllers: checks that the registry matches the buckets: each
/// bucket is controlled by the index and runs the module it recorded,
/// holds exactly the capsules the index placed there, and no creation
/// left a canister outside the registry.
#[update]
async fn admin_check_invariants() -> Result<InvariantReport, AdminError> {
    controller_only()?;
    Ok(crate::invariants::check().await)
}

// --- the jobs ---

struct RunningGuard;

impl Drop for RunningGuard {
    fn drop(&mut self) {
        JOBS_RUNNING.with(|r| r.set(false));
    }
}

async fn run_jobs() -> JobsReport {
    if JOBS_RUNNING.with(|r| r.replace(true)) {
        return JobsReport::default();
    }
    let _guard = RunningGuard;
    let mut report = JobsReport::default();
    for job in read(|r| r.active_jobs()) {
        advance_job(job).await;
        report.creation_steps += 1;
    }
    retry_pending(&mut report).await;
    poll_buckets(&mut report).await;
    maybe_create_bucket(&mut report).await;
    crate::rollout::step(&mut report).await;
    report
}

async fn retry_pending(report: &mut JobsReport) {
    let pending: Vec<_> = read(|r| r.pending.iter().take(20).map(|e| e.value().0).collect());
    for p in pending {
        if let Some(bucket) = read(|r| r.bucket_id(p.bucket_no)) {
            let _ = register(&Registration { bucket, pending: p }).await;
            report.registrations_retried += 1;
        }
    }
}

async fn poll_buckets(report: &mut JobsReport) {
    let (count, per_run, cursor) = read(|r| {
        (
            r.buckets.len() as u16,
            r.settings().buckets_per_run as u16,
            r.counters().poll_cursor,
        )
    });
    if count == 0 {
        return;
    }
    let n = per_run.min(count);
    for i in 0..n {
        let no = (cursor + i) % count;
        poll_one(no, report).await;
    }
    mutate(|r| r.update_counters(|c| c.poll_cursor = (cursor + n) % count));
}

async fn poll_one(no: BucketNo, report: &mut JobsReport) {
    let Some(bucket) = read(|r| r.bucket(no)) else {
        return;
    };
    let id = bucket.canister_id;
    let t = timeout();
    import_page(no, &bucket, report).await;
    match calls::status(t, id).await {
        Ok(status) => mutate(|r| {
            if let Some(mut b) = r.bucket(no) {
                b.reserved_cycles = nat_to_u128(&status.reserved_cycles);
                b.idle_cycles_burned_per_day = nat_to_u128(&status.idle_cycles_burned_per_day);
                b.cycles = nat_to_u128(&status.cycles);
                r.set_bucket(no, b);
            }
        }),
        Err(e) => mutate(|r| r.note_bucket_error(no, format!("canister_status: {}", e.reason()))),
    }
    let bucket_report = match calls::report(t, id).await {
        Ok(rep) => rep,
        Err(e) => {
            mutate(|r| r.note_bucket_error(no, format!("bucket_report: {}", e.reason())));
            return;
        }
    };
    report.buckets_polled += 1;
    let target = mutate(|r| r.apply_report(no, &bucket_report, now()));
    if bucket_report.state != target || bucket.state != target {
        match calls::set_state(t, id, target).await {
            Ok(()) => {
                mutate(|r| {
                    if let Some(mut b) = r.bucket(no) {
                        b.state = target;
                        r.set_bucket(no, b);
                    }
                });
                report.state_changes += 1;
            }
            Err(e) => {
                mutate(|r| r.note_bucket_error(no, format!("bucket_set_state: {}", e.reason())))
            }
        }
    }
    top_up(no, report).await;
}

async fn top_up(no: BucketNo, report: &mut JobsReport) {
    let Some(b) = read(|r| r.bucket(no)) else {
        return;
    };
    let s = read(|r| r.settings().clone());
    // Ahead of the upload burn: a day of it on top of the threshold.
    let below = s
        .top_up_below_cycles
        .saturating_add(b.upload_cycles_per_day);
    if b.cycles >= below {
        return;
    }
    let amount = s.top_up_cycles.max(below - b.cycles);
    if treasury() < s.treasury_floor_cycles.saturating_add(amount) {
        report.notes.push(format!(
            "bucket {} is low ({} cycles) but the treasury ({}) is at its floor ({})",
            b.canister_id,
            b.cycles,
            treasury(),
            s.treasury_floor_cycles
        ));
        return;
    }
    match calls::deposit(b.canister_id, amount).await {
        Ok(()) => {
            mutate(|r| {
                if let Some(mut b) = r.bucket(no) {
                    b.cycles += amount;
                    b.topped_up_cycles += amount;
                    r.set_bucket(no, b);
                }
            });
            report.topped_up += 1;
        }
        Err(e) => mutate(|r| r.note_bucket_error(no, format!("deposit_cycles: {}", e.reason()))),
    }
}

/// Adoption: one page of an adopted canister's capsules per poll.
async fn import_page(no: BucketNo, bucket: &BucketRecord, report: &mut JobsReport) {
    const PAGE: u32 = 100;
    let Some(after) = bucket.importing_after else {
        return;
    };
    let page = match calls::capsules_page(timeout(), bucket.canister_id, after, PAGE).await {
        Ok(p) => p,
        Err(e) => {
            mutate(|r| r.note_bucket_error(no, format!("bucket_capsules: {}", e.reason())));
            return;
        }
    };
    mutate(|r| {
        for c in &page {
            match r.slot(c.capsule_id) {
                None => r.record_capsule(c.capsule_id, c.owner, no, false),
                Some(_) => report.notes.push(format!(
                    "capsule {} of {} is already placed elsewhere: not imported",
                    c.capsule_id, bucket.canister_id
                )),
            }
        }
        report.imported_capsules += page.len() as u32;
        if let Some(mut b) = r.bucket(no) {
            b.placed_since_report = 0;
            b.importing_after = if page.len() < PAGE as usize {
                None
            } else {
                Some(page.last().map(|c| c.capsule_id))
            };
            r.set_bucket(no, b);
        }
    });
}

async fn maybe_create_bucket(report: &mut JobsReport) {
    let balance = treasury();
    let (wanted, subnet, blocked) = read(|r| {
        let wanted = r.active_jobs().is_empty() && r.open_room() < r.settings().min_open_room_bytes;
        (
            wanted,
            r.choose_subnet(ic_cdk::api::subnet_self()),
            r.creation_blocked(balance),
        )
    });
    if !wanted {
        return;
    }
    if let Some(why) = blocked {
        report
            .notes
            .push(format!("a bucket is needed but not created: {why}"));
        return;
    }
    let Some(subnet) = subnet else {
        report
            .notes
            .push("a bucket is needed but every allowed subnet holds its most".into());
        return;
    };
    let job = mutate(|r| r.new_job(subnet, now()));
    advance_job(job).await;
    report.creation_steps += 1;
}

/// Most attempts of one creation step before the job is given up (and
/// its canister, if it has one, deleted).
const MAX_ATTEMPTS: u32 = 5;

/// Runs a creation job's steps until it is registered, gives up, or a
/// step fails (the next run retries it).
pub async fn advance_job(mut job: CreationJob) -> CreationJob {
    loop {
        let before = job.step.clone();
        job = step_job(job).await;
        mutate(|r| r.set_job(job.clone()));
        if job.step == before || !crate::registry::job_active(&job) {
            return job;
        }
    }
}

async fn step_job(mut job: CreationJob) -> CreationJob {
    let t = timeout();
    let fail = |mut job: CreationJob, reason: String| {
        job.attempts += 1;
        job.last_error = Some(reason);
        job
    };
    match job.step.clone() {
        CreationStep::Requested => {
            let s = read(|r| r.settings().clone());
            if job.attempts >= MAX_ATTEMPTS {
                job.step = CreationStep::Abandoned {
                    reason: job.last_error.clone().unwrap_or_default(),
                };
                return job;
            }
            if let Some(why) = read(|r| r.creation_blocked(treasury())) {
                return fail(job, why);
            }
            let mut controllers = vec![ic_cdk::api::canister_self()];
            controllers.extend(s.operators.iter().copied());
            let settings = calls::Settings {
                controllers: Some(controllers),
                freezing_threshold: Some(Nat::from(s.freezing_threshold_seconds)),
                reserved_cycles_limit: Some(Nat::from(s.reserved_cycles_limit)),
                wasm_memory_limit: Some(Nat::from(s.wasm_memory_limit_bytes)),
            };
            let cycles = s.creation_fee_cycles + s.bucket_initial_cycles;
            let created = if job.subnet == ic_cdk::api::subnet_self() {
                calls::create_here(settings, cycles).await
            } else {
                calls::create_on(job.subnet, settings, cycles).await
            };
            match created {
                Ok(canister_id) => {
                    job.step = CreationStep::Created { canister_id };
                    job.attempts = 0;
                    job
                }
                Err(e) => fail(job, format!("create_canister: {}", e.reason())),
            }
        }
        CreationStep::Created { canister_id } => {
            let Some((info, module)) = read(|r| {
                r.wasm_meta()
                    .current
                    .map(|(info, slot)| (info, r.module(slot)))
            }) else {
                return fail(job, "no bucket Wasm".into());
            };
            // An install whose answer was lost may have happened.
            let installed = calls::status(t, canister_id)
                .await
                .ok()
                .and_then(|s| s.module_hash)
                .is_some_and(|h| h == info.sha256);
            if installed {
                job.step = CreationStep::Installed { canister_id };
                job.attempts = 0;
                return job;
            }
            if job.attempts >= MAX_ATTEMPTS {
                return give_up(job, canister_id).await;
            }
            match calls::install(t, canister_id, InstallMode::Install, &module).await {
                Ok(()) => {
                    job.step = CreationStep::Installed { canister_id };
                    job.attempts = 0;
                    job
                }
                Err(e) => fail(job, format!("install_code: {}", e.reason())),
            }
        }
        CreationStep::Installed { canister_id } => {
            match calls::set_index(t, canister_id, ic_cdk::api::canister_self()).await {
                Ok(()) => {
                    let version = read(|r| r.wasm_meta().current.map(|(w, _)| w));
                    mutate(|r| {
                        if let Ok(no) = r.add_bucket(canister_id, job.subnet, now(), false) {
                            if let (Some(mut b), Some(w)) = (r.bucket(no), version) {
                                b.module_hash = Some(w.sha256);
                                b.wasm_version = w.version;
                                r.set_bucket(no, b);
                            }
                        }
                    });
                    job.step = CreationStep::Registered { canister_id };
                    job
                }
                Err(e) => fail(job, format!("admin_set_index: {}", e.reason())),
            }
        }
        CreationStep::Registered { .. } | CreationStep::Abandoned { .. } => job,
    }
}

/// Undoes a creation that cannot be completed: the canister is stopped
/// and deleted, so none is left behind.
async fn give_up(mut job: CreationJob, canister_id: Principal) -> CreationJob {
    let t = timeout();
    let _ = calls::stop(t, canister_id).await;
    match calls::delete(t, canister_id).await {
        Ok(()) => {
            job.step = CreationStep::Abandoned {
                reason: format!(
                    "{}; canister {canister_id} deleted",
                    job.last_error.clone().unwrap_or_default()
                ),
            };
        }
        Err(e) => {
            job.last_error = Some(format!("deleting {canister_id}: {}", e.reason()));
        }
    }
    job
}

/// Benchmark builds only (`--features bench`): fills the registry with
/// `buckets` closed buckets and `capsules` capsules (one owner per four),
/// bounded per call, to measure the index's cost per call at scale.
#[cfg(feature = "bench")]
#[update]
fn bench_fill(buckets: u16, capsules: u64) -> u64 {
    if !ic_cdk::api::is_controller(&caller()) {
        ic_cdk::trap("controllers only");
    }
    mutate(|r| {
        let subnet = ic_cdk::api::subnet_self();
        while (r.buckets.len() as u16) < buckets {
            let n = r.buckets.len() as u64 + 1_000_000;
            let mut id = n.to_be_bytes().to_vec();
            id.extend_from_slice(&[1, 1]);
            let no = r
                .add_bucket(Principal::from_slice(&id), subnet, now(), false)
                .expect("a bucket number");
            let mut b = r.bucket(no).expect("just added");
            b.state = BucketState::Closed;
            b.state_pinned = true;
            r.set_bucket(no, b);
        }
        let count = r.buckets.len() as u16;
        for _ in 0..capsules.min(20_000) {
            let id = r.next_capsule_id();
            let owner = Principal::from_slice(&(id / 4).to_le_bytes());
            r.record_capsule(id, owner, (id % u64::from(count)) as u16, false);
        }
        r.counters().capsules
    })
}

/// Benchmark builds only: bytes of stable memory the structures a
/// capsule touches hold (their virtual memories' sizes, without the
/// memory manager's unused bucket room).
#[cfg(feature = "bench")]
#[query]
fn bench_capsule_structure_bytes() -> u64 {
    use crate::registry::memory_ids::*;
    use ic_stable_structures::memory_manager::MemoryManager;
    use ic_stable_structures::Memory;
    let mm = MemoryManager::init(DefaultMemoryImpl::default());
    [CAPSULES, OWNERS, OWNER_PRINCIPALS]
        .into_iter()
        .map(|id| mm.get(id).size() * 65_536)
        .sum()
}

pub(crate) fn read_registry<R>(f: impl FnOnce(&Registry<DefaultMemoryImpl>) -> R) -> R {
    read(f)
}

pub(crate) fn mutate_registry<R>(f: impl FnOnce(&mut Registry<DefaultMemoryImpl>) -> R) -> R {
    mutate(f)
}

pub(crate) fn call_timeout() -> u32 {
    timeout()
}

ic_cdk::export_candid!();

#[cfg(test)]
mod tests {
    /// `index.did` is what the code exports; `UPDATE_DID=1 cargo test -p
    /// upload-index` rewrites it.
    #[test]
    fn index_did_is_the_exported_interface() {
        let exported = super::__export_service();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("index.did");
        if std::env::var_os("UPDATE_DID").is_some() {
            std::fs::write(&path, &exported).expect("write index.did");
        }
        let declared = std::fs::read_to_string(&path).expect("read index.did");
        assert!(
            declared == exported,
            "index.did differs from the code (UPDATE_DID=1 cargo test -p upload-index):\n{exported}"
        );
    }
}
