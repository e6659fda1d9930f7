//! Global timers: [`Host::tick`] runs those that are due and delivers
//! everything until the host is quiescent.

use super::*;

impl Host {
    /// Runs due global timers (`canister_global_timer`, deadline reset to 0
    /// first, as on the IC) and delivers queued calls with their callbacks,
    /// round after round until quiescent (bounded).
    pub fn tick(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut progressed = false;
            let due: Vec<Principal> = self
                .canisters
                .iter()
                .filter(|(id, c)| {
                    let t = c.state().global_timer;
                    t != 0 && self.time >= t && self.run_status(**id) == Some(RunStatus::Running)
                })
                .map(|(id, _)| *id)
                .collect();
            for id in due {
                if self.check_not_frozen(id, Kind::Timer, 0).is_err() {
                    // A frozen canister's timer waits until it is topped up.
                    continue;
                }
                progressed = true;
                let c = self.canisters.get_mut(&id).expect("canister");
                if !c.has_export("canister_global_timer") {
                    c.state_mut().global_timer = 0;
                    continue;
                }
                let c = self.canisters.get_mut(&id).expect("canister");
                c.state_mut().global_timer = 0;
                let ctx = self.new_context(Origin::System, id);
                // The replica runs the timer with the management canister as caller.
                let r = self.execute(
                    id,
                    Kind::Timer,
                    Entry::Export("canister_global_timer"),
                    ctx,
                    Principal::management_canister().as_slice().to_vec(),
                    String::new(),
                    Vec::new(),
                    None,
                    None,
                );
                match r {
                    Ok(()) => {
                        self.respond(ctx, Response::Reply(Vec::new()));
                        self.settle(ctx, id);
                    }
                    Err(e) => {
                        self.logs
                            .push(format!("[Canister {id}] global timer failed: {e}"));
                        self.contexts.remove(&ctx);
                    }
                }
                self.check_stopping();
            }
            let n = self.queue.len();
            for _ in 0..n {
                if let Some(t) = self.queue.pop_front() {
                    progressed = true;
                    self.deliver(t);
                }
            }
            if !progressed {
                break;
            }
        }
    }
}
