//! The IC's public HTTP interface in front of the embedded host: what
//! `HttpAgent`, `ic-agent`, `icp` and `dfx` send (CBOR envelopes at
//! `/api/v2|v3|v4/…`), checked and answered as the IC does. The HTTP
//! routing lives in `crate::http`; this module is the network's logic,
//! testable without a socket.

pub mod auth;
pub mod certify;
pub mod envelope;
pub mod errors;
pub mod management;
pub mod persist;
pub mod request_id;

use self::certify::{cbor, leb, Path, TreeBuilder};
use self::envelope::{CanisterCall, Content, Envelope};
use self::errors::{reject_of, HttpRefusal, Reject};
use self::request_id::RequestId;
use candid::Principal;
use embedded_ic_host::certification::SubnetKey;
use embedded_ic_host::state::Kind;
use embedded_ic_host::Host;
use ic_management_canister_types::DefiniteCanisterSettings;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How far ahead `ingress_expiry` may be (the IC's 5 minutes, plus the
/// minute of clock drift it permits).
pub const MAX_INGRESS_TTL_NS: u64 = 5 * 60 * 1_000_000_000;
pub const PERMITTED_DRIFT_NS: u64 = 60 * 1_000_000_000;
/// The largest request the IC takes on an application subnet: the whole
/// HTTP body, envelope and all.
pub const MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;
/// How long a request's reply stays readable by `read_state` after its
/// expiry (then its status is `done`).
pub const STATUS_RETENTION_NS: u64 = 5 * 60 * 1_000_000_000;

/// One subnet's keys: its BLS key (the root key for the root subnet,
/// which signs directly; a key the root key delegates to for the others)
/// and its node's Ed25519 key, which signs query replies.
pub struct SubnetKeys {
    /// The host's index of the subnet (0: the root subnet, the host's
    /// default subnet).
    pub index: usize,
    /// The id agents see: for the root subnet the self-authenticating id
    /// of the root key (what agents derive for a certificate without a
    /// delegation), for the others the host's subnet id (the delegation's).
    pub id: Principal,
    /// The host's id of the subnet (`Host::subnets`): what the index and
    /// the CMC's `subnet_selection` name. The root subnet answers
    /// `/api/v2/subnet/<host id>/read_state` too.
    pub host_id: Principal,
    pub key: Arc<SubnetKey>,
    pub node_id: Principal,
    node_signing: ed25519_dalek::SigningKey,
    node_der: Vec<u8>,
    /// The subnet's canister id range (inclusive).
    pub range: (Principal, Principal),
}

/// The network's keys: one [`SubnetKeys`] per subnet of the host, the
/// root subnet first.
pub struct Keys {
    pub subnets: Vec<SubnetKeys>,
}

/// The `n`-th canister id (8-byte big-endian counter, then `0x01 0x01`).
fn canister_id_of(n: u64) -> Principal {
    let mut b = n.to_be_bytes().to_vec();
    b.extend_from_slice(&[1, 1]);
    Principal::from_slice(&b)
}

impl SubnetKeys {
    fn new(index: usize, id: Principal, host_id: Principal, key: Arc<SubnetKey>) -> Self {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        use sha2::Digest as _;
        let seed: [u8; 32] =
            sha2::Sha256::digest([b"node key of ".as_slice(), key.root_key_der()].concat()).into();
        let node_signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let node_der = node_signing
            .verifying_key()
            .to_public_key_der()
            .expect("an Ed25519 key encodes")
            .into_vec();
        let bits = embedded_ic_host::host::SUBNET_RANGE_BITS;
        let first = (index as u64) << bits;
        SubnetKeys {
            index,
            id,
            host_id,
            key,
            node_id: auth::self_authenticating(&node_der),
            node_signing,
            node_der,
            range: (
                canister_id_of(first),
                canister_id_of(first + (1u64 << bits) - 1),
            ),
        }
    }

    /// The node's signature of a query reply (`"\x0Bic-response"` and the
    /// reply map's representation-independent hash).
    fn sign_response(&self, hash: &[u8; 32]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        let mut msg = b"\x0Bic-response".to_vec();
        msg.extend_from_slice(hash);
        self.node_signing.sign(&msg).to_bytes().to_vec()
    }

    /// Whether `id` is this subnet's (either of its ids).
    pub fn is(&self, id: &Principal) -> bool {
        self.id == *id || self.host_id == *id
    }
}

impl Keys {
    /// The keys of every subnet `host` has (add subnets before).
    pub fn of_host(host: &Host) -> Self {
        let root = host.subnet_key();
        let subnets = host
            .subnets()
            .into_iter()
            .enumerate()
            .map(|(index, host_id)| {
                if index == 0 {
                    let id = auth::self_authenticating(root.root_key_der());
                    SubnetKeys::new(0, id, host_id, root.clone())
                } else {
                    // The host derives its subnets' keys from their index.
                    let key = Arc::new(SubnetKey::from_seed(
                        &embedded_ic_host::certification::subnet_seed(index as u64),
                    ));
                    debug_assert_eq!(
                        host.subnet_public_key(host_id).as_deref(),
                        Some(key.root_key_der())
                    );
                    SubnetKeys::new(index, host_id, host_id, key)
                }
            })
            .collect();
        Keys { subnets }
    }

    pub fn root(&self) -> &SubnetKeys {
        &self.subnets[0]
    }

    pub fn root_key_der(&self) -> &[u8] {
        self.root().key.root_key_der()
    }

    /// The subnet of `canister`: where the host has it, else the one whose
    /// range holds its id (the root subnet for ids of no range).
    pub fn of_canister(&self, host: &Host, canister: &Principal) -> &SubnetKeys {
        if let Some(s) = host.subnet_of(*canister) {
            if let Some(k) = self.subnets.iter().find(|k| k.host_id == s) {
                return k;
            }
        }
        embedded_ic_host::host::range_index_of(canister.as_slice())
            .and_then(|i| self.subnets.get(i as usize))
            .unwrap_or(self.root())
    }

    /// The subnet named `id` (either of its ids).
    pub fn by_id(&self, id: &Principal) -> Option<&SubnetKeys> {
        self.subnets.iter().find(|k| k.is(id))
    }

    /// The delegation of subnet `s` (none for the root subnet): the root
    /// key's certificate of its key and range, as of `time_ns`.
    pub fn delegation(&self, s: &SubnetKeys, time_ns: u64) -> Option<(Principal, Vec<u8>)> {
        (s.index != 0).then(|| {
            (
                s.host_id,
                embedded_ic_host::certification::delegation_certificate(
                    &self.root().key,
                    &s.host_id,
                    &s.key,
                    &[s.range],
                    time_ns,
                ),
            )
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Running,
    Stopped,
}

/// What the network knows of a canister beside the host's instance.
pub struct CanisterRecord {
    pub settings: DefiniteCanisterSettings,
    pub run_state: RunState,
    /// SHA-256 of the module as installed (compressed, if it was); `None`:
    /// empty.
    pub module_hash: Option<[u8; 32]>,
    /// `icp:public`/`icp:private` custom sections: name → (public, bytes).
    pub metadata: BTreeMap<String, (bool, Vec<u8>)>,
    /// The balance while the canister is empty (the host holds it once a
    /// module runs).
    pub cycles: u128,
    /// The module as installed (for `--state`: a restart re-instantiates it).
    pub installed_module: Option<Vec<u8>>,
}

impl CanisterRecord {
    pub fn new(controllers: Vec<Principal>, cycles: u128) -> Self {
        CanisterRecord {
            settings: management::default_settings(controllers),
            run_state: RunState::Running,
            module_hash: None,
            metadata: BTreeMap::new(),
            cycles,
            installed_module: None,
        }
    }
}

/// The outcome of an update call, as `request_status` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Replied(Vec<u8>),
    Rejected(Reject),
    /// Past retention: the reply is forgotten, the id still known.
    Done,
}

pub struct RequestRecord {
    pub sender: Principal,
    pub expiry: u64,
    pub outcome: Outcome,
}

/// The host, the canisters' records and the requests seen.
pub struct World {
    pub host: Host,
    pub canisters: BTreeMap<Principal, CanisterRecord>,
    pub requests: HashMap<RequestId, RequestRecord>,
}

/// Where a request was posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Canister(Principal),
    Subnet(Principal),
}

/// A query's reply, before its encoding.
#[derive(Serialize)]
#[serde(untagged)]
pub enum QueryReply {
    Replied {
        status: &'static str,
        reply: ReplyArg,
        signatures: Vec<NodeSignature>,
    },
    Rejected {
        status: &'static str,
        reject_code: u64,
        reject_message: String,
        error_code: String,
        signatures: Vec<NodeSignature>,
    },
}

#[derive(Serialize)]
pub struct ReplyArg {
    #[serde(with = "serde_bytes")]
    pub arg: Vec<u8>,
}

#[derive(Serialize)]
pub struct NodeSignature {
    pub timestamp: u64,
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub identity: Vec<u8>,
}

/// What a canister call became.
pub enum CallResult {
    /// Executed (now, or before when `repeat`: the same request id again,
    /// not run twice): the outcome is in `request_status`.
    Certified { repeat: bool },
    /// Refused by `canister_inspect_message` before execution (not
    /// recorded: the same request may be sent again).
    NonReplicatedRejection(Reject),
}

impl World {
    pub fn new(host: Host) -> Self {
        World {
            host,
            canisters: BTreeMap::new(),
            requests: HashMap::new(),
        }
    }

    /// Checks what every request must satisfy before anything runs: the
    /// expiry window and the sender's signatures for `target`.
    pub fn admit(&self, envelope: &Envelope, target: &Principal) -> Result<(), HttpRefusal> {
        let now = self.host.time();
        let expiry = envelope.ingress_expiry;
        if expiry < now || expiry > now + MAX_INGRESS_TTL_NS + PERMITTED_DRIFT_NS {
            return Err(HttpRefusal::new(
                400,
                format!(
                    "Invalid request expiry: Specified ingress_expiry not within expected range: Minimum allowed expiry: {now}, Maximum allowed expiry: {}, Provided expiry: {expiry}",
                    now + MAX_INGRESS_TTL_NS + PERMITTED_DRIFT_NS
                ),
            ));
        }
        auth::authenticate(envelope, now, target).map_err(|e| HttpRefusal::new(400, e.0))
    }

    /// An update call posted to `/api/v*/canister/<effective>/call`.
    pub fn call(
        &mut self,
        envelope: &Envelope,
        effective: Principal,
    ) -> Result<CallResult, HttpRefusal> {
        let Content::Call(call) = &envelope.content else {
            return Err(HttpRefusal::new(400, "not a call"));
        };
        self.check_effective(call, effective)?;
        self.admit(envelope, &call.canister_id)?;
        self.forget_expired();
        if self.requests.contains_key(&envelope.request_id) {
            // The same request again: executed once, its outcome kept.
            return Ok(CallResult::Certified { repeat: true });
        }
        let outcome = if call.canister_id == Principal::management_canister() {
            match self.management_call(envelope.sender, &call.method_name, &call.arg) {
                Ok(reply) => Outcome::Replied(reply),
                Err(reject) => Outcome::Rejected(reject),
            }
        } else {
            if let Err(reject) = self.check_runnable(&call.canister_id) {
                return Ok(CallResult::NonReplicatedRejection(reject));
            }
            let result = self.host.update(
                call.canister_id,
                envelope.sender,
                &call.method_name,
                call.arg.clone(),
            );
            // Read before the tick: the timers it runs are messages too.
            let last_ran = self.host.last_message_stats().kind;
            self.host.tick();
            match result {
                Ok(reply) => Outcome::Replied(reply),
                Err(embedded_ic_host::HostError::IngressTooLarge { size, limit }) => {
                    return Err(HttpRefusal::new(
                        413,
                        format!("Request of {size} bytes is larger than the ingress limit of {limit} bytes"),
                    ));
                }
                Err(e) if is_inspect_rejection(&e, last_ran) => {
                    return Ok(CallResult::NonReplicatedRejection(reject_of(
                        &call.canister_id,
                        &e,
                    )));
                }
                Err(e) => Outcome::Rejected(reject_of(&call.canister_id, &e)),
            }
        };
        self.requests.insert(
            envelope.request_id,
            RequestRecord {
                sender: envelope.sender,
                expiry: envelope.ingress_expiry,
                outcome,
            },
        );
        Ok(CallResult::Certified { repeat: false })
    }

    /// A query posted to `/api/v*/canister/<effective>/query`; `corrupt`
    /// may change an executed reply before it is signed (a lying replica).
    pub fn query(
        &mut self,
        envelope: &Envelope,
        effective: Principal,
        keys: &Keys,
        corrupt: impl FnOnce(&str, &mut Vec<u8>) -> bool,
    ) -> Result<(QueryReply, bool), HttpRefusal> {
        let Content::Query(call) = &envelope.content else {
            return Err(HttpRefusal::new(400, "not a query"));
        };
        self.check_effective(call, effective)?;
        self.admit(envelope, &call.canister_id)?;
        let mut corrupted = false;
        let result = if call.canister_id == Principal::management_canister() {
            Err(Reject::new(
                5,
                "IC0536",
                format!(
                    "Management canister has no query method '{}'",
                    call.method_name
                ),
            ))
        } else {
            self.check_runnable(&call.canister_id).and_then(|()| {
                self.host
                    .query(
                        call.canister_id,
                        envelope.sender,
                        &call.method_name,
                        call.arg.clone(),
                    )
                    .map(|mut reply| {
                        corrupted = corrupt(&call.method_name, &mut reply);
                        reply
                    })
                    .map_err(|e| match e {
                        embedded_ic_host::HostError::IngressTooLarge { .. } => {
                            Reject::new(5, "IC0504", e.to_string())
                        }
                        e => reject_of(&call.canister_id, &e),
                    })
            })
        };
        let timestamp = self.host.time();
        let subnet = keys.of_canister(&self.host, &effective);
        Ok((
            sign_query(subnet, &envelope.request_id, timestamp, result),
            corrupted,
        ))
    }

    /// A `read_state` posted for `target`: the certificate of the paths.
    pub fn read_state(
        &mut self,
        envelope: &Envelope,
        target: Target,
        keys: &Keys,
    ) -> Result<Vec<u8>, HttpRefusal> {
        let Content::ReadState { paths } = &envelope.content else {
            return Err(HttpRefusal::new(400, "not a read_state"));
        };
        let admit_as = match target {
            Target::Canister(c) | Target::Subnet(c) => c,
        };
        self.admit(envelope, &admit_as)?;
        self.forget_expired();
        let signer = match target {
            Target::Canister(c) => keys.of_canister(&self.host, &c),
            Target::Subnet(s) => keys.by_id(&s).ok_or_else(|| {
                HttpRefusal::new(404, format!("Subnet {s} not found on this network"))
            })?,
        };
        let mut tree = TreeBuilder::default();
        self.subnet_entries(&mut tree, keys);
        let mut status_id: Option<&[u8]> = None;
        for path in paths {
            let labels: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
            match (target, labels.as_slice()) {
                (_, [b"time"]) => {}
                (_, [b"subnet", ..]) => {}
                // The ranges by subnet, in one shard (agent-js reads only
                // the first shard of several).
                (_, [b"canister_ranges", ..]) => {}
                (Target::Canister(_), [b"request_status", id, ..]) => {
                    if status_id.is_some_and(|s| s != *id) {
                        return Err(HttpRefusal::new(
                            400,
                            "A read_state request may ask for the status of one request id only",
                        ));
                    }
                    status_id = Some(id);
                    self.request_entries(&mut tree, id, envelope.sender)?;
                }
                (Target::Canister(effective), [b"canister", id, rest @ ..]) => {
                    let id = Principal::try_from_slice(id).map_err(|e| {
                        HttpRefusal::new(
                            400,
                            format!("a canister id in a path is not a principal: {e}"),
                        )
                    })?;
                    if id != effective {
                        return Err(HttpRefusal::new(
                            400,
                            format!("Effective canister id {effective} in the URL does not match the canister {id} in the path"),
                        ));
                    }
                    self.canister_entries(&mut tree, id, rest, envelope.sender)?;
                }
                (Target::Canister(_), [b"api_boundary_nodes", ..]) => {}
                _ => {
                    return Err(HttpRefusal::new(
                        404,
                        format!(
                            "Invalid path requested: {}",
                            labels
                                .iter()
                                .map(|l| String::from_utf8_lossy(l).into_owned())
                                .collect::<Vec<_>>()
                                .join("/")
                        ),
                    ))
                }
            }
        }
        let now = self.host.time();
        Ok(tree.certificate_delegated(now, paths, &signer.key, keys.delegation(signer, now)))
    }

    /// The certificate a synchronous call returns: the request's status
    /// and the time, signed by the subnet of `effective` (the URL's
    /// effective canister id).
    pub fn call_certificate(
        &mut self,
        request_id: &RequestId,
        effective: Principal,
        keys: &Keys,
    ) -> Vec<u8> {
        let mut tree = TreeBuilder::default();
        let sender = self
            .requests
            .get(request_id)
            .map(|r| r.sender)
            .unwrap_or_else(Principal::anonymous);
        let _ = self.request_entries(&mut tree, request_id, sender);
        self.subnet_entries(&mut tree, keys);
        let path: Path = vec![b"request_status".to_vec(), request_id.to_vec()];
        let signer = keys.of_canister(&self.host, &effective);
        let now = self.host.time();
        tree.certificate_delegated(now, &[path], &signer.key, keys.delegation(signer, now))
    }

    fn check_effective(
        &self,
        call: &CanisterCall,
        effective: Principal,
    ) -> Result<(), HttpRefusal> {
        let target = if call.canister_id == Principal::management_canister() {
            match management::target_of(&call.method_name, &call.arg) {
                Some(t) => t,
                // A create names no canister: any id of the subnet's range routes it.
                None => return Ok(()),
            }
        } else {
            call.canister_id
        };
        if target != effective {
            return Err(HttpRefusal::new(
                400,
                format!("Specified CanisterId {target} does not match effective canister id in URL {effective}"),
            ));
        }
        Ok(())
    }

    /// Whether a canister can take a message now (installed and running).
    /// The host is the source of truth for canisters it created itself (the
    /// index's buckets, made through the management canister or the CMC);
    /// the bridge's record adds what ingress did (a stop through the
    /// bridge's management canister). The host refuses stopping and
    /// stopped canisters of its own on the call itself.
    fn check_runnable(&self, id: &Principal) -> Result<(), Reject> {
        let record = self.canisters.get(id);
        if record.is_none() && !self.host.exists(*id) {
            return Err(Reject::new(3, "IC0301", format!("Canister {id} not found")));
        }
        if self.module_hash_of(id).is_none() {
            return Err(Reject::new(
                5,
                "IC0537",
                format!("Attempted to execute a message on canister {id}, but the canister contains no Wasm module."),
            ));
        }
        if record.is_some_and(|r| r.run_state == RunState::Stopped) || self.host.is_stopped(*id) {
            return Err(Reject::new(
                5,
                "IC0508",
                format!("Canister {id} is stopped"),
            ));
        }
        Ok(())
    }

    /// The canister's controllers: the host's when it has the canister (it
    /// changes them for calls from canisters), else the bridge's record
    /// (an empty canister created by ingress).
    pub fn controllers_of(&self, id: &Principal) -> Option<Vec<Principal>> {
        self.host.controllers(*id).or_else(|| {
            self.canisters
                .get(id)
                .map(|r| r.settings.controllers.clone())
        })
    }

    /// SHA-256 of the installed module as it was given: the bridge's for
    /// a module it installed (compressed, if it was), else the host's.
    pub fn module_hash_of(&self, id: &Principal) -> Option<[u8; 32]> {
        let host = self.host.module_hash(*id);
        match self.canisters.get(id) {
            Some(r) if host.is_some() && r.module_hash.is_some() => r.module_hash,
            _ => host,
        }
    }

    /// Whether the canister exists (on the host or in a record).
    pub fn exists(&self, id: &Principal) -> bool {
        self.canisters.contains_key(id) || self.host.exists(*id)
    }

    fn forget_expired(&mut self) {
        let now = self.host.time();
        for r in self.requests.values_mut() {
            if r.expiry + STATUS_RETENTION_NS < now && r.outcome != Outcome::Done {
                r.outcome = Outcome::Done;
            }
        }
    }

    /// Every subnet's public key, canister ranges and node key (the state
    /// tree of each subnet holds them all, as on the IC).
    fn subnet_entries(&self, tree: &mut TreeBuilder, keys: &Keys) {
        for k in &keys.subnets {
            let subnet = k.id.as_slice();
            tree.insert(
                &[b"subnet", subnet, b"public_key"],
                k.key.root_key_der().to_vec(),
            );
            let (low, high) = k.range;
            let ranges: Vec<(serde_bytes::ByteBuf, serde_bytes::ByteBuf)> = vec![(
                serde_bytes::ByteBuf::from(low.as_slice().to_vec()),
                serde_bytes::ByteBuf::from(high.as_slice().to_vec()),
            )];
            tree.insert(&[b"subnet", subnet, b"canister_ranges"], cbor(&ranges));
            tree.insert(&[b"canister_ranges", subnet, low.as_slice()], cbor(&ranges));
            tree.insert(
                &[
                    b"subnet",
                    subnet,
                    b"node",
                    k.node_id.as_slice(),
                    b"public_key",
                ],
                k.node_der.clone(),
            );
        }
    }

    fn request_entries(
        &self,
        tree: &mut TreeBuilder,
        id: &[u8],
        reader: Principal,
    ) -> Result<(), HttpRefusal> {
        let Some(record) = <[u8; 32]>::try_from(id)
            .ok()
            .and_then(|id| self.requests.get(&id))
        else {
            return Ok(()); // unknown: the certificate proves its absence
        };
        if record.sender != reader {
            return Err(HttpRefusal::new(
                403,
                format!(
                    "Request IDs must be for requests signed by the caller: the request was sent by {}, the read_state by {reader}",
                    record.sender
                ),
            ));
        }
        let base: [&[u8]; 2] = [b"request_status", id];
        let at = |leaf: &'static [u8]| [base[0], base[1], leaf];
        match &record.outcome {
            Outcome::Replied(reply) => {
                tree.insert(&at(b"status"), b"replied".to_vec());
                tree.insert(&at(b"reply"), reply.clone());
            }
            Outcome::Rejected(r) => {
                tree.insert(&at(b"status"), b"rejected".to_vec());
                tree.insert(&at(b"reject_code"), leb(r.code));
                tree.insert(&at(b"reject_message"), r.message.clone().into_bytes());
                tree.insert(&at(b"error_code"), r.error_code.as_bytes().to_vec());
            }
            Outcome::Done => tree.insert(&at(b"status"), b"done".to_vec()),
        }
        Ok(())
    }

    fn canister_entries(
        &self,
        tree: &mut TreeBuilder,
        id: Principal,
        rest: &[&[u8]],
        reader: Principal,
    ) -> Result<(), HttpRefusal> {
        if !self.exists(&id) {
            return Ok(()); // absent
        }
        let controllers = self.controllers_of(&id).unwrap_or_default();
        let c = id.as_slice();
        if let [b"metadata", name] = rest {
            let name = String::from_utf8_lossy(name).into_owned();
            // Only modules the bridge installed have their sections known.
            let section = self.canisters.get(&id).and_then(|r| r.metadata.get(&name));
            if let Some((public, bytes)) = section {
                if !public && !controllers.contains(&reader) {
                    return Err(HttpRefusal::new(
                        403,
                        format!("Custom section {name} can only be requested by the controllers of the canister."),
                    ));
                }
                tree.insert(
                    &[b"canister", c, b"metadata", name.as_bytes()],
                    bytes.clone(),
                );
            }
            return Ok(());
        }
        tree.insert(
            &[b"canister", c, b"certified_data"],
            self.host.certified_data(id),
        );
        let controllers: Vec<serde_bytes::ByteBuf> = controllers
            .iter()
            .map(|p| serde_bytes::ByteBuf::from(p.as_slice().to_vec()))
            .collect();
        tree.insert(&[b"canister", c, b"controllers"], cbor(&controllers));
        if let Some(hash) = self.module_hash_of(&id) {
            tree.insert(&[b"canister", c, b"module_hash"], hash.to_vec());
        }
        Ok(())
    }
}

/// Whether the host refused an ingress update in `canister_inspect_message`
/// (it did not accept the message, or it trapped: both are refusals before
/// execution on the IC, never certified), given the kind of the last
/// message the host ran. The errors of the checks before the inspect
/// leave that kind as it was, so they are excluded.
fn is_inspect_rejection(e: &embedded_ic_host::HostError, last_ran: Kind) -> bool {
    use embedded_ic_host::HostError::{CanisterNotFound, IngressTooLarge, MethodNotFound};
    last_ran == Kind::InspectMessage
        && !matches!(
            e,
            IngressTooLarge { .. } | CanisterNotFound(_) | MethodNotFound(_)
        )
}

fn sign_query(
    keys: &SubnetKeys,
    request_id: &RequestId,
    timestamp: u64,
    result: Result<Vec<u8>, Reject>,
) -> QueryReply {
    use serde_cbor::Value;
    let text = |s: &str| Value::Text(s.into());
    let mut signed: BTreeMap<Value, Value> = BTreeMap::new();
    signed.insert(text("timestamp"), Value::Integer(timestamp.into()));
    signed.insert(text("request_id"), Value::Bytes(request_id.to_vec()));
    match &result {
        Ok(arg) => {
            signed.insert(text("status"), text("replied"));
            let mut reply = BTreeMap::new();
            reply.insert(text("arg"), Value::Bytes(arg.clone()));
            signed.insert(text("reply"), Value::Map(reply));
        }
        Err(r) => {
            signed.insert(text("status"), text("rejected"));
            signed.insert(text("reject_code"), Value::Integer(r.code.into()));
            signed.insert(text("reject_message"), text(&r.message));
            signed.insert(text("error_code"), text(r.error_code));
        }
    }
    let hash = request_id::hash_map(signed.iter()).expect("a reply map hashes");
    let signatures = vec![NodeSignature {
        timestamp,
        signature: keys.sign_response(&hash),
        identity: keys.node_id.as_slice().to_vec(),
    }];
    match result {
        Ok(arg) => QueryReply::Replied {
            status: "replied",
            reply: ReplyArg { arg },
            signatures,
        },
        Err(r) => QueryReply::Rejected {
            status: "rejected",
            reject_code: r.code,
            reject_message: r.message,
            error_code: r.error_code.to_string(),
            signatures,
        },
    }
}
