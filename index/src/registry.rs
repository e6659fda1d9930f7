//! The index's durable state: buckets, capsules, owners, the creation
//! policy, Wasms, creation jobs and the rollout, each in its own stable
//! structure behind one `MemoryManager`. Everything here is pure: time
//! and caller come in as arguments, so it runs on the host over
//! `VectorMemory`.

use crate::storable::{Candid, CapsuleSlot, OwnerRecord, PrincipalSlot};
use crate::types::*;
use candid::{CandidType, Principal};
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::{Memory, StableBTreeMap, StableCell, StableVec};
use serde::Deserialize;

type Vm<M> = VirtualMemory<M>;

/// The index's stable memories, by name.
pub mod memory_ids {
    use ic_stable_structures::memory_manager::MemoryId;
    pub const SETTINGS: MemoryId = MemoryId::new(0);
    pub const COUNTERS: MemoryId = MemoryId::new(1);
    pub const BUCKETS: MemoryId = MemoryId::new(2);
    pub const BUCKET_BY_ID: MemoryId = MemoryId::new(3);
    pub const CAPSULES: MemoryId = MemoryId::new(4);
    pub const OWNERS: MemoryId = MemoryId::new(5);
    pub const OWNER_PRINCIPALS: MemoryId = MemoryId::new(6);
    pub const CREATORS: MemoryId = MemoryId::new(7);
    pub const WASM_META: MemoryId = MemoryId::new(8);
    pub const WASM_CHUNKS: MemoryId = MemoryId::new(9);
    pub const JOBS: MemoryId = MemoryId::new(10);
    pub const ROLLOUT: MemoryId = MemoryId::new(11);
    pub const PENDING: MemoryId = MemoryId::new(12);
    pub const OPEN_BUCKETS: MemoryId = MemoryId::new(13);
    pub const BUCKET_IDS: MemoryId = MemoryId::new(14);
}

/// Counters and cursors that move with every call.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub next_capsule_id: CapsuleId,
    pub next_job_id: u64,
    /// Round robin of the reports: the next bucket number to poll.
    pub poll_cursor: BucketNo,
    pub capsules: u64,
}

/// Wasm slots: chunks are keyed by slot, so an upload never overwrites
/// the module new buckets are installed from.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct WasmMeta {
    pub current: Option<(WasmInfo, u32)>,
    pub staged: Option<(WasmInfo, u32)>,
    pub upload: Option<(WasmUpload, u32, u64)>,
    pub next_slot: u32,
}

/// A capsule whose registration on a bucket is not confirmed.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PendingRegistration {
    pub bucket_no: BucketNo,
    pub capsule: IndexCapsule,
    /// On a further bucket (a sealed bucket's capsule continuing), not
    /// the capsule's first.
    pub continuation: bool,
}

/// Chunks of an uploaded Wasm (1 MiB each at most).
pub const MAX_WASM_CHUNK_BYTES: usize = 1 << 20;
/// The bucket Wasm must fit one cross-subnet `install_code` (2 MiB with
/// the call's other fields).
pub const MAX_WASM_BYTES: u64 = 2_000_000;

pub struct Registry<M: Memory> {
    pub settings: StableCell<Candid<Settings>, Vm<M>>,
    pub counters: StableCell<Candid<Counters>, Vm<M>>,
    pub buckets: StableBTreeMap<BucketNo, Candid<BucketRecord>, Vm<M>>,
    pub bucket_by_id: StableBTreeMap<Principal, BucketNo, Vm<M>>,
    pub capsules: StableVec<CapsuleSlot, Vm<M>>,
    pub owners: StableBTreeMap<Principal, OwnerRecord, Vm<M>>,
    pub owner_principals: StableVec<PrincipalSlot, Vm<M>>,
    pub creators: StableBTreeMap<Principal, (), Vm<M>>,
    pub wasm_meta: StableCell<Candid<WasmMeta>, Vm<M>>,
    pub wasm_chunks: StableBTreeMap<(u32, u32), Vec<u8>, Vm<M>>,
    pub jobs: StableBTreeMap<u64, Candid<CreationJob>, Vm<M>>,
    pub rollout: StableCell<Candid<Option<Rollout>>, Vm<M>>,
    pub pending: StableBTreeMap<CapsuleId, Candid<PendingRegistration>, Vm<M>>,
    /// The open buckets: placement looks at these only, so its cost does
    /// not grow with the registry.
    pub open_buckets: StableBTreeMap<BucketNo, (), Vm<M>>,
    /// Bucket number → canister id, fixed-size: a capsule's location is
    /// read without decoding bucket records.
    pub bucket_ids: StableVec<PrincipalSlot, Vm<M>>,
}

