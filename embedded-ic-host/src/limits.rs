//! Per-message and per-canister limits of an IC application subnet.
//!
//! The defaults are the replica's (the IC documentation's "Resource limits"
//! page). Tests may lower them with [`crate::Host::set_limits`] instead of
//! burning billions of instructions.

/// Limits enforced by the [`crate::Host`]. All fields are public; start from
/// `Limits::default()` and override what a test needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of a whole ingress message (signed request: method name +
    /// argument + [`Limits::ingress_envelope_bytes`]), 2 MiB. Applies to
    /// updates and to queries (sent as HTTP requests with the same limit).
    pub ingress_bytes: u64,
    /// Conservative allowance for the signed request envelope around method
    /// name and argument (sender, nonce, ingress expiry, public key,
    /// signature, delegations, CBOR framing), 2 KiB: method name + argument +
    /// this must fit [`Limits::ingress_bytes`].
    pub ingress_envelope_bytes: u64,
    /// Instructions per update call, timer or callback (40 B).
    pub update_instructions: u64,
    /// Instructions per query (5 B).
    pub query_instructions: u64,
    /// Instructions for install/reinstall/upgrade, shared by
    /// `canister_init`, `canister_pre_upgrade` and `canister_post_upgrade` (300 B).
    pub upgrade_instructions: u64,
    /// Instructions for `canister_inspect_message`, run before each ingress
    /// update call to a canister that exports it (200 M).
    pub inspect_message_instructions: u64,
    /// Maximum stable memory size in bytes (400 GiB); `stable64_grow` returns
    /// -1 beyond it.
    pub max_stable_bytes: u64,
    /// Stable memory bytes (distinct 4 KiB pages) one update message may dirty (2 GiB).
    pub stable_bytes_written_per_update: u64,
    /// Stable memory bytes (distinct 4 KiB pages) one update message may access (2 GiB).
    pub stable_bytes_accessed_per_update: u64,
    /// Stable memory bytes (distinct 4 KiB pages) one query may access (1 GiB).
    pub stable_bytes_accessed_per_query: u64,
    /// Stable memory bytes one install/upgrade message may dirty or access (8 GiB).
    pub stable_bytes_per_upgrade: u64,
    /// Maximum reply size of a replicated message (2 MiB).
    pub max_reply_bytes: u64,
    /// Maximum reply size of a query (3 MiB).
    pub max_query_reply_bytes: u64,
    /// Maximum size of an inter-canister request (method name + argument
    /// assembled with `call_data_append`) to a canister on another subnet,
    /// 2 MiB; beyond it `call_perform` traps (the replica's contract
    /// violation). A call to the management canister counts as going to
    /// the subnet of the canister its argument's `canister_id` names.
    pub max_call_bytes: u64,
    /// The maximum size of any request (to a canister on the caller's own
    /// subnet), 10 MiB; beyond it `call_data_append` traps.
    pub max_same_subnet_call_bytes: u64,
    /// Hard maximum of the wasm heap in bytes (4 GiB, the wasm32 maximum):
    /// `memory.grow` beyond it returns -1 in every kind of message.
    pub max_heap_bytes: u64,
    /// The canister's `wasm_memory_limit` (3 GiB, the IC's default): growing
    /// the heap beyond it traps in update methods, timers, reply/reject
    /// callbacks, `start`, `canister_init` and `canister_post_upgrade` (like
    /// the replica's `WasmMemoryLimitExceeded`). Queries, query methods run
    /// as updates and cleanup callbacks are bound only by
    /// [`Limits::max_heap_bytes`].
    pub wasm_memory_limit: u64,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            ingress_bytes: 2 * MIB,
            ingress_envelope_bytes: 2 * KIB,
            update_instructions: 40_000_000_000,
            query_instructions: 5_000_000_000,
            upgrade_instructions: 300_000_000_000,
            inspect_message_instructions: 200_000_000,
            max_stable_bytes: 400 * GIB,
            stable_bytes_written_per_update: 2 * GIB,
            stable_bytes_accessed_per_update: 2 * GIB,
            stable_bytes_accessed_per_query: GIB,
            stable_bytes_per_upgrade: 8 * GIB,
            max_reply_bytes: 2 * MIB,
            max_query_reply_bytes: 3 * MIB,
            max_call_bytes: 2 * MIB,
            max_same_subnet_call_bytes: 10 * MIB,
            max_heap_bytes: 4 * GIB,
            wasm_memory_limit: 3 * GIB,
        }
    }
}
