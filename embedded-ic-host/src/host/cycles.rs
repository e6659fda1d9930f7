//! Cycles: optional charging at a 13-node application subnet's prices, and
//! the freezing threshold.
//!
//! Off by default ([`Host::set_charge_cycles`]): cycles then move only when
//! canisters move them (`call_cycles_add128`, `msg_cycles_accept128`,
//! `cycles_burn128`, the management canister's fees). When on, the host
//! burns from the paying canister's balance:
//! - an ingress update: [`INGRESS_MESSAGE_FEE`] + [`INGRESS_BYTE_FEE`] per
//!   byte of argument, paid by the receiving canister before it executes;
//! - every executed update, timer, callback and replicated query:
//!   [`EXECUTION_FEE`] + 1 cycle per instruction counted, charged after the
//!   message ran (also when it trapped). Before a message runs, the balance
//!   must cover the freezing requirement + [`EXECUTION_FEE`] + the message's
//!   instruction limit (the replica's prepayment, which it refunds in part
//!   afterwards: here only the actual cost is taken);
//! - an inter-canister request: 260 000 + 1 000 per byte of method name and
//!   argument, paid by the sender at `call_perform` (which returns 2,
//!   `SYS_TRANSIENT`, if the liquid balance does not cover it). The
//!   replica's reservation for the largest response is not modelled;
//! - memory: [`STORAGE_FEE_PER_GIB_SECOND`] per GiB of heap + stable memory
//!   per second, when the time moves ([`Host::advance_time`], [`Host::set_time`]).
//!
//! A canister whose balance is below what it needs (the freezing
//! requirement: `freezing_threshold` seconds of its idle burn rate, plus
//! the message's fees) is frozen: ingress messages and calls to it are
//! rejected with code 2 (`SYS_TRANSIENT`, the replica's IC0207 "out of
//! cycles"), its timers wait. The freezing requirement applies only while
//! charging is on.

use super::*;

/// Base fee of an ingress message (13-node subnet).
pub const INGRESS_MESSAGE_FEE: u128 = 1_200_000;
/// Fee per byte of an ingress message's argument.
pub const INGRESS_BYTE_FEE: u128 = 2_000;
/// Base fee of an executed update, timer or callback.
pub const EXECUTION_FEE: u128 = 5_000_000;
/// Cycles per GiB of memory per second.
pub const STORAGE_FEE_PER_GIB_SECOND: u128 = 127_000;

const GIB: u128 = 1 << 30;

impl Host {
    /// Turns charging cycles on or off (off in a new host). When on, at a
    /// 13-node application subnet's prices, from the paying canister's balance:
    /// - ingress update: [`INGRESS_MESSAGE_FEE`] + [`INGRESS_BYTE_FEE`] per
    ///   byte of argument (the receiving canister, before it runs);
    /// - each update, timer, callback, cleanup and replicated query run:
    ///   [`EXECUTION_FEE`] + 1 per instruction counted (after it ran, trapped
    ///   or not; the replica prepays the instruction limit and refunds the
    ///   rest, here the balance must only cover that prepayment);
    /// - inter-canister request: 260 000 + 1 000 per byte of method name +
    ///   argument (the sender, at `call_perform`, which returns 2 when the
    ///   liquid balance does not cover it); no reservation for the response;
    /// - memory: [`STORAGE_FEE_PER_GIB_SECOND`] per GiB of heap + stable
    ///   memory per second, when [`Host::advance_time`] / [`Host::set_time`]
    ///   move the clock forward.
    ///
    /// A canister whose balance does not cover its freezing requirement
    /// ([`Host::freezing_requirement`]) plus the message's fees is frozen:
    /// ingress and calls to it are rejected with code 2 ("out of cycles",
    /// the replica's IC0207), its timer waits. Installs through the
    /// management canister are not charged.
    pub fn set_charge_cycles(&mut self, on: bool) {
        self.charge_cycles = on;
    }

    /// Whether the host charges cycles.
    pub fn charges_cycles(&self) -> bool {
        self.charge_cycles
    }

