//! The index's Candid types: what its callers see, and the bucket's index
//! endpoints as the index calls them.

use candid::{CandidType, Nat, Principal};
use serde::Deserialize;

pub type CapsuleId = u64;

/// A bucket's number in the registry: capsules name their buckets by it
/// (2 bytes where a principal takes 10), so the registry stays small.
pub type BucketNo = u16;

/// Where a bucket stands; the same Candid variant as the bucket's own.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BucketState {
    /// Takes new capsules.
    Open,
    /// Takes no new capsules; its capsules keep uploading.
    Closed,
    /// Takes no new uploads; reads, deletes and uploads in flight go on.
    Sealed,
}

/// Where a capsule lives: every bucket holding its memories, oldest first;
/// new uploads go to `upload_bucket`, the newest.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CapsuleLocation {
    pub capsule_id: CapsuleId,
    pub owner: Principal,
    pub buckets: Vec<Principal>,
    pub upload_bucket: Principal,
}

/// What `capsules_create` and `capsules_locate` can answer.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum PlacementError {
    AnonymousCaller,
    /// Capsule creation is restricted to allowed principals.
    NotAuthorized,
    InvalidArgument {
        reason: String,
    },
    /// The caller owns `limit` capsules already.
    CapsulesPerOwnerExceeded {
        limit: u32,
    },
    CapsuleNotFound {
        capsule_id: CapsuleId,
    },
    /// No bucket takes new capsules now; the index is creating one (or
    /// says in `reason` why it cannot). Retry later.
    NoOpenBucket {
        reason: String,
    },
    /// The bucket did not answer or refused; nothing was recorded.
    BucketUnavailable {
        bucket: Principal,
        reason: String,
    },
    /// The bucket's answer was lost (the call timed out): the capsule is
    /// recorded and its registration is retried; `capsules_locate`
    /// completes it.
    RegistrationPending {
        capsule_id: CapsuleId,
    },
    /// A capsule spans at most `MAX_BUCKETS_PER_CAPSULE` buckets.
    CapsuleSpansTooManyBuckets {
        capsule_id: CapsuleId,
    },
}

/// The index's settings, set by its controllers.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// A bucket takes no new capsules once used + reserved bytes reach this.
    pub close_at_bytes: u64,
    /// A bucket takes no new uploads once used + reserved bytes reach this.
    pub seal_at_bytes: u64,
    /// When the open buckets' room (close_at − used − reserved, summed)
    /// falls below this, the index creates a bucket.
    pub min_open_room_bytes: u64,
    /// Room each newly placed capsule is expected to take before the next
    /// report (placement's estimate between reports).
    pub expected_capsule_bytes: u64,
    /// Subnets where buckets may be created; empty: the index's own.
    pub subnets: Vec<Principal>,
    pub max_buckets_per_subnet: u32,
    /// Cycles a new bucket starts with (on top of the creation fee).
    pub bucket_initial_cycles: u128,
    /// The creation fee (500 B cycles on a 13-node subnet).
    pub creation_fee_cycles: u128,
    /// The index keeps at least this many cycles: below it, it creates no
    /// bucket and tops none up.
    pub treasury_floor_cycles: u128,
    /// A bucket below this balance is topped up...
    pub top_up_below_cycles: u128,
    /// ...by this much.
    pub top_up_cycles: u128,
    /// Settings every bucket is created with.
    pub freezing_threshold_seconds: u64,
    pub reserved_cycles_limit: u128,
    pub wasm_memory_limit_bytes: u64,
    /// Controllers of every bucket besides the index (break-glass).
    pub operators: Vec<Principal>,
    pub max_capsules_per_owner: u32,
    /// Only allowed principals may create capsules.
    pub creation_restricted: bool,
    /// How often the jobs run (reports, top-ups, creation, rollouts).
    pub jobs_interval_seconds: u64,
    /// Buckets polled per run of the jobs (round robin).
    pub buckets_per_run: u32,
    /// Upper bound of a rollout batch (1, 2, 4, ... up to this).
    pub rollout_max_batch: u32,
    /// Timeout of the index's bounded-wait calls.
    pub call_timeout_seconds: u32,
}

const GIB: u64 = 1 << 30;
const T: u128 = 1_000_000_000_000;

impl Default for Settings {
    /// The production figures (README, "Scaling out"): a bucket's blob
    /// store holds 248 GiB; closed at 65 %, sealed at 90 %.
    fn default() -> Self {
        Settings {
            close_at_bytes: 160 * GIB,
            seal_at_bytes: 224 * GIB,
            min_open_room_bytes: 32 * GIB,
            expected_capsule_bytes: GIB,
            subnets: Vec::new(),
            max_buckets_per_subnet: 3,
            bucket_initial_cycles: 5 * T,
            creation_fee_cycles: 500_000_000_000,
            treasury_floor_cycles: 20 * T,
            top_up_below_cycles: 3 * T,
            top_up_cycles: 5 * T,
            freezing_threshold_seconds: 30 * 24 * 3600,
            reserved_cycles_limit: 5 * T,
            wasm_memory_limit_bytes: GIB,
            operators: Vec::new(),
            max_capsules_per_owner: 100,
            creation_restricted: false,
            jobs_interval_seconds: 300,
            buckets_per_run: 20,
            rollout_max_batch: 8,
            call_timeout_seconds: 60,
        }
    }
}

