//! Delivery of calls and callbacks: call contexts, executing one message,
//! replies and rejects, and the management canister methods this host answers.

use super::*;

impl Host {
    pub(super) fn new_context(&mut self, origin: Origin) -> u64 {
        let id = self.next_ctx;
        self.next_ctx += 1;
        self.contexts.insert(
            id,
            CallContext {
                origin,
                responded: false,
                outstanding: 0,
                response: None,
            },
        );
        id
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
        if !matches!(self.contexts[&ctx].origin, Origin::Ingress) {
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
            max_heap_bytes: Some(l.max_heap_bytes),
            wasm_memory_limit: self.wasm_memory_limit(kind),
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
        rb?;
        r?;
        if let Some(resp) = msg.response {
            self.respond(ctx, resp);
        }
        if persist {
            for call in msg.calls {
                if let Some(cc) = self.contexts.get_mut(&ctx) {
                    cc.outstanding += 1;
                }
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
                });
            }
        }
        Ok(())
    }

    pub(super) fn deliver(&mut self, task: Task) {
        match task {
            Task::Request {
                caller,
                caller_ctx,
                caller_origin,
                callee,
                method,
                arg,
                callback,
            } => {
                let origin = Origin::Call {
                    caller,
                    caller_ctx,
                    caller_origin,
                    callback,
                };
                let ctx = self.new_context(origin);
                if callee.is_empty() && method == "raw_rand" {
                    self.management_raw_rand(ctx, &arg);
                    return;
                }
                let callee_p = Principal::try_from_slice(&callee)
                    .ok()
                    .filter(|p| self.canisters.contains_key(p));
                let Some(callee) = callee_p else {
                    let name = Principal::try_from_slice(&callee)
                        .map(|p| p.to_text())
                        .unwrap_or_else(|_| hex(&callee));
                    self.reject_and_close(ctx, 3, format!("Canister {name} not found (embedded-ic-host only delivers calls to canisters installed in it)"));
                    return;
                };
                let (kind, export) = match self.method_kind(callee, &method) {
                    Ok(x) => x,
                    Err(e) => {
                        self.reject_and_close(ctx, 5, e.to_string());
                        return;
                    }
                };
                match self.execute(
                    callee,
                    kind,
                    Entry::Export(&export),
                    ctx,
                    caller.as_slice().to_vec(),
                    method,
                    arg,
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
            } => {
                if let Some(cc) = self.contexts.get_mut(&caller_ctx) {
                    cc.outstanding = cc.outstanding.saturating_sub(1);
                }
                if !self.canisters.contains_key(&caller) {
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

    /// The management canister's `raw_rand`: argument `()`, reply a 32-byte
    /// `blob` (see [`Host::set_random_seed`]). The only management method
    /// this host implements; calls to others are rejected with code 3 as
    /// for any canister the host does not hold.
    pub(super) fn management_raw_rand(&mut self, ctx: u64, arg: &[u8]) {
        if candid::decode_args::<()>(arg).is_err() {
            self.reject_and_close(
                ctx,
                4,
                "raw_rand: the argument must be the Candid encoding of ()".to_string(),
            );
            return;
        }
        let bytes = self.raw_rand();
        // `Vec<u8>` is Candid's `vec nat8`, the same type as `blob`.
        let reply = candid::encode_one(bytes.to_vec()).expect("a blob always encodes");
        self.respond(ctx, Response::Reply(reply));
        self.contexts.remove(&ctx);
    }
}
