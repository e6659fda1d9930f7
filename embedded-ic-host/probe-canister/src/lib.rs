//! Probe canister for `embedded-ic-host`: reproduces the workloads of
//! ic-stable-structures' canbench `benchmarks/io_chunks` (100 MiB raw write
//! and read through the `MemoryManager`, 1 000 x 100 KiB `StableBTreeMap`
//! inserts) and replies with the `performance_counter(0)` delta measured
//! around exactly the work canbench measures. It also exposes a timer so the
//! host's ic-cdk-timers support (global timer + self-calls) is exercised.
//!
//! It also holds the *floors* the upload benchmark (`bench/`) compares the
//! upload canister with: the least work a chunk upload (`floor_put`) and a
//! read-back (`floor_read`) can do, built with the same release profile
//! (opt-level 3, LTO) as the upload canister.

use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::{BTreeMap, DefaultMemoryImpl, Memory};
use std::cell::{Cell, RefCell};
use std::time::Duration;

const TOTAL_SIZE: usize = 100 * 1024 * 1024;
/// The virtual memory the floors write to and read from.
const FLOOR_MEMORY: u8 = 40;
const WASM_PAGE: usize = 65536;

thread_local! {
    static MANAGER: RefCell<MemoryManager<DefaultMemoryImpl>> =
        RefCell::new(MemoryManager::init(DefaultMemoryImpl::default()));
    static TIMER_FIRED: Cell<u64> = const { Cell::new(0) };
    static COUNTER: Cell<u64> = const { Cell::new(0) };
    /// Where the next `floor_put` writes: every chunk lands on fresh pages,
    /// as an upload's chunks do.
    static FLOOR_NEXT: Cell<u64> = const { Cell::new(0) };
}

fn memory(id: u8) -> VirtualMemory<DefaultMemoryImpl> {
    MANAGER.with(|m| m.borrow().get(MemoryId::new(id)))
}

fn ensure_memory_size(memory: &impl Memory, size: usize) {
    let required = size.div_ceil(WASM_PAGE) as u64;
    if memory.size() < required {
        memory.grow(required - memory.size());
    }
}

fn measure(f: impl FnOnce()) -> u64 {
    let start = ic_cdk::api::performance_counter(0);
    f();
    ic_cdk::api::performance_counter(0) - start
}

fn write_stable(mem_id: u8) -> u64 {
    let memory = memory(mem_id);
    let chunk = vec![37u8; TOTAL_SIZE];
    measure(|| {
        ensure_memory_size(&memory, TOTAL_SIZE);
        memory.write(0, &chunk);
    })
}

/// canbench `write_chunks_stable_1`: one 100 MiB write after growing.
#[ic_cdk::update]
fn write_100mib() -> u64 {
    write_stable(10)
}

/// canbench `read_chunks_stable_1`: write 100 MiB, then measure reading it back.
#[ic_cdk::update]
fn read_100mib() -> u64 {
    write_stable(20);
    let memory = memory(20);
    let mut buf = vec![0u8; TOTAL_SIZE];
    let n = measure(|| memory.read(0, &mut buf));
    assert!(buf.iter().all(|b| *b == 37));
    n
}

/// canbench `write_chunks_btreemap_1k` scaled to `n` chunks of 100 KiB
/// (`n = 1000` is the published case).
#[ic_cdk::update]
fn btreemap_insert(n: u32) -> u64 {
    let mut map: BTreeMap<u32, Vec<u8>, _> = BTreeMap::init(memory(31));
    let chunk_size = TOTAL_SIZE / 1000;
    let chunks: Vec<Vec<u8>> = (0..n).map(|_| vec![37u8; chunk_size]).collect();
    measure(|| {
        for (i, chunk) in chunks.into_iter().enumerate() {
            map.insert(i as u32, chunk);
        }
    })
}

#[ic_cdk::update]
fn start_timer(delay_secs: u64) {
    ic_cdk_timers::set_timer(Duration::from_secs(delay_secs), async {
        TIMER_FIRED.with(|c| c.set(c.get() + 1));
        ic_cdk::api::debug_print("probe timer fired");
    });
}

#[ic_cdk::query]
fn timer_fired() -> u64 {
    TIMER_FIRED.with(|c| c.get())
}

#[ic_cdk::update]
fn increment() -> u64 {
    COUNTER.with(|c| {
        c.set(c.get() + 1);
        c.get()
    })
}

#[ic_cdk::query]
fn counter() -> u64 {
    COUNTER.with(|c| c.get())
}

#[ic_cdk::update]
fn panic_after_increment() {
    COUNTER.with(|c| c.set(c.get() + 1));
    panic!("probe panic");
}

