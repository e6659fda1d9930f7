//! Probe canister for `embedded-ic-host`: reproduces the workloads of
//! ic-stable-structures' canbench `benchmarks/io_chunks` (100 MiB raw write
//! and read through the `MemoryManager`, 1 000 x 100 KiB `StableBTreeMap`
//! inserts) and replies with the `performance_counter(0)` delta measured
//! around exactly the work canbench measures. It also exposes a timer so the
//! host's ic-cdk-timers support (global timer + self-calls) is exercised.

use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::{BTreeMap, DefaultMemoryImpl, Memory};
use std::cell::{Cell, RefCell};
use std::time::Duration;

const TOTAL_SIZE: usize = 100 * 1024 * 1024;
const WASM_PAGE: usize = 65536;

thread_local! {
    static MANAGER: RefCell<MemoryManager<DefaultMemoryImpl>> =
        RefCell::new(MemoryManager::init(DefaultMemoryImpl::default()));
    static TIMER_FIRED: Cell<u64> = const { Cell::new(0) };
    static COUNTER: Cell<u64> = const { Cell::new(0) };
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
