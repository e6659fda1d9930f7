//! Certified state: a test subnet key signs the host's state tree, so
//! queries get real data certificates (`ic0.data_certificate_copy`) that the
//! IC's verifiers (`ic-certificate-verification`, `ic-response-verification`)
//! accept against [`SubnetKey::root_key_der`].
//!
//! As in the IC interface specification ("Certification"):
//! - the state tree holds `/canister/<canister id>/certified_data` for every
//!   canister and `/time` (nanoseconds, LEB128);
//! - a certificate is the CBOR map `{tree, signature}` behind the
//!   self-describing tag 55799; `tree` is the state tree with everything
//!   the reader may not see pruned (another canister's certified data);
//! - `signature` is a BLS12-381 signature (G1, 48 bytes compressed, hashed
//!   to the curve with `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_`) of
//!   the domain separator `"\x0Dic-state-root"` followed by the tree's root
//!   hash, by the root key itself (no delegation: like the NNS subnet);
//! - the public key (G2, 96 bytes compressed) is published DER-encoded with
//!   the OIDs of the BLS12-381 G2 key type, 133 bytes in all.
//!
//! The key is derived from a seed, so every host built with the same seed
//! has the same root key. It is a test key: anyone can derive it.
//!
//! Subnets other than the default one ([`crate::Host::add_subnet`]) sign
//! with their own key (derived from the subnet's index) and their
//! certificates carry a `delegation`, as on the IC: the subnet id and a
//! certificate signed by the root key whose tree holds
//! `/subnet/<id>/public_key`, the subnet's canister id ranges (both
//! `/subnet/<id>/canister_ranges` and `/canister_ranges/<id>/<first id>`)
//! and `/time` ([`delegation_certificate`]). Each subnet's state tree holds
//! the certified data of its own canisters only.

use candid::Principal;
use ic_bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use ic_bls12_381::{G1Affine, G1Projective, G2Affine, Scalar};
use ic_certification::{
    certificate::{Certificate, Delegation},
    merge_hash_trees, AsHashTree, Hash, HashTree, NestedTree,
};
use serde::Serialize;
use sha2::{Digest, Sha512};
use std::sync::{Mutex, OnceLock};

/// Seed of the key every [`crate::Host`] starts with.
pub const DEFAULT_SUBNET_SEED: &[u8] = b"embedded-ic-host test subnet key";

/// DER prefix of an IC root key: SEQUENCE { SEQUENCE { OID
/// 1.3.6.1.4.1.44668.5.3.1.2.1 (BLS12-381 G2 key), OID
/// 1.3.6.1.4.1.44668.5.3.2.1 (the IC's signature scheme) }, BIT STRING of
/// 96 bytes }.
const DER_PREFIX: [u8; 37] = [
    0x30, 0x81, 0x82, 0x30, 0x1d, 0x06, 0x0d, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05,
    0x03, 0x01, 0x02, 0x01, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03,
    0x02, 0x01, 0x03, 0x61, 0x00,
];

/// Domain separator of state-tree signatures (length byte, then the text).
const STATE_ROOT_DOMAIN: &[u8] = b"\x0Dic-state-root";

/// Domain separation tag of the IC's BLS signatures (hash to G1).
const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";

/// The subnet's signing key, with the last signature kept (queries at the
/// same time on unchanged certified data reuse it: signing costs about a
/// millisecond).
pub struct SubnetKey {
    secret: Scalar,
    root_key_der: Vec<u8>,
    last_signature: Mutex<Option<(Hash, [u8; 48])>>,
}

impl SubnetKey {
    /// The key derived from `seed` (SHA-512 of the seed, reduced modulo the
    /// group order).
    pub fn from_seed(seed: &[u8]) -> Self {
        let wide: [u8; 64] = Sha512::digest(seed).into();
        let secret = Scalar::from_bytes_wide(&wide);
        let public = G2Affine::from(G2Affine::generator() * secret);
        let mut root_key_der = DER_PREFIX.to_vec();
        root_key_der.extend_from_slice(&public.to_compressed());
        SubnetKey {
            secret,
            root_key_der,
            last_signature: Mutex::new(None),
        }
    }

    /// The public key, DER-encoded as the IC publishes its root key.
    pub fn root_key_der(&self) -> &[u8] {
        &self.root_key_der
    }

    /// The BLS signature of a state tree with this root hash.
    pub fn sign_root_hash(&self, root_hash: &Hash) -> [u8; 48] {
        let mut last = self
            .last_signature
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((hash, sig)) = *last {
            if hash == *root_hash {
                return sig;
            }
        }
        let mut msg = STATE_ROOT_DOMAIN.to_vec();
        msg.extend_from_slice(root_hash);
        let point =
            <G1Projective as HashToCurve<ExpandMsgXmd<sha2::Sha256>>>::hash_to_curve(&msg, BLS_DST);
        let sig = G1Affine::from(point * self.secret).to_compressed();
        *last = Some((*root_hash, sig));
        sig
    }
}