impl<M: Memory + Clone> Registry<M> {
    pub fn init(memory: M, settings: Option<Settings>) -> Self {
        use memory_ids::*;
        let mm = MemoryManager::init(memory);
        let get = |id: MemoryId| mm.get(id);
        let mut registry = Registry {
            settings: StableCell::init(get(SETTINGS), Candid(Settings::default())),
            counters: StableCell::init(
                get(COUNTERS),
                Candid(Counters {
                    next_capsule_id: 1,
                    ..Counters::default()
                }),
            ),
            buckets: StableBTreeMap::init(get(BUCKETS)),
            bucket_by_id: StableBTreeMap::init(get(BUCKET_BY_ID)),
            capsules: StableVec::init(get(CAPSULES)),
            owners: StableBTreeMap::init(get(OWNERS)),
            owner_principals: StableVec::init(get(OWNER_PRINCIPALS)),
            creators: StableBTreeMap::init(get(CREATORS)),
            wasm_meta: StableCell::init(get(WASM_META), Candid(WasmMeta::default())),
            wasm_chunks: StableBTreeMap::init(get(WASM_CHUNKS)),
            jobs: StableBTreeMap::init(get(JOBS)),
            rollout: StableCell::init(get(ROLLOUT), Candid(None)),
            pending: StableBTreeMap::init(get(PENDING)),
            open_buckets: StableBTreeMap::init(get(OPEN_BUCKETS)),
            bucket_ids: StableVec::init(get(BUCKET_IDS)),
        };
        if let Some(s) = settings {
            registry.settings.set(Candid(s));
        }
        registry
    }

    pub fn settings(&self) -> &Settings {
        &self.settings.get().0
    }

    pub fn counters(&self) -> Counters {
        self.counters.get().0.clone()
    }

    pub fn update_counters(&mut self, f: impl FnOnce(&mut Counters)) {
        let mut c = self.counters();
        f(&mut c);
        self.counters.set(Candid(c));
    }

    // --- buckets ---

    pub fn bucket(&self, no: BucketNo) -> Option<BucketRecord> {
        self.buckets.get(&no).map(|c| c.0)
    }

    pub fn bucket_no(&self, id: &Principal) -> Option<BucketNo> {
        self.bucket_by_id.get(id)
    }

    /// The one writer of bucket records: it keeps the open set in step.
    pub fn set_bucket(&mut self, no: BucketNo, record: BucketRecord) {
        if record.state == BucketState::Open && record.importing_after.is_none() {
            self.open_buckets.insert(no, ());
        } else {
            self.open_buckets.remove(&no);
        }
        self.buckets.insert(no, Candid(record));
    }

    pub fn bucket_id(&self, no: BucketNo) -> Option<Principal> {
        self.bucket_ids.get(u64::from(no)).map(|p| p.principal())
    }

    /// Registers a bucket (idempotent by canister id).
    pub fn add_bucket(
        &mut self,
        canister_id: Principal,
        subnet: Principal,
        now: u64,
        importing: bool,
    ) -> Result<BucketNo, AdminError> {
        if let Some(no) = self.bucket_no(&canister_id) {
            return Ok(no);
        }
        let no = self.buckets.len();
        let no = BucketNo::try_from(no).map_err(|_| AdminError::InvalidArgument {
            reason: "the registry holds the most buckets it can number".into(),
        })?;
        let record = BucketRecord {
            canister_id,
            subnet,
            // An adopted canister takes no new capsules until its own are in.
            state: if importing {
                BucketState::Closed
            } else {
                BucketState::Open
            },
            state_pinned: false,
            registered_at: now,
            capacity_bytes: 0,
            used_bytes: 0,
            reserved_bytes: 0,
            capsules: 0,
            placed_since_report: 0,
            memory_count: 0,
            uploaded_bytes_total: 0,
            cycles: 0,
            reserved_cycles: 0,
            idle_cycles_burned_per_day: 0,
            upload_cycles_per_day: 0,
            topped_up_cycles: 0,
            module_hash: None,
            wasm_version: 0,
            package_version: String::new(),
            layout_version: 0,
            last_report_at: 0,
            last_error: None,
            importing_after: importing.then_some(None),
        };
        self.bucket_ids.push(&PrincipalSlot::from(canister_id));
        self.bucket_by_id.insert(canister_id, no);
        self.set_bucket(no, record);
        Ok(no)
    }

