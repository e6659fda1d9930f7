//! Per-canister host state reachable from the `ic0` imports, and the
//! per-message execution context.

use crate::stable_memory::StableMemory;
use candid::Principal;
use wasmi::{Global, Memory};

/// Which entry point a message runs (the spec's "context" letters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kind {
    /// `start` function (s).
    Start,
    /// `canister_init` (I).
    Init,
    /// `canister_pre_upgrade` (G).
    PreUpgrade,
    /// `canister_post_upgrade` (I).
    PostUpgrade,
    /// Update method (U).
    #[default]
    Update,
    /// Query executed as a query: never persisted (Q).
    Query,
    /// Query method invoked as an update / inter-canister call: changes discarded (RQ).
    ReplicatedQuery,
    /// `canister_global_timer` (T).
    Timer,
    /// Reply callback (Ry).
    ReplyCallback,
    /// Reject callback (Rt).
    RejectCallback,
    /// Cleanup callback (C).
    Cleanup,
    /// `canister_inspect_message` before an ingress update call (F):
    /// non-replicated, never persisted, may only inspect and accept.
    InspectMessage,
}

impl Kind {
    /// Whether the message may reply/reject.
    pub fn can_reply(self) -> bool {
        matches!(
            self,
            Kind::Update
                | Kind::Query
                | Kind::ReplicatedQuery
                | Kind::ReplyCallback
                | Kind::RejectCallback
        )
    }
    /// Whether `msg_arg_data_*` is available.
    pub fn has_arg(self) -> bool {
        matches!(
            self,
            Kind::Init
                | Kind::PostUpgrade
                | Kind::Update
                | Kind::Query
                | Kind::ReplicatedQuery
                | Kind::ReplyCallback
                | Kind::InspectMessage
        )
    }
    /// Whether `call_*` is available.
    pub fn can_call(self) -> bool {
        matches!(
            self,
            Kind::Update | Kind::Timer | Kind::ReplyCallback | Kind::RejectCallback
        )
    }
    /// Whether state changes (timer, certified data) are allowed.
    pub fn can_modify(self) -> bool {
        !matches!(
            self,
            Kind::Query | Kind::ReplicatedQuery | Kind::Start | Kind::InspectMessage
        )
    }
    /// Whether the message runs in replicated mode (`in_replicated_execution`).
    pub fn is_replicated(self) -> bool {
        !matches!(self, Kind::Query | Kind::InspectMessage)
    }
}

/// Response of a call context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// `msg_reply` with the reply bytes.
    Reply(Vec<u8>),
    /// Reject with code and message.
    Reject {
        /// Reject code (4 = canister reject, 5 = canister error, 3 = destination invalid).
        code: u32,
        /// Reject message.
        message: String,
    },
}

/// A callback: `(table index, env)` pairs as given to `call_new`/`call_on_cleanup`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Callback {
    /// Reply callback.
    pub reply: (u32, u32),
    /// Reject callback.
    pub reject: (u32, u32),
    /// Cleanup callback.
    pub cleanup: Option<(u32, u32)>,
}

/// An inter-canister call assembled with `call_new` .. `call_perform`.
#[derive(Clone, Debug, Default)]
pub struct OutgoingCall {
    /// Destination.
    pub callee: Vec<u8>,
    /// Method name.
    pub method: String,
    /// Argument.
    pub arg: Vec<u8>,
    /// Callbacks.
    pub callback: Callback,
    /// Cycles attached.
    pub cycles: u128,
    /// `call_with_best_effort_response`'s timeout (already clamped to
    /// 1..=300 seconds); `None`: an unbounded-wait call.
    pub timeout_seconds: Option<u32>,
}

/// Everything the `ic0` imports need about the running message.
#[derive(Default)]
pub struct MessageContext {
    /// Entry point kind.
    pub kind: Kind,
    /// `msg_caller`.
    pub caller: Vec<u8>,
    /// `msg_method_name`.
    pub method: String,
    /// `msg_arg_data` (the reply data in a reply callback).
    pub arg: Vec<u8>,
    /// Reject code and message in a reject callback.
    pub reject: Option<(u32, String)>,
    /// Host time for the whole message.
    pub time: u64,
    /// `msg_reply_data_append` buffer.
    pub reply_buf: Vec<u8>,
    /// Response produced by this message.
    pub response: Option<Response>,
    /// Whether `canister_inspect_message` called `ic0.accept_message`.
    pub accepted: bool,
    /// Whether the call context was already answered before this message.
    pub responded_before: bool,
    /// Call under construction.
    pub pending_call: Option<OutgoingCall>,
    /// Calls performed (delivered only if the message commits).
    pub calls: Vec<OutgoingCall>,
    /// Instruction limit of this message (`performance_counter` base).
    pub instruction_limit: u64,
    /// Maximum reply size.
    pub max_reply: u64,
    /// Stable bytes (4 KiB pages) this message may dirty.
    pub stable_write_limit: u64,
    /// Stable bytes (4 KiB pages) this message may access.
    pub stable_access_limit: u64,
    /// Maximum size of an outgoing request (method name + argument) to a
    /// canister on another subnet.
    pub max_call_bytes: u64,
    /// Maximum size of an outgoing request to a canister on the caller's
    /// own subnet (the management canister included).
    pub max_same_subnet_call_bytes: u64,
    /// Cycles of the call context's incoming call still available
    /// (`msg_cycles_available128`; `msg_cycles_accept128` takes from them).
    pub cycles_available: u128,
    /// Cycles refunded with the response a callback handles
    /// (`msg_cycles_refunded128`).
    pub cycles_refunded: u128,
    /// `msg_deadline`: when the caller of a bounded-wait call stops waiting (0: unbounded).
    pub deadline: u64,
    /// Cycles the balance must keep (the freezing threshold's requirement,
    /// 0 unless the host charges cycles): what `call_cycles_add128` and
    /// call fees may not dig into.
    pub freeze_floor: u128,
    /// Whether `call_perform` charges the transmission fee.
    pub charge_calls: bool,
    /// Hard heap maximum (`memory.grow` returns -1 beyond it); `None`: wasm's own.
    pub max_heap_bytes: Option<u64>,
    /// `wasm_memory_limit` (growth beyond it traps); `None`: not enforced.
    pub wasm_memory_limit: Option<u64>,
    /// The data certificate `ic0.data_certificate_*` return: present in
    /// queries only (non-replicated), as on the IC.
    pub data_certificate: Option<std::sync::Arc<crate::certification::PendingCertificate>>,
}

