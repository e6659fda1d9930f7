//! `IcEnv` over a PocketIC server (the real replica's execution
//! environment). Needs `POCKET_IC_BIN`, the path of a PocketIC server binary
//! (16.x, from the releases of github.com/dfinity/pocketic).

use crate::IcEnv;
use candid::Principal;
use pocket_ic::PocketIc;
use std::time::Duration;

/// Cycles given to each canister: plenty for a test run.
const CYCLES: u128 = 100_000_000_000_000;

/// A PocketIC instance with one controller.
pub struct PocketIcEnv {
    pic: PocketIc,
    controller: Principal,
}

impl PocketIcEnv {
    /// `None` (with the reason) when no server binary is configured.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var_os("POCKET_IC_BIN") {
            Some(path) if std::path::Path::new(&path).is_file() => Ok(Self {
                pic: PocketIc::new(),
                controller: crate::user(200),
            }),
            Some(path) => Err(format!(
                "POCKET_IC_BIN={} is not a file",
                path.to_string_lossy()
            )),
            None => Err(
                "POCKET_IC_BIN is not set; set it to a PocketIC 16.x server binary \
                 (published with the releases of github.com/dfinity/pocketic)"
                    .into(),
            ),
        }
    }
}

impl IcEnv for PocketIcEnv {
    fn name(&self) -> &'static str {
        "PocketIC"
    }

    fn controller(&self) -> Principal {
        self.controller
    }

    fn install(&mut self, wasm: &[u8]) -> Principal {
        let canister = self
            .pic
            .create_canister_with_settings(Some(self.controller), None);
        self.pic.add_cycles(canister, CYCLES);
        self.pic.install_canister(
            canister,
            wasm.to_vec(),
            candid::encode_args(()).expect("empty args"),
            Some(self.controller),
        );
        canister
    }

    fn upgrade(&mut self, canister: Principal, wasm: &[u8]) -> Result<(), String> {
        self.pic
            .upgrade_canister(
                canister,
                wasm.to_vec(),
                candid::encode_args(()).expect("empty args"),
                Some(self.controller),
            )
            .map_err(|e| e.to_string())
    }

    fn update_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        self.pic
            .update_call(canister, caller, method, arg)
            .map_err(|e| e.to_string())
    }

    fn query_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        self.pic
            .query_call(canister, caller, method, arg)
            .map_err(|e| e.to_string())
    }

    fn advance_time(&mut self, by: Duration) {
        self.pic.advance_time(by);
    }

    fn tick(&mut self) {
        // A timer runs in one round and its self-call completes in the next
        // few: a handful of rounds lets both happen.
        for _ in 0..5 {
            self.pic.tick();
        }
    }
}
