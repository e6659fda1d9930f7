//! `IcEnv` over the embedded IC host.

use crate::IcEnv;
use candid::Principal;
use embedded_ic_host::{Host, Limits};
use std::time::Duration;

/// The embedded host with one controller.
pub struct EmbeddedEnv {
    host: Host,
    controller: Principal,
}

impl EmbeddedEnv {
    pub fn new() -> Self {
        Self {
            host: Host::new(),
            controller: crate::user(200),
        }
    }

    /// The host itself, for what only it can do (lower limits, inspect).
    pub fn host(&mut self) -> &mut Host {
        &mut self.host
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.host.set_limits(limits);
    }
}

impl Default for EmbeddedEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl IcEnv for EmbeddedEnv {
    fn name(&self) -> &'static str {
        "embedded host"
    }

    fn controller(&self) -> Principal {
        self.controller
    }

    fn install(&mut self, wasm: &[u8]) -> Principal {
        self.host
            .install(
                wasm,
                candid::encode_args(()).expect("empty args"),
                self.controller,
            )
            .unwrap_or_else(|e| panic!("install failed: {e}"))
    }

    fn upgrade(&mut self, canister: Principal, wasm: &[u8]) -> Result<(), String> {
        self.host
            .upgrade(canister, wasm, candid::encode_args(()).expect("empty args"))
            .map_err(|e| e.to_string())
    }

    fn update_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        self.host
            .update(canister, caller, method, arg)
            .map_err(|e| e.to_string())
    }

    fn query_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        self.host
            .query(canister, caller, method, arg)
            .map_err(|e| e.to_string())
    }

    fn advance_time(&mut self, by: Duration) {
        self.host.advance_time(by);
    }

    fn tick(&mut self) {
        self.host.tick();
    }

    fn last_instructions(&self) -> Option<u64> {
        Some(self.host.last_instructions())
    }

    fn stable_memory_bytes(&self, canister: Principal) -> Option<u64> {
        Some(self.host.stable_memory_bytes(canister))
    }

    fn limit_update_instructions(&mut self, limit: Option<u64>) -> bool {
        let mut limits = self.host.limits();
        limits.update_instructions = limit.unwrap_or(Limits::default().update_instructions);
        self.host.set_limits(limits);
        true
    }
}
