//! The cycles minting canister stand-in's `create_canister`, with subnet
//! selection, as canisters call it.

mod common;
use candid::{Decode, Encode, Nat, Principal};
use common::*;
use embedded_ic_host::host::{
    CmcCreateCanisterArg, CmcCreateCanisterError, CmcCreateCanisterResult, SubnetFilter,
    SubnetSelection,
};
use embedded_ic_host::{cycles_minting_canister, Host, CREATE_CANISTER_FEE};
use ic_management_canister_types::CanisterSettings;

const T: u128 = 1_000_000_000_000;

fn cmc_create(
    host: &mut Host,
    via: Principal,
    arg: CmcCreateCanisterArg,
    cycles: u128,
) -> (CmcCreateCanisterResult, u128) {
    let r = forward(
        host,
        via,
        cycles_minting_canister(),
        "create_canister",
        Encode!(&arg).unwrap(),
        cycles,
    );
    let refunded = r.refunded();
    (
        Decode!(&r.reply(), CmcCreateCanisterResult).unwrap(),
        refunded,
    )
}

#[test]
fn the_cycles_minting_canister_creates_on_the_selected_subnet() {
    let mut host = Host::new();
    let s1 = host.add_subnet();
    let a = probe(&mut host);
    let a0 = host.cycles(a).unwrap();
    // No selection: the default subnet, controlled by the caller.
    let (r, refunded) = cmc_create(&mut host, a, CmcCreateCanisterArg::default(), 2 * T);
    let CmcCreateCanisterResult::Ok(id) = r else {
        panic!("{r:?}")
    };
    assert_eq!(refunded, 0);
    assert_eq!(host.subnet_of(id), Some(host.default_subnet()));
    assert_eq!(host.controllers(id), Some(vec![a]));
    assert_eq!(host.cycles(id), Some(2 * T - CREATE_CANISTER_FEE));
    assert_eq!(host.cycles(a), Some(a0 - 2 * T));
    // A named subnet, with settings.
    let arg = CmcCreateCanisterArg {
        settings: Some(CanisterSettings {
            controllers: Some(vec![a, user()]),
            ..Default::default()
        }),
        subnet_selection: Some(SubnetSelection::Subnet { subnet: s1 }),
        subnet_type: None,
    };
    let (r, _) = cmc_create(&mut host, a, arg, T);
    let CmcCreateCanisterResult::Ok(on_s1) = r else {
        panic!("{r:?}")
    };
    assert_eq!(host.subnet_of(on_s1), Some(s1));
    assert_eq!(host.controllers(on_s1), Some(vec![a, user()]));
    // A subnet type filter: the default subnet.
    let arg = CmcCreateCanisterArg {
        subnet_selection: Some(SubnetSelection::Filter(SubnetFilter {
            subnet_type: Some("application".into()),
        })),
        ..Default::default()
    };
    let (r, _) = cmc_create(&mut host, a, arg, T);
    let CmcCreateCanisterResult::Ok(id) = r else {
        panic!("{r:?}")
    };
    assert_eq!(host.subnet_of(id), Some(host.default_subnet()));
}

#[test]
fn the_cycles_minting_canister_refunds_when_it_cannot_create() {
    let mut host = Host::new();
    let a = probe(&mut host);
    let a0 = host.cycles(a).unwrap();
    let before = host.all_canisters().len();
    // Too few cycles.
    let (r, refunded) = cmc_create(&mut host, a, CmcCreateCanisterArg::default(), T / 10);
    assert_eq!(refunded, T / 10);
    match r {
        CmcCreateCanisterResult::Err(CmcCreateCanisterError::Refunded {
            refund_amount,
            create_error,
        }) => {
            assert_eq!(refund_amount, Nat::from(T / 10));
            assert!(create_error.contains("fee"), "{create_error}");
        }
        r => panic!("{r:?}"),
    }
    // An unknown subnet.
    let arg = CmcCreateCanisterArg {
        subnet_selection: Some(SubnetSelection::Subnet {
            subnet: Principal::from_slice(&[3; 29]),
        }),
        ..Default::default()
    };
    let (r, refunded) = cmc_create(&mut host, a, arg, T);
    assert_eq!(refunded, T);
    assert!(
        matches!(&r, CmcCreateCanisterResult::Err(CmcCreateCanisterError::Refunded { create_error, .. }) if create_error.contains("does not exist")),
        "{r:?}"
    );
    assert_eq!(host.cycles(a), Some(a0));
    assert_eq!(host.all_canisters().len(), before);
    // Other methods are not there; the id is not an ingress target.
    let (code, _) = forward(
        &mut host,
        a,
        cycles_minting_canister(),
        "notify_top_up",
        Encode!().unwrap(),
        0,
    )
    .reject();
    assert_eq!(code, 5);
    assert!(host
        .update(cycles_minting_canister(), user(), "create_canister", vec![])
        .is_err());
    let subnets = forward(
        &mut host,
        a,
        cycles_minting_canister(),
        "get_default_subnets",
        Encode!().unwrap(),
        0,
    );
    assert_eq!(
        Decode!(&subnets.reply(), Vec<Principal>).unwrap(),
        vec![host.default_subnet()]
    );
}
