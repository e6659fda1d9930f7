//! Cycles that move: attached to calls, accepted, refunded; and the
//! optional charging at a 13-node subnet's prices, with freezing.

mod common;
use candid::{Decode, Encode};
use common::*;
use embedded_ic_host::host::{
    EXECUTION_FEE, INGRESS_BYTE_FEE, INGRESS_MESSAGE_FEE, STORAGE_FEE_PER_GIB_SECOND,
};
use embedded_ic_host::state::Kind;
use embedded_ic_host::{Host, HostError, Limits};
use std::time::Duration;

const WAT: &str = r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_data_append" (func $call_append (param i32 i32)))
  (import "ic0" "call_cycles_add128" (func $cycles_add (param i64 i64)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (import "ic0" "canister_self_size" (func $self_size (result i32)))
  (import "ic0" "canister_self_copy" (func $self_copy (param i32 i32 i32)))
  (memory 2)
  (table 1 funcref)
  (elem (i32.const 0) $cb)
  (data (i32.const 10) "x")
  (func $cb (param i32))
  (func $new_self_call
    i32.const 100 i32.const 0 call $self_size call $self_copy
    i32.const 100 call $self_size i32.const 10 i32.const 1
    i32.const 0 i32.const 0 i32.const 0 i32.const 0 call $call_new)
  ;; Attaches 2^64 cycles: more than the balance, traps.
  (func (export "canister_update add_too_much")
    call $new_self_call
    i64.const 1 i64.const 0 call $cycles_add
    call $call_perform drop call $reply)
  ;; A self-call with 1000 cycles and 60 000 bytes of argument: replies
  ;; call_perform's result (4 bytes).
  (func (export "canister_update big_call")
    call $new_self_call
    i64.const 0 i64.const 1000 call $cycles_add
    i32.const 1000 i32.const 60000 call $call_append
    i32.const 200 call $call_perform i32.store
    i32.const 200 i32.const 4 call $append call $reply)
  (func (export "canister_update x") call $reply))"#;

#[test]
fn attached_cycles_are_accepted_in_part_and_the_rest_refunded() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let b = probe(&mut host);
    let (a0, b0) = (host.cycles(a).unwrap(), host.cycles(b).unwrap());
    let r = forward(
        &mut host,
        a,
        b,
        "accept_cycles",
        Encode!(&300u128).unwrap(),
        1000,
    );
    assert_eq!(r.refunded(), 700);
    let (available, accepted) = Decode!(&r.reply(), u128, u128).unwrap();
    assert_eq!((available, accepted), (1000, 300));
    assert_eq!(host.cycles(a), Some(a0 - 300));
    assert_eq!(host.cycles(b), Some(b0 + 300));
    // Not accepting anything: all refunded.
    let r = forward(&mut host, a, b, "increment", Encode!().unwrap(), 5000);
    assert_eq!(r.refunded(), 5000);
    assert_eq!(host.cycles(a), Some(a0 - 300));
    // A reject refunds too.
    let r = forward(&mut host, a, b, "no_such_method", Encode!().unwrap(), 5000);
    assert_eq!(r.refunded(), 5000);
    r.reject();
    assert_eq!(host.cycles(a), Some(a0 - 300));
    // The balance the canister reads is the host's.
    let bal = host
        .query(b, user(), "balance", Encode!().unwrap())
        .unwrap();
    assert_eq!(Decode!(&bal, u128, u128).unwrap(), (b0 + 300, b0 + 300));
}

#[test]
fn attaching_more_than_the_balance_traps() {
    let mut host = Host::new();
    let w = host
        .install(&wat::parse_str(WAT).unwrap(), vec![], user())
        .unwrap();
    let before = host.cycles(w).unwrap();
    let e = host.update(w, user(), "add_too_much", vec![]).unwrap_err();
    assert!(
        matches!(&e, HostError::CanisterTrapped(m) if m.contains("call_cycles_add128")),
        "{e:?}"
    );
    assert_eq!(host.cycles(w), Some(before));
}

#[test]
fn nothing_is_charged_by_default() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let b = probe(&mut host);
    let (a0, b0) = (host.cycles(a).unwrap(), host.cycles(b).unwrap());
    assert!(!host.charges_cycles());
    forward(&mut host, a, b, "increment", Encode!().unwrap(), 0).reply();
    host.advance_time(Duration::from_secs(86_400));
    assert_eq!((host.cycles(a), host.cycles(b)), (Some(a0), Some(b0)));
}

