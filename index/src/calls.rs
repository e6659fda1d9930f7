//! The index's calls to buckets, the management canister and the cycles
//! minting canister. Calls to buckets (and management calls about a
//! bucket) wait boundedly: a slow subnet can delay the index's jobs but
//! never keep it from stopping or upgrading. Calls that carry cycles
//! (create, deposit) wait unboundedly: a timeout would leave cycles and a
//! new canister id unaccounted for.

use crate::types::*;
use candid::utils::ArgumentEncoder;
use candid::{CandidType, Nat, Principal};
use ic_cdk::call::{Call, CallFailed, RejectCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// What became of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// Did not run, or ran and rejected: nothing changed in the callee
    /// (or the change was rolled back).
    Failed(String),
    /// The answer was lost (bounded wait ran out, `SYS_UNKNOWN`): the
    /// callee may have run. The caller must find out, or retry an
    /// idempotent call.
    Unknown(String),
}

impl CallError {
    pub fn reason(&self) -> String {
        match self {
            CallError::Failed(r) => r.clone(),
            CallError::Unknown(r) => format!("no answer: {r}"),
        }
    }
}

fn classify(e: CallFailed) -> CallError {
    match &e {
        CallFailed::CallRejected(r) if r.reject_code() == Ok(RejectCode::SysUnknown) => {
            CallError::Unknown(e.to_string())
        }
        _ => CallError::Failed(e.to_string()),
    }
}

pub const CMC: &str = "rkp4c-7iaaa-aaaaa-aaaca-cai";

pub fn cmc() -> Principal {
    Principal::from_text(CMC).expect("the CMC's id")
}

async fn call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
    call: Call<'_, '_>,
    args: &A,
) -> Result<R, CallError> {
    let reply = call.with_args(args).await.map_err(classify)?;
    reply
        .candid::<R>()
        .map_err(|e| CallError::Failed(format!("undecodable reply: {e}")))
}

fn bounded(timeout: u32, to: Principal, method: &str) -> Call<'_, '_> {
    Call::bounded_wait(to, method).change_timeout(timeout)
}

// --- buckets ---

pub async fn register_capsule(
    timeout: u32,
    bucket: Principal,
    capsule: &IndexCapsule,
) -> Result<Result<candid::Reserved, RegisterRefusal>, CallError> {
    call(
        bounded(timeout, bucket, "bucket_register_capsule"),
        &(capsule,),
    )
    .await
}

/// `bucket_register_capsule`'s refusals (the cases the index acts on;
/// Candid skips the ones a newer bucket adds only when they are `opt`,
/// so all are listed).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum RegisterRefusal {
    NotIndex,
    CapsuleIdTaken { capsule_id: CapsuleId },
    Sealed,
    OutOfSpace,
    InvalidArgument { reason: String },
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum IndexOnlyError {
    NotIndex,
}

pub async fn report(timeout: u32, bucket: Principal) -> Result<BucketReport, CallError> {
    let r: Result<BucketReport, IndexOnlyError> =
        call(bounded(timeout, bucket, "bucket_report"), &()).await?;
    r.map_err(|e| CallError::Failed(format!("{e:?}")))
}

pub async fn health(timeout: u32, bucket: Principal) -> Result<BucketHealth, CallError> {
    let r: Result<BucketHealth, IndexOnlyError> =
        call(bounded(timeout, bucket, "bucket_health"), &()).await?;
    r.map_err(|e| CallError::Failed(format!("{e:?}")))
}

pub async fn set_state(
    timeout: u32,
    bucket: Principal,
    state: BucketState,
) -> Result<(), CallError> {
    let r: Result<(), IndexOnlyError> =
        call(bounded(timeout, bucket, "bucket_set_state"), &(state,)).await?;
    r.map_err(|e| CallError::Failed(format!("{e:?}")))
}

pub async fn capsules_page(
    timeout: u32,
    bucket: Principal,
    after: Option<CapsuleId>,
    limit: u32,
) -> Result<Vec<IndexCapsule>, CallError> {
    let r: Result<Vec<IndexCapsule>, IndexOnlyError> =
        call(bounded(timeout, bucket, "bucket_capsules"), &(after, limit)).await?;
    r.map_err(|e| CallError::Failed(format!("{e:?}")))
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum SetIndexError {
    NotAuthorized,
    OutOfSpace,
}

pub async fn set_index(timeout: u32, bucket: Principal, index: Principal) -> Result<(), CallError> {
    let r: Result<(), SetIndexError> =
        call(bounded(timeout, bucket, "admin_set_index"), &(Some(index),)).await?;
    r.map_err(|e| CallError::Failed(format!("{e:?}")))
}

// --- the management canister and the CMC ---

#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct Settings {
    pub controllers: Option<Vec<Principal>>,
    pub freezing_threshold: Option<Nat>,
    pub reserved_cycles_limit: Option<Nat>,
    pub wasm_memory_limit: Option<Nat>,
}