/// Store data of one canister instance.
pub struct HostState {
    /// `canister_self`.
    pub canister_id: Principal,
    /// `subnet_self`: the subnet the canister is on.
    pub subnet_id: Principal,
    /// Index of that subnet in the host (0: the default subnet), which
    /// canister ids of range `index << 20 ..` belong to.
    pub subnet_index: u64,
    /// The controller lifecycle messages run as (the installer).
    pub controller: Principal,
    /// Every controller `ic0.is_controller` accepts (the installer and
    /// those [`crate::Host::set_controllers`] names).
    pub controllers: Vec<Principal>,
    /// Stable memory.
    pub stable: StableMemory,
    /// `certified_data_set` contents.
    pub certified_data: Vec<u8>,
    /// Global timer deadline (0 = inactive).
    pub global_timer: u64,
    /// `canister_version`.
    pub canister_version: u64,
    /// Cycle balance.
    pub cycles: u128,
    /// Maximum stable memory size in 64 KiB pages.
    pub max_stable_pages: u64,
    /// Current message.
    pub msg: MessageContext,
    /// Instruction counter global (set after instantiation).
    pub counter: Option<Global>,
    /// Memory 0 (set after instantiation).
    pub memory: Option<Memory>,
    /// `debug_print` output not yet collected by the host.
    pub logs: Vec<String>,
    /// Heap growth limits of the running message.
    pub heap_limiter: HeapLimiter,
    /// `ic0.canister_status`: 1 running, 2 stopping, 3 stopped.
    pub run_status: u32,
}

/// The wasmi resource limiter of a canister's store: `memory.grow` beyond
/// `hard` returns -1, beyond `soft` (the `wasm_memory_limit`) it traps.
/// Both are `None` outside of a message (instantiation and the heap restore of
/// a rollback are not limited).
#[derive(Clone, Debug, Default)]
pub struct HeapLimiter {
    /// Hard maximum in bytes.
    pub hard: Option<u64>,
    /// Soft limit in bytes (trap).
    pub soft: Option<u64>,
    /// Set when a growth was refused by the soft limit: (limit, requested size).
    pub exceeded: Option<(u64, u64)>,
}

impl wasmi::ResourceLimiter for HeapLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        let desired = desired as u64;
        if maximum.is_some_and(|m| desired > m as u64) || self.hard.is_some_and(|h| desired > h) {
            return Ok(false);
        }
        match self.soft {
            Some(limit) if desired > limit => {
                self.exceeded = Some((limit, desired));
                Err(wasmi_core::LimiterError::ResourceLimiterDeniedAllocation)
            }
            _ => Ok(true),
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        Ok(maximum.is_none_or(|m| desired <= m))
    }

    fn instances(&self) -> usize {
        wasmi::StoreLimits::default().instances()
    }

    fn tables(&self) -> usize {
        wasmi::StoreLimits::default().tables()
    }

    fn memories(&self) -> usize {
        wasmi::StoreLimits::default().memories()
    }
}

impl HostState {
    /// Fresh state of a newly created canister.
    pub fn new(canister_id: Principal, controller: Principal, max_stable_pages: u64) -> Self {
        HostState {
            canister_id,
            subnet_id: crate::host::subnet_id_of_index(0),
            subnet_index: 0,
            controller,
            controllers: vec![controller],
            stable: StableMemory::default(),
            certified_data: Vec::new(),
            global_timer: 0,
            canister_version: 0,
            cycles: 100_000_000_000_000,
            max_stable_pages,
            msg: MessageContext::default(),
            counter: None,
            memory: None,
            logs: Vec::new(),
            heap_limiter: HeapLimiter::default(),
            run_status: 1,
        }
    }
}
