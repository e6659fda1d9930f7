//! The management canister as canisters call it: create, install (gzip,
//! modes, atomicity), settings, status, cycles deposits, stop/start,
//! uninstall and delete, with the controllers checked.

mod common;
use candid::{Decode, Encode, Nat, Principal};
use common::*;
use embedded_ic_host::{Host, HostError, RunStatus, CREATE_CANISTER_FEE};
use ic_management_canister_types::{
    CanisterIdRecord, CanisterInstallMode, CanisterSettings, CanisterStatusResult,
    CanisterStatusType, CreateCanisterArgs, InstallCodeArgs, UpdateSettingsArgs, UpgradeFlags,
};
use sha2::{Digest, Sha256};

const T: u128 = 1_000_000_000_000;

fn create(host: &mut Host, via: Principal, cycles: u128) -> Principal {
    let r = management(
        host,
        via,
        "create_canister",
        Encode!(&CreateCanisterArgs::default()).unwrap(),
        cycles,
    );
    assert_eq!(r.refunded(), 0);
    Decode!(&r.reply(), CanisterIdRecord).unwrap().canister_id
}

fn install_code(
    host: &mut Host,
    via: Principal,
    id: Principal,
    mode: CanisterInstallMode,
    wasm: &[u8],
) -> Forwarded {
    let args = InstallCodeArgs {
        mode,
        canister_id: id,
        wasm_module: wasm.to_vec(),
        arg: Encode!().unwrap(),
        sender_canister_version: None,
    };
    management(host, via, "install_code", Encode!(&args).unwrap(), 0)
}

fn id_arg(id: Principal) -> Vec<u8> {
    Encode!(&CanisterIdRecord { canister_id: id }).unwrap()
}

fn status(host: &mut Host, via: Principal, id: Principal) -> CanisterStatusResult {
    let r = management(host, via, "canister_status", id_arg(id), 0);
    Decode!(&r.reply(), CanisterStatusResult).unwrap()
}

#[test]
fn create_canister_makes_an_empty_canister_on_the_callers_subnet() {
    let mut host = Host::new();
    let s1 = host.add_subnet();
    let a = probe(&mut host);
    let b = host
        .install_on(s1, probe_wasm(), Encode!().unwrap(), user())
        .unwrap();
    let before = host.cycles(a).unwrap();
    let id = create(&mut host, a, 2 * T);
    // The fee is kept, the rest is the new canister's balance.
    assert_eq!(host.cycles(id), Some(2 * T - CREATE_CANISTER_FEE));
    assert_eq!(host.cycles(a), Some(before - 2 * T));
    assert!(host.exists(id));
    assert!(!host.canisters().contains(&id), "no module yet");
    assert!(host.all_canisters().contains(&id));
    assert_eq!(host.controllers(id), Some(vec![a]));
    assert_eq!(host.module_hash(id), None);
    assert_eq!(host.subnet_of(id), Some(host.default_subnet()));
    assert_eq!(host.run_status(id), Some(RunStatus::Running));
    // A canister on another subnet creates on its own subnet.
    let on_s1 = create(&mut host, b, T);
    assert_eq!(host.subnet_of(on_s1), Some(s1));
    // Settings: controllers given.
    let args = CreateCanisterArgs {
        settings: Some(CanisterSettings {
            controllers: Some(vec![a, user()]),
            freezing_threshold: Some(Nat::from(1000u32)),
            ..Default::default()
        }),
        sender_canister_version: None,
    };
    let r = management(&mut host, a, "create_canister", Encode!(&args).unwrap(), T);
    let c = Decode!(&r.reply(), CanisterIdRecord).unwrap().canister_id;
    assert_eq!(host.controllers(c), Some(vec![a, user()]));
    let st = status(&mut host, a, c);
    assert_eq!(st.settings.freezing_threshold, Nat::from(1000u32));
    // Too few cycles: rejected, everything refunded.
    let before = host.cycles(a).unwrap();
    let r = management(
        &mut host,
        a,
        "create_canister",
        Encode!(&CreateCanisterArgs::default()).unwrap(),
        CREATE_CANISTER_FEE - 1,
    );
    assert_eq!(r.refunded(), CREATE_CANISTER_FEE - 1);
    let (code, message) = r.reject();
    assert_eq!(code, 4, "CANISTER_REJECT (IC0403)");
    assert!(message.contains("fee"), "{message}");
    assert_eq!(host.cycles(a), Some(before));
    // Ingress can still reach an empty canister only to be told it has no module.
    let e = host
        .update(id, user(), "increment", Encode!().unwrap())
        .unwrap_err();
    assert!(
        matches!(&e, HostError::CanisterRejected { code: 5, message } if message.contains("no Wasm module")),
        "{e:?}"
    );
    // ic0.cost_create_canister agrees with the fee.
    let fee = host
        .query(a, user(), "creation_fee", Encode!().unwrap())
        .unwrap();
    assert_eq!(Decode!(&fee, u128).unwrap(), CREATE_CANISTER_FEE);
}

