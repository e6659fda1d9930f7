//! One tiny WAT canister exercising the host's rules: rollback, queries,
//! limits, unimplemented imports, upgrades, timers, calls and callbacks, and
//! exact instruction counts of hand-counted functions.

use embedded_ic_host::{Host, HostError, Limits, Principal};

const WAT: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reject" (func $reject (param i32 i32)))
  (import "ic0" "msg_reject_code" (func $reject_code (result i32)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (import "ic0" "stable64_read" (func $sread (param i64 i64 i64)))
  (import "ic0" "global_timer_set" (func $timer_set (param i64) (result i64)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_on_cleanup" (func $call_on_cleanup (param i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (import "ic0" "canister_self_size" (func $self_size (result i32)))
  (import "ic0" "canister_self_copy" (func $self_copy (param i32 i32 i32)))
  (import "ic0" "root_key_size" (func $root_key_size (result i32)))
  (import "ic0" "msg_caller_size" (func $caller_size (result i32)))
  (import "ic0" "msg_caller_copy" (func $caller_copy (param i32 i32 i32)))
  (import "ic0" "call_data_append" (func $call_append (param i32 i32)))
  (memory 1)
  (table 4 funcref)
  (elem (i32.const 0) $on_reply $on_reject $on_cleanup $on_reply_trap)
  (global $g (mut i32) (i32.const 0))
  (data (i32.const 1000) "boom")
  (data (i32.const 1010) "nope")
  (data (i32.const 1100) "\ff\ff\ff\ff\ff\ff\ff\ff\01\01")
  (data (i32.const 1200) "callee")
  (data (i32.const 1210) "x")

  (func $inc
    global.get $g i32.const 1 i32.add global.set $g
    i32.const 100 i32.const 100 i32.load i32.const 1 i32.add i32.store
    i64.const 300 i64.const 0 i64.const 4 call $sread
    i32.const 300 i32.const 300 i32.load i32.const 1 i32.add i32.store
    i64.const 0 i64.const 300 i64.const 4 call $swrite)
  (func $bump (param $addr i32)
    local.get $addr local.get $addr i32.load i32.const 1 i32.add i32.store)
  (func $boom i32.const 1000 i32.const 4 call $trap)
  (func $reply_state
    i32.const 400 global.get $g i32.store
    i32.const 404 i32.const 100 i32.load i32.store
    i64.const 408 i64.const 0 i64.const 4 call $sread
    i32.const 412 i32.const 200 i32.load i32.store
    i32.const 416 i32.const 204 i32.load i32.store
    i32.const 420 i32.const 208 i32.load i32.store
    i32.const 424 i32.const 212 i32.load i32.store
    i32.const 428 memory.size i32.store
    i32.const 400 i32.const 32 call $append
    call $reply)
  (func $self_call (param $reply_idx i32)
    i32.const 1300 i32.const 0 call $self_size call $self_copy
    i32.const 1300 call $self_size i32.const 1200 i32.const 6
    local.get $reply_idx i32.const 77 i32.const 1 i32.const 78 call $call_new
    i32.const 2 i32.const 79 call $call_on_cleanup
    call $call_perform drop)

  ;; Stores msg_caller's size at $addr and its bytes after it.
  (func $record_caller (param $addr i32)
    local.get $addr call $caller_size i32.store
    local.get $addr i32.const 4 i32.add i32.const 0 call $caller_size call $caller_copy)

  (func $on_reply (param $env i32)
    local.get $env i32.const 77 i32.ne if call $boom end
    i32.const 1400 call $record_caller
    i32.const 204 call $bump)
  (func $on_reject (param $env i32)
    i32.const 1440 call $record_caller
    i32.const 208 call $reject_code i32.store)
  (func $on_cleanup (param $env i32)
    i32.const 1480 call $record_caller
    i32.const 212 call $bump)
  (func $on_reply_trap (param $env i32)
    i32.const 204 call $bump call $boom)

  (func (export "canister_init") i64.const 1 call $sgrow drop)
  (func (export "canister_query get") call $reply_state)
  (func (export "canister_update inc") call $inc call $reply)
  (func (export "canister_update inc_then_trap") call $inc call $boom)
  (func (export "canister_query inc_query") call $inc call $reply_state)
  (func (export "canister_update inc_then_loop") call $inc (loop $l br $l))
  (func (export "canister_query loop_query") (loop $l br $l))
  (func (export "canister_update grow_then_trap")
    i32.const 10 memory.grow drop call $inc call $boom)
  (func (export "canister_update write3pages")
    i64.const 0 i64.const 300 i64.const 4 call $swrite
    i64.const 4096 i64.const 300 i64.const 4 call $swrite
    i64.const 8192 i64.const 300 i64.const 4 call $swrite
    call $reply)
  (func (export "canister_update grow5")
    i32.const 500 i64.const 5 call $sgrow i64.store
    i32.const 500 i32.const 8 call $append call $reply)
  (func (export "canister_update reject") i32.const 1010 i32.const 4 call $reject)
  (func (export "canister_update noreply"))
  (func $empty)
  (func (export "canister_update empty_call") call $empty)
  (func (export "canister_update unimpl") call $root_key_size drop call $reply)
  (func (export "canister_update set_timer") i64.const 1 call $timer_set drop call $reply)
  (func (export "canister_global_timer")
    i32.const 1520 call $record_caller
    i32.const 200 call $bump i32.const 0 call $self_call)
  (func (export "canister_update self_call") i32.const 0 call $self_call call $reply)
  (func (export "canister_query callers")
    i32.const 1400 i32.const 160 call $append call $reply)
  (func (export "canister_update callee") call $reply)
  (func (export "canister_update self_call_trapping_callback")
    i32.const 3 call $self_call call $reply)
  (func (export "canister_update call_other")
    i32.const 1100 i32.const 10 i32.const 1210 i32.const 1
    i32.const 0 i32.const 77 i32.const 1 i32.const 78 call $call_new
    call $call_perform drop call $reply)
  (func (export "canister_update call_big")
    i32.const 1300 i32.const 0 call $self_size call $self_copy
    i32.const 1300 call $self_size i32.const 1200 i32.const 6
    i32.const 0 i32.const 77 i32.const 1 i32.const 78 call $call_new
    i32.const 1000 i32.const 4 call $call_append
    call $call_perform drop call $reply)

  ;; Heap growth: reply with memory.grow's result (i32).
  (func $grow_reply (param $pages i32)
    i32.const 500 local.get $pages memory.grow i32.store
    i32.const 500 i32.const 4 call $append call $reply)
  (func (export "canister_update grow3") i32.const 3 call $grow_reply)
  (func (export "canister_query grow3_query") i32.const 3 call $grow_reply)
  (func (export "canister_update grow_huge") i32.const 70000 call $grow_reply)

  ;; Stable memory calls with absurd sizes/offsets.
  (func (export "canister_update stable_write_neg")
    i64.const 0 i64.const 0 i64.const -1 call $swrite call $reply)
  (func (export "canister_update stable_read_neg")
    i64.const 0 i64.const 0 i64.const -1 call $sread call $reply)
  (func (export "canister_update stable_write_wrap")
    i64.const -16 i64.const 0 i64.const 32 call $swrite call $reply)
  (func (export "canister_update stable_read_heap_oob")
    i64.const 65530 i64.const 0 i64.const 16 call $sread call $reply)

  (func (export "canister_pre_upgrade")
    i32.const 300 i32.const 7 i32.store
    i64.const 4 i64.const 300 i64.const 4 call $swrite)

  ;; Hand-counted instruction weights (see the tests).
  (func (export "canister_update straight")
    i32.const 1 i32.const 2 i32.add drop call $reply)
  (func (export "canister_update weights")
    global.get $g i32.const 3 i32.div_u global.set $g call $reply)
  (func (export "canister_update loop10") (local $i i32)
    i32.const 10 local.set $i
    (loop $l
      local.get $i i32.const 1 i32.sub local.tee $i br_if $l)
    call $reply)
  (func (export "canister_update fill")
    i32.const 2000 i32.const 0 i32.const 1000 memory.fill call $reply)
  ;;EXTRA
)
"#;

const TRAPPING_POST_UPGRADE: &str = r#"
  (func (export "canister_post_upgrade")
    i32.const 300 i32.const 99 i32.store
    i64.const 0 i64.const 300 i64.const 4 call $swrite
    call $boom)
"#;

fn wasm(extra: &str) -> Vec<u8> {
    wat::parse_str(WAT.replace(";;EXTRA", extra)).expect("valid wat")
}

fn user() -> Principal {
    Principal::from_slice(&[7; 29])
}

fn setup() -> (Host, Principal) {
    let mut host = Host::new();
    let id = host.install(&wasm(""), vec![], user()).expect("install");
    (host, id)
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct State {
    global: u32,
    heap: u32,
    stable: u32,
    timers: u32,
    replies: u32,
    reject_code: u32,
    cleanups: u32,
    heap_pages: u32,
}

fn state(host: &mut Host, id: Principal) -> State {
    let b = host.query(id, user(), "get", vec![]).expect("get");
    let w = |i: usize| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
    State {
        global: w(0),
        heap: w(1),
        stable: w(2),
        timers: w(3),
        replies: w(4),
        reject_code: w(5),
        cleanups: w(6),
        heap_pages: w(7),
    }
}

fn inc(host: &mut Host, id: Principal) {
    host.update(id, user(), "inc", vec![]).expect("inc");
}

fn counters(s: State) -> (u32, u32, u32) {
    (s.global, s.heap, s.stable)
}

#[test]
fn trap_rolls_back_heap_globals_and_stable_memory() {
    let (mut host, id) = setup();
    inc(&mut host, id);
    let e = host
        .update(id, user(), "inc_then_trap", vec![])
        .unwrap_err();
    assert!(
        matches!(&e, HostError::CanisterTrapped(m) if m.contains("boom")),
        "{e:?}"
    );
    assert_eq!(counters(state(&mut host, id)), (1, 1, 1));
    // Growing the heap before trapping: the heap size is restored too.
    let e = host
        .update(id, user(), "grow_then_trap", vec![])
        .unwrap_err();
    assert!(matches!(e, HostError::CanisterTrapped(_)));
    let s = state(&mut host, id);
    assert_eq!((counters(s), s.heap_pages), ((1, 1, 1), 1));
    assert_eq!(host.heap_bytes(id), 65536);
    inc(&mut host, id);
    assert_eq!(counters(state(&mut host, id)), (2, 2, 2));
}

#[test]
fn queries_never_persist() {
    let (mut host, id) = setup();
    inc(&mut host, id);
    let b = host.query(id, user(), "inc_query", vec![]).unwrap();
    assert_eq!(&b[0..12], &[2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(counters(state(&mut host, id)), (1, 1, 1));
    // Update call to a query method: runs, persists nothing.
    host.update(id, user(), "inc_query", vec![]).unwrap();
    assert_eq!(counters(state(&mut host, id)), (1, 1, 1));
}

#[test]
fn unimplemented_imports_trap_with_their_name() {
    let (mut host, id) = setup();
    assert_eq!(
        host.update(id, user(), "unimpl", vec![]),
        Err(HostError::UnimplementedSystemApi(
            "ic0.root_key_size".into()
        ))
    );
}

#[test]
fn imports_outside_the_system_api_fail_install() {
    let mut host = Host::new();
    let install = |host: &mut Host, import: &str| {
        let wat = format!("(module {import} (memory 1))");
        host.install(&wat::parse_str(wat).unwrap(), vec![], user())
    };
    let e = install(
        &mut host,
        r#"(import "ic0" "definitely_not_an_api" (func))"#,
    )
    .unwrap_err();
    assert!(
        matches!(&e, HostError::InvalidWasm(m) if m.contains("ic0.definitely_not_an_api")),
        "{e:?}"
    );
    // Another module than ic0.
    let e = install(&mut host, r#"(import "env" "msg_reply" (func))"#).unwrap_err();
    assert!(
        matches!(&e, HostError::InvalidWasm(m) if m.contains("env")),
        "{e:?}"
    );
    // A spec name with the wrong signature.
    let e = install(
        &mut host,
        r#"(import "ic0" "msg_reply" (func (param i32)))"#,
    )
    .unwrap_err();
    assert!(
        matches!(&e, HostError::InvalidWasm(m) if m.contains("signature")),
        "{e:?}"
    );
    // Nothing was created by the failed installs.
    assert!(host.canisters().is_empty());
    // A spec-listed function the host does not implement is accepted.
    install(
        &mut host,
        r#"(import "ic0" "root_key_copy" (func (param i32 i32 i32)))"#,
    )
    .unwrap();
}

#[test]
fn ingress_limit_counts_the_envelope_for_updates_and_queries() {
    let (mut host, id) = setup();
    assert_eq!(Limits::default().ingress_bytes, 2 * 1024 * 1024);
    assert_eq!(Limits::default().ingress_envelope_bytes, 2048);
    host.set_limits(Limits {
        ingress_bytes: 3000,
        ..Limits::default()
    });
    // "inc" + 2000 + 2048 envelope.
    assert_eq!(
        host.update(id, user(), "inc", vec![0; 2000]),
        Err(HostError::IngressTooLarge {
            size: 4051,
            limit: 3000
        })
    );
    assert_eq!(counters(state(&mut host, id)), (0, 0, 0));
    assert!(matches!(
        host.update(id, user(), "inc", vec![0; 950]),
        Err(HostError::IngressTooLarge { size: 3001, .. })
    ));
    host.update(id, user(), "inc", vec![0; 949]).unwrap();
    assert_eq!(counters(state(&mut host, id)), (1, 1, 1));
    // Queries are HTTP requests with the same limit.
    assert!(matches!(
        host.query(id, user(), "get", vec![0; 950]),
        Err(HostError::IngressTooLarge { size: 3001, .. })
    ));
    host.query(id, user(), "get", vec![0; 949]).unwrap();
}

#[test]
fn infinite_loops_stop_at_the_instruction_limit_and_roll_back() {
    let (mut host, id) = setup();
    inc(&mut host, id);
    host.set_limits(Limits {
        update_instructions: 20_000_000,
        query_instructions: 5_000_000,
        ..Limits::default()
    });
    assert_eq!(
        host.update(id, user(), "inc_then_loop", vec![]),
        Err(HostError::InstructionLimitExceeded { limit: 20_000_000 })
    );
    assert_eq!(host.last_instructions(), 20_000_000);
    assert_eq!(
        host.query(id, user(), "loop_query", vec![]),
        Err(HostError::InstructionLimitExceeded { limit: 5_000_000 })
    );
    // A query method called as an update keeps the query limit.
    assert_eq!(
        host.update(id, user(), "loop_query", vec![]),
        Err(HostError::InstructionLimitExceeded { limit: 5_000_000 })
    );
    assert_eq!(host.last_instructions(), 5_000_000);
    assert_eq!(counters(state(&mut host, id)), (1, 1, 1));
}

#[test]
fn stable_memory_limits() {
    let (mut host, id) = setup();
    host.set_limits(Limits {
        stable_bytes_written_per_update: 8192,
        max_stable_bytes: 2 * 65536,
        ..Limits::default()
    });
    inc(&mut host, id);
    let e = host.update(id, user(), "write3pages", vec![]).unwrap_err();
    assert!(matches!(e, HostError::StableMemoryLimit(_)), "{e:?}");
    assert_eq!(counters(state(&mut host, id)), (1, 1, 1));
    // stable64_grow beyond max_stable_bytes returns -1.
    let r = host.update(id, user(), "grow5", vec![]).unwrap();
    assert_eq!(i64::from_le_bytes(r.try_into().unwrap()), -1);
    assert_eq!(host.stable_memory_bytes(id), 65536);
}

#[test]
fn reject_and_missing_reply() {
    let (mut host, id) = setup();
    assert_eq!(
        host.update(id, user(), "reject", vec![]),
        Err(HostError::CanisterRejected {
            code: 4,
            message: "nope".into()
        })
    );
    assert!(matches!(
        host.update(id, user(), "noreply", vec![]),
        Err(HostError::CanisterRejected { code: 5, .. })
    ));
    assert!(matches!(
        host.update(id, user(), "nonexistent", vec![]),
        Err(HostError::MethodNotFound(_))
    ));
}

#[test]
fn failed_upgrade_leaves_old_instance_and_state() {
    let (mut host, id) = setup();
    inc(&mut host, id);
    inc(&mut host, id);
    let e = host
        .upgrade(id, &wasm(TRAPPING_POST_UPGRADE), vec![])
        .unwrap_err();
    assert!(
        matches!(&e, HostError::CanisterTrapped(m) if m.contains("boom")),
        "{e:?}"
    );
    assert_eq!(counters(state(&mut host, id)), (2, 2, 2));
    // pre_upgrade's stable write was rolled back as well.
    assert_eq!(host.read_stable_memory(id, 4, 4), vec![0; 4]);
    // A good upgrade: heap and globals fresh, stable memory kept.
    host.upgrade(id, &wasm(""), vec![]).unwrap();
    assert_eq!(counters(state(&mut host, id)), (0, 0, 2));
    assert_eq!(host.read_stable_memory(id, 4, 4), vec![7, 0, 0, 0]);
    inc(&mut host, id);
    assert_eq!(counters(state(&mut host, id)), (1, 1, 3));
    // Reinstall wipes stable memory (init grows it again to 1 page).
    host.reinstall(id, &wasm(""), vec![]).unwrap();
    assert_eq!(counters(state(&mut host, id)), (0, 0, 0));
    assert_eq!(host.stable_memory_bytes(id), 65536);
}

#[test]
fn timer_and_self_call_with_reply_callback() {
    let (mut host, id) = setup();
    host.update(id, user(), "set_timer", vec![]).unwrap();
    assert_eq!(host.global_timer(id), 1);
    host.tick();
    let s = state(&mut host, id);
    assert_eq!((s.timers, s.replies, s.cleanups), (1, 1, 0));
    assert_eq!(host.global_timer(id), 0);
    host.tick();
    assert_eq!(state(&mut host, id).timers, 1, "the timer fires once");
}

#[test]
fn trapping_callback_is_rolled_back_and_cleanup_runs() {
    let (mut host, id) = setup();
    host.update(id, user(), "self_call_trapping_callback", vec![])
        .unwrap();
    host.tick();
    let s = state(&mut host, id);
    assert_eq!((s.replies, s.cleanups), (0, 1));
}

#[test]
fn calls_to_other_canisters_are_rejected_with_destination_invalid() {
    let (mut host, id) = setup();
    host.update(id, user(), "call_other", vec![]).unwrap();
    host.tick();
    let s = state(&mut host, id);
    assert_eq!((s.reject_code, s.replies), (3, 0));
}

#[test]
fn instruction_weights_match_hand_counts() {
    let (mut host, id) = setup();
    // Every function's first segment starts at 1 (the replica's function
    // entry cost), so each count below has "1 +".
    // i32.const, i32.const, i32.add, drop (1 each) + call (5) + end (0) = 9,
    // plus msg_reply's 500.
    host.update(id, user(), "straight", vec![]).unwrap();
    assert_eq!(host.last_instructions(), 1 + 9 + 500);
    // global.get 2 + i32.const 1 + i32.div_u 10 + global.set 2 + call 5 = 20.
    host.update(id, user(), "weights", vec![]).unwrap();
    assert_eq!(host.last_instructions(), 1 + 20 + 500);
    // Segment 1: i32.const, local.set, loop = 2; loop body (local.get,
    // i32.const, i32.sub, local.tee 1 each + br_if 2) = 6 per iteration x 10;
    // after the loop: end 0, call 5, end 0.
    host.update(id, user(), "loop10", vec![]).unwrap();
    assert_eq!(host.last_instructions(), 1 + 2 + 6 * 10 + 5 + 500);
    // memory.fill: 3 consts + 100 + 1 per byte + call 5.
    host.update(id, user(), "fill", vec![]).unwrap();
    assert_eq!(host.last_instructions(), 1 + 3 + 100 + 1000 + 5 + 500);
    // An empty function costs 1.
    host.update(id, user(), "noreply", vec![]).unwrap_err();
    assert_eq!(host.last_instructions(), 1);
    // A call of a wasm function: call 5 in the caller + 1 on entry of the callee.
    host.update(id, user(), "empty_call", vec![]).unwrap_err();
    assert_eq!(host.last_instructions(), 1 + 5 + 1);
}

/// `msg_caller` bytes recorded by `$record_caller` at `offset` of the `callers` reply.
fn recorded_caller(host: &mut Host, id: Principal, offset: usize) -> Principal {
    let b = host.query(id, user(), "callers", vec![]).unwrap();
    let n = u32::from_le_bytes(b[offset..offset + 4].try_into().unwrap()) as usize;
    Principal::from_slice(&b[offset + 4..offset + 4 + n])
}

#[test]
fn callbacks_see_the_original_caller_and_timers_the_management_canister() {
    let (mut host, id) = setup();
    // Reply callback of a call made by an update of user().
    host.update(id, user(), "self_call", vec![]).unwrap();
    host.tick();
    assert_eq!(state(&mut host, id).replies, 1);
    assert_eq!(recorded_caller(&mut host, id, 0), user());
    // Reject callback.
    host.update(id, user(), "call_other", vec![]).unwrap();
    host.tick();
    assert_eq!(recorded_caller(&mut host, id, 40), user());
    // Cleanup callback (after a trapping reply callback).
    host.update(id, user(), "self_call_trapping_callback", vec![])
        .unwrap();
    host.tick();
    assert_eq!(state(&mut host, id).cleanups, 1);
    assert_eq!(recorded_caller(&mut host, id, 80), user());
    // The timer runs with caller aaaaa-aa, and so do the callbacks of its calls.
    host.update(id, user(), "set_timer", vec![]).unwrap();
    host.tick();
    assert_eq!(state(&mut host, id).timers, 1);
    assert_eq!(state(&mut host, id).replies, 2);
    let management = Principal::management_canister();
    assert_eq!(management.to_text(), "aaaaa-aa");
    assert_eq!(recorded_caller(&mut host, id, 120), management);
    assert_eq!(recorded_caller(&mut host, id, 0), management);
}

fn grow_result(r: Vec<u8>) -> i32 {
    i32::from_le_bytes(r.try_into().unwrap())
}

#[test]
fn wasm_memory_limit_traps_and_heap_maximum_fails_growth() {
    let (mut host, id) = setup();
    assert_eq!(Limits::default().wasm_memory_limit, 3 << 30);
    assert_eq!(Limits::default().max_heap_bytes, 4 << 30);
    // Beyond 4 GiB memory.grow returns -1 (no trap).
    let r = host.update(id, user(), "grow_huge", vec![]).unwrap();
    assert_eq!(grow_result(r), -1);
    // 1 page + 3 > a wasm_memory_limit of 3 pages: the update traps, rolled back.
    host.set_limits(Limits {
        wasm_memory_limit: 3 * 65536,
        ..Limits::default()
    });
    inc(&mut host, id);
    let e = host.update(id, user(), "grow3", vec![]).unwrap_err();
    assert!(
        matches!(&e, HostError::CanisterTrapped(m) if m.contains("wasm_memory_limit of 196608")),
        "{e:?}"
    );
    assert_eq!(host.heap_bytes(id), 65536);
    assert_eq!(counters(state(&mut host, id)), (1, 1, 1));
    // Queries are not bound by the wasm_memory_limit (only by the maximum).
    let r = host.query(id, user(), "grow3_query", vec![]).unwrap();
    assert_eq!(grow_result(r), 1);
    assert_eq!(host.heap_bytes(id), 65536);
    // Beyond max_heap_bytes memory.grow returns -1 in every kind of message.
    host.set_limits(Limits {
        max_heap_bytes: 2 * 65536,
        ..Limits::default()
    });
    let r = host.update(id, user(), "grow3", vec![]).unwrap();
    assert_eq!(grow_result(r), -1);
    let r = host.query(id, user(), "grow3_query", vec![]).unwrap();
    assert_eq!(grow_result(r), -1);
    // Within the limits growth commits.
    host.set_limits(Limits::default());
    let r = host.update(id, user(), "grow3", vec![]).unwrap();
    assert_eq!(grow_result(r), 1);
    assert_eq!(host.heap_bytes(id), 4 * 65536);
}

#[test]
fn absurd_stable_memory_sizes_trap_the_canister_not_the_host() {
    let (mut host, id) = setup();
    inc(&mut host, id);
    for method in [
        "stable_write_neg",
        "stable_read_neg",
        "stable_write_wrap",
        "stable_read_heap_oob",
    ] {
        let e = host.update(id, user(), method, vec![]).unwrap_err();
        assert!(
            matches!(&e, HostError::CanisterTrapped(m) if m.contains("out of bounds")),
            "{method}: {e:?}"
        );
        // Bounds are checked before charging: no huge instruction charge.
        assert!(host.last_instructions() < 1000, "{method}");
    }
    assert_eq!(counters(state(&mut host, id)), (1, 1, 1));
}

#[test]
fn oversized_reject_messages_and_call_payloads_trap() {
    let (mut host, id) = setup();
    assert_eq!(Limits::default().max_call_bytes, 2 * 1024 * 1024);
    // "nope" (4 bytes) against a reply limit of 3.
    host.set_limits(Limits {
        max_reply_bytes: 3,
        ..Limits::default()
    });
    let e = host.update(id, user(), "reject", vec![]).unwrap_err();
    assert!(
        matches!(&e, HostError::CanisterTrapped(m) if m.contains("msg_reject")),
        "{e:?}"
    );
    // Method "callee" (6) + 4 bytes of argument against a limit of 9 (a
    // self-call: the same-subnet limit applies).
    assert_eq!(
        Limits::default().max_same_subnet_call_bytes,
        10 * 1024 * 1024
    );
    host.set_limits(Limits {
        max_call_bytes: 9,
        max_same_subnet_call_bytes: 9,
        ..Limits::default()
    });
    let e = host.update(id, user(), "call_big", vec![]).unwrap_err();
    assert!(
        matches!(&e, HostError::CanisterTrapped(m) if m.contains("call_data_append")),
        "{e:?}"
    );
    host.set_limits(Limits {
        max_call_bytes: 9,
        max_same_subnet_call_bytes: 10,
        ..Limits::default()
    });
    host.update(id, user(), "call_big", vec![]).unwrap();
}
