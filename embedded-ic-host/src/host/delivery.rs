//! Delivery of calls and callbacks: call contexts, executing one message,
//! replies and rejects, and the management canister methods this host answers.

use super::management::reject_of;
use super::*;

impl Host {
    pub(super) fn new_context(&mut self, origin: Origin, canister: Principal) -> u64 {
        self.new_call_context(origin, canister, 0, 0)
    }

    /// A call context of `canister` for an incoming call with `cycles`
    /// attached and `deadline` (0: unbounded wait).
    pub(super) fn new_call_context(
        &mut self,
        origin: Origin,
        canister: Principal,
        cycles: u128,
        deadline: u64,
    ) -> u64 {
        let id = self.next_ctx;
        self.next_ctx += 1;
        self.contexts.insert(
            id,
            CallContext {
                origin,
                canister,
                responded: false,
                outstanding: 0,
                response: None,
                available: cycles,
                deadline,
                expire: false,
            },
        );
        id
    }

    /// Whether `canister` has call contexts that are not finished (not
    /// answered, or waiting for responses).
    pub(super) fn has_open_contexts(&self, canister: Principal) -> bool {
        self.contexts
            .values()
            .any(|cc| cc.canister == canister && !(cc.responded && cc.outstanding == 0))
    }

    /// Rejects a call context that will run nothing more, and forgets it.
    pub(super) fn reject_and_close(&mut self, ctx: u64, code: u32, message: String) {
        self.respond(ctx, Response::Reject { code, message });
        self.contexts.remove(&ctx);
    }

    pub(super) fn respond(&mut self, ctx: u64, response: Response) {
        let Some(cc) = self.contexts.get_mut(&ctx) else {
            return;
        };
        if cc.responded {
            return;
        }
        cc.responded = true;
        let mut refund = std::mem::take(&mut cc.available);
        let response = if cc.expire {
            // The caller stopped waiting: the response (and with it the
            // refund) is dropped.
            refund = 0;
            Response::Reject {
                code: 6,
                message: "deadline expired (injected fault: Fault::TimeoutAfterExecution)".into(),
            }
        } else {
            response
        };
        match &cc.origin {
            Origin::Ingress => cc.response = Some(response),
            Origin::System => {}
            Origin::Call {
                caller,
                caller_ctx,
                caller_origin,
                callback,
            } => self.queue.push_back(Task::Response {
                caller: *caller,
                caller_ctx: *caller_ctx,
                caller_origin: caller_origin.clone(),
                callback: *callback,
                response,
                refund,
                deadline: cc.deadline,
            }),
        }
    }

    /// After a message of `ctx` ran: answer "did not reply" if nothing is pending;
    /// forget finished non-ingress contexts.
    pub(super) fn settle(&mut self, ctx: u64, canister: Principal) {
        let Some(cc) = self.contexts.get(&ctx) else {
            return;
        };
        if cc.outstanding > 0 {
            return;
        }
        if !cc.responded {
            self.respond(
                ctx,
                Response::Reject {
                    code: 5,
                    message: format!("Canister {canister} did not produce a response"),
                },
            );
        }
        let cc = &self.contexts[&ctx];
        // An ingress context is forgotten here only once `Host::update` took its response.
        if !matches!(cc.origin, Origin::Ingress) || cc.response.is_none() {
            self.contexts.remove(&ctx);
        }
    }