#[test]
fn install_code_installs_gzip_modules_and_checks_controllers() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let b = probe(&mut host);
    let id = create(&mut host, a, T);
    // Not a controller.
    let (code, message) = install_code(
        &mut host,
        b,
        id,
        CanisterInstallMode::Install,
        probe_wasm_gz(),
    )
    .reject();
    assert_eq!(code, 5);
    assert!(message.contains("Only the controllers"), "{message}");
    // Unknown canister: code 3.
    let ghost = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 200, 1, 1]);
    let (code, _) = install_code(
        &mut host,
        a,
        ghost,
        CanisterInstallMode::Install,
        probe_wasm(),
    )
    .reject();
    assert_eq!(code, 3);
    // A gzip-compressed module.
    install_code(
        &mut host,
        a,
        id,
        CanisterInstallMode::Install,
        probe_wasm_gz(),
    )
    .reply();
    let gz_hash: [u8; 32] = Sha256::digest(probe_wasm_gz()).into();
    assert_eq!(host.module_hash(id), Some(gz_hash));
    assert!(host.canisters().contains(&id));
    assert_eq!(host.cycles(id), Some(T - CREATE_CANISTER_FEE));
    // The new canister's own is_controller sees its controllers.
    let is_controller = |host: &mut Host, p: Principal| {
        let r = host
            .query(id, user(), "controller_check", Encode!(&p).unwrap())
            .unwrap();
        Decode!(&r, bool).unwrap()
    };
    assert!(is_controller(&mut host, a));
    assert!(!is_controller(&mut host, user()));
    assert_eq!(
        Decode!(
            &host
                .update(id, user(), "increment", Encode!().unwrap())
                .unwrap(),
            u64
        )
        .unwrap(),
        1
    );
    // Install again: not empty.
    let (code, message) =
        install_code(&mut host, a, id, CanisterInstallMode::Install, probe_wasm()).reject();
    assert_eq!(code, 5);
    assert!(message.contains("not empty"), "{message}");
    // Upgrade (skipping pre_upgrade): the heap is fresh, the module hash follows.
    install_code(
        &mut host,
        a,
        id,
        CanisterInstallMode::Upgrade(Some(UpgradeFlags {
            skip_pre_upgrade: Some(true),
            wasm_memory_persistence: None,
        })),
        probe_wasm(),
    )
    .reply();
    let raw_hash: [u8; 32] = Sha256::digest(probe_wasm()).into();
    assert_eq!(host.module_hash(id), Some(raw_hash));
    assert_eq!(counter(&mut host, id), 0);
    // canister_status.
    let st = status(&mut host, a, id);
    assert_eq!(st.status, CanisterStatusType::Running);
    assert_eq!(st.module_hash, Some(raw_hash.to_vec()));
    assert_eq!(st.settings.controllers, vec![a]);
    assert_eq!(st.settings.freezing_threshold, Nat::from(2_592_000u32));
    assert_eq!(st.cycles, Nat::from(T - CREATE_CANISTER_FEE));
    assert_eq!(
        st.memory_size,
        Nat::from(host.heap_bytes(id) + host.stable_memory_bytes(id))
    );
    assert!(st.idle_cycles_burned_per_day > 0u8);
    assert_eq!(st.version, host.canister_version(id).unwrap());
    assert_eq!(st.query_stats.num_calls_total, Nat::from(0u8));
    // Not a controller: no status.
    let (code, _) = management(&mut host, b, "canister_status", id_arg(id), 0).reject();
    assert_eq!(code, 5);
    // Upgrading an empty canister fails.
    let empty = create(&mut host, a, T);
    let (code, message) = install_code(
        &mut host,
        a,
        empty,
        CanisterInstallMode::Upgrade(None),
        probe_wasm(),
    )
    .reject();
    assert_eq!(code, 5);
    assert!(message.contains("no Wasm module"), "{message}");
    // Reinstall of an empty canister installs.
    install_code(
        &mut host,
        a,
        empty,
        CanisterInstallMode::Reinstall,
        probe_wasm(),
    )
    .reply();
    assert!(host.canisters().contains(&empty));
}