    /// The state a bucket's numbers call for (`reserved_cycles > 0`: its
    /// subnet passed its high-usage mark, so each new byte costs more).
    pub fn derived_state(&self, b: &BucketRecord) -> BucketState {
        if b.state_pinned {
            return b.state;
        }
        let s = self.settings();
        let taken = b.used_bytes.saturating_add(b.reserved_bytes);
        if taken >= s.seal_at_bytes || b.reserved_cycles > 0 {
            BucketState::Sealed
        } else if taken >= s.close_at_bytes || b.importing_after.is_some() {
            BucketState::Closed
        } else {
            BucketState::Open
        }
    }

    /// Records a bucket's report; returns the state it should now be in.
    pub fn apply_report(&mut self, no: BucketNo, report: &BucketReport, now: u64) -> BucketState {
        let Some(mut b) = self.bucket(no) else {
            return BucketState::Sealed;
        };
        if b.last_report_at > 0 && now > b.last_report_at {
            let bytes = report
                .uploaded_bytes_total
                .saturating_sub(b.uploaded_bytes_total);
            let elapsed_ns = u128::from(now - b.last_report_at);
            // Ingress: 2 000 cycles a byte, 1.2 M a message of ~1.9 MB.
            let cycles = u128::from(bytes) * 2_000 + u128::from(bytes / 1_900_000 + 1) * 1_200_000;
            b.upload_cycles_per_day = cycles * 86_400_000_000_000 / elapsed_ns.max(1);
        }
        b.capacity_bytes = report.capacity_bytes;
        b.used_bytes = report.used_bytes;
        b.reserved_bytes = report.reserved_bytes;
        b.memory_count = report.memory_count;
        b.uploaded_bytes_total = report.uploaded_bytes_total;
        b.cycles = nat_to_u128(&report.cycles);
        b.package_version = report.package_version.clone();
        b.layout_version = report.layout_version;
        b.placed_since_report = 0;
        b.last_report_at = now;
        b.last_error = None;
        let state = self.derived_state(&b);
        self.set_bucket(no, b);
        state
    }

    pub fn note_bucket_error(&mut self, no: BucketNo, error: String) {
        if let Some(mut b) = self.bucket(no) {
            b.last_error = Some(error);
            self.set_bucket(no, b);
        }
    }

    /// Placement: the open bucket with the most room, estimated as
    /// reported bytes plus `expected_capsule_bytes` for every capsule
    /// placed since its report; among equals the subnet with the least
    /// upload load. It reads the open buckets only (a few per subnet).
    pub fn choose_bucket(&self) -> Option<BucketNo> {
        let s = self.settings();
        let mut best: Option<(u64, u128, BucketNo)> = None;
        let open: Vec<BucketNo> = self.open_buckets.iter().map(|e| *e.key()).collect();
        for (no, b) in open
            .into_iter()
            .filter_map(|no| self.bucket(no).map(|b| (no, b)))
        {
            let estimate = b
                .used_bytes
                .saturating_add(b.reserved_bytes)
                .saturating_add(u64::from(b.placed_since_report) * s.expected_capsule_bytes);
            if estimate >= s.close_at_bytes {
                continue;
            }
            let room = s.close_at_bytes - estimate;
            let load = b.upload_cycles_per_day;
            let better = match best {
                None => true,
                Some((best_room, best_load, _)) => {
                    room > best_room || (room == best_room && load < best_load)
                }
            };
            if better {
                best = Some((room, load, no));
            }
        }
        best.map(|(_, _, no)| no)
    }

    /// The open buckets' room, summed (what bucket creation watches).
    pub fn open_room(&self) -> u64 {
        let s = self.settings();
        self.open_buckets
            .iter()
            .filter_map(|e| self.bucket(*e.key()))
            .map(|b| {
                let taken = b
                    .used_bytes
                    .saturating_add(b.reserved_bytes)
                    .saturating_add(u64::from(b.placed_since_report) * s.expected_capsule_bytes);
                s.close_at_bytes.saturating_sub(taken)
            })
            .fold(0u64, u64::saturating_add)
    }

