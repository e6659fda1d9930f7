//! Several subnets: ids, canister id ranges, `subnet_self`, and the
//! system canister ids the default subnet never hands out.

mod common;
use candid::{Decode, Encode, Principal};
use common::*;
use embedded_ic_host::{cycles_minting_canister, Host};

fn counter_id(n: u64) -> Principal {
    let mut b = n.to_be_bytes().to_vec();
    b.extend_from_slice(&[1, 1]);
    Principal::from_slice(&b)
}

#[test]
fn the_default_subnet_keeps_the_old_ids_and_skips_the_cycles_minting_canister() {
    let mut host = Host::new();
    assert_eq!(host.subnets(), vec![host.default_subnet()]);
    assert_eq!(
        cycles_minting_canister().to_text(),
        "rkp4c-7iaaa-aaaaa-aaaca-cai"
    );
    let ids: Vec<Principal> = (0..6).map(|_| probe(&mut host)).collect();
    assert_eq!(ids[0].to_text(), "rwlgt-iiaaa-aaaaa-aaaaa-cai");
    assert_eq!(&ids[..4], &(0..4).map(counter_id).collect::<Vec<_>>()[..]);
    // Counter 4 is the cycles minting canister: skipped.
    assert_eq!(ids[4], counter_id(5));
    assert_eq!(ids[5], counter_id(6));
    assert!(!ids.contains(&cycles_minting_canister()));
    assert_eq!(host.next_canister_index(), 7);
    assert_eq!(host.reserve_canister_id(), counter_id(7));
    for id in &ids {
        assert_eq!(host.subnet_of(*id), Some(host.default_subnet()));
    }
    // A failed install takes no id.
    assert!(host.install(b"not wasm", vec![], user()).is_err());
    assert_eq!(host.next_canister_index(), 8);
}

#[test]
fn reserving_skips_the_cycles_minting_canister_too() {
    let mut host = Host::new();
    let ids: Vec<Principal> = (0..5).map(|_| host.reserve_canister_id()).collect();
    assert_eq!(ids[3], counter_id(3));
    assert_eq!(ids[4], counter_id(5));
    // Reserved ids are not canisters of the host until installed.
    assert!(!host.exists(ids[0]));
}

#[test]
fn added_subnets_have_their_own_id_and_range_and_canisters_see_their_subnet() {
    let mut host = Host::new();
    let default = host.default_subnet();
    let s1 = host.add_subnet();
    let s2 = host.add_subnet();
    assert_eq!(host.subnets(), vec![default, s1, s2]);
    assert!(s1 != default && s2 != s1);
    // Opaque self-authenticating-like ids (29 bytes), deterministic.
    assert_eq!(s1.as_slice().len(), 29);
    assert_eq!(Host::new().add_subnet(), s1);

    let a = probe(&mut host);
    let b = host
        .install_on(s1, probe_wasm(), Encode!().unwrap(), user())
        .unwrap();
    let c = host
        .install_on(s2, probe_wasm(), Encode!().unwrap(), user())
        .unwrap();
    let b2 = host
        .install_on(s1, probe_wasm(), Encode!().unwrap(), user())
        .unwrap();
    assert_eq!(a, counter_id(0));
    assert_eq!(b, counter_id(1 << 20));
    assert_eq!(b2, counter_id((1 << 20) + 1));
    assert_eq!(c, counter_id(2 << 20));
    assert_eq!(host.subnet_of(b), Some(s1));
    assert_eq!(host.subnet_of(c), Some(s2));
    assert_eq!(host.subnet_of(counter_id(999)), None);
    // ic0.subnet_self_copy.
    assert_eq!(whoami(&mut host, a).0, default);
    assert_eq!(whoami(&mut host, b).0, s1);
    assert_eq!(whoami(&mut host, c).0, s2);
    // The default subnet's counter is unaffected.
    assert_eq!(host.next_canister_index(), 1);
    // Unknown subnet.
    assert!(host
        .install_on(
            Principal::from_slice(&[9; 29]),
            probe_wasm(),
            Encode!().unwrap(),
            user()
        )
        .is_err());
    // Calls between subnets work.
    let r = forward(&mut host, a, b, "increment", Encode!().unwrap(), 0);
    assert_eq!(Decode!(&r.reply(), u64).unwrap(), 1);
}
