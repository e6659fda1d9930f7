//! One small interface over the places the upload canister's `.wasm` can
//! run in tests: the embedded IC host (always) and PocketIC (when
//! `POCKET_IC_BIN` names a server and the `pocket-ic` feature is on). The
//! scenario suite and the demo upload are written once against `IcEnv`.

pub mod client;
mod embedded;
#[cfg(feature = "pocket-ic")]
mod pocket;

pub use embedded::{EmbeddedEnv, HostAccess};
#[cfg(feature = "pocket-ic")]
pub use pocket::PocketIcEnv;

use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::Principal;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// A place that runs canisters: install, upgrade, call, move time.
pub trait IcEnv {
    /// Which implementation this is, for messages.
    fn name(&self) -> &'static str;
    /// The principal that controls installed canisters.
    fn controller(&self) -> Principal;
    /// Installs `wasm` in a new canister controlled by `controller()`.
    fn install(&mut self, wasm: &[u8]) -> Principal;
    fn upgrade(&mut self, canister: Principal, wasm: &[u8]) -> Result<(), String>;
    fn update_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String>;
    fn query_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String>;
    fn advance_time(&mut self, by: Duration);
    /// Lets due timers run (and the self-calls they make complete).
    fn tick(&mut self);
    /// Instructions the last update or query used, where the environment
    /// can tell (by default it cannot).
    fn last_instructions(&self) -> Option<u64> {
        None
    }
    /// Bytes of stable memory the canister has, where the environment can
    /// tell (by default it cannot).
    fn stable_memory_bytes(&self, _canister: Principal) -> Option<u64> {
        None
    }
    /// Lowers (or with `None` restores) the per-update instruction limit.
    /// False where the environment cannot (by default; PocketIC runs the
    /// replica's).
    fn limit_update_instructions(&mut self, _limit: Option<u64>) -> bool {
        false
    }
}

/// An update call with Candid arguments and reply.
pub fn update<A: ArgumentEncoder, R: for<'de> ArgumentDecoder<'de>>(
    env: &mut dyn IcEnv,
    canister: Principal,
    caller: Principal,
    method: &str,
    args: A,
) -> Result<R, String> {
    let arg = candid::encode_args(args).map_err(|e| e.to_string())?;
    let reply = env.update_raw(canister, caller, method, arg)?;
    candid::decode_args(&reply).map_err(|e| format!("decoding the reply of {method}: {e}"))
}

/// A query call with Candid arguments and reply.
pub fn query<A: ArgumentEncoder, R: for<'de> ArgumentDecoder<'de>>(
    env: &mut dyn IcEnv,
    canister: Principal,
    caller: Principal,
    method: &str,
    args: A,
) -> Result<R, String> {
    let arg = candid::encode_args(args).map_err(|e| e.to_string())?;
    let reply = env.query_raw(canister, caller, method, arg)?;
    candid::decode_args(&reply).map_err(|e| format!("decoding the reply of {method}: {e}"))
}

/// The upload canister's release `.wasm`, built once per process.
pub fn backend_wasm() -> &'static [u8] {
    backend_wasm_with(false)
}

/// [`backend_wasm`], showing cargo's build progress on stderr the first time.
pub fn backend_wasm_with(show_progress: bool) -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let path = embedded_ic_host::build_canister_wasm_with(&manifest, "backend", show_progress);
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    })
}

/// A test principal derived from a small number (never anonymous).
pub fn user(n: u8) -> Principal {
    let mut bytes = [n; 29];
    bytes[28] = 0x01;
    Principal::from_slice(&bytes)
}
