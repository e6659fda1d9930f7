//! Limits, id counters, totals and per-caller usage: the quota rules in one
//! place.

use crate::candid_storable;
use crate::error::{Quota, UploadError};
use crate::limits::Limits;
use crate::stable_memory::Vm;
use crate::types::{CallerUsage, CapsuleId, MemoryItemId};
use candid::{CandidType, Principal};
use ic_stable_structures::{Memory, StableBTreeMap, StableCell};
use serde::Deserialize;

/// Totals and counters of the upload domain.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    pub limits: Limits,
    pub next_capsule_id: u64,
    pub next_memory_id: u64,
    pub open_sessions: u64,
    pub reserved_bytes: u64,
    pub stored_bytes: u64,
    /// Whether only allowed principals may create capsules. Absent in
    /// records written before it existed: open.
    pub capsule_creation_restricted: Option<bool>,
}

candid_storable!(Ledger);
candid_storable!(CallerUsage);

/// The ledger and per-caller usage.
pub struct Accounting<M: Memory> {
    ledger: StableCell<Ledger, Vm<M>>,
    usage: StableBTreeMap<Principal, CallerUsage, Vm<M>>,
}

impl<M: Memory + Clone> Accounting<M> {
    pub fn init(ledger: Vm<M>, usage: Vm<M>) -> Self {
        Self {
            ledger: StableCell::init(ledger, Ledger::default()),
            usage: StableBTreeMap::init(usage),
        }
    }
}

impl<M: Memory> Accounting<M> {
    pub fn ledger(&self) -> &Ledger {
        self.ledger.get()
    }

    pub fn limits(&self) -> &Limits {
        &self.ledger.get().limits
    }

    /// Changes limits without validating them: for layout migrations
    /// (`crate::state`), which only move values to today's defaults.
    pub fn migrate_limits(&mut self, change: impl FnOnce(&mut Limits)) {
        self.update(|ledger| change(&mut ledger.limits));
    }

    pub fn capsule_creation_restricted(&self) -> bool {
        self.ledger().capsule_creation_restricted == Some(true)
    }

    pub fn set_capsule_creation_restricted(&mut self, restricted: bool) {
        self.update(|ledger| ledger.capsule_creation_restricted = Some(restricted));
    }

    pub fn set_limits(&mut self, limits: Limits) -> Result<(), UploadError> {
        limits
            .validate()
            .map_err(|reason| UploadError::InvalidArgument { reason })?;
        self.update(|ledger| ledger.limits = limits);
        Ok(())
    }

    pub fn usage(&self, caller: &Principal) -> CallerUsage {
        self.usage.get(caller).unwrap_or_default()
    }

    /// Usage of callers after `after`, at most `limit`.
    pub fn usage_page(
        &self,
        after: Option<Principal>,
        limit: usize,
    ) -> Vec<(Principal, CallerUsage)> {
        let range = match after {
            Some(p) => self
                .usage
                .range((std::ops::Bound::Excluded(p), std::ops::Bound::Unbounded)),
            None => self.usage.iter(),
        };
        range.take(limit).map(|entry| entry.into_pair()).collect()
    }

    pub fn next_capsule_id(&mut self) -> CapsuleId {
        let mut id = 0;
        self.update(|ledger| {
            ledger.next_capsule_id += 1;
            id = ledger.next_capsule_id;
        });
        CapsuleId(id)
    }

    /// Capsule ids handed out from now on come after `id` (a capsule the
    /// index registered under its own id).
    pub fn skip_capsule_ids_through(&mut self, id: CapsuleId) {
        if self.ledger().next_capsule_id < id.0 {
            self.update(|ledger| ledger.next_capsule_id = id.0);
        }
    }

    pub fn next_memory_id(&mut self) -> MemoryItemId {
        let mut id = 0;
        self.update(|ledger| {
            ledger.next_memory_id += 1;
            id = ledger.next_memory_id;
        });
        MemoryItemId(id)
    }