    /// The subnet a new bucket goes to: the allowed subnet with the fewest
    /// buckets that are not sealed, under `max_buckets_per_subnet`.
    pub fn choose_subnet(&self, own_subnet: Principal) -> Option<Principal> {
        let s = self.settings();
        let subnets = if s.subnets.is_empty() {
            vec![own_subnet]
        } else {
            s.subnets.clone()
        };
        let in_progress: Vec<Principal> = self
            .jobs
            .iter()
            .map(|e| e.value().0)
            .filter(job_active)
            .map(|j| j.subnet)
            .collect();
        subnets
            .into_iter()
            .map(|subnet| {
                let live = self
                    .buckets
                    .iter()
                    .map(|e| e.value().0)
                    .filter(|b| b.subnet == subnet && b.state != BucketState::Sealed)
                    .count()
                    + in_progress.iter().filter(|s| **s == subnet).count();
                (live, subnet)
            })
            .filter(|(live, _)| *live < s.max_buckets_per_subnet as usize)
            .min_by_key(|(live, _)| *live)
            .map(|(_, subnet)| subnet)
    }

    // --- capsules ---

    pub fn slot(&self, capsule_id: CapsuleId) -> Option<CapsuleSlot> {
        capsule_id
            .checked_sub(1)
            .and_then(|i| self.capsules.get(i))
            .filter(CapsuleSlot::in_use)
    }

    pub fn set_slot(&mut self, capsule_id: CapsuleId, slot: CapsuleSlot) {
        let index = capsule_id - 1;
        while self.capsules.len() <= index {
            self.capsules.push(&CapsuleSlot::default());
        }
        self.capsules.set(index, &slot);
    }

    pub fn owner_of(&self, slot: &CapsuleSlot) -> Principal {
        self.owner_principals
            .get(u64::from(slot.owner_no))
            .map(|p| p.principal())
            .unwrap_or(Principal::anonymous())
    }

    pub fn owned_count(&self, owner: &Principal) -> u32 {
        self.owners.get(owner).map(|o| o.capsules).unwrap_or(0)
    }

    fn owner_record(&mut self, owner: Principal) -> OwnerRecord {
        if let Some(r) = self.owners.get(&owner) {
            return r;
        }
        let owner_no = self.owner_principals.len() as u32;
        self.owner_principals.push(&PrincipalSlot::from(owner));
        let r = OwnerRecord {
            owner_no,
            capsules: 0,
            newest: 0,
        };
        self.owners.insert(owner, r);
        r
    }

    /// Records a capsule on bucket `bucket_no` under `capsule_id`, its
    /// registration still to be confirmed when `registering`.
    pub fn record_capsule(
        &mut self,
        capsule_id: CapsuleId,
        owner: Principal,
        bucket_no: BucketNo,
        registering: bool,
    ) {
        let mut owner_record = self.owner_record(owner);
        let mut slot = CapsuleSlot {
            owner_no: owner_record.owner_no,
            flags: CapsuleSlot::IN_USE,
            previous_of_owner: owner_record.newest,
            ..CapsuleSlot::default()
        };
        owner_record.capsules += 1;
        owner_record.newest = slot_id(capsule_id);
        self.owners.insert(owner, owner_record);
        if registering {
            slot.flags |= CapsuleSlot::REGISTERING;
        }
        slot.push_bucket(bucket_no);
        self.set_slot(capsule_id, slot);
        self.update_counters(|c| {
            c.capsules += 1;
            c.next_capsule_id = c.next_capsule_id.max(capsule_id + 1);
        });
        self.bump_bucket(bucket_no, 1);
    }