#[test]
fn charging_takes_the_ingress_execution_and_call_fees() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let b = probe(&mut host);
    host.set_charge_cycles(true);
    // An ingress update: the receiving canister pays ingress + execution.
    let before = host.cycles(b).unwrap();
    let arg = Encode!().unwrap();
    host.update(b, user(), "increment", arg.clone()).unwrap();
    let instructions = host.last_instructions() as u128;
    assert_eq!(
        before - host.cycles(b).unwrap(),
        INGRESS_MESSAGE_FEE + INGRESS_BYTE_FEE * arg.len() as u128 + EXECUTION_FEE + instructions
    );
    // A call: the sender pays the transmission fee, each side its executions.
    let (a0, b0) = (host.cycles(a).unwrap(), host.cycles(b).unwrap());
    let forward_arg = Encode!(
        &b,
        &"whoami".to_string(),
        &serde_bytes::ByteBuf::from(Encode!().unwrap()),
        &0u128,
        &None::<u32>
    )
    .unwrap();
    host.record_messages(true);
    host.update(a, user(), "forward", forward_arg.clone())
        .unwrap();
    let log = host.take_message_log();
    let kinds: Vec<(Kind, &str)> = log.iter().map(|m| (m.kind, m.method.as_str())).collect();
    assert_eq!(
        kinds,
        vec![
            (Kind::Update, "forward"),
            (Kind::Update, "whoami"),
            (Kind::ReplyCallback, "callback")
        ]
    );
    let call_fee = 260_000 + 1_000 * ("whoami".len() + Encode!().unwrap().len()) as u128;
    assert_eq!(
        a0 - host.cycles(a).unwrap(),
        INGRESS_MESSAGE_FEE
            + INGRESS_BYTE_FEE * forward_arg.len() as u128
            + EXECUTION_FEE
            + log[0].instructions as u128
            + call_fee
            + EXECUTION_FEE
            + log[2].instructions as u128
    );
    assert_eq!(
        b0 - host.cycles(b).unwrap(),
        EXECUTION_FEE + log[1].instructions as u128
    );
    // Queries are free.
    let b1 = host.cycles(b).unwrap();
    host.query(b, user(), "counter", Encode!().unwrap())
        .unwrap();
    assert_eq!(host.cycles(b), Some(b1));
}

#[test]
fn charging_takes_storage_fees_when_time_advances() {
    let mut host = Host::new();
    let a = probe(&mut host);
    host.update(a, user(), "write_100mib", Encode!().unwrap())
        .unwrap();
    host.set_charge_cycles(true);
    let before = host.cycles(a).unwrap();
    let bytes = host.memory_bytes(a) as u128;
    assert!(bytes > 100 << 20);
    host.advance_time(Duration::from_secs(3600));
    let expected = bytes * STORAGE_FEE_PER_GIB_SECOND * 3600 / (1 << 30);
    assert_eq!(before - host.cycles(a).unwrap(), expected);
    // set_time forward charges as well (backward does not).
    let t = host.time();
    host.set_time(t + 1_000_000_000);
    assert_eq!(
        before - host.cycles(a).unwrap(),
        expected + bytes * STORAGE_FEE_PER_GIB_SECOND / (1 << 30)
    );
    // idle_cycles_burned_per_day and the freezing requirement follow the memory.
    assert_eq!(
        host.idle_cycles_burned_per_day(a),
        bytes * STORAGE_FEE_PER_GIB_SECOND * 86_400 / (1 << 30)
    );
    assert_eq!(
        host.freezing_requirement(a),
        host.idle_cycles_burned_per_day(a) * 30
    );
}

#[test]
fn a_canister_below_its_freezing_requirement_is_frozen() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let b = probe(&mut host);
    host.set_charge_cycles(true);
    host.set_cycles(b, 1_000_000).unwrap();
    let e = host
        .update(b, user(), "increment", Encode!().unwrap())
        .unwrap_err();
    assert!(
        matches!(&e, HostError::CanisterRejected { code: 2, message } if message.contains("out of cycles")),
        "{e:?}"
    );
    assert_eq!(
        host.cycles(b),
        Some(1_000_000),
        "a rejected ingress costs nothing"
    );
    let (code, message) = forward(&mut host, a, b, "increment", Encode!().unwrap(), 0).reject();
    assert_eq!(code, 2);
    assert!(message.contains("out of cycles"), "{message}");
    assert_eq!(counter(&mut host, b), 0);
    // Topped up, it runs again.
    host.add_cycles(b, 1_000_000_000_000).unwrap();
    forward(&mut host, a, b, "increment", Encode!().unwrap(), 0).reply();
    assert_eq!(counter(&mut host, b), 1);
    // Without charging there is no freezing.
    host.set_charge_cycles(false);
    host.set_cycles(b, 0).unwrap();
    host.update(b, user(), "increment", Encode!().unwrap())
        .unwrap();
}

#[test]
fn call_perform_fails_when_the_liquid_balance_does_not_cover_the_call_fee() {
    let mut host = Host::new();
    let w = host
        .install(&wat::parse_str(WAT).unwrap(), vec![], user())
        .unwrap();
    host.set_charge_cycles(true);
    host.set_limits(Limits {
        update_instructions: 1_000_000,
        ..Limits::default()
    });
    // Enough to pass the freezing check with a small margin (6 M cycles
    // liquid while it runs), not for a 60 kB call (60 M cycles).
    let need = host.freezing_requirement(w) + INGRESS_MESSAGE_FEE + EXECUTION_FEE + 1_000_000;
    host.set_cycles(w, need + 100_000).unwrap();
    let r = host.update(w, user(), "big_call", vec![]).unwrap();
    assert_eq!(
        i32::from_le_bytes(r.try_into().unwrap()),
        2,
        "SYS_TRANSIENT"
    );
    // The attached 1000 cycles came back: only ingress and execution were paid.
    let instructions = host.last_instructions() as u128;
    assert_eq!(
        host.cycles(w),
        Some(need + 100_000 - INGRESS_MESSAGE_FEE - EXECUTION_FEE - instructions)
    );
    // With cycles the same call is sent.
    host.add_cycles(w, 1_000_000_000).unwrap();
    let r = host.update(w, user(), "big_call", vec![]).unwrap();
    assert_eq!(i32::from_le_bytes(r.try_into().unwrap()), 0);
}
