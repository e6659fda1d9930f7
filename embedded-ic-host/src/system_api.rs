//! The `ic0` System API imports, following the IC interface specification.
//!
//! [`make_import`] builds the host function for one import. As in the
//! replica, a module may import only functions of module `ic0` that the IC
//! interface specification lists ([`SPEC_IMPORTS`]), each with the spec's
//! signature; anything else makes the install fail with
//! [`crate::HostError::InvalidWasm`]. Spec-listed functions this host does
//! not implement become stubs that trap with the import's name when called.
//!
//! Instruction overheads charged on top of the wasm instructions are the
//! table [`cost`] (the replica's `system_api_complexity` figures as far as
//! known; see `ic-facts.md`).
//!
//! `canister_inspect_message` ([`Kind::InspectMessage`]) may read (argument,
//! caller, method name, time, stable memory, ...) and call
//! `ic0.accept_message` once; `msg_method_name_*` and `accept_message` trap
//! in every other kind of message. Inside it everything that would respond
//! or change state traps: `msg_reply*`, `msg_reject`, `call_*`,
//! `global_timer_set`, `certified_data_set`, `stable64_write`,
//! `stable64_grow`, `msg_cycles_*`, `cycles_burn128`.

use crate::stable_memory::OS_PAGE;
use crate::state::{Callback, HostState, Kind, OutgoingCall, Response};
use std::fmt;
use wasmi::{AsContext, AsContextMut, Caller, Error, Func, FuncType, Store, Val, ValType};

/// Why a message stopped abnormally (carried through wasmi as a host error).
#[derive(Debug, Clone)]
pub enum Trap {
    /// `ic0.trap` (incl. Rust panics via ic-cdk).
    Explicit(String),
    /// An import this host does not implement.
    Unimplemented(String),
    /// A per-message stable memory limit.
    StableLimit(String),
    /// The instruction counter went below zero inside a system call.
    InstructionLimit,
    /// Any other trap raised by a system call.
    Other(String),
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trap::Explicit(m) => write!(f, "trapped explicitly: {m}"),
            Trap::Unimplemented(n) => write!(f, "called unimplemented system API {n}"),
            Trap::StableLimit(m) => write!(f, "{m}"),
            Trap::InstructionLimit => write!(f, "instruction limit exceeded"),
            Trap::Other(m) => write!(f, "{m}"),
        }
    }
}

impl wasmi::errors::HostError for Trap {}

type C<'a> = Caller<'a, HostState>;

fn trap(msg: impl Into<String>) -> Error {
    Error::host(Trap::Other(msg.into()))
}

/// What a System API call costs on top of the wasm instructions: a fixed
/// part and a part per byte it copies (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub base: u64,
    pub per_byte: u64,
}

impl Cost {
    /// Instructions for a call that moves `bytes` bytes.
    pub const fn of(self, bytes: u64) -> u64 {
        self.base
            .saturating_add(self.per_byte.saturating_mul(bytes))
    }
}

/// The System API's costs, each named once (the replica's
/// `system_api_complexity` figures as far as known).
pub mod cost {
    use super::Cost;

    const fn cost(base: u64, per_byte: u64) -> Cost {
        Cost { base, per_byte }
    }

    /// Every call not named below; those that copy bytes pay 1 a byte.
    pub const DEFAULT: Cost = cost(500, 1);
    /// `msg_reply_data_append`, `msg_reject`.
    pub const RESPONSE: Cost = cost(500, 50);
    /// `stable64_read`, `stable64_write` (and `stable64_size`, no bytes).
    pub const STABLE_ACCESS: Cost = cost(20, 1);
    /// `stable64_write`: each 4 KiB page dirtied for the first time in the
    /// message, on top of `STABLE_ACCESS`.
    pub const FIRST_WRITE_PER_PAGE: u64 = 1_000;
    pub const STABLE_GROW: Cost = cost(100, 0);
    pub const PERFORMANCE_COUNTER: Cost = cost(200, 0);
    pub const DEBUG_PRINT: Cost = cost(100, 1);
    pub const CALL_NEW: Cost = cost(1_500, 0);
    pub const CALL_PERFORM: Cost = cost(5_000, 0);
    pub const IS_CONTROLLER: Cost = cost(1_000, 1);
}

/// Subtracts `n` instructions from the message's counter.
fn charge(c: &mut C, n: u64) -> Result<(), Error> {
    let g = c.data().counter.expect("instruction counter linked");
    let v = g.get(c.as_context()).i64().unwrap_or(0);
    let nv = v.saturating_sub(n.min(i64::MAX as u64) as i64);
    g.set(c.as_context_mut(), Val::I64(nv))
        .map_err(|e| trap(e.to_string()))?;
    if nv < 0 {
        return Err(Error::host(Trap::InstructionLimit));
    }
    Ok(())
}

fn require(c: &C, api: &str, ok: bool) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(trap(format!(
            "\"ic0.{api}\" cannot be executed in {:?} mode",
            c.data().msg.kind
        )))
    }
}

/// Traps in `canister_inspect_message`, which may inspect but never change
/// state (stable memory, cycles) or respond.
fn not_in_inspect(c: &C, api: &str) -> Result<(), Error> {
    require(c, api, c.data().msg.kind != Kind::InspectMessage)
}

fn range(ptr: u64, len: u64, size: usize, what: &str) -> Result<std::ops::Range<usize>, Error> {
    let end = ptr
        .checked_add(len)
        .filter(|e| *e <= size as u64)
        .ok_or_else(|| trap(format!("{what}: out of bounds (heap out of bounds)")))?;
    Ok(ptr as usize..end as usize)
}