    /// Heap + stable memory of a canister in bytes (what storage is charged for).
    pub fn memory_bytes(&self, canister: Principal) -> u64 {
        self.heap_bytes(canister) + self.stable_memory_bytes(canister)
    }

    /// Cycles per day the canister burns idle (for its memory, or its
    /// memory allocation if larger), as `canister_status` reports it.
    pub fn idle_cycles_burned_per_day(&self, canister: Principal) -> u128 {
        let used = self.memory_bytes(canister) as u128;
        let allocation = self
            .meta
            .get(&canister)
            .and_then(|m| u128::try_from(m.settings.memory_allocation.0.clone()).ok())
            .unwrap_or(0);
        used.max(allocation) * STORAGE_FEE_PER_GIB_SECOND * 86_400 / GIB
    }

    /// Cycles the canister must keep not to be frozen: its idle burn over
    /// its `freezing_threshold` (30 days by default).
    pub fn freezing_requirement(&self, canister: Principal) -> u128 {
        let threshold = self
            .meta
            .get(&canister)
            .and_then(|m| u128::try_from(m.settings.freezing_threshold.0.clone()).ok())
            .unwrap_or(2_592_000);
        self.idle_cycles_burned_per_day(canister) * threshold / 86_400
    }

    /// The balance messages may not dig into: the freezing requirement
    /// while charging, else 0.
    pub(super) fn freeze_floor(&self, canister: Principal) -> u128 {
        if self.charge_cycles {
            self.freezing_requirement(canister)
        } else {
            0
        }
    }

    /// The fee of an ingress update with `arg` (0 when not charging).
    pub(super) fn ingress_fee(&self, arg: &[u8]) -> u128 {
        if self.charge_cycles {
            INGRESS_MESSAGE_FEE + INGRESS_BYTE_FEE * arg.len() as u128
        } else {
            0
        }
    }

    /// Rejects (code 2, out of cycles) a message of `kind` to `canister` it
    /// cannot pay for: the freezing requirement + `extra` + the execution
    /// prepayment. Always passes when not charging.
    pub(super) fn check_not_frozen(
        &self,
        canister: Principal,
        kind: Kind,
        extra: u128,
    ) -> Result<(), HostError> {
        if !self.charge_cycles {
            return Ok(());
        }
        let limit = match kind {
            Kind::Query | Kind::ReplicatedQuery => self.limits.query_instructions,
            _ => self.limits.update_instructions,
        };
        let need = self.freezing_requirement(canister) + extra + EXECUTION_FEE + limit as u128;
        let have = self.cycles(canister).unwrap_or(0);
        if have < need {
            return Err(HostError::CanisterRejected {
                code: 2,
                message: format!(
                    "Canister {canister} is out of cycles: please top up the canister with at least {} additional cycles (IC0207)",
                    need - have
                ),
            });
        }
        Ok(())
    }

    /// Takes `amount` from the canister's balance (down to 0).
    pub(super) fn burn(&mut self, canister: Principal, amount: u128) {
        if amount == 0 {
            return;
        }
        if let Some(now) = self.cycles(canister) {
            let _ = self.set_cycles(canister, now.saturating_sub(amount));
        }
    }

    /// Charges an executed message: base fee + 1 cycle per instruction.
    pub(super) fn charge_execution(&mut self, canister: Principal, instructions: u64) {
        if self.charge_cycles {
            self.burn(canister, EXECUTION_FEE + instructions as u128);
        }
    }

    /// Charges every canister for its memory over `dt_ns` nanoseconds.
    pub(super) fn charge_storage(&mut self, dt_ns: u64) {
        if !self.charge_cycles || dt_ns == 0 {
            return;
        }
        let ids: Vec<Principal> = self.canisters.keys().copied().collect();
        for id in ids {
            let bytes = self.memory_bytes(id) as u128;
            let fee = bytes * STORAGE_FEE_PER_GIB_SECOND * dt_ns as u128 / (GIB * 1_000_000_000);
            self.burn(id, fee);
        }
    }
}