    /// Runs one message in its own transaction; commits on success (queries: never).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn execute(
        &mut self,
        canister: Principal,
        kind: Kind,
        entry: Entry,
        ctx: u64,
        caller: Vec<u8>,
        method: String,
        arg: Vec<u8>,
        reject: Option<(u32, String)>,
        callback: Option<(u128, u64)>,
    ) -> Result<(), HostError> {
        let l = self.limits;
        let (limit, write_limit, access_limit, max_reply) = match kind {
            Kind::Query => (
                l.query_instructions,
                l.stable_bytes_accessed_per_query,
                l.stable_bytes_accessed_per_query,
                l.max_query_reply_bytes,
            ),
            // A query method executed as an update keeps the query
            // instruction limit (the replica's replicated query execution).
            Kind::ReplicatedQuery => (
                l.query_instructions,
                l.stable_bytes_written_per_update,
                l.stable_bytes_accessed_per_update,
                l.max_reply_bytes,
            ),
            _ => (
                l.update_instructions,
                l.stable_bytes_written_per_update,
                l.stable_bytes_accessed_per_update,
                l.max_reply_bytes,
            ),
        };
        let responded_before = self.contexts.get(&ctx).map(|c| c.responded).unwrap_or(true);
        let (cycles_available, mut deadline) = match self.contexts.get(&ctx) {
            Some(cc) if kind != Kind::Query => (cc.available, cc.deadline),
            _ => (0, 0),
        };
        // A callback sees the refund and the deadline of the call it handles
        // the response of.
        let (refunded, callback_deadline) = callback.unwrap_or((0, deadline));
        deadline = callback_deadline;
        let msg = MessageContext {
            kind,
            caller: caller.clone(),
            method,
            arg,
            reject,
            time: self.time,
            responded_before,
            instruction_limit: limit,
            max_reply,
            stable_write_limit: write_limit,
            stable_access_limit: access_limit,
            max_call_bytes: l.max_call_bytes,
            max_same_subnet_call_bytes: l.max_same_subnet_call_bytes,
            cycles_available,
            cycles_refunded: refunded,
            deadline,
            freeze_floor: self.freeze_floor(canister),
            charge_calls: self.charge_cycles,
            max_heap_bytes: Some(l.max_heap_bytes),
            wasm_memory_limit: self.wasm_memory_limit_of(Some(canister), kind),
            data_certificate: (kind == Kind::Query)
                .then(|| Arc::new(self.pending_certificate(canister))),
            ..Default::default()
        };
        let mut c = self
            .canisters
            .remove(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?;
        c.begin_tx();
        let name = match entry {
            Entry::Export(export) if msg.method.is_empty() => export.to_string(),
            Entry::Table { .. } if msg.method.is_empty() => "callback".to_string(),
            _ => msg.method.clone(),
        };
        let (r, used, msg) = c.run(entry, msg);
        self.collect_logs(&mut c);
        let persist = r.is_ok() && !matches!(kind, Kind::Query | Kind::ReplicatedQuery);
        self.note(stats_of(&c, kind, &name, used, persist));
        let rb = if persist {
            c.commit_tx();
            Ok(())
        } else {
            c.rollback_tx()
        };
        self.canisters.insert(canister, c);
        if kind != Kind::Query {
            self.charge_execution(canister, used);
        }
        rb?;
        r?;
        if persist {
            if let Some(cc) = self.contexts.get_mut(&ctx) {
                cc.available = msg.cycles_available;
            }
        }
        if let Some(resp) = msg.response {
            self.respond(ctx, resp);
        }
        if persist {
            for call in msg.calls {
                if let Some(cc) = self.contexts.get_mut(&ctx) {
                    cc.outstanding += 1;
                }
                let deadline = call
                    .timeout_seconds
                    .map(|t| self.time.saturating_add(t as u64 * 1_000_000_000))
                    .unwrap_or(0);
                self.queue.push_back(Task::Request {
                    caller: canister,
                    caller_ctx: ctx,
                    // The caller of this message is the original caller of
                    // its call context (callbacks are given it too).
                    caller_origin: caller.clone(),
                    callee: call.callee,
                    method: call.method,
                    arg: call.arg,
                    callback: call.callback,
                    cycles: call.cycles,
                    deadline,
                });
            }
        }
        Ok(())
    }

    pub(super) fn deliver(&mut self, task: Task) {
        self.deliver_task(task);
        self.check_stopping();
    }

    fn deliver_task(&mut self, task: Task) {
        match task {
            Task::Request {
                caller,
                caller_ctx,
                caller_origin,
                callee,
                method,
                arg,
                callback,
                cycles,
                deadline,
            } => {
                let origin = Origin::Call {
                    caller,
                    caller_ctx,
                    caller_origin,
                    callback,
                };
                let callee_p = Principal::try_from_slice(&callee).ok();
                let ctx = self.new_call_context(
                    origin,
                    callee_p.unwrap_or_else(Principal::anonymous),
                    cycles,
                    deadline,
                );
                if let Some(p) = callee_p {
                    if let Some(Fault::RejectCall { code, message, .. }) = self.take_fault(|f| {
                        matches!(f, Fault::RejectCall { callee, method: m, .. } if *callee == p && *m == method)
                    }) {
                        self.reject_and_close(ctx, code, message);
                        return;
                    }
                    if deadline != 0
                        && self
                            .take_fault(|f| {
                                matches!(f, Fault::TimeoutAfterExecution { callee, method: m } if *callee == p && *m == method)
                            })
                            .is_some()
                    {
                        self.contexts.get_mut(&ctx).expect("new context").expire = true;
                    }
                }
                if callee.is_empty() {
                    self.management_call(ctx, caller, &method, &arg, cycles);
                    return;
                }
                if callee_p == Some(cycles_minting_canister()) {
                    self.cmc_call(ctx, caller, &method, &arg, cycles);
                    return;
                }
                let Some(callee) = callee_p.filter(|p| self.exists(*p)) else {
                    let name = Principal::try_from_slice(&callee)
                        .map(|p| p.to_text())
                        .unwrap_or_else(|_| hex(&callee));
                    self.reject_and_close(ctx, 3, format!("Canister {name} not found (embedded-ic-host only delivers calls to canisters installed in it)"));
                    return;
                };
                if let Err(e) = self.check_can_receive(callee, &method) {
                    let (code, message) = reject_of(e);
                    self.reject_and_close(ctx, code, message);
                    return;
                }
                let (kind, export) = match self.method_kind(callee, &method) {
                    Ok(x) => x,
                    Err(e) => {
                        self.reject_and_close(ctx, 5, e.to_string());
                        return;
                    }
                };
                if let Err(e) = self.check_not_frozen(callee, kind, 0) {
                    let (code, message) = reject_of(e);
                    self.reject_and_close(ctx, code, message);
                    return;
                }
                match self.execute(
                    callee,
                    kind,
                    Entry::Export(&export),
                    ctx,
                    caller.as_slice().to_vec(),
                    method,
                    arg,
                    None,
                    None,
                ) {
                    Ok(()) => self.settle(ctx, callee),
                    Err(e) => {
                        self.reject_and_close(ctx, 5, e.to_string());
                    }
                }
            }
            Task::Response {
                caller,
                caller_ctx,
                caller_origin,
                callback,
                response,
                refund,
                deadline,
            } => {
                if let Some(cc) = self.contexts.get_mut(&caller_ctx) {
                    cc.outstanding = cc.outstanding.saturating_sub(1);
                }
                // The refund goes back to the balance whatever the callback does.
                if refund > 0 && self.exists(caller) {
                    let _ = self.add_cycles(caller, refund);
                }
                if !self.canisters.contains_key(&caller) {
                    // No module to run the callback (uninstalled): the
                    // context ends once nothing else is pending.
                    if self.contexts.get(&caller_ctx).is_some_and(|cc| {
                        cc.responded && cc.outstanding == 0 && cc.response.is_none()
                    }) {
                        self.contexts.remove(&caller_ctx);
                    }
                    return;
                }
                let (kind, (index, env), arg, reject) = match response {
                    Response::Reply(data) => (Kind::ReplyCallback, callback.reply, data, None),
                    Response::Reject { code, message } => (
                        Kind::RejectCallback,
                        callback.reject,
                        Vec::new(),
                        Some((code, message)),
                    ),
                };
                // Callbacks see the original caller of their call context.
                let r = self.execute(
                    caller,
                    kind,
                    Entry::Table { index, env },
                    caller_ctx,
                    caller_origin.clone(),
                    String::new(),
                    arg,
                    reject,
                    Some((refund, deadline)),
                );
                if let Err(e) = r {
                    self.logs
                        .push(format!("[Canister {caller}] callback failed: {e}"));
                    if let Some((index, env)) = callback.cleanup {
                        if let Err(e2) = self.execute(
                            caller,
                            Kind::Cleanup,
                            Entry::Table { index, env },
                            caller_ctx,
                            caller_origin,
                            String::new(),
                            Vec::new(),
                            None,
                            Some((0, deadline)),
                        ) {
                            self.logs
                                .push(format!("[Canister {caller}] cleanup failed: {e2}"));
                        }
                    }
                    let pending = self
                        .contexts
                        .get(&caller_ctx)
                        .map(|c| !c.responded && c.outstanding == 0)
                        .unwrap_or(false);
                    if pending {
                        self.respond(
                            caller_ctx,
                            Response::Reject {
                                code: 5,
                                message: e.to_string(),
                            },
                        );
                    }
                }
                self.settle(caller_ctx, caller);
            }
        }
    }
}