    /// Takes back a capsule whose only registration definitely failed.
    pub fn forget_capsule(&mut self, capsule_id: CapsuleId) {
        let Some(slot) = self.slot(capsule_id) else {
            return;
        };
        let owner = self.owner_of(&slot);
        if let Some(mut r) = self.owners.get(&owner) {
            r.capsules = r.capsules.saturating_sub(1);
            if r.newest == slot_id(capsule_id) {
                r.newest = slot.previous_of_owner;
            } else {
                // Unlink it: at most the owner's capsules to walk.
                let mut at = r.newest;
                while at != 0 {
                    let Some(mut s) = self.slot(u64::from(at)) else {
                        break;
                    };
                    if s.previous_of_owner == slot_id(capsule_id) {
                        s.previous_of_owner = slot.previous_of_owner;
                        self.set_slot(u64::from(at), s);
                        break;
                    }
                    at = s.previous_of_owner;
                }
            }
            self.owners.insert(owner, r);
        }
        for no in slot.bucket_nos().collect::<Vec<_>>() {
            self.bump_bucket(no, -1);
        }
        self.set_slot(capsule_id, CapsuleSlot::default());
        self.pending.remove(&capsule_id);
        self.update_counters(|c| c.capsules = c.capsules.saturating_sub(1));
    }

    fn bump_bucket(&mut self, no: BucketNo, by: i64) {
        if let Some(mut b) = self.bucket(no) {
            if by > 0 {
                b.capsules += by as u64;
                b.placed_since_report = b.placed_since_report.saturating_add(1);
            } else {
                b.capsules = b.capsules.saturating_sub(by.unsigned_abs());
            }
            self.set_bucket(no, b);
        }
    }

    pub fn location(&self, capsule_id: CapsuleId) -> Option<CapsuleLocation> {
        let slot = self.slot(capsule_id)?;
        let buckets: Vec<Principal> = slot
            .bucket_nos()
            .filter_map(|no| self.bucket_id(no))
            .collect();
        Some(CapsuleLocation {
            capsule_id,
            owner: self.owner_of(&slot),
            upload_bucket: *buckets.last()?,
            buckets,
        })
    }

    /// The capsules `owner` owns, newest first, a page at a time: the page
    /// after `after` starts at the capsule recorded before it.
    pub fn owned(
        &self,
        owner: &Principal,
        after: Option<CapsuleId>,
        limit: usize,
    ) -> Vec<CapsuleLocation> {
        let Some(r) = self.owners.get(owner) else {
            return Vec::new();
        };
        let mut at = match after {
            None => r.newest,
            Some(a) => match self.slot(a).filter(|s| s.owner_no == r.owner_no) {
                Some(s) => s.previous_of_owner,
                None => return Vec::new(),
            },
        };
        let mut out = Vec::new();
        while at != 0 && out.len() < limit {
            let id = u64::from(at);
            let Some(slot) = self.slot(id) else {
                break;
            };
            out.extend(self.location(id));
            at = slot.previous_of_owner;
        }
        out
    }

    pub fn next_capsule_id(&mut self) -> CapsuleId {
        let id = self.counters().next_capsule_id;
        assert!(
            id < u64::from(u32::MAX),
            "capsule ids fit 32 bits (owner lists)"
        );
        self.update_counters(|c| c.next_capsule_id = id + 1);
        id
    }

    // --- creation jobs ---

    pub fn new_job(&mut self, subnet: Principal, now: u64) -> CreationJob {
        let job_id = self.counters().next_job_id;
        self.update_counters(|c| c.next_job_id += 1);
        let job = CreationJob {
            job_id,
            subnet,
            step: CreationStep::Requested,
            attempts: 0,
            started_at: now,
            last_error: None,
        };
        self.jobs.insert(job_id, Candid(job.clone()));
        job
    }

    pub fn set_job(&mut self, job: CreationJob) {
        self.jobs.insert(job.job_id, Candid(job));
    }

    pub fn active_jobs(&self) -> Vec<CreationJob> {
        self.jobs
            .iter()
            .map(|e| e.value().0)
            .filter(job_active)
            .collect()
    }

    /// Why no bucket can be created now, if none can.
    pub fn creation_blocked(&self, treasury: u128) -> Option<String> {
        let s = self.settings();
        let needed = s.creation_fee_cycles + s.bucket_initial_cycles;
        if treasury < s.treasury_floor_cycles.saturating_add(needed) {
            return Some(format!(
                "the treasury holds {treasury} cycles: creating a bucket needs {needed} above the floor of {}",
                s.treasury_floor_cycles
            ));
        }
        if self.wasm_meta.get().0.current.is_none() {
            return Some("no bucket Wasm: a controller uploads one first".into());
        }
        None
    }

