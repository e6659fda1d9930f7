//! One installed canister: its compiled (instrumented) module, the wasmi
//! store/instance, and snapshot/rollback of everything a message can change.
//!
//! Rollback: at the start of a transaction the linear memory is copied into
//! a reused buffer (one `memcpy`, a few ms for 100 MiB) together with all
//! mutable globals and the host-side state (certified data, timer, cycles);
//! stable memory is journaled page by page (see [`crate::stable_memory`]).
//! If the memory grew during the message the instance is rebuilt from the
//! already-compiled module (wasm memories cannot shrink) and the snapshot is
//! written into it. Tables are not snapshotted (Rust canisters never modify
//! their table at run time).

use crate::instrument::{self, COUNTER_EXPORT, MEMORY_EXPORT, START_EXPORT, TABLE_EXPORT};
use crate::state::{HeapLimiter, HostState, Kind, MessageContext};
use crate::system_api::{make_import, Trap};
use crate::HostError;
use candid::Principal;
use wasmi::{Engine, ExternType, Global, Instance, Linker, Memory, Module, Ref, Store, Table, Val};

/// Entry point of a message.
pub enum Entry<'a> {
    /// An exported function `() -> ()`.
    Export(&'a str),
    /// A callback: table index and env argument.
    Table {
        /// Index in table 0.
        index: u32,
        /// The `env` argument.
        env: u32,
    },
}

struct Handles {
    counter: Global,
    memory: Option<Memory>,
    table: Option<Table>,
    globals: Vec<Global>,
}

#[derive(Default)]
struct Snapshot {
    heap: Vec<u8>,
    globals: Vec<Val>,
    certified_data: Vec<u8>,
    global_timer: u64,
    cycles: u128,
}

/// An installed canister.
pub struct Canister {
    engine: Engine,
    module: Module,
    mutable_globals: Vec<String>,
    has_start: bool,
    store: Store<HostState>,
    instance: Instance,
    handles: Handles,
    snapshot: Snapshot,
}

fn instantiate(
    engine: &Engine,
    module: &Module,
    mutable_globals: &[String],
    state: HostState,
) -> Result<(Store<HostState>, Instance, Handles), HostError> {
    let mut store = Store::new(engine, state);
    store.limiter(|st| &mut st.heap_limiter);
    let mut linker = Linker::<HostState>::new(engine);
    for imp in module.imports() {
        match imp.ty() {
            ExternType::Func(ty) => {
                let f = make_import(&mut store, imp.module(), imp.name(), ty.clone())
                    .map_err(HostError::InvalidWasm)?;
                linker
                    .define(imp.module(), imp.name(), f)
                    .map_err(|e| HostError::InvalidWasm(e.to_string()))?;
            }
            other => {
                return Err(HostError::InvalidWasm(format!(
                    "unsupported import {}.{} of type {other:?}",
                    imp.module(),
                    imp.name()
                )))
            }
        }
    }
    let instance = linker
        .instantiate_and_start(&mut store, module)
        .map_err(|e| HostError::InvalidWasm(format!("instantiation failed: {e}")))?;
    let counter = instance
        .get_global(&store, COUNTER_EXPORT)
        .expect("instrumented counter");
    let memory = instance.get_memory(&store, MEMORY_EXPORT);
    let table = instance.get_table(&store, TABLE_EXPORT);
    let globals = mutable_globals
        .iter()
        .map(|n| instance.get_global(&store, n).expect("exported global"))
        .collect();
    store.data_mut().counter = Some(counter);
    store.data_mut().memory = memory;
    Ok((
        store,
        instance,
        Handles {
            counter,
            memory,
            table,
            globals,
        },
    ))
}

impl Canister {
    /// Instruments, compiles and instantiates `wasm` (runs no canister code).
    pub fn new(engine: &Engine, wasm: &[u8], state: HostState) -> Result<Canister, HostError> {
        let unpacked;
        let wasm = if wasm.starts_with(&[0x1f, 0x8b]) {
            unpacked = decompress(wasm)?;
            &unpacked[..]
        } else {
            wasm
        };
        let ins = instrument::instrument(wasm).map_err(HostError::InvalidWasm)?;
        let module = Module::new(engine, &ins.wasm)
            .map_err(|e| HostError::InvalidWasm(format!("invalid module: {e}")))?;
        let (store, instance, handles) = instantiate(engine, &module, &ins.mutable_globals, state)?;
        Ok(Canister {
            engine: engine.clone(),
            module,
            mutable_globals: ins.mutable_globals,
            has_start: ins.has_start,
            store,
            instance,
            handles,
            snapshot: Snapshot::default(),
        })
    }