/// A bucket as the registry knows it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BucketRecord {
    pub canister_id: Principal,
    pub subnet: Principal,
    pub state: BucketState,
    /// Set by a controller: the state stays as set, reports do not move it.
    pub state_pinned: bool,
    pub registered_at: u64,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub reserved_bytes: u64,
    /// Capsules the index registered here.
    pub capsules: u64,
    /// Capsules placed since the last report (placement's estimate).
    pub placed_since_report: u32,
    pub memory_count: u64,
    pub uploaded_bytes_total: u64,
    pub cycles: u128,
    pub reserved_cycles: u128,
    pub idle_cycles_burned_per_day: u128,
    /// Ingress burn per day from the upload rate between the last two
    /// reports (2 000 cycles a byte plus 1.2 M a message, chunk-sized).
    pub upload_cycles_per_day: u128,
    pub topped_up_cycles: u128,
    /// SHA-256 of the Wasm the bucket runs (as the index installed it).
    pub module_hash: Option<Vec<u8>>,
    pub wasm_version: u32,
    pub package_version: String,
    pub layout_version: u32,
    pub last_report_at: u64,
    pub last_error: Option<String>,
    /// Adoption: the capsules of an existing canister are still being
    /// imported, after this id.
    pub importing_after: Option<Option<CapsuleId>>,
}

/// One row of the cycles table.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BucketRow {
    pub bucket: Principal,
    pub subnet: Principal,
    pub state: BucketState,
    pub used_bytes: u64,
    pub reserved_bytes: u64,
    pub capsules: u64,
    pub cycles: u128,
    pub burn_cycles_per_day: u128,
    /// Days until the balance reaches the freezing threshold at this burn
    /// (`None`: no burn measured yet).
    pub days_left: Option<u64>,
    pub wasm_version: u32,
    pub last_error: Option<String>,
}

/// The index at a glance (anyone).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IndexStatus {
    pub buckets: u64,
    pub open_buckets: u64,
    pub capsules: u64,
    pub treasury_cycles: u128,
    /// Why the index cannot create a bucket now, if it cannot.
    pub creation_blocked: Option<String>,
    pub creations_in_progress: u64,
    pub current_wasm: Option<WasmInfo>,
    pub staged_wasm: Option<WasmInfo>,
    pub rollout: Option<Rollout>,
    pub pending_registrations: u64,
}

/// A bucket Wasm the index holds.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WasmInfo {
    pub version: u32,
    #[serde(with = "serde_bytes")]
    pub sha256: Vec<u8>,
    pub length: u64,
    /// The stable-memory layout the module declares
    /// (`icp:public upload:layout`); `None`: it declares none.
    pub layout: Option<u32>,
}

/// A Wasm being uploaded by a controller, in chunks.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WasmUpload {
    pub version: u32,
    #[serde(with = "serde_bytes")]
    pub sha256: Vec<u8>,
    pub length: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum RolloutState {
    Running,
    /// A bucket failed: nothing more is upgraded until a new rollout.
    Halted {
        bucket: Principal,
        reason: String,
    },
    Done,
}

/// Upgrading every bucket to the staged Wasm: one canary, then batches
/// of 2, 4, ... up to `rollout_max_batch`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    pub wasm: WasmInfo,
    pub state: RolloutState,
    pub next_batch: u32,
    pub upgraded: u64,
    pub started_at: u64,
}

/// A bucket being created, step by step; each step is recorded before the
/// next begins, so a failure or an index upgrade resumes where it stood.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CreationStep {
    /// Asking the management canister (own subnet) or the CMC.
    Requested,
    /// The canister exists (empty); next: install the Wasm.
    Created { canister_id: Principal },
    /// The Wasm runs; next: tell the bucket who its index is.
    Installed { canister_id: Principal },
    /// In the registry as bucket `bucket_no`.
    Registered { canister_id: Principal },
    /// Given up (`reason`); its cycles were refunded, or the canister was
    /// deleted.
    Abandoned { reason: String },
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CreationJob {
    pub job_id: u64,
    pub subnet: Principal,
    pub step: CreationStep,
    pub attempts: u32,
    pub started_at: u64,
    pub last_error: Option<String>,
}

/// What the invariant check found.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct InvariantReport {
    pub buckets_checked: u64,
    pub capsules_checked: u64,
    pub problems: Vec<String>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AdminError {
    NotAuthorized,
    InvalidArgument {
        reason: String,
    },
    /// The treasury is below its floor plus what the action needs.
    TreasuryBelowFloor {
        balance: u128,
        floor: u128,
        needed: u128,
    },
    /// The Wasm's version is not higher than the current one.
    VersionNotHigher {
        current: u32,
    },
    NoWasm,
    BucketNotFound {
        bucket: Principal,
    },
    Busy,
    CallFailed {
        reason: String,
    },
}

/// What one run of the jobs did.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct JobsReport {
    pub buckets_polled: u32,
    pub state_changes: u32,
    pub topped_up: u32,
    pub creation_steps: u32,
    pub registrations_retried: u32,
    pub upgraded: u32,
    pub imported_capsules: u32,
    pub notes: Vec<String>,
}

// --- The bucket's index endpoints, as the index calls them. ---

/// A capsule as the bucket registers it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IndexCapsule {
    pub capsule_id: CapsuleId,
    pub owner: Principal,
    pub name: String,
    pub writers: Vec<Principal>,
    pub created_at: u64,
}

/// A bucket's answer to `bucket_report` (fields the index reads).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BucketReport {
    pub index: Option<Principal>,
    pub state: BucketState,
    pub layout_version: u32,
    pub package_version: String,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub reserved_bytes: u64,
    pub capsule_count: u64,
    pub memory_count: u64,
    pub uploaded_bytes_total: u64,
    pub cycles: Nat,
    pub time: u64,
}

/// `bucket_health`'s answer.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BucketHealth {
    pub layout_version: u32,
    pub package_version: String,
    pub capsule_count: u64,
    pub memory_count: u64,
    pub invariants_ok: bool,
    pub detail: String,
}