    /// Checks that `caller` may open one more session that reserves
    /// `bytes` (its file's `charged_bytes`, plus its thumbnail's): whole
    /// blocks, at least one, as the blob store hands out space.
    pub fn check_reserve(&self, caller: &Principal, bytes: u64) -> Result<(), UploadError> {
        let limits = self.limits();
        let usage = self.usage(caller);
        let ledger = self.ledger();
        if usage.open_sessions >= limits.max_open_sessions_per_caller {
            return Err(exceeded(
                Quota::OpenSessionsPerCaller,
                u64::from(limits.max_open_sessions_per_caller),
                u64::from(usage.open_sessions) + 1,
            ));
        }
        let reserved = usage.reserved_bytes.saturating_add(bytes);
        if reserved > limits.max_reserved_bytes_per_caller {
            return Err(exceeded(
                Quota::ReservedBytesPerCaller,
                limits.max_reserved_bytes_per_caller,
                reserved,
            ));
        }
        let held = reserved.saturating_add(usage.stored_bytes);
        if held > limits.max_stored_bytes_per_caller {
            return Err(exceeded(
                Quota::StoredBytesPerCaller,
                limits.max_stored_bytes_per_caller,
                held,
            ));
        }
        if let Some(cap) = limits.max_reserved_bytes_total {
            let reserved_total = ledger.reserved_bytes.saturating_add(bytes);
            if reserved_total > cap {
                return Err(exceeded(Quota::ReservedBytesTotal, cap, reserved_total));
            }
        }
        let total = ledger.reserved_bytes + ledger.stored_bytes + bytes;
        if total > limits.max_total_bytes {
            return Err(exceeded(Quota::TotalBytes, limits.max_total_bytes, total));
        }
        Ok(())
    }

    /// Checks that `caller` may store `bytes` more (a thumbnail) once
    /// `freed` (the thumbnail it replaces, charged to that principal) is
    /// released: what the caller holds, reserved and stored, and the total.
    pub fn check_store(
        &self,
        caller: &Principal,
        bytes: u64,
        freed: Option<(Principal, u64)>,
    ) -> Result<(), UploadError> {
        let limits = self.limits();
        let usage = self.usage(caller);
        let ledger = self.ledger();
        let (freed_by, freed_bytes) = freed.unwrap_or((*caller, 0));
        let own_freed = if freed_by == *caller { freed_bytes } else { 0 };
        let held = (usage.reserved_bytes + usage.stored_bytes)
            .saturating_sub(own_freed)
            .saturating_add(bytes);
        if held > limits.max_stored_bytes_per_caller {
            return Err(exceeded(
                Quota::StoredBytesPerCaller,
                limits.max_stored_bytes_per_caller,
                held,
            ));
        }
        let total = (ledger.reserved_bytes + ledger.stored_bytes)
            .saturating_sub(freed_bytes)
            .saturating_add(bytes);
        if total > limits.max_total_bytes {
            return Err(exceeded(Quota::TotalBytes, limits.max_total_bytes, total));
        }
        Ok(())
    }

    /// A session opened, reserving `bytes`.
    pub fn reserve(&mut self, caller: Principal, bytes: u64) {
        self.update_usage(caller, |u| {
            u.open_sessions += 1;
            u.reserved_bytes += bytes;
        });
        self.update(|l| {
            l.open_sessions += 1;
            l.reserved_bytes += bytes;
        });
    }

    /// A session that reserved `bytes` ended without a memory: its
    /// reservation is released.
    pub fn release(&mut self, caller: Principal, bytes: u64) {
        self.update_usage(caller, |u| {
            u.open_sessions -= 1;
            u.reserved_bytes -= bytes;
        });
        self.update(|l| {
            l.open_sessions -= 1;
            l.reserved_bytes -= bytes;
        });
    }

    /// A session that reserved `bytes` committed: its reservation becomes
    /// stored bytes.
    pub fn commit(&mut self, caller: Principal, bytes: u64) {
        self.update_usage(caller, |u| {
            u.open_sessions -= 1;
            u.reserved_bytes -= bytes;
            u.stored_bytes += bytes;
        });
        self.update(|l| {
            l.open_sessions -= 1;
            l.reserved_bytes -= bytes;
            l.stored_bytes += bytes;
        });
    }

    /// `bytes` more stored by `caller` (a thumbnail set on a memory).
    pub fn store(&mut self, caller: Principal, bytes: u64) {
        self.update_usage(caller, |u| u.stored_bytes += bytes);
        self.update(|l| l.stored_bytes += bytes);
    }

    /// `bytes` stored by `holder` were freed (a memory deleted, a
    /// thumbnail removed or replaced).
    pub fn unstore(&mut self, holder: Principal, bytes: u64) {
        self.update_usage(holder, |u| u.stored_bytes -= bytes);
        self.update(|l| l.stored_bytes -= bytes);
    }

    fn update(&mut self, change: impl FnOnce(&mut Ledger)) {
        let mut ledger = self.ledger.get().clone();
        change(&mut ledger);
        self.ledger.set(ledger);
    }

    fn update_usage(&mut self, caller: Principal, change: impl FnOnce(&mut CallerUsage)) {
        let mut usage = self.usage(&caller);
        change(&mut usage);
        if usage == CallerUsage::default() {
            self.usage.remove(&caller);
        } else {
            self.usage.insert(caller, usage);
        }
    }
}

fn exceeded(quota: Quota, limit: u64, requested: u64) -> UploadError {
    UploadError::QuotaExceeded {
        quota,
        limit,
        requested,
    }
}
