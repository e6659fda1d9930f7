//! An in-process Internet Computer host for tests.
//!
//! [`Host`] loads canister `.wasm` modules (e.g. built with ic-cdk 0.20 and
//! ic-cdk-timers 1.0 for `wasm32-unknown-unknown`), instruments them to count
//! instructions the way the replica does ([`instrument`]), runs them in the
//! [`wasmi`] interpreter and implements the `ic0` System API
//! ([`system_api`]) following the IC interface specification: atomic
//! messages with rollback, queries that never persist, sparse stable memory,
//! the global timer, inter-canister calls with reply/reject/cleanup
//! callbacks, data certificates signed by a test subnet key
//! ([`certification`], [`Host::root_key`]), the management canister's
//! `raw_rand` (deterministic: [`Host::set_random_seed`]) and the rest of its
//! methods for calls from canisters (`create_canister`, `install_code`,
//! `update_settings`, `canister_status`, `deposit_cycles`, stop/start,
//! `uninstall_code`, `delete_canister`), a cycles minting canister stand-in,
//! several subnets ([`Host::add_subnet`]) with per-subnet certificates,
//! cycles that move with calls and optional charging
//! ([`Host::set_charge_cycles`]), injected faults ([`Host::inject_fault`]),
//! `canister_inspect_message` before ingress updates (see
//! [`Host::update`]), install/reinstall/upgrade, and the replica's per-message limits
//! ([`Limits`]: instructions, ingress size with an envelope allowance, reply
//! and request sizes, stable memory touched, `wasm_memory_limit` and the heap
//! maximum), and reports what each message cost ([`MessageStats`]:
//! instructions, heap and stable pages dirtied; [`Host::last_message_stats`],
//! or a log of every message with [`Host::record_messages`]).
//!
//! # Why wasmi and not wasmtime
//! wasmi is a pure-Rust interpreter with a handful of small dependencies; it
//! compiles in seconds and starts executing a module immediately (lazy
//! translation), which matters for a test helper that is rebuilt by every
//! `cargo test`. wasmtime pulls in Cranelift (well over 100 crates, minutes
//! of build time on 2 cores) and compiles every module with an optimizing JIT
//! before the first call. Instrumented canister code runs at a few hundred
//! million wasm instructions per second in wasmi when wasmi is built at
//! `opt-level = 3` (set in the workspace's dev profile), which is enough for
//! multi-GiB upload tests; raw speed is the one thing wasmtime would win.
//!
//! # Canister ids
//! Canister ids are plain [`Principal`]s (no separate `CanisterId` type),
//! allocated like the replica's: 8-byte big-endian counter + `0x01 0x01`
//! (`rwlgt-iiaaa-aaaaa-aaaaa-cai` for the first canister). Subnet `k` hands
//! out the counters from `k << 20`; the default subnet skips counter 4, the
//! cycles minting canister `rkp4c-7iaaa-aaaaa-aaaca-cai`.

pub mod canister;
pub mod certification;
pub mod host;
pub mod instrument;
pub mod limits;
pub mod stable_memory;
pub mod state;
pub mod system_api;

pub use candid::Principal;
pub use host::{
    cycles_minting_canister, CanisterSnapshot, Fault, Host, MessageStats, RunStatus,
    CREATE_CANISTER_FEE, DEFAULT_CYCLES, DEFAULT_TIME_NS,
};
pub use limits::Limits;

use std::fmt;
use std::path::{Path, PathBuf};

