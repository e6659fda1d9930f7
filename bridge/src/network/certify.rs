//! The network's state tree and its certificates (specification, "The
//! system state tree"): `/time`, `/request_status/<id>/…`,
//! `/canister/<id>/{certified_data, module_hash, controllers,
//! metadata/<name>}` and `/subnet/<id>/{public_key, canister_ranges,
//! node/<node>/public_key}`, signed by the BLS key of the subnet the
//! request is for: the root key for the root subnet, otherwise the
//! subnet's own key with the root key's delegation
//! ([`TreeBuilder::certificate_delegated`]).
//!
//! Each certificate is cut from a tree holding what its reader may see
//! (the entries of the paths asked for, the subnet and the time), pruned
//! to the paths asked for: every value it reveals is the network's, and
//! the signature covers it.

use embedded_ic_host::certification::{encode_time, SubnetKey};
use ic_certification::{
    certificate::{Certificate, Delegation},
    AsHashTree, HashTree, NestedTree,
};

pub type Path = Vec<Vec<u8>>;

/// A tree of labelled values to certify.
#[derive(Default)]
pub struct TreeBuilder {
    tree: NestedTree<Vec<u8>, Vec<u8>>,
}

impl TreeBuilder {
    pub fn insert(&mut self, path: &[&[u8]], value: Vec<u8>) {
        let path: Path = path.iter().map(|l| l.to_vec()).collect();
        self.tree.insert(&path, value);
    }

    /// The certificate of `paths` (and always `/time`), signed by `key`.
    pub fn certificate(self, time_ns: u64, paths: &[Path], key: &SubnetKey) -> Vec<u8> {
        self.certificate_delegated(time_ns, paths, key, None)
    }

    /// [`TreeBuilder::certificate`] signed by a subnet key the root key
    /// delegated to: `delegation` is the subnet id and the root key's
    /// certificate of the subnet's key and ranges.
    pub fn certificate_delegated(
        mut self,
        time_ns: u64,
        paths: &[Path],
        key: &SubnetKey,
        delegation: Option<(candid::Principal, Vec<u8>)>,
    ) -> Vec<u8> {
        self.tree.insert(&[b"time".to_vec()], encode_time(time_ns));
        let mut witness: Option<HashTree> = None;
        for path in paths.iter().chain(std::iter::once(&vec![b"time".to_vec()])) {
            let w = self.tree.witness(path);
            witness = Some(match witness {
                None => w,
                Some(acc) => ic_certification::merge_hash_trees(acc, w),
            });
        }
        let tree = witness.expect("at least /time");
        let root_hash = self.tree.root_hash();
        debug_assert_eq!(tree.digest(), root_hash);
        cbor(&Certificate {
            tree,
            signature: key.sign_root_hash(&root_hash).to_vec(),
            delegation: delegation.map(|(subnet, certificate)| Delegation {
                subnet_id: subnet.as_slice().to_vec(),
                certificate,
            }),
        })
    }
}

/// A natural number as the state tree holds it (unsigned LEB128).
pub fn leb(n: u64) -> Vec<u8> {
    encode_time(n)
}

/// CBOR with the self-describing tag of any serializable value (the
/// certificates, the `controllers` and `canister_ranges` entries, HTTP
/// reply bodies).
pub use embedded_ic_host::certification::to_cbor as cbor;