#[ic_cdk::query]
fn stable_size_pages() -> u64 {
    ic_cdk::api::stable_size()
}

/// Raw (non-Candid) chunk write for the host's throughput test: the argument
/// is an 8-byte little-endian offset followed by the bytes to store at it in
/// raw stable memory (above the `MemoryManager`'s region at 0 is not used by
/// this method's callers: they start at 16 GiB).
// Only on wasm: native linkers reject export names with spaces.
#[cfg(target_arch = "wasm32")]
#[export_name = "canister_update write_raw"]
extern "C" fn write_raw() {
    let arg = ic_cdk::api::msg_arg_data();
    let offset = u64::from_le_bytes(arg[..8].try_into().unwrap());
    let end = offset + (arg.len() - 8) as u64;
    let have = ic_cdk::api::stable_size() * WASM_PAGE as u64;
    if end > have {
        let need = (end - have).div_ceil(WASM_PAGE as u64);
        assert_ne!(
            ic_cdk::api::stable_grow(need),
            u64::MAX,
            "stable grow failed"
        );
    }
    ic_cdk::api::stable_write(offset, &arg[8..]);
    ic_cdk::api::msg_reply(end.to_le_bytes());
}

/// What `floor_put` spent, by `performance_counter(0)`.
#[derive(candid::CandidType, serde::Deserialize)]
pub struct FloorCosts {
    /// Everything before the method body: `msg_arg_data_copy` and the
    /// Candid decode of the blob.
    pub decode: u64,
    /// One SHA-256 pass over the bytes.
    pub hash: u64,
    /// Growing the memory if needed and writing the bytes to fresh pages.
    pub write: u64,
    /// Where the bytes went (for `floor_read`).
    pub offset: u64,
    /// The digest, so the hash is not optimised away.
    pub sha256: serde_bytes::ByteBuf,
}

/// The floor of an upload chunk: decode the argument as a blob, hash it
/// once with SHA-256 and write it to fresh pages of a `MemoryManager`
/// virtual memory; nothing else.
#[ic_cdk::update]
fn floor_put(bytes: serde_bytes::ByteBuf) -> FloorCosts {
    use sha2::Digest;
    let decode = ic_cdk::api::performance_counter(0);
    let digest = sha2::Sha256::digest(&bytes);
    let hashed = ic_cdk::api::performance_counter(0);
    let memory = memory(FLOOR_MEMORY);
    let offset = FLOOR_NEXT.with(|n| n.get());
    let end = offset + bytes.len() as u64;
    ensure_memory_size(&memory, end as usize);
    memory.write(offset, &bytes);
    let written = ic_cdk::api::performance_counter(0);
    FLOOR_NEXT.with(|n| n.set(end.next_multiple_of(4096)));
    FloorCosts {
        decode,
        hash: hashed - decode,
        write: written - hashed,
        offset,
        sha256: serde_bytes::ByteBuf::from(digest.to_vec()),
    }
}

/// The floor of reading back: a stable read of the range, replied as a blob.
#[ic_cdk::query]
fn floor_read(offset: u64, length: u64) -> serde_bytes::ByteBuf {
    let mut buf = vec![0u8; length as usize];
    memory(FLOOR_MEMORY).read(offset, &mut buf);
    serde_bytes::ByteBuf::from(buf)
}

/// Instructions of SHA-256 over `bytes`' whole 64-byte blocks, one
/// `sha2::compress256` call per block, as a hash kept as a midstate between
/// messages feeds it (the upload canister's `Sha256Midstate::absorb`):
/// compared with `floor_put`'s hash, the cost of calling per block.
#[ic_cdk::update]
fn sha256_blockwise(bytes: serde_bytes::ByteBuf) -> u64 {
    use sha2::digest::generic_array::GenericArray;
    let start = ic_cdk::api::performance_counter(0);
    let mut state = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    for block in bytes.chunks_exact(64) {
        sha2::compress256(
            &mut state,
            core::slice::from_ref(GenericArray::from_slice(block)),
        );
    }
    let spent = ic_cdk::api::performance_counter(0) - start;
    // Keep the result alive so the work is not optimised away.
    spent + u64::from(state[0] == 0x5bad_f00d)
}

/// What a call made by [`forward`] got back.
#[derive(candid::CandidType, serde::Deserialize, Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// Replied: the reply's bytes and the cycles refunded with it.
    Reply {
        bytes: serde_bytes::ByteBuf,
        refunded: u128,
    },
    /// Rejected: code, message and the cycles refunded.
    Reject {
        code: u32,
        message: String,
        refunded: u128,
    },
    /// Never sent (`call_perform` failed or the liquid balance was short).
    NotSent { error: String },
}

