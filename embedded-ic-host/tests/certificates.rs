//! Data certificates and `raw_rand`: queries get a certificate signed by
//! the host's subnet key that the IC's own verifier accepts against
//! `Host::root_key()` (and rejects once tampered with); updates get none;
//! the management canister's `raw_rand` answers 32 deterministic bytes.

use embedded_ic_host::{Host, HostError, Principal};
use ic_cbor::CertificateToCbor;
use ic_certificate_verification::VerifyCertificate;
use ic_certification::{Certificate, HashTree, LookupResult};

/// Update `set`: certified data := argument. Query `cert`: replies its data
/// certificate. Update `present`: replies `data_certificate_present` as one
/// byte. Update `size_in_update`: calls `data_certificate_size` (traps).
/// Update `rand`: calls the management canister's `raw_rand` with `()`
/// and replies the callback's argument (the Candid reply) or "rejected".
const WAT: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "certified_data_set" (func $cert_set (param i32 i32)))
  (import "ic0" "data_certificate_present" (func $cert_present (result i32)))
  (import "ic0" "data_certificate_size" (func $cert_size (result i32)))
  (import "ic0" "data_certificate_copy" (func $cert_copy (param i32 i32 i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_data_append" (func $call_append (param i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (memory 1)
  (table 2 funcref)
  (elem (i32.const 0) $on_reply $on_reject)
  (data (i32.const 100) "raw_rand")
  (data (i32.const 110) "DIDL\00\00")
  (data (i32.const 120) "rejected")

  (func (export "canister_update set")
    i32.const 1000 i32.const 0 call $arg_size call $arg_copy
    i32.const 1000 call $arg_size call $cert_set
    call $reply)
  (func (export "canister_query cert")
    (local $n i32)
    call $cert_size local.set $n
    i32.const 1000 i32.const 0 local.get $n call $cert_copy
    i32.const 1000 local.get $n call $append
    call $reply)
  (func (export "canister_update present")
    i32.const 0 call $cert_present i32.store8
    i32.const 0 i32.const 1 call $append
    call $reply)
  (func (export "canister_update size_in_update")
    call $cert_size drop
    call $reply)
  (func (export "canister_update rand")
    i32.const 0 i32.const 0 i32.const 100 i32.const 8
    i32.const 0 i32.const 0 i32.const 1 i32.const 0
    call $call_new
    i32.const 110 i32.const 6 call $call_append
    call $call_perform drop)
  (func $on_reply (param i32)
    i32.const 1000 i32.const 0 call $arg_size call $arg_copy
    i32.const 1000 call $arg_size call $append
    call $reply)
  (func $on_reject (param i32)
    i32.const 120 i32.const 8 call $append
    call $reply)
)
"#;

const MINUTE_NS: u128 = 60_000_000_000;

fn setup() -> (Host, Principal) {
    let mut host = Host::new();
    let wasm = wat::parse_str(WAT).unwrap();
    let id = host
        .install(&wasm, Vec::new(), Principal::anonymous())
        .unwrap();
    (host, id)
}

fn user() -> Principal {
    Principal::from_slice(&[7; 29])
}

fn set_data(host: &mut Host, id: Principal, data: &[u8]) {
    host.update(id, user(), "set", data.to_vec()).unwrap();
}

fn query_certificate(host: &mut Host, id: Principal) -> Vec<u8> {
    host.query(id, user(), "cert", Vec::new()).unwrap()
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

fn certified_data<'a>(tree: &'a HashTree, id: &Principal) -> LookupResult<'a> {
    tree.lookup_path([
        b"canister".as_slice(),
        id.as_slice(),
        b"certified_data".as_slice(),
    ])
}

#[test]
fn a_query_gets_a_certificate_that_verifies_against_the_root_key() {
    let (mut host, id) = setup();
    let data = [0xab; 32];
    set_data(&mut host, id, &data);
    let cbor = query_certificate(&mut host, id);
    // The self-describing CBOR tag, as the IC sends it.
    assert_eq!(&cbor[..3], &[0xd9, 0xd9, 0xf7]);
    let cert = verify(&host, id, &cbor).expect("the certificate verifies");
    assert_eq!(
        certified_data(&cert.tree, &id),
        LookupResult::Found(&data[..])
    );
    let mut time = cert.tree.lookup_path([b"time".as_slice()]).value().unwrap();
    assert_eq!(
        leb128::read::unsigned(&mut time).unwrap(),
        host.time(),
        "the certificate's time is the host's"
    );
    assert_eq!(host.data_certificate(id).unwrap(), cbor);
    assert_eq!(host.root_key().len(), 133);
}

trait Value<'a> {
    fn value(self) -> Option<&'a [u8]>;
}
impl<'a> Value<'a> for LookupResult<'a> {
    fn value(self) -> Option<&'a [u8]> {
        match self {
            LookupResult::Found(v) => Some(v),
            _ => None,
        }
    }
}