#[test]
fn a_trapping_init_leaves_the_canister_as_it_was() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let id = create(&mut host, a, T);
    // A module whose init traps leaves nothing behind.
    let trapping = wat::parse_str(
        r#"(module
            (import "ic0" "trap" (func $trap (param i32 i32)))
            (memory 1) (data (i32.const 0) "init fails")
            (func (export "canister_init") i32.const 0 i32.const 10 call $trap))"#,
    )
    .unwrap();
    let (code, message) =
        install_code(&mut host, a, id, CanisterInstallMode::Install, &trapping).reject();
    assert_eq!(code, 5);
    assert!(message.contains("init fails"), "{message}");
    assert!(host.exists(id));
    assert_eq!(host.module_hash(id), None);
    assert!(!host.canisters().contains(&id));
    // A trapping post_upgrade keeps the old module and state.
    install_code(&mut host, a, id, CanisterInstallMode::Install, probe_wasm()).reply();
    host.update(id, user(), "increment", Encode!().unwrap())
        .unwrap();
    let trapping_upgrade = wat::parse_str(
        r#"(module
            (import "ic0" "trap" (func $trap (param i32 i32)))
            (memory 1) (data (i32.const 0) "post fails")
            (func (export "canister_post_upgrade") i32.const 0 i32.const 10 call $trap))"#,
    )
    .unwrap();
    let (code, message) = install_code(
        &mut host,
        a,
        id,
        CanisterInstallMode::Upgrade(None),
        &trapping_upgrade,
    )
    .reject();
    assert_eq!(code, 5);
    assert!(message.contains("post fails"), "{message}");
    assert_eq!(counter(&mut host, id), 1);
    assert_eq!(
        host.module_hash(id),
        Some(Sha256::digest(probe_wasm()).into())
    );
}