    // --- the Wasm store ---

    pub fn wasm_meta(&self) -> WasmMeta {
        self.wasm_meta.get().0.clone()
    }

    pub fn begin_wasm(&mut self, upload: WasmUpload) -> Result<(), AdminError> {
        let mut meta = self.wasm_meta();
        if upload.length == 0 || upload.length > MAX_WASM_BYTES {
            return Err(AdminError::InvalidArgument {
                reason: format!(
                    "a bucket Wasm is 1 to {MAX_WASM_BYTES} bytes (gzip it); this one is {}",
                    upload.length
                ),
            });
        }
        if upload.sha256.len() != 32 {
            return Err(AdminError::InvalidArgument {
                reason: "sha256 is 32 bytes".into(),
            });
        }
        let floor = [&meta.current, &meta.staged]
            .into_iter()
            .flatten()
            .map(|(w, _)| w.version)
            .max();
        if let Some(current) = floor {
            if upload.version <= current {
                return Err(AdminError::VersionNotHigher { current });
            }
        }
        if let Some((_, slot, _)) = meta.upload.take() {
            self.drop_slot(slot);
        }
        let slot = meta.next_slot;
        meta.next_slot += 1;
        meta.upload = Some((upload, slot, 0));
        self.wasm_meta.set(Candid(meta));
        Ok(())
    }

    /// Appends a chunk at `offset` (the bytes received so far; sending the
    /// same chunk again is a no-op).
    pub fn put_wasm_chunk(&mut self, offset: u64, bytes: Vec<u8>) -> Result<u64, AdminError> {
        let mut meta = self.wasm_meta();
        let Some((upload, slot, received)) = meta.upload.as_mut() else {
            return Err(AdminError::NoWasm);
        };
        if bytes.len() > MAX_WASM_CHUNK_BYTES || bytes.is_empty() {
            return Err(AdminError::InvalidArgument {
                reason: format!("a chunk is 1 to {MAX_WASM_CHUNK_BYTES} bytes"),
            });
        }
        if offset + (bytes.len() as u64) <= *received {
            return Ok(*received);
        }
        if offset != *received || *received + bytes.len() as u64 > upload.length {
            return Err(AdminError::InvalidArgument {
                reason: format!(
                    "the next chunk starts at {} and the module is {} bytes",
                    received, upload.length
                ),
            });
        }
        let chunk_no = self
            .wasm_chunks
            .range((*slot, 0)..=(*slot, u32::MAX))
            .count() as u32;
        self.wasm_chunks.insert((*slot, chunk_no), bytes.clone());
        *received += bytes.len() as u64;
        let r = *received;
        self.wasm_meta.set(Candid(meta));
        Ok(r)
    }

    /// Checks the uploaded module's length and hash and stages it; the
    /// first module becomes current at once (no bucket runs another).
    pub fn commit_wasm(&mut self) -> Result<WasmInfo, AdminError> {
        use sha2::{Digest, Sha256};
        let mut meta = self.wasm_meta();
        let Some((upload, slot, received)) = meta.upload.take() else {
            return Err(AdminError::NoWasm);
        };
        let mut hasher = Sha256::new();
        for e in self.wasm_chunks.range((slot, 0)..=(slot, u32::MAX)) {
            hasher.update(e.value());
        }
        let hash = hasher.finalize().to_vec();
        if received != upload.length || hash != upload.sha256 {
            self.drop_slot(slot);
            self.wasm_meta.set(Candid(meta));
            return Err(AdminError::InvalidArgument {
                reason: format!(
                    "received {received} of {} bytes; sha256 {} expected {}",
                    upload.length,
                    hex(&hash),
                    hex(&upload.sha256)
                ),
            });
        }
        let info = WasmInfo {
            version: upload.version,
            sha256: hash,
            length: received,
            layout: crate::module_info::declared_layout(&self.module(slot)),
        };
        if meta.current.is_none() {
            meta.current = Some((info.clone(), slot));
        } else {
            if let Some((_, old)) = meta.staged.take() {
                self.drop_slot(old);
            }
            meta.staged = Some((info.clone(), slot));
        }
        self.wasm_meta.set(Candid(meta));
        Ok(info)
    }

