//! `canister_inspect_message`: run before ingress updates only, never
//! persisted, with its own instruction limit; the update runs only if it
//! calls `ic0.accept_message`.

use embedded_ic_host::{Host, HostError, Limits, Principal};

/// `canister_inspect_message` behaves according to the mode at heap address
/// 0 (set by the update `set_mode`, which is always accepted). Every mode
/// first adds 1000 to the counters the update `inc` increments (global and
/// heap), which must never persist.
const WAT: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_caller_size" (func $caller_size (result i32)))
  (import "ic0" "msg_caller_copy" (func $caller_copy (param i32 i32 i32)))
  (import "ic0" "msg_method_name_size" (func $name_size (result i32)))
  (import "ic0" "msg_method_name_copy" (func $name_copy (param i32 i32 i32)))
  (import "ic0" "accept_message" (func $accept))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (import "ic0" "debug_print" (func $print (param i32 i32)))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (import "ic0" "stable64_read" (func $sread (param i64 i64 i64)))
  (import "ic0" "stable64_size" (func $ssize (result i64)))
  (import "ic0" "time" (func $time (result i64)))
  (import "ic0" "performance_counter" (func $perf (param i32) (result i64)))
  (import "ic0" "canister_self_size" (func $self_size (result i32)))
  (import "ic0" "canister_self_copy" (func $self_copy (param i32 i32 i32)))
  (import "ic0" "is_controller" (func $is_controller (param i32 i32) (result i32)))
  (import "ic0" "in_replicated_execution" (func $replicated (result i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (import "ic0" "global_timer_set" (func $timer_set (param i64) (result i64)))
  (import "ic0" "certified_data_set" (func $cert_set (param i32 i32)))
  (memory 1)
  (table 1 funcref)
  (elem (i32.const 0) $on_reply)
  (global $g (mut i32) (i32.const 0))
  ;; 0: mode; 100: heap counter; 104: timer counter; 200..: scratch;
  ;; 280: method name size; 291: "inspect: " followed by the name at 300.
  (data (i32.const 291) "inspect: ")
  (data (i32.const 1000) "boom")
  (data (i32.const 1010) "inc")
  (data (i32.const 1020) "ok")
  (data (i32.const 1030) "set_mode")

  (func $eq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $done
      (loop $l
        local.get $n i32.eqz br_if $done
        local.get $a i32.load8_u local.get $b i32.load8_u i32.ne
        if i32.const 0 return end
        local.get $a i32.const 1 i32.add local.set $a
        local.get $b i32.const 1 i32.add local.set $b
        local.get $n i32.const 1 i32.sub local.set $n
        br $l))
    i32.const 1)
  (func $name_is (param $p i32) (param $n i32) (result i32)
    i32.const 280 i32.load local.get $n i32.ne if i32.const 0 return end
    i32.const 300 local.get $p local.get $n call $eq)
  (func $boom i32.const 1000 i32.const 4 call $trap)

  (func $inspect (export "canister_inspect_message")
    (local $mode i32) (local $i i32)
    i32.const 280 call $name_size i32.store
    i32.const 300 i32.const 0 call $name_size call $name_copy
    i32.const 291 i32.const 9 call $name_size i32.add call $print
    i32.const 1030 i32.const 8 call $name_is if call $accept return end
    i32.const 0 i32.load local.set $mode
    global.get $g i32.const 1000 i32.add global.set $g
    i32.const 100 i32.const 100 i32.load i32.const 1000 i32.add i32.store
    ;; 0: accept
    local.get $mode i32.const 0 i32.eq if call $accept return end
    ;; 1: return without accepting
    local.get $mode i32.const 1 i32.eq if return end
    ;; 2: trap
    local.get $mode i32.const 2 i32.eq if call $boom end
    ;; 3: loop forever
    local.get $mode i32.const 3 i32.eq if (loop $l br $l) end
    ;; 4: accept only method "ok"
    local.get $mode i32.const 4 i32.eq if
      i32.const 1020 i32.const 2 call $name_is if call $accept end return end
    ;; 5: accept only callers whose first byte is 7
    local.get $mode i32.const 5 i32.eq if
      i32.const 200 i32.const 0 call $caller_size call $caller_copy
      i32.const 200 i32.load8_u i32.const 7 i32.eq if call $accept end return end
    ;; 6: write stable memory, then accept
    local.get $mode i32.const 6 i32.eq if
      i64.const 0 i64.const 100 i64.const 4 call $swrite call $accept return end
    ;; 7: accept twice
    local.get $mode i32.const 7 i32.eq if call $accept call $accept return end
    ;; 8: accept only if the argument starts with 42
    local.get $mode i32.const 8 i32.eq if
      call $arg_size i32.const 1 i32.ge_u if
        i32.const 200 i32.const 0 i32.const 1 call $arg_copy
        i32.const 200 i32.load8_u i32.const 42 i32.eq if call $accept end
      end
      return end
    ;; 9: read-only calls work (and it is not replicated execution), accept
    local.get $mode i32.const 9 i32.eq if
      call $time drop
      i32.const 0 call $perf drop
      call $ssize drop
      i64.const 200 i64.const 0 i64.const 8 call $sread
      i32.const 200 i32.const 0 call $self_size call $self_copy
      i32.const 200 call $self_size call $is_controller drop
      call $replicated if call $boom end
      call $accept return end
    ;; 10..14: what would respond or change state traps
    local.get $mode i32.const 10 i32.eq if call $accept call $reply return end
    local.get $mode i32.const 11 i32.eq if
      call $accept i64.const 1 call $timer_set drop return end
    local.get $mode i32.const 12 i32.eq if
      call $accept i32.const 1000 i32.const 4 call $cert_set return end
    local.get $mode i32.const 13 i32.eq if
      call $accept i64.const 1 call $sgrow drop return end
    local.get $mode i32.const 14 i32.eq if
      call $accept
      i32.const 200 i32.const 0 i32.const 1010 i32.const 3
      i32.const 0 i32.const 0 i32.const 0 i32.const 0 call $call_new return end
    ;; 15: burn instructions, then accept
    local.get $mode i32.const 15 i32.eq if
      (loop $l
        local.get $i i32.const 1 i32.add local.tee $i
        i32.const 10000 i32.lt_u br_if $l)
      call $accept return end
    ;; 16: grow the heap, then accept
    local.get $mode i32.const 16 i32.eq if
      i32.const 1 memory.grow drop call $accept return end
    call $accept)

  (func (export "canister_init") i64.const 1 call $sgrow drop)

  (func (export "canister_update set_mode")
    i32.const 0 i32.const 0 i32.const 1 call $arg_copy
    call $reply)

  (func $inc (export "canister_update inc")
    global.get $g i32.const 1 i32.add global.set $g
    i32.const 100 i32.const 100 i32.load i32.const 1 i32.add i32.store
    i64.const 200 i64.const 0 i64.const 4 call $sread
    i32.const 200 i32.const 200 i32.load i32.const 1 i32.add i32.store
    i64.const 0 i64.const 200 i64.const 4 call $swrite
    call $reply)

  ;; Calls "inc" on itself (no inspect for it), sets the timer, replies in the callback.
  (func (export "canister_update ok")
    i32.const 200 i32.const 0 call $self_size call $self_copy
    i32.const 200 call $self_size i32.const 1010 i32.const 3
    i32.const 0 i32.const 0 i32.const 0 i32.const 0 call $call_new
    call $call_perform drop
    i64.const 1 call $timer_set drop)
  (func $on_reply (param $env i32) call $reply)

  (func (export "canister_global_timer")
    i32.const 104 i32.const 104 i32.load i32.const 1 i32.add i32.store)

  (func (export "canister_update name_in_update") call $name_size drop call $reply)
  (func (export "canister_update accept_in_update") call $accept call $reply)
  (func (export "canister_query name_in_query") call $name_size drop call $reply)

  (func (export "canister_query get")
    i32.const 200 global.get $g i32.store
    i32.const 204 i32.const 100 i32.load i32.store
    i32.const 208 i32.const 104 i32.load i32.store
    i64.const 212 i64.const 0 i64.const 4 call $sread
    i32.const 200 i32.const 16 call $append
    call $reply))
"#;

fn user() -> Principal {
    Principal::from_slice(&[7; 29])
}

fn other_user() -> Principal {
    Principal::from_slice(&[8; 29])
}

fn setup() -> (Host, Principal) {
    let mut host = Host::new();
    let wasm = wat::parse_str(WAT).expect("valid wat");
    let id = host.install(&wasm, vec![], user()).expect("install");
    (host, id)
}

fn set_mode(host: &mut Host, id: Principal, mode: u8) {
    host.update(id, user(), "set_mode", vec![mode])
        .expect("set_mode");
}

/// (global, heap, timer, stable) counters.
fn counters(host: &mut Host, id: Principal) -> [u32; 4] {
    let b = host.query(id, user(), "get", vec![]).expect("get");
    std::array::from_fn(|i| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap()))
}