#[derive(CandidType, Deserialize)]
struct CreateArgs {
    settings: Option<Settings>,
    sender_canister_version: Option<u64>,
}

#[derive(CandidType, Deserialize)]
struct CanisterIdRecord {
    canister_id: Principal,
}

/// Creates an empty canister on the index's own subnet.
pub async fn create_here(settings: Settings, cycles: u128) -> Result<Principal, CallError> {
    let r: CanisterIdRecord = call(
        Call::unbounded_wait(Principal::management_canister(), "create_canister")
            .with_cycles(cycles),
        &(CreateArgs {
            settings: Some(settings),
            sender_canister_version: None,
        },),
    )
    .await?;
    Ok(r.canister_id)
}

#[derive(CandidType, Deserialize)]
struct SubnetRecord {
    subnet: Principal,
}

#[derive(CandidType, Deserialize)]
enum SubnetSelection {
    Subnet(SubnetRecord),
}

#[derive(CandidType, Deserialize)]
struct CmcCreateArgs {
    settings: Option<Settings>,
    subnet_selection: Option<SubnetSelection>,
    subnet_type: Option<String>,
}

#[derive(CandidType, Deserialize, Debug)]
enum CmcCreateError {
    Refunded {
        refund_amount: Nat,
        create_error: String,
    },
    RefundFailed {
        initial_error: String,
        refund_error: String,
    },
}

/// Creates an empty canister on `subnet` through the cycles minting
/// canister.
pub async fn create_on(
    subnet: Principal,
    settings: Settings,
    cycles: u128,
) -> Result<Principal, CallError> {
    let r: Result<Principal, CmcCreateError> = call(
        Call::unbounded_wait(cmc(), "create_canister").with_cycles(cycles),
        &(CmcCreateArgs {
            settings: Some(settings),
            subnet_selection: Some(SubnetSelection::Subnet(SubnetRecord { subnet })),
            subnet_type: None,
        },),
    )
    .await?;
    r.map_err(|e| CallError::Failed(format!("the CMC refused: {e:?}")))
}

#[derive(CandidType, Deserialize, Clone, Copy)]
pub struct UpgradeFlags {
    pub skip_pre_upgrade: Option<bool>,
}

#[derive(CandidType, Deserialize, Clone, Copy)]
pub enum InstallMode {
    #[serde(rename = "install")]
    Install,
    #[serde(rename = "upgrade")]
    Upgrade(Option<UpgradeFlags>),
}

#[derive(CandidType)]
struct InstallArgs<'a> {
    mode: InstallMode,
    canister_id: Principal,
    wasm_module: &'a serde_bytes::Bytes,
    arg: &'a serde_bytes::Bytes,
    sender_canister_version: Option<u64>,
}

pub async fn install(
    timeout: u32,
    canister_id: Principal,
    mode: InstallMode,
    wasm_module: &[u8],
) -> Result<(), CallError> {
    let arg = candid::encode_args(()).expect("() encodes");
    call(
        bounded(timeout, Principal::management_canister(), "install_code"),
        &(InstallArgs {
            mode,
            canister_id,
            wasm_module: serde_bytes::Bytes::new(wasm_module),
            arg: serde_bytes::Bytes::new(&arg),
            sender_canister_version: None,
        },),
    )
    .await
}

pub async fn stop(timeout: u32, canister_id: Principal) -> Result<(), CallError> {
    call(
        bounded(timeout, Principal::management_canister(), "stop_canister"),
        &(CanisterIdRecord { canister_id },),
    )
    .await
}

pub async fn start(timeout: u32, canister_id: Principal) -> Result<(), CallError> {
    call(
        bounded(timeout, Principal::management_canister(), "start_canister"),
        &(CanisterIdRecord { canister_id },),
    )
    .await
}

pub async fn delete(timeout: u32, canister_id: Principal) -> Result<(), CallError> {
    call(
        bounded(timeout, Principal::management_canister(), "delete_canister"),
        &(CanisterIdRecord { canister_id },),
    )
    .await
}

/// The fields of `canister_status` the index reads.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct StatusSettings {
    pub controllers: Vec<Principal>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct Status {
    pub module_hash: Option<Vec<u8>>,
    pub cycles: Nat,
    pub reserved_cycles: Nat,
    pub idle_cycles_burned_per_day: Nat,
    pub settings: StatusSettings,
}

pub async fn status(timeout: u32, canister_id: Principal) -> Result<Status, CallError> {
    call(
        bounded(timeout, Principal::management_canister(), "canister_status"),
        &(CanisterIdRecord { canister_id },),
    )
    .await
}

pub async fn deposit(canister_id: Principal, cycles: u128) -> Result<(), CallError> {
    call(
        Call::unbounded_wait(Principal::management_canister(), "deposit_cycles")
            .with_cycles(cycles),
        &(CanisterIdRecord { canister_id },),
    )
    .await
}
