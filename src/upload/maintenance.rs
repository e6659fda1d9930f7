//! Background work, run by timers in bounded batches: expiring idle
//! sessions (freeing their space), pruning old finished records,
//! advancing hashing that fell behind, and forgetting where freed blobs'
//! pieces were.

use super::limits::{HASH_BYTES_PER_MESSAGE, MAX_CHUNK_BYTES, SWEEP_BATCH};
use super::service::UploadService;
use super::types::SessionStatus;
use ic_stable_structures::Memory;

/// Uploads whose hashing one timer run advances.
const HASH_BACKLOG_BATCH: usize = 16;

/// Placement entries of freed blobs one timer run removes (a blob has one
/// per chunk it received; measured at about 0.1 B instructions a batch).
const FORGET_PIECES_BATCH: usize = 4_096;

/// What a maintenance run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub expired: u32,
    pub pruned: u32,
    pub hashed_bytes: u64,
    /// Work remains: run again soon rather than at the next interval.
    pub more_work: bool,
}

impl<M: Memory + Clone> UploadService<M> {
    /// Bounded background work: expires idle sessions (freeing their space),
    /// prunes old finished records, and advances hashing that fell behind.
    pub fn maintenance(&mut self, now: u64) -> MaintenanceReport {
        let mut report = MaintenanceReport::default();
        let due = self.sessions.due(now, SWEEP_BATCH);
        report.more_work = due.len() == SWEEP_BATCH;
        for sid in due {
            let Some(session) = self.sessions.get(sid) else {
                continue;
            };
            if session.status == SessionStatus::Pending {
                if self.expire_session(sid, now) {
                    report.expired += 1;
                }
            } else {
                self.sessions.remove(sid);
                self.hashing.remove(sid);
                self.thumbnails.forget_session(sid);
                report.pruned += 1;
            }
        }
        // Each waiting upload gets an equal share (at least a chunk), so one
        // large upload does not hold the others back.
        let backlog = self.hashing.backlog(HASH_BACKLOG_BATCH);
        let share =
            (HASH_BYTES_PER_MESSAGE / backlog.len().max(1) as u64).max(u64::from(MAX_CHUNK_BYTES));
        for sid in backlog {
            let Some(session) = self
                .sessions
                .get(sid)
                .filter(|s| s.status == SessionStatus::Pending)
            else {
                self.hashing.remove(sid);
                continue;
            };
            let before = self.hashing.get(sid).hashed_bytes();
            let after = self.advance_hashing(&session, None, share).hashed_bytes();
            report.hashed_bytes += after.saturating_sub(before);
        }
        report.more_work |= self.hashing.has_backlog();
        report.more_work |= self.blobs.forget_freed_pieces(FORGET_PIECES_BATCH);
        report
    }

    /// Whether hashing has work waiting (so a timer should run soon).
    pub fn has_hashing_backlog(&self) -> bool {
        self.hashing.has_backlog()
    }
}
