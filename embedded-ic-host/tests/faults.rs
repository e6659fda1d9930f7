//! Bounded-wait calls (`msg_deadline`) and injected faults: a rejected
//! call, a bounded-wait call whose caller stops waiting after the callee
//! committed, a trapping install. Each fault fires once.

mod common;
use candid::{Decode, Encode, Principal};
use common::*;
use embedded_ic_host::{cycles_minting_canister, Fault, Host, CREATE_CANISTER_FEE};
use ic_management_canister_types::{
    CanisterIdRecord, CanisterInstallMode, CreateCanisterArgs, InstallCodeArgs,
};

const T: u128 = 1_000_000_000_000;

#[test]
fn bounded_wait_calls_carry_their_deadline() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let b = probe(&mut host);
    let r = forward_with(&mut host, a, b, "whoami", Encode!().unwrap(), 0, Some(10)).unwrap();
    let (_, _, deadline) = Decode!(&r.reply(), Principal, u32, u64).unwrap();
    assert_eq!(deadline, host.time() + 10_000_000_000);
    // Timeouts beyond 300 s are cut to 300 s.
    let r = forward_with(
        &mut host,
        a,
        b,
        "whoami",
        Encode!().unwrap(),
        0,
        Some(100_000),
    )
    .unwrap();
    let (_, _, deadline) = Decode!(&r.reply(), Principal, u32, u64).unwrap();
    assert_eq!(deadline, host.time() + 300_000_000_000);
    // The reply callback sees the deadline of the call it handles.
    let r = host
        .update(
            a,
            user(),
            "deadline_in_callback",
            Encode!(&b, &20u32).unwrap(),
        )
        .unwrap();
    assert_eq!(
        Decode!(&r, u64, u64).unwrap(),
        (0, host.time() + 20_000_000_000)
    );
    // Unbounded wait and ingress: 0.
    let r = forward(&mut host, a, b, "whoami", Encode!().unwrap(), 0);
    assert_eq!(Decode!(&r.reply(), Principal, u32, u64).unwrap().2, 0);
    assert_eq!(whoami(&mut host, b).2, 0);
}

#[test]
fn an_injected_reject_stops_the_next_call_before_it_executes() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let b = probe(&mut host);
    host.inject_fault(Fault::RejectCall {
        callee: b,
        method: "increment".into(),
        code: 2,
        message: "queue full".into(),
    });
    // Another method is not affected.
    forward(&mut host, a, b, "whoami", Encode!().unwrap(), 0).reply();
    let r = forward(&mut host, a, b, "increment", Encode!().unwrap(), 1000);
    assert_eq!(r.refunded(), 1000);
    assert_eq!(r.reject(), (2, "queue full".to_string()));
    assert_eq!(counter(&mut host, b), 0, "not executed");
    // Once only.
    forward(&mut host, a, b, "increment", Encode!().unwrap(), 0).reply();
    assert_eq!(counter(&mut host, b), 1);
    // Ingress is not a call from a canister: not affected.
    host.inject_fault(Fault::RejectCall {
        callee: b,
        method: "increment".into(),
        code: 2,
        message: "queue full".into(),
    });
    host.update(b, user(), "increment", Encode!().unwrap())
        .unwrap();
    assert_eq!(counter(&mut host, b), 2);
    // The management canister and the CMC can be the callee.
    host.inject_fault(Fault::RejectCall {
        callee: Principal::management_canister(),
        method: "create_canister".into(),
        code: 5,
        message: "management says no".into(),
    });
    host.inject_fault(Fault::RejectCall {
        callee: cycles_minting_canister(),
        method: "create_canister".into(),
        code: 2,
        message: "cmc busy".into(),
    });
    let n = host.all_canisters().len();
    let r = management(
        &mut host,
        a,
        "create_canister",
        Encode!(&CreateCanisterArgs::default()).unwrap(),
        T,
    );
    assert_eq!(r.refunded(), T);
    assert_eq!(r.reject(), (5, "management says no".to_string()));
    let r = forward(
        &mut host,
        a,
        cycles_minting_canister(),
        "create_canister",
        Encode!(&embedded_ic_host::host::CmcCreateCanisterArg::default()).unwrap(),
        T,
    );
    assert_eq!(r.reject(), (2, "cmc busy".to_string()));
    assert_eq!(host.all_canisters().len(), n);
}

