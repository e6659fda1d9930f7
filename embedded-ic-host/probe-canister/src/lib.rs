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