fn read_bytes(c: &C, ptr: u32, len: u32, api: &str) -> Result<Vec<u8>, Error> {
    let mem = c.data().memory.ok_or_else(|| trap("no memory"))?;
    let data = mem.data(c.as_context());
    let r = range(ptr as u64, len as u64, data.len(), api)?;
    Ok(data[r].to_vec())
}

fn write_bytes(c: &mut C, ptr: u32, bytes: &[u8], api: &str) -> Result<(), Error> {
    let mem = c.data().memory.ok_or_else(|| trap("no memory"))?;
    let data = mem.data_mut(c.as_context_mut());
    let r = range(ptr as u64, bytes.len() as u64, data.len(), api)?;
    data[r].copy_from_slice(bytes);
    Ok(())
}

/// Copies `src[offset..offset+size]` (selected from the host state) to heap `dst`.
fn copy_out(
    c: &mut C,
    api: &str,
    dst: u32,
    offset: u32,
    size: u32,
    select: impl Fn(&HostState) -> &[u8],
) -> Result<(), Error> {
    let mem = c.data().memory.ok_or_else(|| trap("no memory"))?;
    let (heap, st) = mem.data_and_store_mut(c.as_context_mut());
    let src = select(st);
    let sr = range(offset as u64, size as u64, src.len(), api)?;
    let dr = range(dst as u64, size as u64, heap.len(), api)?;
    heap[dr].copy_from_slice(&src[sr]);
    Ok(())
}

fn write_u128(c: &mut C, dst: u32, v: u128, api: &str) -> Result<(), Error> {
    write_bytes(c, dst, &v.to_le_bytes(), api)
}

/// Checks `[offset, offset + size)` against stable memory and
/// `[heap_ptr, heap_ptr + size)` against the heap; returns the heap range.
fn stable_bounds(
    c: &C,
    offset: u64,
    heap_ptr: u64,
    size: u64,
    api: &str,
) -> Result<std::ops::Range<usize>, Error> {
    if !c.data().stable.in_bounds(offset, size) {
        return Err(trap(format!(
            "ic0.{api}: stable memory out of bounds (offset {offset}, size {size})"
        )));
    }
    let mem = c.data().memory.ok_or_else(|| trap("no memory"))?;
    range(heap_ptr, size, mem.data_size(c.as_context()), api)
}

fn stable_limit_check(st: &HostState) -> Result<(), Error> {
    let m = &st.msg;
    if st.stable.msg_dirty_pages() * OS_PAGE > m.stable_write_limit {
        return Err(Error::host(Trap::StableLimit(format!(
            "Exceeded the limit for the number of modified pages in the stable memory in a single message execution: limit {} KB",
            m.stable_write_limit / 1024
        ))));
    }
    if st.stable.msg_accessed_pages() * OS_PAGE > m.stable_access_limit {
        return Err(Error::host(Trap::StableLimit(format!(
            "Exceeded the limit for the number of accessed pages in the stable memory in a single message execution: limit {} KB",
            m.stable_access_limit / 1024
        ))));
    }
    Ok(())
}

fn stub(store: &mut Store<HostState>, ty: FuncType, name: String) -> Func {
    Func::new(store, ty, move |_c, _p, _r| {
        Err(Error::host(Trap::Unimplemented(name.clone())))
    })
}

/// The `ic0` functions of the IC interface specification (wasm32 canisters)
/// with their signatures: parameter and result types, `i` = `i32`, `I` = `i64`.
/// Includes the deprecated 32-bit stable memory calls and `mint_cycles128`,
/// which the specification still lists.
pub const SPEC_IMPORTS: &[(&str, &str, &str)] = &[
    ("msg_arg_data_size", "", "i"),
    ("msg_arg_data_copy", "iii", ""),
    ("msg_caller_size", "", "i"),
    ("msg_caller_copy", "iii", ""),
    ("msg_caller_info_data_size", "", "i"),
    ("msg_caller_info_data_copy", "iii", ""),
    ("msg_caller_info_signer_size", "", "i"),
    ("msg_caller_info_signer_copy", "iii", ""),
    ("msg_reject_code", "", "i"),
    ("msg_reject_msg_size", "", "i"),
    ("msg_reject_msg_copy", "iii", ""),
    ("msg_deadline", "", "I"),
    ("msg_reply_data_append", "ii", ""),
    ("msg_reply", "", ""),
    ("msg_reject", "ii", ""),
    ("msg_cycles_available128", "i", ""),
    ("msg_cycles_refunded128", "i", ""),
    ("msg_cycles_accept128", "IIi", ""),
    ("cycles_burn128", "IIi", ""),
    ("canister_self_size", "", "i"),
    ("canister_self_copy", "iii", ""),
    ("canister_cycle_balance128", "i", ""),
    ("canister_liquid_cycle_balance128", "i", ""),
    ("canister_status", "", "i"),
    ("canister_version", "", "I"),
    ("subnet_self_size", "", "i"),
    ("subnet_self_copy", "iii", ""),
    ("subnet_self_node_count", "", "i"),
    ("msg_method_name_size", "", "i"),
    ("msg_method_name_copy", "iii", ""),
    ("accept_message", "", ""),
    ("call_new", "iiiiiiii", ""),
    ("call_on_cleanup", "ii", ""),
    ("call_data_append", "ii", ""),
    ("call_with_best_effort_response", "i", ""),
    ("call_cycles_add128", "II", ""),
    ("call_perform", "", "i"),
    ("stable_size", "", "i"),
    ("stable_grow", "i", "i"),
    ("stable_write", "iii", ""),
    ("stable_read", "iii", ""),
    ("stable64_size", "", "I"),
    ("stable64_grow", "I", "I"),
    ("stable64_write", "III", ""),
    ("stable64_read", "III", ""),
    ("root_key_size", "", "i"),
    ("root_key_copy", "iii", ""),
    ("certified_data_set", "ii", ""),
    ("data_certificate_present", "", "i"),
    ("data_certificate_size", "", "i"),
    ("data_certificate_copy", "iii", ""),
    ("time", "", "I"),
    ("global_timer_set", "I", "I"),
    ("performance_counter", "i", "I"),
    ("is_controller", "ii", "i"),
    ("in_replicated_execution", "", "i"),
    ("cost_call", "IIi", ""),
    ("cost_create_canister", "i", ""),
    ("cost_http_request", "IIi", ""),
    ("cost_http_request_v2", "iii", ""),
    ("cost_sign_with_ecdsa", "iiii", "i"),
    ("cost_sign_with_schnorr", "iiii", "i"),
    ("cost_vetkd_derive_key", "iiii", "i"),
    ("env_var_count", "", "i"),
    ("env_var_name_size", "i", "i"),
    ("env_var_name_copy", "iiii", ""),
    ("env_var_name_exists", "ii", "i"),
    ("env_var_value_size", "ii", "i"),
    ("env_var_value_copy", "iiiii", ""),
    ("mint_cycles128", "IIi", ""),
    ("debug_print", "ii", ""),
    ("trap", "ii", ""),
];

