//! `Host::last_message_stats` and the message log: instructions and the
//! 4 KiB heap and stable pages each message dirtied.

use embedded_ic_host::state::Kind;
use embedded_ic_host::{Host, Principal};

const WAT: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (import "ic0" "global_timer_set" (func $timer_set (param i64) (result i64)))
  (memory 4)
  (func $fill_heap (param $at i32) (param $len i32)
    local.get $at i32.const 7 local.get $len memory.fill)
  ;; Writes 3 heap pages (one byte in each of pages 2, 3, 4) and 10 000
  ;; stable bytes at 4 096 (pages 1 to 3 of stable memory).
  (func (export "canister_update dirty")
    i32.const 8192 i32.const 1 call $fill_heap
    i32.const 12288 i32.const 1 call $fill_heap
    i32.const 16384 i32.const 1 call $fill_heap
    i64.const 1 call $sgrow drop
    i64.const 4096 i64.const 0 i64.const 10000 call $swrite
    call $reply)
  ;; Writes the same heap bytes again: no page changes.
  (func (export "canister_update same")
    i32.const 8192 i32.const 1 call $fill_heap
    call $reply)
  (func (export "canister_query q")
    i32.const 40960 i32.const 1 call $fill_heap
    call $reply)
  (func (export "canister_update arm")
    i64.const 1 call $timer_set drop
    call $reply)
  (func (export "canister_global_timer")
    i32.const 45056 i32.const 5000 call $fill_heap))
"#;

fn setup() -> (Host, Principal) {
    let mut host = Host::new();
    let wasm = wat::parse_str(WAT).unwrap();
    let id = host.install(&wasm, vec![], Principal::anonymous()).unwrap();
    (host, id)
}

#[test]
fn pages_dirtied_per_message() {
    let (mut host, id) = setup();
    let user = Principal::anonymous();
    host.update(id, user, "dirty", vec![]).unwrap();
    let s = host.last_message_stats().clone();
    assert_eq!(s.kind, Kind::Update);
    assert_eq!(s.method, "dirty");
    assert_eq!(s.instructions, host.last_instructions());
    assert_eq!(s.heap_dirty_pages, 3);
    assert_eq!(s.stable_dirty_pages, 3);
    assert_eq!(s.stable_accessed_pages, 3);
    assert!(s.committed);

    host.update(id, user, "same", vec![]).unwrap();
    let s = host.last_message_stats();
    assert_eq!((s.heap_dirty_pages, s.stable_dirty_pages), (0, 0));

    host.query(id, user, "q", vec![]).unwrap();
    let s = host.last_message_stats();
    assert_eq!(
        (s.kind, s.heap_dirty_pages, s.committed),
        (Kind::Query, 1, false)
    );
}

#[test]
fn the_log_holds_timers_too() {
    let (mut host, id) = setup();
    let user = Principal::anonymous();
    host.update(id, user, "dirty", vec![]).unwrap();
    host.record_messages(true);
    host.update(id, user, "arm", vec![]).unwrap();
    host.tick();
    let log = host.take_message_log();
    let names: Vec<(&str, Kind)> = log.iter().map(|m| (m.method.as_str(), m.kind)).collect();
    assert_eq!(
        names,
        [
            ("arm", Kind::Update),
            ("canister_global_timer", Kind::Timer)
        ]
    );
    // 5 000 bytes from 45 056 (a page boundary): 2 pages.
    assert_eq!(log[1].heap_dirty_pages, 2);
    assert!(log[1].instructions > 5_000);
    assert!(host.take_message_log().is_empty());
}
