//! Certificates per subnet: the default subnet signs with the root key;
//! another subnet signs with its own key and adds the root key's
//! delegation (its public key and canister ranges), which the IC's
//! verifier follows from the root key.

use embedded_ic_host::{Host, Principal};
use ic_cbor::CertificateToCbor;
use ic_certificate_verification::VerifyCertificate;
use ic_certification::{Certificate, LookupResult};

const WAT: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "certified_data_set" (func $cert_set (param i32 i32)))
  (import "ic0" "data_certificate_size" (func $cert_size (result i32)))
  (import "ic0" "data_certificate_copy" (func $cert_copy (param i32 i32 i32)))
  (memory 1)
  (func (export "canister_update set")
    i32.const 1000 i32.const 0 call $arg_size call $arg_copy
    i32.const 1000 call $arg_size call $cert_set
    call $reply)
  (func (export "canister_query cert")
    (local $n i32)
    call $cert_size local.set $n
    i32.const 1000 i32.const 0 local.get $n call $cert_copy
    i32.const 1000 local.get $n call $append
    call $reply))
"#;

const MINUTE_NS: u128 = 60_000_000_000;

fn user() -> Principal {
    Principal::from_slice(&[7; 29])
}

fn verify(host: &Host, id: Principal, cbor: &[u8]) -> Result<Certificate, String> {
    let cert = Certificate::from_cbor(cbor).map_err(|e| e.to_string())?;
    cert.verify(
        id.as_slice(),
        &host.root_key(),
        &(host.time() as u128),
        &(5 * MINUTE_NS),
    )
    .map_err(|e| e.to_string())?;
    Ok(cert)
}

fn certified<'a>(cert: &'a Certificate, id: &Principal) -> LookupResult<'a> {
    cert.tree.lookup_path([
        b"canister".as_slice(),
        id.as_slice(),
        b"certified_data".as_slice(),
    ])
}

#[test]
fn another_subnet_signs_with_its_own_key_under_a_delegation_from_the_root_key() {
    let mut host = Host::new();
    let s1 = host.add_subnet();
    let wasm = wat::parse_str(WAT).unwrap();
    let a = host.install(&wasm, vec![], user()).unwrap();
    let b = host.install_on(s1, &wasm, vec![], user()).unwrap();
    host.update(a, user(), "set", b"on the default subnet".to_vec())
        .unwrap();
    host.update(b, user(), "set", b"on subnet 1".to_vec())
        .unwrap();

    // The default subnet: the root key, no delegation.
    let cbor = host.query(a, user(), "cert", vec![]).unwrap();
    let cert = verify(&host, a, &cbor).unwrap();
    assert!(cert.delegation.is_none());
    assert_eq!(
        certified(&cert, &a),
        LookupResult::Found(b"on the default subnet")
    );
    assert_eq!(
        host.subnet_public_key(host.default_subnet()),
        Some(host.root_key())
    );

    // Subnet 1: its own key and a delegation the verifier follows.
    let cbor = host.query(b, user(), "cert", vec![]).unwrap();
    assert_eq!(host.data_certificate(b).unwrap(), cbor);
    let cert = verify(&host, b, &cbor).expect("verifies from the root key");
    assert_eq!(certified(&cert, &b), LookupResult::Found(b"on subnet 1"));
    let delegation = cert.delegation.as_ref().expect("a delegation");
    assert_eq!(delegation.subnet_id, s1.as_slice());
    let subnet_key = host.subnet_public_key(s1).unwrap();
    assert_ne!(subnet_key, host.root_key());
    let inner = Certificate::from_cbor(&delegation.certificate).unwrap();
    assert_eq!(
        inner.tree.lookup_path([
            b"subnet".as_slice(),
            s1.as_slice(),
            b"public_key".as_slice()
        ]),
        LookupResult::Found(&subnet_key[..])
    );
    // Each subnet's tree holds its own canisters only.
    assert!(!matches!(certified(&cert, &a), LookupResult::Found(_)));
    // The delegation covers subnet 1's range, not the default subnet's
    // canisters: the same certificate does not verify for `a`.
    let e = verify(&host, a, &cbor).unwrap_err();
    assert!(e.to_lowercase().contains("range"), "{e}");
    // A host with another root key does not accept it.
    let mut other = Host::new();
    other.set_subnet_seed(b"another root");
    let cert = Certificate::from_cbor(&cbor).unwrap();
    assert!(cert
        .verify(
            b.as_slice(),
            &other.root_key(),
            &(host.time() as u128),
            &(5 * MINUTE_NS)
        )
        .is_err());
    // After the root key changes, the delegation is signed anew.
    host.set_subnet_seed(b"another root");
    let cbor = host.query(b, user(), "cert", vec![]).unwrap();
    verify(&host, b, &cbor).expect("verifies against the new root key");
}