/// The longest timeout of a bounded-wait call, in seconds (the spec's bound).
pub const MAX_CALL_TIMEOUT_SECONDS: u32 = 300;

/// The fee for sending an inter-canister request of `bytes` bytes (method
/// name + argument) on a 13-node subnet: 260 000 + 1 000 per byte.
pub fn call_fee(bytes: usize) -> u128 {
    260_000 + 1_000 * bytes as u128
}

fn val_types(s: &str) -> Vec<ValType> {
    s.chars()
        .map(|c| if c == 'I' { ValType::I64 } else { ValType::I32 })
        .collect()
}

/// The specification's signature of `ic0.<name>`, if the spec lists it.
pub fn spec_signature(name: &str) -> Option<FuncType> {
    SPEC_IMPORTS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, p, r)| FuncType::new(val_types(p), val_types(r)))
}

/// Builds the host function for import `module.name` of type `ty`: the real
/// implementation, or a trapping stub for a spec-listed function this host
/// does not implement. Errors (the module is invalid for the IC) for any
/// module other than `ic0`, a name the specification does not list, or a
/// signature different from the specification's.
pub fn make_import(
    store: &mut Store<HostState>,
    module: &str,
    name: &str,
    ty: FuncType,
) -> Result<Func, String> {
    if module != "ic0" {
        return Err(format!(
            "module imports function {name:?} from module {module:?}; only \"ic0\" imports are allowed"
        ));
    }
    let spec = spec_signature(name).ok_or_else(|| {
        format!("module imports function ic0.{name}, which is not in the IC's System API")
    })?;
    if spec != ty {
        return Err(format!(
            "module imports function ic0.{name} with the wrong signature {ty:?} (the System API's is {spec:?})"
        ));
    }
    Ok(match implementation(store, name) {
        Some(f) if f.ty(&*store) == ty => f,
        _ => stub(store, ty, format!("ic0.{name}")),
    })
}