#[test]
fn the_certificate_follows_the_certified_data_and_the_time() {
    let (mut host, id) = setup();
    set_data(&mut host, id, b"first");
    let first = query_certificate(&mut host, id);
    set_data(&mut host, id, b"second");
    let second = query_certificate(&mut host, id);
    let cert = verify(&host, id, &second).unwrap();
    assert_eq!(
        certified_data(&cert.tree, &id),
        LookupResult::Found(b"second")
    );
    assert_ne!(first, second);
    // An hour later, the old certificate is too old for the verifier; a new
    // one verifies.
    host.advance_time(std::time::Duration::from_secs(3600));
    let err = verify(&host, id, &second).unwrap_err();
    assert!(err.contains("past"), "{err}");
    let fresh = query_certificate(&mut host, id);
    verify(&host, id, &fresh).unwrap();
}

#[test]
fn a_canister_sees_its_own_certified_data_and_no_other() {
    let (mut host, a) = setup();
    let wasm = wat::parse_str(WAT).unwrap();
    let b = host
        .install(&wasm, Vec::new(), Principal::anonymous())
        .unwrap();
    set_data(&mut host, a, b"data of a");
    set_data(&mut host, b, b"data of b");
    let (cbor_a, cbor_b) = (
        query_certificate(&mut host, a),
        query_certificate(&mut host, b),
    );
    let cert_a = verify(&host, a, &cbor_a).unwrap();
    let cert_b = verify(&host, b, &cbor_b).unwrap();
    assert_eq!(
        certified_data(&cert_a.tree, &a),
        LookupResult::Found(b"data of a")
    );
    assert_eq!(certified_data(&cert_a.tree, &b), LookupResult::Unknown);
    assert_eq!(
        certified_data(&cert_b.tree, &b),
        LookupResult::Found(b"data of b")
    );
    // Both are views of one signed state tree.
    assert_eq!(cert_a.tree.digest(), cert_b.tree.digest());
}

#[test]
fn a_tampered_certificate_fails_verification() {
    let (mut host, id) = setup();
    set_data(&mut host, id, &[1; 32]);
    let cbor = query_certificate(&mut host, id);
    let cert = Certificate::from_cbor(&cbor).unwrap();
    let time = host.time() as u128;
    let check = |c: &Certificate, key: &[u8]| c.verify(id.as_slice(), key, &time, &MINUTE_NS);
    check(&cert, &host.root_key()).expect("the original verifies");

    // Another certified data under the same signature.
    let mut other = host_with_same_key_and_data(&[2; 32]);
    let forged_tree = Certificate::from_cbor(&other.1).unwrap().tree;
    let forged = Certificate {
        tree: forged_tree,
        ..cert.clone()
    };
    assert!(check(&forged, &host.root_key()).is_err());

    // A flipped bit in the signature.
    let mut sig = cert.signature.clone();
    sig[10] ^= 1;
    let bad_sig = Certificate {
        signature: sig,
        ..cert.clone()
    };
    assert!(check(&bad_sig, &host.root_key()).is_err());

    // Another subnet's key.
    other.0.set_subnet_seed(b"another subnet");
    assert_ne!(other.0.root_key(), host.root_key());
    assert!(check(&cert, &other.0.root_key()).is_err());

    // A flipped byte anywhere in the encoding is refused, either by the
    // parser or by the signature check.
    for i in (0..cbor.len()).step_by(7) {
        let mut bytes = cbor.clone();
        bytes[i] ^= 0x40;
        let accepted = Certificate::from_cbor(&bytes)
            .ok()
            .is_some_and(|c| check(&c, &host.root_key()).is_ok());
        assert!(!accepted, "byte {i} flipped and still verified");
    }
}

/// A host with the default key, one canister and `data` certified; its
/// certificate.
fn host_with_same_key_and_data(data: &[u8]) -> (Host, Vec<u8>) {
    let (mut host, id) = setup();
    set_data(&mut host, id, data);
    let cert = query_certificate(&mut host, id);
    (host, cert)
}

#[test]
fn updates_get_no_certificate() {
    let (mut host, id) = setup();
    assert_eq!(host.update(id, user(), "present", vec![]).unwrap(), vec![0]);
    let err = host
        .update(id, user(), "size_in_update", vec![])
        .unwrap_err();
    assert!(
        matches!(&err, HostError::CanisterTrapped(m) if m.contains("data_certificate_size")),
        "{err:?}"
    );
}

fn raw_rand(host: &mut Host, id: Principal) -> Vec<u8> {
    let reply = host.update(id, user(), "rand", vec![]).unwrap();
    candid::decode_one::<Vec<u8>>(&reply).unwrap_or_else(|e| {
        panic!(
            "not a Candid blob ({e}): {:?}",
            String::from_utf8_lossy(&reply)
        )
    })
}

#[test]
fn raw_rand_answers_32_bytes_that_follow_the_seed() {
    let (mut host, id) = setup();
    let a = raw_rand(&mut host, id);
    let b = raw_rand(&mut host, id);
    assert_eq!(a.len(), 32);
    assert_eq!(b.len(), 32);
    assert_ne!(a, b, "each call draws new bytes");

    // The same seed gives the same sequence; another seed another one.
    let (mut again, id2) = setup();
    assert_eq!(raw_rand(&mut again, id2), a);
    again.set_random_seed([1; 32]);
    let c = raw_rand(&mut again, id2);
    assert_ne!(c, a);
    again.set_random_seed([1; 32]);
    assert_eq!(raw_rand(&mut again, id2), c);
}