async fn forward_raw(
    callee: candid::Principal,
    method: &str,
    arg: &[u8],
    cycles: u128,
    timeout_seconds: Option<u32>,
) -> Forwarded {
    use ic_cdk::call::{Call, CallFailed};
    let call = match timeout_seconds {
        Some(t) => Call::bounded_wait(callee, method).change_timeout(t),
        None => Call::unbounded_wait(callee, method),
    };
    let r = call.with_raw_args(arg).with_cycles(cycles).await;
    let refunded = ic_cdk::api::msg_cycles_refunded();
    match r {
        Ok(response) => Forwarded::Reply {
            bytes: serde_bytes::ByteBuf::from(response.into_bytes()),
            refunded,
        },
        Err(CallFailed::CallRejected(e)) => Forwarded::Reject {
            code: e.raw_reject_code(),
            message: e.reject_message().to_string(),
            refunded,
        },
        Err(e) => Forwarded::NotSent {
            error: e.to_string(),
        },
    }
}

/// Calls `callee.method` with the raw argument `arg` and `cycles` attached,
/// a bounded-wait call if `timeout_seconds` is given; tells what came back.
#[ic_cdk::update]
async fn forward(
    callee: candid::Principal,
    method: String,
    arg: serde_bytes::ByteBuf,
    cycles: u128,
    timeout_seconds: Option<u32>,
) -> Forwarded {
    forward_raw(callee, &method, &arg, cycles, timeout_seconds).await
}

/// [`forward`] with an argument of `size` zero bytes (larger than an
/// ingress message may carry).
#[ic_cdk::update]
async fn forward_filler(
    callee: candid::Principal,
    method: String,
    size: u64,
    timeout_seconds: Option<u32>,
) -> Forwarded {
    let arg = vec![0u8; size as usize];
    forward_raw(callee, &method, &arg, 0, timeout_seconds).await
}

/// Raw (non-Candid): replies the argument's length, 8 bytes little-endian.
#[cfg(target_arch = "wasm32")]
#[export_name = "canister_update sink"]
extern "C" fn sink() {
    let n = ic_cdk::api::msg_arg_data().len() as u64;
    ic_cdk::api::msg_reply(n.to_le_bytes());
}

/// Accepts up to `max` of the attached cycles: (available before, accepted).
#[ic_cdk::update]
fn accept_cycles(max: u128) -> (u128, u128) {
    let available = ic_cdk::api::msg_cycles_available();
    (available, ic_cdk::api::msg_cycles_accept(max))
}

/// The balance and the liquid balance.
#[ic_cdk::query]
fn balance() -> (u128, u128) {
    (
        ic_cdk::api::canister_cycle_balance(),
        ic_cdk::api::canister_liquid_cycle_balance(),
    )
}

/// What the System API tells the canister about itself: its subnet, its
/// `canister_status` code and `msg_deadline` (0: unbounded).
#[ic_cdk::update]
fn whoami() -> (candid::Principal, u32, u64) {
    let status = match ic_cdk::api::canister_status() {
        ic_cdk::api::CanisterStatusCode::Running => 1,
        ic_cdk::api::CanisterStatusCode::Stopping => 2,
        ic_cdk::api::CanisterStatusCode::Stopped => 3,
        ic_cdk::api::CanisterStatusCode::Unrecognized(n) => n,
    };
    let deadline = ic_cdk::api::msg_deadline().map(|d| d.get()).unwrap_or(0);
    (ic_cdk::api::subnet_self(), status, deadline)
}

/// `ic0.is_controller(p)`.
#[ic_cdk::query]
fn controller_check(p: candid::Principal) -> bool {
    ic_cdk::api::is_controller(&p)
}

/// The creation fee `ic0.cost_create_canister` reports.
#[ic_cdk::query]
fn creation_fee() -> u128 {
    ic_cdk::api::cost_create_canister()
}

/// `msg_deadline` before a bounded-wait call to `callee.whoami` (the
/// ingress message's: 0) and in its reply callback (the call's).
#[ic_cdk::update]
async fn deadline_in_callback(callee: candid::Principal, timeout_seconds: u32) -> (u64, u64) {
    let before = ic_cdk::api::msg_deadline().map(|d| d.get()).unwrap_or(0);
    ic_cdk::call::Call::bounded_wait(callee, "whoami")
        .change_timeout(timeout_seconds)
        .await
        .expect("whoami replies");
    let after = ic_cdk::api::msg_deadline().map(|d| d.get()).unwrap_or(0);
    (before, after)
}