/// The time as the state tree holds it (unsigned LEB128 of nanoseconds).
pub fn encode_time(ns: u64) -> Vec<u8> {
    let mut out = Vec::new();
    leb128::write::unsigned(&mut out, ns).expect("writing to a Vec");
    out
}

fn certified_data_path(canister: &Principal) -> [Vec<u8>; 3] {
    [
        b"canister".to_vec(),
        canister.as_slice().to_vec(),
        b"certified_data".to_vec(),
    ]
}

/// The state tree of a host: every canister's certified data and the time.
pub fn state_tree<'a>(
    canisters: impl IntoIterator<Item = (&'a Principal, &'a [u8])>,
    time_ns: u64,
) -> NestedTree<Vec<u8>, Vec<u8>> {
    let mut tree = NestedTree::default();
    for (id, data) in canisters {
        tree.insert(&certified_data_path(id), data.to_vec());
    }
    tree.insert(&[b"time".to_vec()], encode_time(time_ns));
    tree
}

/// A data certificate for one canister, signed when first asked for (a
/// query that never reads its certificate costs no signature).
pub struct PendingCertificate {
    tree: HashTree,
    root_hash: Hash,
    key: std::sync::Arc<SubnetKey>,
    delegation: Option<Delegation<Vec<u8>>>,
    bytes: OnceLock<Vec<u8>>,
}

impl PendingCertificate {
    /// The certificate `canister` sees of `state`: its own certified data
    /// and the time revealed, everything else pruned.
    pub fn new(
        state: &NestedTree<Vec<u8>, Vec<u8>>,
        canister: &Principal,
        key: std::sync::Arc<SubnetKey>,
    ) -> Self {
        let tree = merge_hash_trees(
            state.witness(&certified_data_path(canister)),
            state.witness(&[b"time".to_vec()]),
        );
        PendingCertificate {
            root_hash: state.root_hash(),
            tree,
            key,
            delegation: None,
            bytes: OnceLock::new(),
        }
    }

    /// The certificate signed by a subnet key that the root key delegated
    /// to: `subnet_id` and the root key's certificate of it
    /// ([`delegation_certificate`]).
    pub fn with_delegation(mut self, subnet_id: &Principal, certificate: Vec<u8>) -> Self {
        self.delegation = Some(Delegation {
            subnet_id: subnet_id.as_slice().to_vec(),
            certificate,
        });
        self
    }

    /// The CBOR-encoded certificate.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.get_or_init(|| {
            debug_assert_eq!(self.tree.digest(), self.root_hash);
            to_cbor(&Certificate {
                tree: self.tree.clone(),
                signature: self.key.sign_root_hash(&self.root_hash).to_vec(),
                delegation: self.delegation.clone(),
            })
        })
    }
}

/// CBOR behind the self-describing tag, as the IC encodes certificates and
/// the values of its state tree.
pub fn to_cbor(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_cbor::Serializer::new(&mut out);
    ser.self_describe().expect("writing to a Vec");
    value.serialize(&mut ser).expect("the value encodes");
    out
}

/// The seed of the key of the host's subnet number `index` (> 0).
pub fn subnet_seed(index: u64) -> Vec<u8> {
    let mut seed = b"embedded-ic-host subnet key ".to_vec();
    seed.extend_from_slice(&index.to_be_bytes());
    seed
}

/// The root key's certificate delegating to `subnet_key` for the canister
/// id `ranges` (inclusive) of `subnet_id`, as the NNS issues it: CBOR of a
/// certificate whose tree holds `/subnet/<id>/public_key` (DER),
/// `/subnet/<id>/canister_ranges` and `/canister_ranges/<id>/<first id>`
/// (CBOR arrays of `[first, last]` principal byte strings) and `/time`.
pub fn delegation_certificate(
    root: &SubnetKey,
    subnet_id: &Principal,
    subnet_key: &SubnetKey,
    ranges: &[(Principal, Principal)],
    time_ns: u64,
) -> Vec<u8> {
    let id = subnet_id.as_slice().to_vec();
    let ranges_cbor = serde_cbor::to_vec(&ranges).expect("ranges encode");
    let mut tree: NestedTree<Vec<u8>, Vec<u8>> = NestedTree::default();
    tree.insert(
        &[b"subnet".to_vec(), id.clone(), b"public_key".to_vec()],
        subnet_key.root_key_der().to_vec(),
    );
    tree.insert(
        &[b"subnet".to_vec(), id.clone(), b"canister_ranges".to_vec()],
        ranges_cbor.clone(),
    );
    if let Some((first, _)) = ranges.first() {
        tree.insert(
            &[b"canister_ranges".to_vec(), id, first.as_slice().to_vec()],
            ranges_cbor,
        );
    }
    tree.insert(&[b"time".to_vec()], encode_time(time_ns));
    let hash_tree = tree.as_hash_tree();
    let signature = root.sign_root_hash(&hash_tree.digest()).to_vec();
    to_cbor(&Certificate {
        tree: hash_tree,
        signature,
        delegation: None,
    })
}
