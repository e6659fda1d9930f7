//! Ingress: the checks every external call passes, `canister_inspect_message`,
//! and [`Host::update`] / [`Host::query`].

use super::*;

impl Host {
    /// Rejects an ingress message (update or query) whose method name +
    /// argument + envelope allowance exceed the ingress limit.
    pub(super) fn check_ingress(&self, method: &str, arg: &[u8]) -> Result<(), HostError> {
        let l = &self.limits;
        let size = (method.len() as u64)
            .saturating_add(arg.len() as u64)
            .saturating_add(l.ingress_envelope_bytes);
        if size > l.ingress_bytes {
            return Err(HostError::IngressTooLarge {
                size,
                limit: l.ingress_bytes,
            });
        }
        Ok(())
    }

    /// Whether `canister` takes calls now: it must have a module and be
    /// running (the replica's IC0537 / IC0508 / IC0509, reject code 5). An
    /// unknown canister is left to the caller (`CanisterNotFound`).
    pub(super) fn check_can_receive(
        &self,
        canister: Principal,
        method: &str,
    ) -> Result<(), HostError> {
        let Some(m) = self.meta.get(&canister) else {
            return Ok(());
        };
        if !self.canisters.contains_key(&canister) {
            return Err(HostError::CanisterRejected {
                code: 5,
                message: format!(
                    "Error from Canister {canister}: Attempted to execute a message (method '{method}'), but the canister contains no Wasm module."
                ),
            });
        }
        match m.status {
            RunStatus::Running => Ok(()),
            RunStatus::Stopping => Err(HostError::CanisterRejected {
                code: 5,
                message: format!("Canister {canister} is stopping (IC0509)"),
            }),
            RunStatus::Stopped => Err(HostError::CanisterRejected {
                code: 5,
                message: format!("Canister {canister} is stopped and therefore does not have a CallContextManager (IC0508)"),
            }),
        }
    }