    /// Whether the module had a `start` function (run via [`Canister::run_start`]).
    pub fn has_start(&self) -> bool {
        self.has_start
    }

    /// Whether the module exports `name`.
    pub fn has_export(&self, name: &str) -> bool {
        self.module.get_export(name).is_some()
    }

    /// Host state (read).
    pub fn state(&self) -> &HostState {
        self.store.data()
    }

    /// Host state (write).
    pub fn state_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    /// Current heap size in bytes.
    pub fn heap_bytes(&self) -> u64 {
        self.handles
            .memory
            .map(|m| m.data_size(&self.store) as u64)
            .unwrap_or(0)
    }

    /// 4 KiB pages of the heap whose contents differ from the snapshot taken
    /// at [`Canister::begin_tx`] (pages the heap grew by count if they are
    /// no longer zero). The replica counts pages written even if their
    /// contents end up unchanged, so this is a lower bound of its count (the
    /// same when every write changes something). Call before commit or
    /// rollback.
    pub fn heap_dirty_pages(&self) -> u64 {
        const PAGE: usize = 4096;
        let Some(m) = self.handles.memory else {
            return 0;
        };
        let now = m.data(&self.store);
        let before = &self.snapshot.heap;
        let common = now.len().min(before.len());
        let changed = now[..common]
            .chunks(PAGE)
            .zip(before[..common].chunks(PAGE))
            .filter(|(a, b)| a != b)
            .count();
        let grown = now[common..]
            .chunks(PAGE)
            .filter(|p| p.iter().any(|b| *b != 0))
            .count();
        (changed + grown) as u64
    }

    /// Feeds everything a message can change to `state`: heap, mutable
    /// globals, stable memory, certified data and the global timer.
    pub fn hash_state(&self, state: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        if let Some(m) = self.handles.memory {
            state.write(m.data(&self.store));
        }
        for global in &self.handles.globals {
            format!("{:?}", global.get(&self.store)).hash(state);
        }
        let st = self.store.data();
        st.stable.hash_contents(state);
        st.certified_data.hash(state);
        st.global_timer.hash(state);
    }

    /// Starts a transaction: snapshots heap, globals, host state; journals stable memory.
    pub fn begin_tx(&mut self) {
        let snap = &mut self.snapshot;
        snap.heap.clear();
        if let Some(m) = self.handles.memory {
            snap.heap.extend_from_slice(m.data(&self.store));
        }
        snap.globals = self
            .handles
            .globals
            .iter()
            .map(|g| g.get(&self.store))
            .collect();
        let st = self.store.data_mut();
        snap.certified_data = st.certified_data.clone();
        snap.global_timer = st.global_timer;
        snap.cycles = st.cycles;
        st.stable.begin_tx();
    }

    /// Keeps the transaction's changes.
    pub fn commit_tx(&mut self) {
        self.store.data_mut().stable.commit_tx();
    }

    /// Undoes everything since [`Canister::begin_tx`].
    pub fn rollback_tx(&mut self) -> Result<(), HostError> {
        let grown = self
            .handles
            .memory
            .map(|m| m.data_size(&self.store) != self.snapshot.heap.len())
            .unwrap_or(false);
        if grown {
            let engine = self.engine.clone();
            let state = std::mem::replace(
                self.store.data_mut(),
                HostState::new(Principal::anonymous(), Principal::anonymous(), 0),
            );
            let (store, instance, handles) =
                instantiate(&engine, &self.module, &self.mutable_globals, state)?;
            self.store = store;
            self.instance = instance;
            self.handles = handles;
            let m = self.handles.memory.expect("memory");
            let have = m.data_size(&self.store) as u64;
            let want = self.snapshot.heap.len() as u64;
            if want > have {
                m.grow(&mut self.store, (want - have) / 65536)
                    .map_err(|e| HostError::InvalidWasm(format!("restore grow: {e}")))?;
            }
        }
        if let Some(m) = self.handles.memory {
            m.data_mut(&mut self.store)
                .copy_from_slice(&self.snapshot.heap);
        }
        for (g, v) in self.handles.globals.iter().zip(&self.snapshot.globals) {
            g.set(&mut self.store, v.clone())
                .map_err(|e| HostError::InvalidWasm(e.to_string()))?;
        }
        let snap = &self.snapshot;
        let st = self.store.data_mut();
        st.certified_data = snap.certified_data.clone();
        st.global_timer = snap.global_timer;
        st.cycles = snap.cycles;
        st.stable.rollback_tx();
        Ok(())
    }