fn assert_not_accepted(r: Result<Vec<u8>, HostError>) {
    match r {
        Err(HostError::CanisterRejected { code: 4, message }) => {
            assert!(message.contains("did not accept the message"), "{message}")
        }
        other => panic!("expected a rejection by inspect_message, got {other:?}"),
    }
}

fn assert_trapped(r: Result<Vec<u8>, HostError>, what: &str) {
    match r {
        Err(HostError::CanisterTrapped(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("expected a trap containing {what:?}, got {other:?}"),
    }
}

#[test]
fn accepted_updates_run_and_inspect_changes_never_persist() {
    let (mut host, id) = setup();
    host.update(id, user(), "inc", vec![]).expect("inc");
    assert_eq!(counters(&mut host, id), [1, 1, 0, 1]);
    assert!(host.logs().iter().any(|l| l.ends_with("inspect: inc")));
}

#[test]
fn not_accepting_rejects_and_changes_nothing() {
    let (mut host, id) = setup();
    host.update(id, user(), "inc", vec![]).expect("inc");
    set_mode(&mut host, id, 1);
    let heap = host.heap_bytes(id);
    assert_not_accepted(host.update(id, user(), "inc", vec![]));
    assert_eq!(counters(&mut host, id), [1, 1, 0, 1]);
    assert_eq!(host.heap_bytes(id), heap);
    // A query method called as an update is an ingress message too.
    assert_not_accepted(host.update(id, user(), "get", vec![]));
}

#[test]
fn trapping_inspect_rejects() {
    let (mut host, id) = setup();
    set_mode(&mut host, id, 2);
    assert_trapped(host.update(id, user(), "inc", vec![]), "boom");
    assert_eq!(counters(&mut host, id), [0, 0, 0, 0]);
}

#[test]
fn looping_inspect_stops_at_its_own_limit() {
    let (mut host, id) = setup();
    assert_eq!(Limits::default().inspect_message_instructions, 200_000_000);
    host.set_limits(Limits {
        inspect_message_instructions: 1_000_000,
        ..Limits::default()
    });
    set_mode(&mut host, id, 3);
    assert_eq!(
        host.update(id, user(), "inc", vec![]),
        Err(HostError::InstructionLimitExceeded { limit: 1_000_000 })
    );
    assert_eq!(host.last_instructions(), 1_000_000);
    assert_eq!(counters(&mut host, id), [0, 0, 0, 0]);
}

#[test]
fn inspect_sees_method_name_caller_and_argument() {
    let (mut host, id) = setup();
    set_mode(&mut host, id, 4);
    assert_not_accepted(host.update(id, user(), "inc", vec![]));
    assert_eq!(counters(&mut host, id), [0, 0, 0, 0]);
    // "ok" is accepted; the self-call to "inc" it makes is not inspected,
    // nor is the timer it sets.
    host.update(id, user(), "ok", vec![]).expect("ok");
    assert_eq!(counters(&mut host, id), [1, 1, 0, 1]);
    host.tick();
    assert_eq!(counters(&mut host, id), [1, 1, 1, 1]);

    set_mode(&mut host, id, 5);
    assert_not_accepted(host.update(id, other_user(), "inc", vec![]));
    host.update(id, user(), "inc", vec![]).expect("inc by user");
    assert_eq!(counters(&mut host, id), [2, 2, 1, 2]);

    set_mode(&mut host, id, 8);
    assert_not_accepted(host.update(id, user(), "inc", vec![41]));
    host.update(id, user(), "inc", vec![42])
        .expect("inc with 42");
    assert_eq!(counters(&mut host, id), [3, 3, 1, 3]);
}

#[test]
fn read_only_system_calls_work_in_inspect() {
    let (mut host, id) = setup();
    set_mode(&mut host, id, 9);
    host.update(id, user(), "inc", vec![]).expect("inc");
    assert_eq!(counters(&mut host, id), [1, 1, 0, 1]);
    // Heap growth in inspect is discarded too.
    set_mode(&mut host, id, 16);
    host.update(id, user(), "inc", vec![]).expect("inc");
    assert_eq!(counters(&mut host, id), [2, 2, 0, 2]);
    assert_eq!(host.heap_bytes(id), 65536);
}

#[test]
fn state_changes_and_responses_trap_in_inspect() {
    let (mut host, id) = setup();
    for (mode, api) in [
        (6, "stable64_write"),
        (7, "accept_message"),
        (10, "msg_reply"),
        (11, "global_timer_set"),
        (12, "certified_data_set"),
        (13, "stable64_grow"),
        (14, "call_new"),
    ] {
        set_mode(&mut host, id, mode);
        assert_trapped(host.update(id, user(), "inc", vec![]), api);
    }
    assert_eq!(counters(&mut host, id), [0, 0, 0, 0]);
    assert_eq!(host.stable_memory_bytes(id), 65536);
    assert_eq!(host.global_timer(id), 0);
    assert!(host.certified_data(id).is_empty());
}

#[test]
fn method_name_and_accept_trap_outside_inspect() {
    let (mut host, id) = setup();
    assert_trapped(
        host.update(id, user(), "name_in_update", vec![]),
        "msg_method_name_size",
    );
    assert_trapped(
        host.update(id, user(), "accept_in_update", vec![]),
        "accept_message",
    );
    assert_trapped(
        host.query(id, user(), "name_in_query", vec![]),
        "msg_method_name_size",
    );
}

#[test]
fn queries_do_not_run_inspect() {
    let (mut host, id) = setup();
    set_mode(&mut host, id, 2);
    let logs = host.logs().len();
    assert_eq!(counters(&mut host, id), [0, 0, 0, 0]);
    assert_eq!(host.logs().len(), logs);
}

#[test]
fn inspect_instructions_are_not_charged_to_the_update() {
    let (mut host, id) = setup();
    host.update(id, user(), "inc", vec![]).expect("inc");
    let plain = host.last_instructions();
    set_mode(&mut host, id, 15);
    host.update(id, user(), "inc", vec![]).expect("inc");
    assert_eq!(host.last_instructions(), plain);
    assert!(plain < 10_000, "{plain}");
}