#[test]
fn a_bounded_wait_call_can_time_out_after_the_callee_committed() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let b = probe(&mut host);
    host.inject_fault(Fault::TimeoutAfterExecution {
        callee: b,
        method: "increment".into(),
    });
    // Unbounded-wait calls are not affected (the fault stays armed).
    forward(&mut host, a, b, "increment", Encode!().unwrap(), 0).reply();
    assert_eq!(counter(&mut host, b), 1);
    let a0 = host.cycles(a).unwrap();
    let r = forward_with(
        &mut host,
        a,
        b,
        "increment",
        Encode!().unwrap(),
        1000,
        Some(30),
    )
    .unwrap();
    let (code, message) = r.reject();
    assert_eq!(code, 6, "SYS_UNKNOWN");
    assert!(message.contains("deadline expired"), "{message}");
    // It executed and committed.
    assert_eq!(counter(&mut host, b), 2);
    // The attached cycles are lost with the dropped response.
    assert_eq!(host.cycles(a), Some(a0 - 1000));
    // Once only.
    let r = forward_with(
        &mut host,
        a,
        b,
        "increment",
        Encode!().unwrap(),
        0,
        Some(30),
    )
    .unwrap();
    assert_eq!(Decode!(&r.reply(), u64).unwrap(), 3);
    // On the management canister: the canister is created, the caller does not learn its id.
    host.inject_fault(Fault::TimeoutAfterExecution {
        callee: Principal::management_canister(),
        method: "create_canister".into(),
    });
    let n = host.all_canisters().len();
    let r = forward_with(
        &mut host,
        a,
        Principal::management_canister(),
        "create_canister",
        Encode!(&CreateCanisterArgs::default()).unwrap(),
        T,
        Some(60),
    )
    .unwrap();
    assert_eq!(r.reject().0, 6);
    assert_eq!(host.all_canisters().len(), n + 1);
    let created = *host
        .all_canisters()
        .iter()
        .find(|id| host.controllers(**id) == Some(vec![a]) && host.module_hash(**id).is_none())
        .unwrap();
    assert_eq!(host.cycles(created), Some(T - CREATE_CANISTER_FEE));
}

#[test]
fn an_injected_install_trap_fails_the_next_install_only() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let r = management(
        &mut host,
        a,
        "create_canister",
        Encode!(&CreateCanisterArgs::default()).unwrap(),
        T,
    );
    let id = Decode!(&r.reply(), CanisterIdRecord).unwrap().canister_id;
    let install = |host: &mut Host, mode| {
        let args = InstallCodeArgs {
            mode,
            canister_id: id,
            wasm_module: probe_wasm().to_vec(),
            arg: Encode!().unwrap(),
            sender_canister_version: None,
        };
        management(host, a, "install_code", Encode!(&args).unwrap(), 0)
    };
    host.inject_fault(Fault::TrapInstall { canister: id });
    let (code, message) = install(&mut host, CanisterInstallMode::Install).reject();
    assert_eq!(code, 5);
    assert!(message.contains("trapped"), "{message}");
    assert_eq!(host.module_hash(id), None);
    install(&mut host, CanisterInstallMode::Install).reply();
    host.update(id, user(), "increment", Encode!().unwrap())
        .unwrap();
    // An upgrade that "traps" keeps the old state.
    host.inject_fault(Fault::TrapInstall { canister: id });
    install(&mut host, CanisterInstallMode::Upgrade(None)).reject();
    assert_eq!(counter(&mut host, id), 1);
    // The host's own install paths see it too.
    host.inject_fault(Fault::TrapInstall { canister: id });
    assert!(host.upgrade(id, probe_wasm(), Encode!().unwrap()).is_err());
    assert_eq!(counter(&mut host, id), 1);
    host.upgrade(id, probe_wasm(), Encode!().unwrap()).unwrap();
    assert_eq!(counter(&mut host, id), 0);
}