    /// Runs one message. Returns the outcome, the instructions used, and the
    /// message context (response, performed calls). Does not commit or roll back.
    pub fn run(
        &mut self,
        entry: Entry,
        msg: MessageContext,
    ) -> (Result<(), HostError>, u64, MessageContext) {
        let limit = msg.instruction_limit;
        let st = self.store.data_mut();
        st.heap_limiter = HeapLimiter {
            hard: msg.max_heap_bytes,
            soft: msg.wasm_memory_limit,
            exceeded: None,
        };
        st.msg = msg;
        st.stable.start_message();
        self.handles
            .counter
            .set(&mut self.store, Val::I64(limit.min(i64::MAX as u64) as i64))
            .expect("counter is mutable");
        let result: Result<(), wasmi::Error> = match entry {
            Entry::Export(name) => {
                match self.instance.get_typed_func::<(), ()>(&self.store, name) {
                    Ok(f) => f.call(&mut self.store, ()),
                    Err(_) => Err(wasmi::Error::host(Trap::Other(format!(
                        "export {name} is missing or not a () -> () function"
                    )))),
                }
            }
            Entry::Table { index, env } => {
                let f = self
                    .handles
                    .table
                    .and_then(|t| t.get(&self.store, index as u64))
                    .and_then(|r| match r {
                        Ref::Func(f) => f.val().copied(),
                        _ => None,
                    });
                match f.and_then(|f| f.typed::<i32, ()>(&self.store).ok()) {
                    Some(f) => f.call(&mut self.store, env as i32),
                    None => Err(wasmi::Error::host(Trap::Other(format!(
                        "callback table index {index} is not a function (i32) -> ()"
                    )))),
                }
            }
        };
        let left = self.handles.counter.get(&self.store).i64().unwrap_or(0);
        let used = if left < 0 { limit } else { limit - left as u64 };
        let st = self.store.data_mut();
        let msg = std::mem::take(&mut st.msg);
        let exceeded = std::mem::take(&mut st.heap_limiter).exceeded;
        let id = st.canister_id;
        let result = result.map_err(|e| match exceeded {
            Some((wasm_memory_limit, requested)) if left >= 0 => {
                HostError::CanisterTrapped(format!(
                    "Canister {id} trapped: Wasm memory limit exceeded: growing the heap to {requested} bytes exceeds the canister's wasm_memory_limit of {wasm_memory_limit} bytes"
                ))
            }
            _ => classify(e, left < 0, limit, id),
        });
        (result, used, msg)
    }

    /// Runs the module's start function, if any, as part of an install, with
    /// the heap limits of `limits` (a [`Kind::Start`] message context).
    pub fn run_start(&mut self, limits: MessageContext) -> (Result<(), HostError>, u64) {
        if !self.has_start {
            return (Ok(()), 0);
        }
        let msg = MessageContext {
            kind: Kind::Start,
            ..limits
        };
        let (r, used, _) = self.run(Entry::Export(START_EXPORT), msg);
        (r, used)
    }
}

/// A gzip-compressed module unpacked, as the IC does (at most 100 MiB).
pub fn decompress(module: &[u8]) -> Result<Vec<u8>, HostError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(module)
        .take(100 << 20)
        .read_to_end(&mut out)
        .map_err(|e| {
            HostError::InvalidWasm(format!(
                "the gzip-compressed module does not decompress: {e}"
            ))
        })?;
    Ok(out)
}

fn classify(e: wasmi::Error, out_of_instructions: bool, limit: u64, id: Principal) -> HostError {
    if out_of_instructions {
        return HostError::InstructionLimitExceeded { limit };
    }
    if let Some(t) = e.downcast_ref::<Trap>() {
        return match t {
            Trap::Explicit(m) => {
                HostError::CanisterTrapped(format!("Canister {id} trapped explicitly: {m}"))
            }
            Trap::Unimplemented(n) => HostError::UnimplementedSystemApi(n.clone()),
            Trap::StableLimit(m) => HostError::StableMemoryLimit(m.clone()),
            Trap::InstructionLimit => HostError::InstructionLimitExceeded { limit },
            Trap::Other(m) => HostError::CanisterTrapped(format!("Canister {id} trapped: {m}")),
        };
    }
    if let Some(code) = e.as_trap_code() {
        return HostError::CanisterTrapped(format!("Canister {id} trapped: {code}"));
    }
    HostError::CanisterTrapped(format!("Canister {id} trapped: {e}"))
}