    /// A rollout finished: the staged module is what new buckets get.
    pub fn promote_staged(&mut self) {
        let mut meta = self.wasm_meta();
        if let Some(staged) = meta.staged.take() {
            if let Some((_, old)) = meta.current.replace(staged) {
                self.drop_slot(old);
            }
        }
        self.wasm_meta.set(Candid(meta));
    }

    pub fn module(&self, slot: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for e in self.wasm_chunks.range((slot, 0)..=(slot, u32::MAX)) {
            out.extend_from_slice(&e.value());
        }
        out
    }

    fn drop_slot(&mut self, slot: u32) {
        let keys: Vec<(u32, u32)> = self
            .wasm_chunks
            .range((slot, 0)..=(slot, u32::MAX))
            .map(|e| *e.key())
            .collect();
        for k in keys {
            self.wasm_chunks.remove(&k);
        }
    }

    /// Whether the staged module may replace every bucket's: it must
    /// declare a layout no older than any bucket reports (a build that
    /// cannot read a bucket's data must never run on it).
    pub fn check_rollout(&self, wasm: &WasmInfo) -> Result<(), AdminError> {
        let newest = self
            .buckets
            .iter()
            .map(|e| e.value().0.layout_version)
            .max()
            .unwrap_or(0);
        match wasm.layout {
            Some(layout) if layout >= newest => Ok(()),
            Some(layout) => Err(AdminError::InvalidArgument {
                reason: format!("the Wasm writes layout {layout}, older than a bucket's {newest}"),
            }),
            None => Err(AdminError::InvalidArgument {
                reason: "the Wasm declares no layout (icp:public upload:layout): not a bucket build this index can roll out".into(),
            }),
        }
    }

    pub fn rollout(&self) -> Option<Rollout> {
        self.rollout.get().0.clone()
    }

    pub fn set_rollout(&mut self, r: Option<Rollout>) {
        self.rollout.set(Candid(r));
    }

    pub fn status(&self, treasury: u128) -> IndexStatus {
        let meta = self.wasm_meta();
        IndexStatus {
            buckets: self.buckets.len(),
            open_buckets: self.open_buckets.len(),
            capsules: self.counters().capsules,
            treasury_cycles: treasury,
            creation_blocked: self.creation_blocked(treasury),
            creations_in_progress: self.active_jobs().len() as u64,
            current_wasm: meta.current.map(|(w, _)| w),
            staged_wasm: meta.staged.map(|(w, _)| w),
            rollout: self.rollout(),
            pending_registrations: self.pending.len(),
        }
    }

    /// The cycles table: balance, burn and days left per bucket.
    pub fn rows(&self, after: Option<Principal>, limit: usize) -> Vec<BucketRow> {
        let freezing = u128::from(self.settings().freezing_threshold_seconds);
        let mut rows: Vec<BucketRow> = self
            .buckets
            .iter()
            .map(|e| e.value().0)
            .filter(|b| after.is_none_or(|a| b.canister_id > a))
            .map(|b| {
                let burn = b.idle_cycles_burned_per_day + b.upload_cycles_per_day;
                let frozen_at = burn * freezing / 86_400;
                BucketRow {
                    bucket: b.canister_id,
                    subnet: b.subnet,
                    state: b.state,
                    used_bytes: b.used_bytes,
                    reserved_bytes: b.reserved_bytes,
                    capsules: b.capsules,
                    cycles: b.cycles,
                    burn_cycles_per_day: burn,
                    days_left: (burn > 0)
                        .then(|| (b.cycles.saturating_sub(frozen_at) / burn) as u64),
                    wasm_version: b.wasm_version,
                    last_error: b.last_error.clone(),
                }
            })
            .collect();
        rows.sort_by_key(|r| r.bucket);
        rows.truncate(limit);
        rows
    }
}

/// A capsule id as the owner lists hold it (ids stay below 2³²).
fn slot_id(capsule_id: CapsuleId) -> u32 {
    u32::try_from(capsule_id).expect("capsule ids fit 32 bits (owner lists)")
}

pub fn job_active(j: &CreationJob) -> bool {
    !matches!(
        j.step,
        CreationStep::Registered { .. } | CreationStep::Abandoned { .. }
    )
}

pub fn nat_to_u128(n: &candid::Nat) -> u128 {
    u128::try_from(n.0.clone()).unwrap_or(u128::MAX)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
