//! Per-message and per-canister limits of an IC application subnet.
//!
//! The defaults are the replica's (see `/work/shared/ic-facts.md`). Tests may
//! lower them with [`crate::Host::set_limits`] instead of burning billions of
//! instructions.

/// Limits enforced by the [`crate::Host`]. All fields are public; start from
/// `Limits::default()` and override what a test needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of an ingress message (method name + argument), 2 MiB.
    pub ingress_bytes: u64,
    /// Instructions per update call, timer or callback (40 B).
    pub update_instructions: u64,
    /// Instructions per query (5 B).
    pub query_instructions: u64,
    /// Instructions for install/reinstall/upgrade, shared by
    /// `canister_init`, `canister_pre_upgrade` and `canister_post_upgrade` (300 B).
    pub upgrade_instructions: u64,
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
    /// Maximum wasm heap size in bytes (4 GiB, the wasm32 maximum).
    pub max_heap_bytes: u64,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            ingress_bytes: 2 * MIB,
            update_instructions: 40_000_000_000,
            query_instructions: 5_000_000_000,
            upgrade_instructions: 300_000_000_000,
            max_stable_bytes: 400 * GIB,
            stable_bytes_written_per_update: 2 * GIB,
            stable_bytes_accessed_per_update: 2 * GIB,
            stable_bytes_accessed_per_query: GIB,
            stable_bytes_per_upgrade: 8 * GIB,
            max_reply_bytes: 2 * MIB,
            max_query_reply_bytes: 3 * MIB,
            max_heap_bytes: 4 * GIB,
        }
    }
}