fn implementation(s: &mut Store<HostState>, name: &str) -> Option<Func> {
    let f = match name {
        "msg_arg_data_size" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            require(&c, "msg_arg_data_size", c.data().msg.kind.has_arg())?;
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().msg.arg.len() as i32)
        }),
        "msg_arg_data_copy" => Func::wrap(s, |mut c: C, dst: i32, off: i32, size: i32| {
            require(&c, "msg_arg_data_copy", c.data().msg.kind.has_arg())?;
            charge(&mut c, cost::DEFAULT.of(size as u32 as u64))?;
            copy_out(
                &mut c,
                "msg_arg_data_copy",
                dst as u32,
                off as u32,
                size as u32,
                |st| &st.msg.arg,
            )
        }),
        "msg_caller_size" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().msg.caller.len() as i32)
        }),
        "msg_caller_copy" => Func::wrap(s, |mut c: C, dst: i32, off: i32, size: i32| {
            charge(&mut c, cost::DEFAULT.of(size as u32 as u64))?;
            copy_out(
                &mut c,
                "msg_caller_copy",
                dst as u32,
                off as u32,
                size as u32,
                |st| &st.msg.caller,
            )
        }),
        "msg_caller_info_data_size" | "msg_caller_info_signer_size" => {
            Func::wrap(s, |mut c: C| -> Result<i32, Error> {
                charge(&mut c, cost::DEFAULT.of(0))?;
                Ok(0)
            })
        }
        "msg_caller_info_data_copy" | "msg_caller_info_signer_copy" => {
            Func::wrap(s, |mut c: C, dst: i32, off: i32, size: i32| {
                charge(&mut c, cost::DEFAULT.of(0))?;
                copy_out(
                    &mut c,
                    "msg_caller_info_copy",
                    dst as u32,
                    off as u32,
                    size as u32,
                    |_| &[],
                )
            })
        }
        "msg_reject_code" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            let k = c.data().msg.kind;
            require(
                &c,
                "msg_reject_code",
                matches!(k, Kind::ReplyCallback | Kind::RejectCallback),
            )?;
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().msg.reject.as_ref().map(|r| r.0).unwrap_or(0) as i32)
        }),
        "msg_reject_msg_size" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            require(
                &c,
                "msg_reject_msg_size",
                c.data().msg.kind == Kind::RejectCallback,
            )?;
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().msg.reject.as_ref().map(|r| r.1.len()).unwrap_or(0) as i32)
        }),
        "msg_reject_msg_copy" => Func::wrap(s, |mut c: C, dst: i32, off: i32, size: i32| {
            require(
                &c,
                "msg_reject_msg_copy",
                c.data().msg.kind == Kind::RejectCallback,
            )?;
            charge(&mut c, cost::DEFAULT.of(size as u32 as u64))?;
            copy_out(
                &mut c,
                "msg_reject_msg_copy",
                dst as u32,
                off as u32,
                size as u32,
                |st| {
                    st.msg
                        .reject
                        .as_ref()
                        .map(|r| r.1.as_bytes())
                        .unwrap_or(&[])
                },
            )
        }),
        "msg_deadline" => Func::wrap(s, |mut c: C| -> Result<i64, Error> {
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().msg.deadline as i64)
        }),
        "msg_reply_data_append" => Func::wrap(s, |mut c: C, src: i32, size: i32| {
            can_respond(&c, "msg_reply_data_append")?;
            charge(&mut c, cost::RESPONSE.of(size as u32 as u64))?;
            let bytes = read_bytes(&c, src as u32, size as u32, "msg_reply_data_append")?;
            let m = &mut c.data_mut().msg;
            if (m.reply_buf.len() + bytes.len()) as u64 > m.max_reply {
                return Err(trap(format!(
                    "ic0.msg_reply_data_append: application payload size ({}) cannot be larger than {}",
                    m.reply_buf.len() + bytes.len(),
                    m.max_reply
                )));
            }
            m.reply_buf.extend_from_slice(&bytes);
            Ok(())
        }),
        "msg_reply" => Func::wrap(s, |mut c: C| {
            can_respond(&c, "msg_reply")?;
            charge(&mut c, cost::DEFAULT.of(0))?;
            let m = &mut c.data_mut().msg;
            m.response = Some(Response::Reply(std::mem::take(&mut m.reply_buf)));
            Ok(())
        }),
        "msg_reject" => Func::wrap(s, |mut c: C, src: i32, size: i32| {
            can_respond(&c, "msg_reject")?;
            charge(&mut c, cost::RESPONSE.of(size as u32 as u64))?;
            let max = c.data().msg.max_reply;
            if size as u32 as u64 > max {
                return Err(trap(format!(
                    "ic0.msg_reject: reject message size ({}) cannot be larger than {max}",
                    size as u32
                )));
            }
            let bytes = read_bytes(&c, src as u32, size as u32, "msg_reject")?;
            let message =
                String::from_utf8(bytes).map_err(|_| trap("ic0.msg_reject: invalid UTF-8"))?;
            c.data_mut().msg.response = Some(Response::Reject { code: 4, message });
            Ok(())
        }),
        "msg_cycles_available128" => Func::wrap(s, |mut c: C, dst: i32| {
            not_in_inspect(&c, "msg_cycles_available128")?;
            charge(&mut c, cost::DEFAULT.of(0))?;
            let v = c.data().msg.cycles_available;
            write_u128(&mut c, dst as u32, v, "msg_cycles_available128")
        }),
        "msg_cycles_refunded128" => Func::wrap(s, |mut c: C, dst: i32| {
            let k = c.data().msg.kind;
            require(
                &c,
                "msg_cycles_refunded128",
                matches!(k, Kind::ReplyCallback | Kind::RejectCallback),
            )?;
            charge(&mut c, cost::DEFAULT.of(0))?;
            let v = c.data().msg.cycles_refunded;
            write_u128(&mut c, dst as u32, v, "msg_cycles_refunded128")
        }),
        "msg_cycles_accept128" => Func::wrap(s, |mut c: C, hi: i64, lo: i64, dst: i32| {
            not_in_inspect(&c, "msg_cycles_accept128")?;
            let k = c.data().msg.kind;
            require(
                &c,
                "msg_cycles_accept128",
                matches!(
                    k,
                    Kind::Update
                        | Kind::ReplicatedQuery
                        | Kind::ReplyCallback
                        | Kind::RejectCallback
                ),
            )?;
            charge(&mut c, cost::DEFAULT.of(0))?;
            let max = ((hi as u64 as u128) << 64) | lo as u64 as u128;
            let st = c.data_mut();
            let amount = max.min(st.msg.cycles_available);
            st.msg.cycles_available -= amount;
            st.cycles = st.cycles.saturating_add(amount);
            write_u128(&mut c, dst as u32, amount, "msg_cycles_accept128")
        }),
        "cycles_burn128" => Func::wrap(s, |mut c: C, hi: i64, lo: i64, dst: i32| {
            not_in_inspect(&c, "cycles_burn128")?;
            charge(&mut c, cost::DEFAULT.of(0))?;
            let want = ((hi as u64 as u128) << 64) | lo as u64 as u128;
            let burned = want.min(c.data().cycles);
            c.data_mut().cycles -= burned;
            write_u128(&mut c, dst as u32, burned, "cycles_burn128")
        }),
        "canister_self_size" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().canister_id.as_slice().len() as i32)
        }),
        "canister_self_copy" => Func::wrap(s, |mut c: C, dst: i32, off: i32, size: i32| {
            charge(&mut c, cost::DEFAULT.of(size as u32 as u64))?;
            copy_out(
                &mut c,
                "canister_self_copy",
                dst as u32,
                off as u32,
                size as u32,
                |st| st.canister_id.as_slice(),
            )
        }),
        "canister_cycle_balance128" => Func::wrap(s, |mut c: C, dst: i32| {
            charge(&mut c, cost::DEFAULT.of(0))?;
            let b = c.data().cycles;
            write_u128(&mut c, dst as u32, b, "canister_cycle_balance128")
        }),
        "canister_liquid_cycle_balance128" => Func::wrap(s, |mut c: C, dst: i32| {
            charge(&mut c, cost::DEFAULT.of(0))?;
            let st = c.data();
            let b = st.cycles.saturating_sub(st.msg.freeze_floor);
            write_u128(&mut c, dst as u32, b, "canister_liquid_cycle_balance128")
        }),
        "canister_status" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().run_status.max(1) as i32)
        }),
        "canister_version" => Func::wrap(s, |mut c: C| -> Result<i64, Error> {
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().canister_version as i64)
        }),
        "subnet_self_size" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().subnet_id.as_slice().len() as i32)
        }),
        "subnet_self_copy" => Func::wrap(s, |mut c: C, dst: i32, off: i32, size: i32| {
            charge(&mut c, cost::DEFAULT.of(size as u32 as u64))?;
            copy_out(
                &mut c,
                "subnet_self_copy",
                dst as u32,
                off as u32,
                size as u32,
                |st| st.subnet_id.as_slice(),
            )
        }),
        "subnet_self_node_count" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(13)
        }),
        "msg_method_name_size" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            let k = c.data().msg.kind;
            require(&c, "msg_method_name_size", k == Kind::InspectMessage)?;
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().msg.method.len() as i32)
        }),
        "msg_method_name_copy" => Func::wrap(s, |mut c: C, dst: i32, off: i32, size: i32| {
            let k = c.data().msg.kind;
            require(&c, "msg_method_name_copy", k == Kind::InspectMessage)?;
            charge(&mut c, cost::DEFAULT.of(size as u32 as u64))?;
            copy_out(
                &mut c,
                "msg_method_name_copy",
                dst as u32,
                off as u32,
                size as u32,
                |st| st.msg.method.as_bytes(),
            )
        }),
        "accept_message" => Func::wrap(s, |mut c: C| {
            require(
                &c,
                "accept_message",
                c.data().msg.kind == Kind::InspectMessage,
            )?;
            if c.data().msg.accepted {
                return Err(trap(
                    "ic0.accept_message: message already accepted (ic0.accept_message may be called only once)",
                ));
            }
            charge(&mut c, cost::DEFAULT.of(0))?;
            c.data_mut().msg.accepted = true;
            Ok(())
        }),
        "call_new" => Func::wrap(
            s,
            |mut c: C,
             callee_src: i32,
             callee_size: i32,
             name_src: i32,
             name_size: i32,
             reply_fun: i32,
             reply_env: i32,
             reject_fun: i32,
             reject_env: i32| {
                require(&c, "call_new", c.data().msg.kind.can_call())?;
                charge(&mut c, cost::CALL_NEW.of(0))?;
                let callee = read_bytes(&c, callee_src as u32, callee_size as u32, "call_new")?;
                let name = read_bytes(&c, name_src as u32, name_size as u32, "call_new")?;
                let method = String::from_utf8(name)
                    .map_err(|_| trap("ic0.call_new: method name is not UTF-8"))?;
                c.data_mut().msg.pending_call = Some(OutgoingCall {
                    callee,
                    method,
                    arg: Vec::new(),
                    callback: Callback {
                        reply: (reply_fun as u32, reply_env as u32),
                        reject: (reject_fun as u32, reject_env as u32),
                        cleanup: None,
                    },
                    cycles: 0,
                    timeout_seconds: None,
                });
                Ok(())
            },
        ),
        "call_on_cleanup" => Func::wrap(s, |mut c: C, fun: i32, env: i32| {
            charge(&mut c, cost::DEFAULT.of(0))?;
            let p = c
                .data_mut()
                .msg
                .pending_call
                .as_mut()
                .ok_or_else(|| trap("ic0.call_on_cleanup: no call in progress"))?;
            if p.callback.cleanup.is_some() {
                return Err(trap("ic0.call_on_cleanup: cleanup already set"));
            }
            p.callback.cleanup = Some((fun as u32, env as u32));
            Ok(())
        }),
        "call_data_append" => Func::wrap(s, |mut c: C, src: i32, size: i32| {
            charge(&mut c, cost::DEFAULT.of(size as u32 as u64))?;
            let bytes = read_bytes(&c, src as u32, size as u32, "call_data_append")?;
            let m = &mut c.data_mut().msg;
            // The same-subnet limit here; `call_perform` checks the
            // (smaller) limit for another subnet, as the replica does.
            let max = m.max_same_subnet_call_bytes.max(m.max_call_bytes);
            let p = m
                .pending_call
                .as_mut()
                .ok_or_else(|| trap("ic0.call_data_append: no call in progress"))?;
            let total = (p.method.len() + p.arg.len() + bytes.len()) as u64;
            if total > max {
                return Err(trap(format!(
                    "ic0.call_data_append: request size (method name + argument, {total} bytes) cannot be larger than {max}"
                )));
            }
            p.arg.extend_from_slice(&bytes);
            Ok(())
        }),
        "call_with_best_effort_response" => {
            Func::wrap(s, |mut c: C, t: i32| {
                charge(&mut c, cost::DEFAULT.of(0))?;
                let p = c.data_mut().msg.pending_call.as_mut().ok_or_else(|| {
                    trap("ic0.call_with_best_effort_response: no call in progress")
                })?;
                if p.timeout_seconds.is_some() {
                    return Err(trap(
                        "ic0.call_with_best_effort_response: the timeout is already set (it may be set only once per call)",
                    ));
                }
                // The specification bounds the timeout to 1..=300 seconds.
                p.timeout_seconds = Some((t as u32).clamp(1, MAX_CALL_TIMEOUT_SECONDS));
                Ok(())
            })
        }
        "call_cycles_add128" => Func::wrap(s, |mut c: C, hi: i64, lo: i64| {
            charge(&mut c, cost::DEFAULT.of(0))?;
            let amount = ((hi as u64 as u128) << 64) | lo as u64 as u128;
            let st = c.data_mut();
            if st.msg.pending_call.is_none() {
                return Err(trap("ic0.call_cycles_add128: no call in progress"));
            }
            if amount > st.cycles.saturating_sub(st.msg.freeze_floor) {
                return Err(trap(format!(
                    "ic0.call_cycles_add128: insufficient cycles balance: {amount} cycles to attach, {} cycles liquid",
                    st.cycles.saturating_sub(st.msg.freeze_floor)
                )));
            }
            let p = st
                .msg
                .pending_call
                .as_mut()
                .ok_or_else(|| trap("ic0.call_cycles_add128: no call in progress"))?;
            p.cycles += amount;
            st.cycles -= amount;
            Ok(())
        }),
        "call_perform" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            require(&c, "call_perform", c.data().msg.kind.can_call())?;
            charge(&mut c, cost::CALL_PERFORM.of(0))?;
            let st = c.data_mut();
            let call = st
                .msg
                .pending_call
                .take()
                .ok_or_else(|| trap("ic0.call_perform: no call in progress"))?;
            let size = (call.method.len() + call.arg.len()) as u64;
            if size > st.msg.max_call_bytes && !call_stays_on_subnet(st.subnet_index, &call) {
                return Err(trap(format!(
                    "ic0.call_perform: a request of {size} bytes (method name + argument) to a canister on another subnet cannot be larger than {}",
                    st.msg.max_call_bytes
                )));
            }
            if st.msg.charge_calls {
                // The transmission fee of a 13-node subnet, paid by the sender.
                let fee = call_fee(call.method.len() + call.arg.len());
                if st.cycles.saturating_sub(st.msg.freeze_floor) < fee {
                    // Not enqueued: the attached cycles go back to the
                    // balance and call_perform answers SYS_TRANSIENT.
                    st.cycles = st.cycles.saturating_add(call.cycles);
                    return Ok(2);
                }
                st.cycles -= fee;
            }
            st.msg.calls.push(call);
            Ok(0)
        }),
        "stable64_size" => Func::wrap(s, |mut c: C| -> Result<i64, Error> {
            charge(&mut c, cost::STABLE_ACCESS.of(0))?;
            Ok(c.data().stable.size_pages() as i64)
        }),
        "stable64_grow" => Func::wrap(s, |mut c: C, new_pages: i64| -> Result<i64, Error> {
            not_in_inspect(&c, "stable64_grow")?;
            charge(&mut c, cost::STABLE_GROW.of(0))?;
            let st = c.data_mut();
            let max = st.max_stable_pages;
            Ok(st.stable.grow(new_pages as u64, max))
        }),
        "stable64_write" => Func::wrap(s, |mut c: C, offset: i64, src: i64, size: i64| {
            not_in_inspect(&c, "stable64_write")?;
            let (offset, src, size) = (offset as u64, src as u64, size as u64);
            // Bounds first: a huge (or negative) size traps, never overflows.
            let r = stable_bounds(&c, offset, src, size, "stable64_write")?;
            charge(&mut c, cost::STABLE_ACCESS.of(size))?;
            let mem = c.data().memory.ok_or_else(|| trap("no memory"))?;
            let (heap, st) = mem.data_and_store_mut(c.as_context_mut());
            let dirty = st
                .stable
                .write(offset, &heap[r])
                .map_err(|_| trap("stable memory out of bounds"))?;
            stable_limit_check(st)?;
            charge(&mut c, dirty.saturating_mul(cost::FIRST_WRITE_PER_PAGE))
        }),
        "stable64_read" => Func::wrap(s, |mut c: C, dst: i64, offset: i64, size: i64| {
            let (dst, offset, size) = (dst as u64, offset as u64, size as u64);
            let r = stable_bounds(&c, offset, dst, size, "stable64_read")?;
            charge(&mut c, cost::STABLE_ACCESS.of(size))?;
            let mem = c.data().memory.ok_or_else(|| trap("no memory"))?;
            let (heap, st) = mem.data_and_store_mut(c.as_context_mut());
            st.stable
                .read(offset, &mut heap[r])
                .map_err(|_| trap("stable memory out of bounds"))?;
            stable_limit_check(st)
        }),
        "certified_data_set" => Func::wrap(s, |mut c: C, src: i32, size: i32| {
            require(&c, "certified_data_set", c.data().msg.kind.can_modify())?;
            charge(&mut c, cost::DEFAULT.of(size as u32 as u64))?;
            if size as u32 > 32 {
                return Err(trap(
                    "ic0.certified_data_set: certified data is limited to 32 bytes",
                ));
            }
            let bytes = read_bytes(&c, src as u32, size as u32, "certified_data_set")?;
            c.data_mut().certified_data = bytes;
            Ok(())
        }),
        "data_certificate_present" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().msg.data_certificate.is_some() as i32)
        }),
        "data_certificate_size" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            require(
                &c,
                "data_certificate_size",
                c.data().msg.kind == Kind::Query,
            )?;
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(certificate(c.data())?.bytes().len() as i32)
        }),
        "data_certificate_copy" => Func::wrap(s, |mut c: C, dst: i32, off: i32, size: i32| {
            require(
                &c,
                "data_certificate_copy",
                c.data().msg.kind == Kind::Query,
            )?;
            charge(&mut c, cost::DEFAULT.of(size as u32 as u64))?;
            let cert = certificate(c.data())?;
            let r = range(
                off as u32 as u64,
                size as u32 as u64,
                cert.bytes().len(),
                "data_certificate_copy",
            )?;
            write_bytes(
                &mut c,
                dst as u32,
                &cert.bytes()[r],
                "data_certificate_copy",
            )
        }),
        "time" => Func::wrap(s, |mut c: C| -> Result<i64, Error> {
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().msg.time as i64)
        }),
        "global_timer_set" => Func::wrap(s, |mut c: C, ts: i64| -> Result<i64, Error> {
            require(&c, "global_timer_set", c.data().msg.kind.can_modify())?;
            charge(&mut c, cost::DEFAULT.of(0))?;
            let st = c.data_mut();
            let old = st.global_timer;
            st.global_timer = ts as u64;
            Ok(old as i64)
        }),
        "performance_counter" => Func::wrap(s, |mut c: C, ty: i32| -> Result<i64, Error> {
            charge(&mut c, cost::PERFORMANCE_COUNTER.of(0))?;
            if ty != 0 && ty != 1 {
                return Err(trap(format!(
                    "ic0.performance_counter: unknown counter type {ty}"
                )));
            }
            let g = c.data().counter.expect("counter");
            let left = g.get(c.as_context()).i64().unwrap_or(0).max(0) as u64;
            Ok(c.data().msg.instruction_limit.saturating_sub(left) as i64)
        }),
        "is_controller" => Func::wrap(s, |mut c: C, src: i32, size: i32| -> Result<i32, Error> {
            charge(&mut c, cost::IS_CONTROLLER.of(size as u32 as u64))?;
            if size as u32 > 29 {
                return Err(trap("ic0.is_controller: invalid principal"));
            }
            let bytes = read_bytes(&c, src as u32, size as u32, "is_controller")?;
            Ok(c.data().controllers.iter().any(|p| p.as_slice() == bytes) as i32)
        }),
        "in_replicated_execution" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(c.data().msg.kind.is_replicated() as i32)
        }),
        "cost_call" => Func::wrap(s, |mut c: C, name_size: i64, payload: i64, dst: i32| {
            charge(&mut c, cost::DEFAULT.of(0))?;
            let cost = call_fee((name_size as u64).saturating_add(payload as u64) as usize);
            write_u128(&mut c, dst as u32, cost, "cost_call")
        }),
        "cost_create_canister" => Func::wrap(s, |mut c: C, dst: i32| {
            charge(&mut c, cost::DEFAULT.of(0))?;
            write_u128(
                &mut c,
                dst as u32,
                crate::host::CREATE_CANISTER_FEE,
                "cost_create_canister",
            )
        }),
        "env_var_count" => Func::wrap(s, |mut c: C| -> Result<i32, Error> {
            charge(&mut c, cost::DEFAULT.of(0))?;
            Ok(0)
        }),
        "env_var_name_exists" => {
            Func::wrap(s, |mut c: C, _src: i32, _size: i32| -> Result<i32, Error> {
                charge(&mut c, cost::DEFAULT.of(0))?;
                Ok(0)
            })
        }
        "debug_print" => Func::wrap(s, |mut c: C, src: i32, size: i32| {
            charge(&mut c, cost::DEBUG_PRINT.of(size as u32 as u64))?;
            let bytes = read_bytes(&c, src as u32, size as u32, "debug_print")?;
            let line = format!(
                "[Canister {}] {}",
                c.data().canister_id,
                String::from_utf8_lossy(&bytes)
            );
            c.data_mut().logs.push(line);
            Ok(())
        }),
        "trap" => Func::wrap(s, |mut c: C, src: i32, size: i32| -> Result<(), Error> {
            charge(&mut c, cost::DEFAULT.of(0))?;
            let bytes = read_bytes(&c, src as u32, size as u32, "trap").unwrap_or_default();
            Err(Error::host(Trap::Explicit(
                String::from_utf8_lossy(&bytes).into_owned(),
            )))
        }),
        _ => return None,
    };
    Some(f)
}