#[test]
fn update_settings_changes_controllers_and_limits() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let id = create(&mut host, a, T);
    install_code(&mut host, a, id, CanisterInstallMode::Install, probe_wasm()).reply();
    let args = UpdateSettingsArgs {
        canister_id: id,
        settings: CanisterSettings {
            controllers: Some(vec![a, user()]),
            freezing_threshold: Some(Nat::from(86_400u32)),
            reserved_cycles_limit: Some(Nat::from(0u8)),
            wasm_memory_limit: Some(Nat::from(1u64 << 30)),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    management(&mut host, a, "update_settings", Encode!(&args).unwrap(), 0).reply();
    assert_eq!(host.controllers(id), Some(vec![a, user()]));
    let r = host
        .query(id, user(), "controller_check", Encode!(&user()).unwrap())
        .unwrap();
    assert!(Decode!(&r, bool).unwrap());
    let st = status(&mut host, a, id);
    assert_eq!(st.settings.freezing_threshold, Nat::from(86_400u32));
    assert_eq!(st.settings.reserved_cycles_limit, Nat::from(0u8));
    assert_eq!(st.settings.wasm_memory_limit, Nat::from(1u64 << 30));
    // Removing a from the controllers locks it out.
    let args = UpdateSettingsArgs {
        canister_id: id,
        settings: CanisterSettings {
            controllers: Some(vec![user()]),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    management(&mut host, a, "update_settings", Encode!(&args).unwrap(), 0).reply();
    let (code, _) = management(&mut host, a, "canister_status", id_arg(id), 0).reject();
    assert_eq!(code, 5);
    // Eleven controllers are too many.
    let b = probe(&mut host);
    let args = UpdateSettingsArgs {
        canister_id: b,
        settings: CanisterSettings {
            controllers: Some(vec![a; 11]),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    host.set_controllers(b, vec![a]).unwrap();
    let (code, _) =
        management(&mut host, a, "update_settings", Encode!(&args).unwrap(), 0).reject();
    assert_eq!(code, 4);
}

#[test]
fn deposit_cycles_accepts_everything_and_other_methods_refund() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let b = probe(&mut host);
    let (a0, b0) = (host.cycles(a).unwrap(), host.cycles(b).unwrap());
    let r = management(&mut host, a, "deposit_cycles", id_arg(b), 3 * T);
    assert_eq!(r.refunded(), 0);
    r.reply();
    assert_eq!(host.cycles(a), Some(a0 - 3 * T));
    assert_eq!(host.cycles(b), Some(b0 + 3 * T));
    // canister_status with cycles attached: all refunded.
    host.set_controllers(b, vec![a]).unwrap();
    let r = management(&mut host, a, "canister_status", id_arg(b), T);
    assert_eq!(r.refunded(), T);
    assert_eq!(host.cycles(a), Some(a0 - 3 * T));
    // raw_rand still works.
    let r = management(&mut host, a, "raw_rand", Encode!().unwrap(), 0);
    assert_eq!(Decode!(&r.reply(), Vec<u8>).unwrap().len(), 32);
    // An unknown method.
    let (code, _) = management(&mut host, a, "no_such_method", Encode!().unwrap(), 0).reject();
    assert_eq!(code, 4);
    // An argument that does not decode.
    let (code, _) = management(&mut host, a, "canister_status", Encode!().unwrap(), 0).reject();
    assert_eq!(code, 4);
}

#[test]
fn stopped_canisters_reject_everything_until_started_and_only_stopped_ones_can_be_deleted() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let b = probe(&mut host);
    host.set_controllers(b, vec![a]).unwrap();
    // Not stopped: cannot delete.
    let (code, message) = management(&mut host, a, "delete_canister", id_arg(b), 0).reject();
    assert_eq!(code, 5);
    assert!(message.contains("must be stopped"), "{message}");
    // Stop: nothing open, stopped at once.
    management(&mut host, a, "stop_canister", id_arg(b), 0).reply();
    assert!(host.is_stopped(b));
    let st = status(&mut host, a, b);
    assert_eq!(st.status, CanisterStatusType::Stopped);
    // Ingress update and query are rejected (code 5, "is stopped").
    for r in [
        host.update(b, user(), "increment", Encode!().unwrap()),
        host.query(b, user(), "counter", Encode!().unwrap()),
    ] {
        let e = r.unwrap_err();
        assert!(
            matches!(&e, HostError::CanisterRejected { code: 5, message } if message.contains("is stopped")),
            "{e:?}"
        );
    }
    // So are calls.
    let (code, message) = forward(&mut host, a, b, "increment", Encode!().unwrap(), T).reject();
    assert_eq!(code, 5);
    assert!(message.contains("is stopped"), "{message}");
    // Stopping again is fine.
    management(&mut host, a, "stop_canister", id_arg(b), 0).reply();
    // Start: works again.
    management(&mut host, a, "start_canister", id_arg(b), 0).reply();
    assert!(!host.is_stopped(b));
    assert_eq!(whoami(&mut host, b).1, 1, "ic0.canister_status: running");
    forward(&mut host, a, b, "increment", Encode!().unwrap(), 0).reply();
    // Not a controller cannot stop.
    let (code, _) = management(&mut host, b, "stop_canister", id_arg(a), 0).reject();
    assert_eq!(code, 5);
    // Stop and delete.
    management(&mut host, a, "stop_canister", id_arg(b), 0).reply();
    management(&mut host, a, "delete_canister", id_arg(b), 0).reply();
    assert!(!host.exists(b));
    assert!(!host.all_canisters().contains(&b));
    let (code, _) = management(&mut host, a, "canister_status", id_arg(b), 0).reject();
    assert_eq!(code, 3);
    let (code, _) = forward(&mut host, a, b, "increment", Encode!().unwrap(), 0).reject();
    assert_eq!(code, 3);
}

#[test]
fn uninstall_code_leaves_an_empty_canister() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let id = create(&mut host, a, T);
    install_code(&mut host, a, id, CanisterInstallMode::Install, probe_wasm()).reply();
    host.update(id, user(), "increment", Encode!().unwrap())
        .unwrap();
    let version = host.canister_version(id).unwrap();
    let cycles = host.cycles(id).unwrap();
    management(&mut host, a, "uninstall_code", id_arg(id), 0).reply();
    assert!(host.exists(id));
    assert_eq!(host.module_hash(id), None);
    assert_eq!(host.cycles(id), Some(cycles));
    assert_eq!(host.canister_version(id), Some(version + 1));
    assert_eq!(host.controllers(id), Some(vec![a]));
    let st = status(&mut host, a, id);
    assert_eq!(st.module_hash, None);
    // Installing again starts from scratch.
    install_code(&mut host, a, id, CanisterInstallMode::Install, probe_wasm()).reply();
    assert_eq!(counter(&mut host, id), 0);
}

/// A canister that makes a call and replies at once, so its call context
/// stays open after its ingress message answered; its callbacks record
/// `ic0.canister_status` (what they saw while running).
const OPEN_CONTEXT: &str = r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (import "ic0" "canister_status" (func $status (result i32)))
  (memory 1)
  (table 2 funcref)
  (elem (i32.const 0) $on_reply $on_reject)
  (data (i32.const 200) "whoami")
  (func $on_reply (param i32) i32.const 0 call $status i32.store i32.const 4 i32.const 1 i32.store)
  (func $on_reject (param i32) i32.const 0 call $status i32.store i32.const 4 i32.const 2 i32.store)
  ;; The argument is the callee's id.
  (func (export "canister_update call_and_reply")
    i32.const 100 i32.const 0 call $arg_size call $arg_copy
    i32.const 100 call $arg_size i32.const 200 i32.const 6
    i32.const 0 i32.const 0 i32.const 1 i32.const 0 call $call_new
    call $call_perform drop
    call $reply)
  (func (export "canister_query state")
    i32.const 0 i32.const 8 call $append call $reply))"#;

#[test]
fn stop_waits_for_open_call_contexts_and_callbacks_still_run_while_stopping() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let target = probe(&mut host);
    let w = host
        .install(&wat::parse_str(OPEN_CONTEXT).unwrap(), vec![], a)
        .unwrap();
    host.set_controllers(w, vec![a]).unwrap();
    // w calls target.whoami and replies at once: the call is queued, w's
    // context stays open.
    host.update(w, user(), "call_and_reply", target.as_slice().to_vec())
        .unwrap();
    // a asks to stop w: w is stopping until its callback ran, then stopped,
    // and only then does stop_canister answer.
    management(&mut host, a, "stop_canister", id_arg(w), 0).reply();
    assert!(host.is_stopped(w));
    let s = host.query(w, user(), "state", vec![]);
    assert!(s.is_err(), "stopped: queries rejected");
    management(&mut host, a, "start_canister", id_arg(w), 0).reply();
    let s = host.query(w, user(), "state", vec![]).unwrap();
    // The reply callback ran while w was stopping (status 2).
    assert_eq!(s, [2, 0, 0, 0, 1, 0, 0, 0]);
}