    pub(super) fn method_kind(
        &self,
        canister: Principal,
        method: &str,
    ) -> Result<(Kind, String), HostError> {
        let c = self
            .canisters
            .get(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?;
        let upd = format!("canister_update {method}");
        if c.has_export(&upd) {
            return Ok((Kind::Update, upd));
        }
        for q in [
            format!("canister_query {method}"),
            format!("canister_composite_query {method}"),
        ] {
            if c.has_export(&q) {
                return Ok((Kind::ReplicatedQuery, q));
            }
        }
        Err(HostError::MethodNotFound(format!(
            "Canister {canister} has no update method '{method}'"
        )))
    }

    /// Runs `canister_inspect_message` (if exported) before an ingress
    /// update call; see [`Host::update`].
    pub(super) fn inspect_message(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<(), HostError> {
        const EXPORT: &str = "canister_inspect_message";
        let l = self.limits;
        let mut c = self
            .canisters
            .remove(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?;
        if !c.has_export(EXPORT) {
            self.canisters.insert(canister, c);
            return Ok(());
        }
        let msg = MessageContext {
            kind: Kind::InspectMessage,
            caller: caller.as_slice().to_vec(),
            method: method.to_string(),
            arg: arg.to_vec(),
            time: self.time,
            instruction_limit: l.inspect_message_instructions,
            max_reply: 0,
            stable_write_limit: 0,
            stable_access_limit: l.stable_bytes_accessed_per_query,
            max_call_bytes: 0,
            max_heap_bytes: Some(l.max_heap_bytes),
            wasm_memory_limit: self.wasm_memory_limit(Kind::InspectMessage),
            ..Default::default()
        };
        c.begin_tx();
        let (r, used, msg) = c.run(Entry::Export(EXPORT), msg);
        self.note(stats_of(&c, Kind::InspectMessage, method, used, false));
        self.collect_logs(&mut c);
        let rb = c.rollback_tx();
        self.canisters.insert(canister, c);
        rb?;
        r?;
        if !msg.accepted {
            return Err(HostError::CanisterRejected {
                code: 4,
                message: format!(
                    "Requested canister rejected the message: Canister {canister} did not accept the message ({EXPORT} returned without calling ic0.accept_message for method '{method}')"
                ),
            });
        }
        Ok(())
    }

    /// An ingress update call. Rejected with `IngressTooLarge` before execution
    /// if method name + argument + [`Limits::ingress_envelope_bytes`] exceed
    /// [`Limits::ingress_bytes`]. If the method awaits calls, queued messages
    /// are delivered until it answers. A query method called this way runs
    /// as a replicated query: query instruction limit, nothing persisted.
    ///
    /// Refused before anything runs (`CanisterRejected`): code 5 if the
    /// canister is stopped or stopping or has no module (created through
    /// the management canister, not installed yet; [`Host::query`] the
    /// same), code 2 "out of cycles" if the host charges cycles and the
    /// canister cannot pay (see [`Host::set_charge_cycles`]).
    ///
    /// # `canister_inspect_message`
    /// If the canister exports it, it runs first, like the replica's ingress
    /// filter: a non-replicated execution (caller, argument and method name
    /// of the ingress message; `ic0.msg_method_name_*` and
    /// `ic0.accept_message` work only there) with its own limit
    /// ([`Limits::inspect_message_instructions`]) and the query's
    /// stable-access limit, whose changes are always discarded. Its
    /// instructions are not charged to the update: [`Host::last_instructions`]
    /// reports the update's (or inspect's if it refused the message). If it
    /// does not accept, the update does not run, nothing of the canister
    /// changes, and the error is:
    /// - returned without calling `ic0.accept_message`:
    ///   `CanisterRejected { code: 4, .. }` (the replica's
    ///   `CanisterRejectedMessage`, IC0406, reject code `CANISTER_REJECT`),
    ///   message `Requested canister rejected the message: Canister <id> did
    ///   not accept the message (...)`;
    /// - trapped: the trap's own error, as for any other message (the
    ///   replica too returns the trap's error): `CanisterTrapped`,
    ///   `InstructionLimitExceeded { limit: inspect_message_instructions }`,
    ///   `StableMemoryLimit` or `UnimplementedSystemApi`.
    ///
    /// Only ingress updates run `canister_inspect_message`: queries,
    /// inter-canister calls (self-calls included), callbacks and timers don't.
    pub fn update(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, HostError> {
        self.check_ingress(method, &arg)?;
        self.check_can_receive(canister, method)?;
        let (kind, export) = self.method_kind(canister, method)?;
        let ingress_fee = self.ingress_fee(&arg);
        self.check_not_frozen(canister, kind, ingress_fee)?;
        self.inspect_message(canister, caller, method, &arg)?;
        self.burn(canister, ingress_fee);
        let ctx = self.new_context(Origin::Ingress, canister);
        let r = self.execute(
            canister,
            kind,
            Entry::Export(&export),
            ctx,
            caller.as_slice().to_vec(),
            method.to_string(),
            arg,
            None,
            None,
        );
        let stats = self.last_stats.clone();
        if let Err(e) = r {
            self.contexts.remove(&ctx);
            return Err(e);
        }
        self.settle(ctx, canister);
        let mut n = 0;
        while !self.contexts[&ctx].responded && n < MAX_ROUNDS * 10 {
            let Some(task) = self.queue.pop_front() else {
                break;
            };
            self.deliver(task);
            n += 1;
        }
        self.last_instructions = stats.instructions;
        self.last_stats = stats;
        let cc = self.contexts.get_mut(&ctx).expect("ingress context");
        let response = cc.response.take();
        // A context that answered but still waits for responses stays
        // open (its callbacks run later, and it keeps a stopping canister
        // from stopping); `settle` forgets it when the last one ran.
        if cc.outstanding == 0 || !cc.responded {
            self.contexts.remove(&ctx);
        }
        match response {
            Some(Response::Reply(data)) => Ok(data),
            Some(Response::Reject { code, message }) => Err(HostError::CanisterRejected { code, message }),
            None => Err(HostError::CanisterRejected {
                code: 5,
                message: format!("Canister {canister} did not produce a response (message delivery bound reached)"),
            }),
        }
    }

    /// A query: runs on the current state and never persists any change.
    /// Subject to the same ingress size check as [`Host::update`].
    pub fn query(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, HostError> {
        self.check_ingress(method, &arg)?;
        self.check_can_receive(canister, method)?;
        let c = self
            .canisters
            .get(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?;
        let export = [
            format!("canister_query {method}"),
            format!("canister_composite_query {method}"),
        ]
        .into_iter()
        .find(|e| c.has_export(e))
        .ok_or_else(|| {
            HostError::MethodNotFound(format!(
                "Canister {canister} has no query method '{method}'"
            ))
        })?;
        let ctx = self.new_context(Origin::Ingress, canister);
        let r = self.execute(
            canister,
            Kind::Query,
            Entry::Export(&export),
            ctx,
            caller.as_slice().to_vec(),
            method.to_string(),
            arg,
            None,
            None,
        );
        let cc = self.contexts.remove(&ctx).expect("query context");
        r?;
        match cc.response {
            Some(Response::Reply(data)) => Ok(data),
            Some(Response::Reject { code, message }) => {
                Err(HostError::CanisterRejected { code, message })
            }
            None => Err(HostError::CanisterRejected {
                code: 5,
                message: format!("Canister {canister} did not produce a response"),
            }),
        }
    }
}