/// Whether a request from a canister on subnet `own` to `callee` stays on
/// that subnet: canister ids of the host's form (8-byte counter + `0x01
/// 0x01`) belong to subnet `counter >> 20` (see
/// [`crate::host::SUBNET_RANGE_BITS`]); the management canister is
/// treated as on the caller's subnet (see [`call_stays_on_subnet`]).
pub fn same_subnet(own: u64, callee: &[u8]) -> bool {
    if callee.is_empty() {
        return true;
    }
    crate::host::range_index_of(callee) == Some(own)
}

/// [`same_subnet`] for a whole call: a call to the management canister
/// goes to the subnet of the canister its argument names (`canister_id`,
/// as the replica routes it), or stays on the caller's subnet.
pub fn call_stays_on_subnet(own: u64, call: &OutgoingCall) -> bool {
    if !call.callee.is_empty() {
        return same_subnet(own, &call.callee);
    }
    #[derive(candid::Deserialize, candid::CandidType)]
    struct Effective {
        canister_id: candid::Principal,
    }
    match candid::decode_one::<Effective>(&call.arg) {
        Ok(e) => same_subnet(own, e.canister_id.as_slice()),
        Err(_) => true,
    }
}

/// The query's data certificate (see [`crate::certification`]).
fn certificate(
    st: &HostState,
) -> Result<std::sync::Arc<crate::certification::PendingCertificate>, Error> {
    st.msg
        .data_certificate
        .clone()
        .ok_or_else(|| trap("no data certificate in this message"))
}