/// Errors returned by [`Host`] operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    /// The canister trapped (message includes the trap text, e.g. the panic message).
    CanisterTrapped(String),
    /// The canister (or the system on its behalf) rejected the call.
    CanisterRejected {
        /// Reject code: 4 canister reject (`msg_reject`, or an ingress update
        /// that `canister_inspect_message` did not accept), 5 canister error
        /// (also: stopped, no module), 3 destination invalid, 2 transient
        /// (a frozen canister: out of cycles), 6 unknown (a bounded-wait
        /// call's deadline expired).
        code: u32,
        /// Reject message.
        message: String,
    },
    /// The message exceeded its instruction limit (everything rolled back).
    InstructionLimitExceeded {
        /// The limit that was exceeded.
        limit: u64,
    },
    /// Method name + argument + the envelope allowance
    /// ([`Limits::ingress_envelope_bytes`]) exceed the ingress limit; nothing executed.
    IngressTooLarge {
        /// Size of method name + argument + envelope allowance.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A per-message stable memory limit was exceeded (the message trapped).
    StableMemoryLimit(String),
    /// No such exported method.
    MethodNotFound(String),
    /// The canister called a System API function the IC interface
    /// specification lists but this host does not implement (the payload is
    /// the import's name, e.g. `ic0.root_key_size`).
    UnimplementedSystemApi(String),
    /// No canister with this id.
    CanisterNotFound(Principal),
    /// The module could not be instrumented, compiled or instantiated, or it
    /// imports something outside the `ic0` System API (an unknown name, another
    /// module, a wrong signature), which the replica refuses as well.
    InvalidWasm(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::CanisterTrapped(m) => write!(f, "{m}"),
            HostError::CanisterRejected { code, message } => {
                write!(f, "call rejected (code {code}): {message}")
            }
            HostError::InstructionLimitExceeded { limit } => {
                write!(f, "instruction limit exceeded (limit {limit})")
            }
            HostError::IngressTooLarge { size, limit } => {
                write!(
                    f,
                    "ingress message of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            HostError::StableMemoryLimit(m) => write!(f, "stable memory limit: {m}"),
            HostError::MethodNotFound(m) => write!(f, "method not found: {m}"),
            HostError::UnimplementedSystemApi(n) => {
                write!(f, "canister called unimplemented system API {n}")
            }
            HostError::CanisterNotFound(p) => write!(f, "canister {p} not found"),
            HostError::InvalidWasm(m) => write!(f, "invalid wasm: {m}"),
        }
    }
}

impl std::error::Error for HostError {}

/// Builds `package` of the workspace containing `manifest_path` for
/// `wasm32-unknown-unknown` in release mode, into `<workspace>/target/canister-wasm`
/// (a separate target dir, so it does not wait for the lock of an outer
/// `cargo test`), and returns the path of the `.wasm`. Panics with cargo's
/// stderr if the build fails.
pub fn build_canister_wasm(manifest_path: &Path, package: &str) -> PathBuf {
    build_canister_wasm_with(manifest_path, package, false)
}

/// [`build_canister_wasm`], with cargo's progress shown on stderr when
/// `show_progress` (for a person waiting at a terminal: a cold build takes
/// a minute or more).
pub fn build_canister_wasm_with(
    manifest_path: &Path,
    package: &str,
    show_progress: bool,
) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace_root = workspace_root(&cargo, manifest_path);
    let target_dir = workspace_root.join("target").join("canister-wasm");
    let out = std::process::Command::new(&cargo)
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg("wasm32-unknown-unknown")
        .arg("-p")
        .arg(package)
        .arg("--manifest-path")
        .arg(manifest_path)
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .stderr(if show_progress {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::piped()
        })
        .output()
        .expect("failed to run cargo");
    if !out.status.success() {
        panic!(
            "building canister {package} failed{}:\n{}",
            if show_progress {
                " (cargo's output above)"
            } else {
                ""
            },
            String::from_utf8_lossy(&out.stderr)
        );
    }
    target_dir
        .join("wasm32-unknown-unknown")
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

fn workspace_root(cargo: &str, manifest_path: &Path) -> PathBuf {
    let out = std::process::Command::new(cargo)
        .args([
            "locate-project",
            "--workspace",
            "--message-format",
            "plain",
            "--manifest-path",
        ])
        .arg(manifest_path)
        .output()
        .expect("failed to run cargo locate-project");
    let s = String::from_utf8_lossy(&out.stdout);
    let p = PathBuf::from(s.trim());
    match p.parent() {
        Some(dir) if out.status.success() => dir.to_path_buf(),
        _ => manifest_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    }
}
