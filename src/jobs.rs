//! The timers' work: bounded batches that expire idle sessions (freeing
//! their space), prune old finished records, advance hashing that fell
//! behind, forget where freed blobs' pieces were, and certify shared
//! memories' chunks. `run` is pure over the state; `schedule` and
//! `after_update` are the policy the canister runs them by.

use crate::limits::{
    FORGET_PIECES_BATCH, HASH_BACKLOG_BATCH, HASH_BYTES_PER_MESSAGE, MAX_CHUNK_BYTES, SWEEP_BATCH,
    SWEEP_INTERVAL,
};
use crate::session::SessionStatus;
use crate::state::State;
use crate::upload::sessions::{advance_hashing, expire_session};
use ic_stable_structures::Memory;

/// What a maintenance run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub expired: u32,
    pub pruned: u32,
    pub hashed_bytes: u64,
    /// Work remains: run again soon rather than at the next interval.
    pub more_work: bool,
}

/// One bounded run of every job. `more_work` says whether to run again
/// right away.
pub fn run<M: Memory + Clone>(state: &mut State<M>, now: u64) -> MaintenanceReport {
    let mut report = sweep_sessions(state, now);
    report.more_work |= crate::sharing::serve::certify_work(state, now);
    report
}

/// Expires idle sessions, prunes old finished records, advances hashing
/// that fell behind and forgets freed blobs' pieces, each in a batch.
pub fn sweep_sessions<M: Memory + Clone>(state: &mut State<M>, now: u64) -> MaintenanceReport {
    let mut report = MaintenanceReport::default();
    let due = state.sessions.due(now, SWEEP_BATCH);
    report.more_work = due.len() == SWEEP_BATCH;
    for sid in due {
        let Some(session) = state.sessions.get(sid) else {
            continue;
        };
        if session.status == SessionStatus::Pending {
            if expire_session(state, sid, now) {
                report.expired += 1;
            }
        } else {
            state.sessions.remove(sid);
            state.hashing.remove(sid);
            state.thumbnails.forget_session(sid);
            report.pruned += 1;
        }
    }
    // Each waiting upload gets an equal share (at least a chunk), so one
    // large upload does not hold the others back.
    let backlog = state.hashing.backlog(HASH_BACKLOG_BATCH);
    let share =
        (HASH_BYTES_PER_MESSAGE / backlog.len().max(1) as u64).max(u64::from(MAX_CHUNK_BYTES));
    for sid in backlog {
        let Some(session) = state
            .sessions
            .get(sid)
            .filter(|s| s.status == SessionStatus::Pending)
        else {
            state.hashing.remove(sid);
            continue;
        };
        let before = state.hashing.get(sid).hashed_bytes();
        let after = advance_hashing(state, &session, None, share).hashed_bytes();
        report.hashed_bytes += after.saturating_sub(before);
    }
    report.more_work |= state.hashing.has_backlog();
    report.more_work |= state.blobs.forget_freed_pieces(FORGET_PIECES_BATCH);
    report
}

/// Whether a job has work waiting (so a follow-up should run soon).
pub fn has_work<M: Memory>(state: &State<M>) -> bool {
    state.hashing.has_backlog() || state.shares.has_queued_work()
}

/// When to run a follow-up: right away while work is left, one at a time;
/// one scheduled at `scheduled_at` that never ran (its message trapped) is
/// replaced after a sweep interval.
pub fn follow_up_due(work_left: bool, scheduled_at: Option<u64>, now: u64) -> bool {
    let stale = |at: u64| now.saturating_sub(at) > SWEEP_INTERVAL.as_nanos() as u64;
    work_left && scheduled_at.is_none_or(stale)
}