fn can_respond(c: &C, api: &str) -> Result<(), Error> {
    let m = &c.data().msg;
    require(c, api, m.kind.can_reply())?;
    if m.responded_before || m.response.is_some() {
        return Err(trap(format!("ic0.{api}: the call is already replied")));
    }
    Ok(())
}

/// Whether this host implements `ic0.<name>` (with the spec's signature).
pub fn is_implemented(name: &str) -> bool {
    implemented_names().contains(name)
}

/// The names of `SPEC_IMPORTS` this host implements, worked out once with
/// one engine (`implementation` answers no name outside them).
fn implemented_names() -> &'static std::collections::HashSet<&'static str> {
    static NAMES: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let engine = wasmi::Engine::default();
        let state = HostState::new(
            candid::Principal::anonymous(),
            candid::Principal::anonymous(),
            0,
        );
        let mut store = Store::new(&engine, state);
        SPEC_IMPORTS
            .iter()
            .map(|(name, _, _)| *name)
            .filter(|name| implementation(&mut store, name).is_some())
            .collect()
    })
}

/// The `ic0` imports of a wasm module, each with whether it is implemented.
pub fn ic0_imports(wasm: &[u8]) -> Result<Vec<(String, bool)>, String> {
    let mut out = Vec::new();
    for p in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::ImportSection(r) = p.map_err(|e| e.to_string())? {
            for imp in r {
                let imp = imp.map_err(|e| e.to_string())?;
                if imp.module == "ic0" {
                    out.push((imp.name.to_string(), is_implemented(imp.name)));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Management calls are routed by the canister their argument names.
    #[test]
    fn calls_to_the_management_canister_go_to_the_named_canisters_subnet() {
        let id = |n: u64| {
            let mut b = n.to_be_bytes().to_vec();
            b.extend_from_slice(&[1, 1]);
            candid::Principal::from_slice(&b)
        };
        let install = |target| OutgoingCall {
            callee: Vec::new(),
            method: "install_code".into(),
            arg: candid::encode_one(&ic_management_canister_types::InstallCodeArgs {
                mode: ic_management_canister_types::CanisterInstallMode::Install,
                canister_id: target,
                wasm_module: vec![0; 10],
                arg: Vec::new(),
                sender_canister_version: None,
            })
            .unwrap(),
            ..Default::default()
        };
        assert!(call_stays_on_subnet(0, &install(id(3))));
        assert!(!call_stays_on_subnet(0, &install(id(1 << 20))));
        assert!(call_stays_on_subnet(1, &install(id((1 << 20) + 7))));
        // No canister named (raw_rand): the caller's subnet.
        let raw_rand = OutgoingCall {
            method: "raw_rand".into(),
            arg: candid::encode_args(()).unwrap(),
            ..Default::default()
        };
        assert!(call_stays_on_subnet(1, &raw_rand));
        // Other canisters: by their range.
        let to = |target: candid::Principal| OutgoingCall {
            callee: target.as_slice().to_vec(),
            ..Default::default()
        };
        assert!(call_stays_on_subnet(0, &to(id(5))));
        assert!(!call_stays_on_subnet(0, &to(id(2 << 20))));
    }

    /// Every implemented function is in the spec list, with the spec's signature.
    #[test]
    fn implementations_match_the_spec_signatures() {
        let engine = wasmi::Engine::default();
        let state = HostState::new(
            candid::Principal::anonymous(),
            candid::Principal::anonymous(),
            0,
        );
        let mut store = Store::new(&engine, state);
        let mut implemented = 0;
        for (name, _, _) in SPEC_IMPORTS {
            if let Some(f) = implementation(&mut store, name) {
                implemented += 1;
                assert_eq!(Some(f.ty(&store)), spec_signature(name), "{name}");
            }
        }
        assert!(is_implemented("subnet_self_node_count"));
        assert!(!is_implemented("root_key_size") && spec_signature("root_key_size").is_some());
        assert!(!is_implemented("nonexistent") && spec_signature("nonexistent").is_none());
        // 56 of the 72 listed functions are implemented (an implemented name
        // missing from the list could never be imported: keep them in sync).
        assert_eq!(implemented, 56);
    }
}
