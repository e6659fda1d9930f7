//! The local network's IC HTTP interface as the IC's own clients meet it.
//!
//! - ic-agent (the Rust agent, certificate and query-signature checks on)
//!   makes update calls, queries and `read_state`s, and drives the
//!   management canister through a canister's life.
//! - Envelopes built here (content and signatures from ic-agent's types and
//!   identities, an implementation independent of the network's) are posted
//!   over a bare socket, one test per refusal the IC makes before a request
//!   executes, each with an accepted control so that a refusal for another
//!   reason does not pass.
//! - The network's request ids are checked against ic-transport-types'.

use backend::upload::{Capsule, CapsuleId, UploadError};
use candid::{CandidType, Principal};
use ic_agent::agent::{Envelope, EnvelopeContent, RejectCode};
use ic_agent::hash_tree::Label;
use ic_agent::identity::{
    AnonymousIdentity, BasicIdentity, DelegatedIdentity, Delegation, Prime256v1Identity,
    Secp256k1Identity, SenderInfo, SignedDelegation,
};
use ic_agent::{Agent, AgentError, Identity, RequestId};
use ic_management_canister_types::{
    CanisterIdRecord, CanisterInstallMode, CanisterSettings, CanisterStatusResult,
    CanisterStatusType, InstallCodeArgs, ProvisionalCreateCanisterWithCyclesArgs,
    UpdateSettingsArgs,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use upload_bridge::network::{envelope, request_id};
use upload_bridge::Bridge;

// ---------------------------------------------------------------------------
// The network and the agents
// ---------------------------------------------------------------------------

fn start() -> Bridge {
    Bridge::start("127.0.0.1:0", upload_harness::backend_wasm().to_vec()).expect("bridge starts")
}

/// The backend module as tools send it: gzipped (the raw release module
/// is over the 2 MiB an ingress message may carry).
fn wasm() -> &'static [u8] {
    static MODULE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    MODULE.get_or_init(|| gzip(upload_harness::backend_wasm()))
}

/// An agent for `identity` that trusts only the network's root key; its
/// query-signature verification is left at ic-agent's default (on).
fn agent(bridge: &Bridge, identity: impl Identity + 'static) -> Agent {
    agent_trusting(bridge, identity, bridge.root_key())
}

fn agent_trusting(bridge: &Bridge, identity: impl Identity + 'static, root_key: Vec<u8>) -> Agent {
    let agent = Agent::builder()
        .with_url(bridge.url())
        .with_identity(identity)
        .build()
        .expect("agent builds");
    agent.set_root_key(root_key);
    agent
}

fn ed25519(seed: u8) -> BasicIdentity {
    BasicIdentity::from_raw_key(&[seed; 32])
}

fn secp256k1(seed: u8) -> Secp256k1Identity {
    Secp256k1Identity::from_private_key(k256::SecretKey::from_slice(&[seed; 32]).expect("a scalar"))
}

fn p256(seed: u8) -> Prime256v1Identity {
    Prime256v1Identity::from_private_key(
        p256::SecretKey::from_slice(&[seed; 32]).expect("a scalar"),
    )
}

fn principal_of(identity: &dyn Identity) -> Principal {
    identity.sender().expect("a sender")
}

type CapsuleReply = Result<Capsule, UploadError>;

async fn create_capsule(
    agent: &Agent,
    canister: Principal,
    name: &str,
) -> Result<CapsuleReply, AgentError> {
    let reply = agent
        .update(&canister, "capsules_create")
        .with_arg(candid::encode_one(name).unwrap())
        .call_and_wait()
        .await?;
    Ok(candid::decode_one(&reply).expect("capsules_create replies Result<Capsule, UploadError>"))
}

async fn my_capsules(agent: &Agent, canister: Principal) -> Vec<Capsule> {
    let reply = agent
        .query(&canister, "capsules_mine")
        .with_arg(candid::encode_args((None::<u64>, 100u32)).unwrap())
        .call()
        .await
        .expect("capsules_mine replies");
    candid::decode_one(&reply).unwrap()
}

async fn get_capsule(
    agent: &Agent,
    canister: Principal,
    id: CapsuleId,
) -> Result<CapsuleReply, AgentError> {
    let reply = agent
        .query(&canister, "capsules_get")
        .with_arg(candid::encode_one(id).unwrap())
        .call()
        .await?;
    Ok(candid::decode_one(&reply).unwrap())
}

/// The reject code and IC error code of a refused call, certified or not.
fn reject_of(result: Result<impl std::fmt::Debug, AgentError>) -> (RejectCode, String) {
    match result {
        Err(
            AgentError::CertifiedReject { reject, .. }
            | AgentError::UncertifiedReject { reject, .. },
        ) => (reject.reject_code, reject.error_code.unwrap_or_default()),
        other => panic!("expected a reject, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The management canister through ic-agent
// ---------------------------------------------------------------------------

/// An ingress call to `aaaaa-aa` about canister `effective`.
async fn management(
    agent: &Agent,
    method: &str,
    effective: Principal,
    arg: impl CandidType,
) -> Result<Vec<u8>, AgentError> {
    agent
        .update(&Principal::management_canister(), method)
        .with_effective_canister_id(effective)
        .with_arg(candid::encode_one(arg).unwrap())
        .call_and_wait()
        .await
}

fn id_record(canister: Principal) -> CanisterIdRecord {
    CanisterIdRecord {
        canister_id: canister,
    }
}

async fn create_canister(agent: &Agent, routed_via: Principal) -> Principal {
    let args = ProvisionalCreateCanisterWithCyclesArgs {
        amount: None,
        settings: None,
        specified_id: None,
        sender_canister_version: None,
    };
    // A create names no canister: the agent routes it by any canister id
    // of the subnet.
    let reply = management(
        agent,
        "provisional_create_canister_with_cycles",
        routed_via,
        args,
    )
    .await
    .expect("the canister is created");
    candid::decode_one::<CanisterIdRecord>(&reply)
        .unwrap()
        .canister_id
}

async fn install_code(
    agent: &Agent,
    canister: Principal,
    mode: CanisterInstallMode,
    module: &[u8],
) -> Result<(), AgentError> {
    let args = InstallCodeArgs {
        mode,
        canister_id: canister,
        wasm_module: module.to_vec(),
        arg: candid::encode_args(()).unwrap(),
        sender_canister_version: None,
    };
    management(agent, "install_code", canister, args)
        .await
        .map(drop)
}

async fn canister_status(
    agent: &Agent,
    canister: Principal,
) -> Result<CanisterStatusResult, AgentError> {
    let reply = management(agent, "canister_status", canister, id_record(canister)).await?;
    Ok(candid::decode_one(&reply).expect("canister_status replies CanisterStatusResult"))
}

/// A fresh canister of `owner` (its only controller) running the backend.
async fn owned_canister(bridge: &Bridge, owner: &Agent) -> Principal {
    let canister = create_canister(owner, bridge.canister()).await;
    install_code(owner, canister, CanisterInstallMode::Install, wasm())
        .await
        .expect("the owner installs the backend");
    canister
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

// ---------------------------------------------------------------------------
// Hand-built envelopes over a bare socket
// ---------------------------------------------------------------------------

struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a refusal before execution: `status`, the body naming why.
    fn assert_refused(&self, status: u16, why: &str) {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert!(
            self.text().contains(why),
            "expected {why:?} in {:?}",
            self.text()
        );
    }

    fn cbor<T: for<'de> Deserialize<'de>>(&self) -> T {
        assert_eq!(self.status, 200, "body: {}", self.text());
        serde_cbor::from_slice(&self.body).expect("a CBOR reply")
    }
}

/// One POST on its own connection, as the agents send them.
fn post(bridge: &Bridge, path: &str, body: &[u8]) -> Response {
    let url = bridge.url();
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/cbor\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]);
    Response {
        status: head[9..12].parse().expect("a status code"),
        body: raw[split + 4..].to_vec(),
    }
}

fn canister_path(bridge: &Bridge, version: &str, endpoint: &str) -> String {
    format!(
        "/api/{version}/canister/{}/{endpoint}",
        bridge.canister().to_text()
    )
}

/// A synchronous (v3) call of the bridge's canister.
fn post_call(bridge: &Bridge, body: &[u8]) -> Response {
    post(bridge, &canister_path(bridge, "v3", "call"), body)
}

fn post_query(bridge: &Bridge, body: &[u8]) -> Response {
    post(bridge, &canister_path(bridge, "v3", "query"), body)
}

fn post_read_state(bridge: &Bridge, body: &[u8]) -> Response {
    post(bridge, &canister_path(bridge, "v2", "read_state"), body)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The wall clock moved by `seconds`. The network's clock trails it by
/// the bridge's start-up (the canister's install), so the margins below
/// are minutes, never seconds.
fn at(seconds: i64) -> u64 {
    now_ns().saturating_add_signed(seconds * 1_000_000_000)
}

/// Within the IC's window (at most 5 minutes ahead, plus a minute of
/// drift).
fn valid_expiry() -> u64 {
    at(3 * 60)
}

/// A fresh nonce: two requests built alike still have different ids.
fn nonce() -> Vec<u8> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes().to_vec()
}

fn call_content(
    sender: Principal,
    canister: Principal,
    method: &str,
    arg: Vec<u8>,
) -> EnvelopeContent {
    EnvelopeContent::Call {
        nonce: Some(nonce()),
        ingress_expiry: valid_expiry(),
        sender,
        canister_id: canister,
        method_name: method.into(),
        arg,
        sender_info: None,
    }
}

fn create_capsule_content(bridge: &Bridge, sender: Principal, name: &str) -> EnvelopeContent {
    call_content(
        sender,
        bridge.canister(),
        "capsules_create",
        candid::encode_one(name).unwrap(),
    )
}

fn stats_query_content(bridge: &Bridge, sender: Principal) -> EnvelopeContent {
    EnvelopeContent::Query {
        ingress_expiry: valid_expiry(),
        sender,
        canister_id: bridge.canister(),
        method_name: "stats".into(),
        arg: candid::encode_args(()).unwrap(),
        nonce: None,
        sender_info: None,
    }
}

fn read_status_content(sender: Principal, request: &RequestId) -> EnvelopeContent {
    EnvelopeContent::ReadState {
        ingress_expiry: valid_expiry(),
        sender,
        paths: vec![vec![
            Label::from("request_status"),
            Label::from(request.as_slice()),
        ]],
    }
}

fn with_expiry(mut content: EnvelopeContent, expiry: u64) -> EnvelopeContent {
    let (EnvelopeContent::Call { ingress_expiry, .. }
    | EnvelopeContent::Query { ingress_expiry, .. }
    | EnvelopeContent::ReadState { ingress_expiry, .. }) = &mut content;
    *ingress_expiry = expiry;
    content
}

/// `content` carrying `signature` (made by ic-agent's identities, over
/// ic-transport-types' request id).
fn envelope_of(content: &EnvelopeContent, signature: ic_agent::Signature) -> Vec<u8> {
    Envelope {
        content: Cow::Borrowed(content),
        sender_pubkey: signature.public_key,
        sender_sig: signature.signature,
        sender_delegation: signature.delegations,
    }
    .encode_bytes()
}

fn signed(identity: &dyn Identity, content: &EnvelopeContent) -> Vec<u8> {
    envelope_of(content, identity.sign(content).expect("the identity signs"))
}

/// `signer` delegating to `session`'s key until `expiration`, for
/// `targets`.
fn delegation(
    signer: &dyn Identity,
    session: &dyn Identity,
    expiration: u64,
    targets: Option<Vec<Principal>>,
) -> SignedDelegation {
    let delegation = Delegation {
        pubkey: session.public_key().unwrap(),
        expiration,
        targets,
        permissions: None,
    };
    let signature = signer.sign_delegation(&delegation).unwrap().signature;
    SignedDelegation {
        delegation,
        signature: signature.expect("a delegation signature"),
    }
}

/// `session` signing for `root` through `chain`. Unchecked: ic-agent
/// would check the chain's signatures, and the tests want the network to
/// be the one that refuses.
fn delegated(
    root: &dyn Identity,
    session: BasicIdentity,
    chain: Vec<SignedDelegation>,
) -> DelegatedIdentity {
    DelegatedIdentity::new_unchecked(root.public_key().unwrap(), Box::new(session), chain)
}

/// `root` delegating straight to `session`.
fn delegated_once(
    root: &BasicIdentity,
    session: BasicIdentity,
    expiration: u64,
    targets: Option<Vec<Principal>>,
) -> DelegatedIdentity {
    let link = delegation(root, &session, expiration, targets);
    delegated(root, session, vec![link])
}

/// A v3 call's reply body.
#[derive(Deserialize, Debug)]
struct SyncCallReply {
    status: String,
    certificate: Option<serde_bytes::ByteBuf>,
    reject_code: Option<u64>,
    error_code: Option<String>,
}

#[derive(Deserialize)]
struct ReadStateReply {
    certificate: serde_bytes::ByteBuf,
}

/// The reply a certificate of the network certifies for `request`: the
/// certificate checked by ic-agent against the network's root key.
fn certified_reply(
    verifier: &Agent,
    canister: Principal,
    certificate: &[u8],
    request: &RequestId,
) -> Vec<u8> {
    let cert: ic_agent::Certificate = serde_cbor::from_slice(certificate).expect("a certificate");
    verifier
        .verify(&cert, canister)
        .expect("the certificate verifies");
    let at = |leaf: &'static [u8]| [b"request_status".as_slice(), request.as_slice(), leaf];
    let status = ic_agent::lookup_value(&cert, at(b"status")).expect("a status");
    assert_eq!(status, b"replied");
    ic_agent::lookup_value(&cert, at(b"reply"))
        .expect("a reply")
        .to_vec()
}

/// The `capsules_create` reply a synchronous call's response certifies.
fn certified_capsule(bridge: &Bridge, response: &Response, request: &RequestId) -> Capsule {
    let reply: SyncCallReply = response.cbor();
    assert_eq!(reply.status, "replied", "{reply:?}");
    let certificate = reply.certificate.expect("a certificate");
    let verifier = agent(bridge, AnonymousIdentity);
    let reply = certified_reply(&verifier, bridge.canister(), &certificate, request);
    candid::decode_one::<CapsuleReply>(&reply)
        .unwrap()
        .expect("the capsule is created")
}

/// Posts a `capsules_create` signed by `identity` and returns the capsule.
fn create_capsule_signed_by(bridge: &Bridge, identity: &dyn Identity, name: &str) -> Capsule {
    let content = create_capsule_content(bridge, principal_of(identity), name);
    let response = post_call(bridge, &signed(identity, &content));
    certified_capsule(bridge, &response, &content.to_request_id())
}

// ---------------------------------------------------------------------------
// 1. ic-agent: calls, queries, read_state
// ---------------------------------------------------------------------------

#[tokio::test]
async fn agent_calls_queries_and_reads_state() {
    let bridge = start();
    let canister = bridge.canister();
    let identity = ed25519(1);
    let me = principal_of(&identity);
    let agent = agent(&bridge, identity);

    // An update: v4 call, certificate verified against the root key.
    let capsule = create_capsule(&agent, canister, "fam")
        .await
        .unwrap()
        .expect("created");
    assert_eq!((capsule.name.as_str(), capsule.owner), ("fam", me));

    // Queries, their node signatures verified by the agent (the subnet's
    // node keys read from a certified `read_state` of `/subnet`).
    let got = get_capsule(&agent, canister, capsule.capsule_id)
        .await
        .unwrap();
    assert_eq!(got, Ok(capsule.clone()));
    assert_eq!(my_capsules(&agent, canister).await, vec![capsule]);
    let stats = agent
        .query(&canister, "stats")
        .with_arg(candid::encode_args(()).unwrap())
        .await;
    candid::decode_one::<backend::upload::Stats>(&stats.expect("stats replies")).unwrap();

    // The canister's certified state.
    let module_hash = agent
        .read_state_canister_info(canister, "module_hash")
        .await
        .unwrap();
    // The network's own canister was installed with the raw module.
    assert_eq!(module_hash, sha256(upload_harness::backend_wasm()));
    let controllers = agent
        .read_state_canister_controllers(canister)
        .await
        .unwrap();
    assert_eq!(controllers, vec![bridge.controller()]);

    // The subnet's state, through the subnet's own endpoint: its canister
    // ranges hold the canister (the subnet id is the root key's principal:
    // one subnet, the root subnet).
    let subnet = Principal::self_authenticating(bridge.root_key());
    let ranges = agent
        .read_state_subnet_canister_ranges(subnet)
        .await
        .unwrap();
    assert!(
        ranges
            .iter()
            .any(|(low, high)| *low <= canister && canister <= *high),
        "{ranges:?}"
    );
}

/// The agent's checks are real: with another network's root key neither
/// a call's certificate nor a query's node keys verify.
#[tokio::test]
async fn agent_trusting_another_root_key_accepts_nothing() {
    let bridge = start();
    let other = embedded_ic_host::certification::SubnetKey::from_seed(b"another network");
    let agent = agent_trusting(&bridge, ed25519(2), other.root_key_der().to_vec());
    let canister = bridge.canister();
    assert!(matches!(
        create_capsule(&agent, canister, "fam").await,
        Err(AgentError::CertificateVerificationFailed())
    ));
    assert!(get_capsule(&agent, canister, CapsuleId(0)).await.is_err());
    assert!(agent
        .read_state_canister_controllers(canister)
        .await
        .is_err());
}

// ---------------------------------------------------------------------------
// 2. The management canister through ic-agent
// ---------------------------------------------------------------------------

#[tokio::test]
async fn management_creates_installs_and_reports_status_to_controllers_only() {
    let bridge = start();
    let owner_identity = ed25519(10);
    let owner_id = principal_of(&owner_identity);
    let owner = agent(&bridge, owner_identity);
    let canister = owned_canister(&bridge, &owner).await;
    assert_ne!(canister, bridge.canister());

    let status = canister_status(&owner, canister).await.unwrap();
    assert_eq!(status.status, CanisterStatusType::Running);
    assert_eq!(status.module_hash, Some(sha256(wasm())));
    assert_eq!(status.settings.controllers, vec![owner_id]);
    assert_eq!(
        owner
            .read_state_canister_controllers(canister)
            .await
            .unwrap(),
        vec![owner_id]
    );

    // The installed backend answers.
    let capsule = create_capsule(&owner, canister, "fam")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(capsule.owner, owner_id);

    // Installing again over a module is refused; so is any control by a
    // non-controller.
    let again = install_code(&owner, canister, CanisterInstallMode::Install, wasm()).await;
    assert_eq!(
        reject_of(again),
        (RejectCode::CanisterError, "IC0538".into())
    );
    let stranger = agent(&bridge, ed25519(11));
    let refused = canister_status(&stranger, canister).await;
    assert_eq!(
        reject_of(refused),
        (RejectCode::CanisterError, "IC0512".into())
    );
    let refused = management(&stranger, "stop_canister", canister, id_record(canister)).await;
    assert_eq!(
        reject_of(refused),
        (RejectCode::CanisterError, "IC0512".into())
    );
}

#[tokio::test]
async fn management_stops_starts_and_deletes() {
    let bridge = start();
    let owner = agent(&bridge, ed25519(20));
    let canister = owned_canister(&bridge, &owner).await;
    let stop = || management(&owner, "stop_canister", canister, id_record(canister));

    stop().await.unwrap();
    assert_eq!(
        canister_status(&owner, canister).await.unwrap().status,
        CanisterStatusType::Stopped
    );
    let refused = create_capsule(&owner, canister, "fam").await;
    assert_eq!(
        reject_of(refused),
        (RejectCode::CanisterError, "IC0508".into())
    );
    let refused = get_capsule(&owner, canister, CapsuleId(0)).await;
    assert_eq!(
        reject_of(refused),
        (RejectCode::CanisterError, "IC0508".into())
    );

    management(&owner, "start_canister", canister, id_record(canister))
        .await
        .unwrap();
    create_capsule(&owner, canister, "fam")
        .await
        .unwrap()
        .unwrap();

    // A running canister is not deleted; a stopped one is, and is gone.
    let refused = management(&owner, "delete_canister", canister, id_record(canister)).await;
    assert_eq!(
        reject_of(refused),
        (RejectCode::CanisterError, "IC0510".into())
    );
    stop().await.unwrap();
    management(&owner, "delete_canister", canister, id_record(canister))
        .await
        .unwrap();
    let gone = canister_status(&owner, canister).await;
    assert_eq!(
        reject_of(gone),
        (RejectCode::DestinationInvalid, "IC0301".into())
    );
    assert!(owner
        .read_state_canister_info(canister, "module_hash")
        .await
        .is_err());
}

#[tokio::test]
async fn management_adds_a_controller_and_upgrades_keeping_data() {
    let bridge = start();
    let owner_identity = ed25519(30);
    let owner_id = principal_of(&owner_identity);
    let owner = agent(&bridge, owner_identity);
    let second_identity = secp256k1(31);
    let second_id = principal_of(&second_identity);
    let second = agent(&bridge, second_identity);
    let canister = owned_canister(&bridge, &owner).await;
    assert!(canister_status(&second, canister).await.is_err());

    let settings = UpdateSettingsArgs {
        canister_id: canister,
        settings: CanisterSettings {
            controllers: Some(vec![owner_id, second_id]),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    management(&owner, "update_settings", canister, settings)
        .await
        .unwrap();
    assert_eq!(
        owner
            .read_state_canister_controllers(canister)
            .await
            .unwrap(),
        vec![owner_id, second_id]
    );
    // The added controller controls: it reads the status and upgrades.
    let status = canister_status(&second, canister).await.unwrap();
    assert_eq!(status.settings.controllers, vec![owner_id, second_id]);

    let capsule = create_capsule(&owner, canister, "kept")
        .await
        .unwrap()
        .unwrap();
    // Gzipped, as tools ship large modules: the module hash is the hash of
    // the bytes installed.
    let module = wasm().to_vec();
    install_code(
        &second,
        canister,
        CanisterInstallMode::Upgrade(None),
        &module,
    )
    .await
    .expect("the second controller upgrades");
    assert_eq!(
        owner
            .read_state_canister_info(canister, "module_hash")
            .await
            .unwrap(),
        sha256(&module)
    );
    assert_eq!(
        get_capsule(&owner, canister, capsule.capsule_id)
            .await
            .unwrap(),
        Ok(capsule.clone())
    );
    assert_eq!(my_capsules(&owner, canister).await, vec![capsule]);
}

// ---------------------------------------------------------------------------
// 3. Hand-built envelopes: what the network refuses, and what it accepts
// ---------------------------------------------------------------------------

#[test]
fn malformed_cbor_is_refused_with_a_reason() {
    let bridge = start();
    post_call(&bridge, b"\xff not CBOR").assert_refused(400, "not a CBOR envelope");
    post_query(&bridge, b"").assert_refused(400, "not a CBOR envelope");
    // CBOR, but not an envelope.
    let no_content = serde_cbor::to_vec(&serde_cbor::Value::Array(vec![])).unwrap();
    post_read_state(&bridge, &no_content).assert_refused(400, "not a CBOR map");
    let empty_map = serde_cbor::to_vec(&std::collections::BTreeMap::<String, u8>::new()).unwrap();
    post_call(&bridge, &empty_map).assert_refused(400, "missing field `content`");
}

/// A signature of one request does not carry another, on every endpoint:
/// a field changed after signing is refused.
#[test]
fn a_signature_over_another_request_is_refused() {
    let bridge = start();
    let identity = ed25519(40);
    let me = principal_of(&identity);
    let tampered = |content: &EnvelopeContent, changed: EnvelopeContent| {
        envelope_of(&changed, identity.sign(content).unwrap())
    };

    let call = create_capsule_content(&bridge, me, "fam");
    let mut changed = call.clone();
    if let EnvelopeContent::Call { arg, .. } = &mut changed {
        *arg = candid::encode_one("mallory").unwrap();
    }
    post_call(&bridge, &tampered(&call, changed)).assert_refused(400, "does not verify");

    let query = stats_query_content(&bridge, me);
    let later = with_expiry(query.clone(), valid_expiry() + 1);
    post_query(&bridge, &tampered(&query, later)).assert_refused(400, "does not verify");

    let read = read_status_content(me, &call.to_request_id());
    let later = with_expiry(read.clone(), valid_expiry() + 1);
    post_read_state(&bridge, &tampered(&read, later)).assert_refused(400, "does not verify");

    // The untampered ones pass.
    create_capsule_signed_by(&bridge, &identity, "fam");
    assert_eq!(post_query(&bridge, &signed(&identity, &query)).status, 200);
    assert_eq!(
        post_read_state(&bridge, &signed(&identity, &read)).status,
        200
    );
}

/// A valid signature by a key whose principal is not the sender's.
#[test]
fn a_sender_not_matching_the_public_key_is_refused() {
    let bridge = start();
    let signer = ed25519(41);
    let someone_else = principal_of(&ed25519(42));
    let content = create_capsule_content(&bridge, someone_else, "fam");
    post_call(&bridge, &signed(&signer, &content))
        .assert_refused(400, "is not the principal of sender_pubkey");
}

#[test]
fn an_anonymous_sender_carries_no_signature() {
    let bridge = start();
    let anonymous = Principal::anonymous();
    let query = stats_query_content(&bridge, anonymous);
    // Unsigned, the anonymous query is served ...
    let unsigned = envelope_of(&query, AnonymousIdentity.sign(&query).unwrap());
    assert_eq!(post_query(&bridge, &unsigned).status, 200);
    // ... signed by a key, it is refused, even with a valid signature.
    let key = ed25519(43);
    post_query(&bridge, &signed(&key, &query))
        .assert_refused(400, "anonymous request carries no key");
}

#[test]
fn ed25519_secp256k1_and_p256_signed_calls_are_accepted() {
    let bridge = start();
    let identities: [(&str, Box<dyn Identity>); 3] = [
        ("Ed25519", Box::new(ed25519(50))),
        ("ECDSA secp256k1", Box::new(secp256k1(51))),
        ("ECDSA P-256", Box::new(p256(52))),
    ];
    for (kind, identity) in &identities {
        let capsule = create_capsule_signed_by(&bridge, identity.as_ref(), kind);
        assert_eq!(capsule.owner, principal_of(identity.as_ref()), "{kind}");
        // The same key, with the signature of another identity's key: refused.
        let content = create_capsule_content(&bridge, principal_of(identity.as_ref()), kind);
        let mut signature = identity.sign(&content).unwrap();
        let other = identities
            .iter()
            .find(|(k, _)| k != kind)
            .unwrap()
            .1
            .as_ref();
        signature.signature = other.sign(&content).unwrap().signature;
        post_call(&bridge, &envelope_of(&content, signature))
            .assert_refused(400, "does not verify");
    }
}

#[test]
fn a_delegation_chain_signs_for_its_root() {
    let bridge = start();
    let root = ed25519(60);
    let identity = delegated_once(&root, ed25519(61), at(3600), None);
    let capsule = create_capsule_signed_by(&bridge, &identity, "delegated");
    // The capsule is the root's: the session key only signed for it.
    assert_eq!(capsule.owner, principal_of(&root));

    // Two links: root -> middle -> session.
    let (middle, session) = (ed25519(62), ed25519(63));
    let chain = vec![
        delegation(&root, &middle, at(3600), None),
        delegation(&middle, &session, at(3600), None),
    ];
    let capsule = create_capsule_signed_by(&bridge, &delegated(&root, session, chain), "twice");
    assert_eq!(capsule.owner, principal_of(&root));

    // A link the root did not sign is refused.
    let session = ed25519(63);
    let forged = delegated(
        &root,
        session,
        vec![delegation(&middle, &ed25519(63), at(3600), None)],
    );
    let content = create_capsule_content(&bridge, principal_of(&root), "forged");
    post_call(&bridge, &signed(&forged, &content)).assert_refused(400, "Invalid delegation");
}

#[test]
fn an_expired_delegation_is_refused() {
    let bridge = start();
    let root = ed25519(64);
    let expired = delegated_once(&root, ed25519(65), at(-10 * 60), None);
    let content = create_capsule_content(&bridge, principal_of(&root), "fam");
    post_call(&bridge, &signed(&expired, &content))
        .assert_refused(400, "Invalid delegation expiry");
}

#[test]
fn a_delegation_is_good_only_for_its_targets() {
    let bridge = start();
    let root = ed25519(66);
    let elsewhere = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0x0f, 0xff, 1, 1]);
    let for_other = delegated_once(&root, ed25519(67), at(3600), Some(vec![elsewhere]));
    let content = create_capsule_content(&bridge, principal_of(&root), "fam");
    post_call(&bridge, &signed(&for_other, &content))
        .assert_refused(400, "is not one of the targets");

    let for_this = delegated_once(
        &root,
        ed25519(67),
        at(3600),
        Some(vec![elsewhere, bridge.canister()]),
    );
    create_capsule_signed_by(&bridge, &for_this, "fam");
}

#[test]
fn an_ingress_expiry_out_of_the_window_is_refused() {
    let bridge = start();
    let identity = ed25519(70);
    let me = principal_of(&identity);
    // Past, and further ahead than 5 minutes and the minute of drift.
    for expiry in [at(-5 * 60), at(6 * 60 + 30)] {
        let content = with_expiry(create_capsule_content(&bridge, me, "fam"), expiry);
        post_call(&bridge, &signed(&identity, &content))
            .assert_refused(400, "Invalid request expiry: ");
        let query = with_expiry(stats_query_content(&bridge, me), expiry);
        post_query(&bridge, &signed(&identity, &query))
            .assert_refused(400, "Invalid request expiry: ");
    }
    // Four minutes ahead is inside.
    let content = with_expiry(create_capsule_content(&bridge, me, "fam"), at(4 * 60));
    let response = post_call(&bridge, &signed(&identity, &content));
    certified_capsule(&bridge, &response, &content.to_request_id());
}

#[test]
fn a_body_over_2_mib_is_refused_with_413() {
    let bridge = start();
    let identity = ed25519(71);
    let huge = vec![0u8; 2 * 1024 * 1024 + 1];
    post_call(&bridge, &huge).assert_refused(413, "Payload Too Large");
    // A signed envelope pushed over the limit by its argument, too.
    let arg = vec![7u8; 2 * 1024 * 1024];
    let content = call_content(
        principal_of(&identity),
        bridge.canister(),
        "capsules_create",
        arg,
    );
    post_call(&bridge, &signed(&identity, &content)).assert_refused(413, "Payload Too Large");
}

#[tokio::test]
async fn the_same_signed_call_twice_executes_once() {
    let bridge = start();
    let identity = ed25519(72);
    let content = create_capsule_content(&bridge, principal_of(&identity), "once");
    let request = content.to_request_id();
    let body = signed(&identity, &content);
    let first = certified_capsule(&bridge, &post_call(&bridge, &body), &request);
    let second = certified_capsule(&bridge, &post_call(&bridge, &body), &request);
    assert_eq!(first, second);
    let agent = agent(&bridge, identity);
    assert_eq!(my_capsules(&agent, bridge.canister()).await, vec![first]);
}

#[test]
fn a_v2_call_is_accepted_then_its_status_read() {
    let bridge = start();
    let identity = ed25519(73);
    let me = principal_of(&identity);
    let content = create_capsule_content(&bridge, me, "async");
    let request = content.to_request_id();
    let accepted = post(
        &bridge,
        &canister_path(&bridge, "v2", "call"),
        &signed(&identity, &content),
    );
    assert_eq!(accepted.status, 202, "body: {}", accepted.text());

    let read = read_status_content(me, &request);
    let reply: ReadStateReply = post_read_state(&bridge, &signed(&identity, &read)).cbor();
    let verifier = agent(&bridge, AnonymousIdentity);
    let reply = certified_reply(&verifier, bridge.canister(), &reply.certificate, &request);
    let capsule = candid::decode_one::<CapsuleReply>(&reply).unwrap().unwrap();
    assert_eq!((capsule.name.as_str(), capsule.owner), ("async", me));
}

#[test]
fn another_senders_request_status_is_403() {
    let bridge = start();
    let alice = ed25519(74);
    let content = create_capsule_content(&bridge, principal_of(&alice), "alice's");
    let request = content.to_request_id();
    create_capsule_signed_by(&bridge, &alice, "first");
    assert_eq!(
        post(
            &bridge,
            &canister_path(&bridge, "v2", "call"),
            &signed(&alice, &content)
        )
        .status,
        202
    );

    let bob = ed25519(75);
    let read = read_status_content(principal_of(&bob), &request);
    post_read_state(&bridge, &signed(&bob, &read)).assert_refused(403, "signed by the caller");
    // Alice reads her own.
    let read = read_status_content(principal_of(&alice), &request);
    assert_eq!(post_read_state(&bridge, &signed(&alice, &read)).status, 200);
}

/// A call the canister refuses in `canister_inspect_message` (the backend
/// traps there, to give the reason) never executes: the v3 reply is a
/// non-replicated rejection, no status is recorded, and the same request
/// is judged again when sent again.
#[test]
fn an_inspect_message_refusal_is_not_certified() {
    let bridge = start();
    let identity = ed25519(76);
    let me = principal_of(&identity);
    // Controllers only: refused for this identity before it runs.
    let content = call_content(
        me,
        bridge.canister(),
        "admin_set_capsule_creation_restricted",
        candid::encode_one(true).unwrap(),
    );
    let body = signed(&identity, &content);
    for _ in 0..2 {
        let reply: SyncCallReply = post_call(&bridge, &body).cbor();
        assert_eq!(reply.status, "non_replicated_rejection", "{reply:?}");
        assert!(reply.certificate.is_none());
        assert_eq!(
            (reply.reject_code, reply.error_code.as_deref()),
            (Some(5), Some("IC0503"))
        );
    }
    let request = content.to_request_id();
    let read = read_status_content(me, &request);
    let reply: ReadStateReply = post_read_state(&bridge, &signed(&identity, &read)).cbor();
    let cert: ic_agent::Certificate = serde_cbor::from_slice(&reply.certificate).unwrap();
    agent(&bridge, AnonymousIdentity)
        .verify(&cert, bridge.canister())
        .unwrap();
    let status = [b"request_status".as_slice(), request.as_slice(), b"status"];
    assert!(matches!(
        ic_agent::lookup_value(&cert, status),
        Err(AgentError::LookupPathAbsent(_))
    ));

    // The anonymous caller may not create capsules, either.
    let anonymous = create_capsule_content(&bridge, Principal::anonymous(), "anon");
    let body = envelope_of(&anonymous, AnonymousIdentity.sign(&anonymous).unwrap());
    let reply: SyncCallReply = post_call(&bridge, &body).cbor();
    assert_eq!(reply.status, "non_replicated_rejection", "{reply:?}");
}

// ---------------------------------------------------------------------------
// 4. Request ids: the network's against ic-transport-types'
// ---------------------------------------------------------------------------

/// xorshift64*: reproducible variety without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, max: u64) -> Vec<u8> {
        (0..self.below(max + 1))
            .map(|_| self.next() as u8)
            .collect()
    }

    fn principal(&mut self) -> Principal {
        Principal::from_slice(&self.bytes(29))
    }

    /// Texts with multi-byte characters: their hash is of their UTF-8.
    fn text(&mut self) -> String {
        const CHARS: &[char] = &['a', 'z', '_', '0', 'é', 'ß', '数', '🦀'];
        (0..self.below(12))
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize])
            .collect()
    }

    /// Naturals of every LEB128 length, the extremes included.
    fn nat(&mut self) -> u64 {
        match self.below(4) {
            0 => self.below(128),
            1 => u64::MAX - self.below(2),
            _ => self.next() >> self.below(64),
        }
    }

    fn maybe<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        (self.below(2) == 0).then(|| f(self))
    }

    fn content(&mut self) -> EnvelopeContent {
        let sender_info = |r: &mut Self| SenderInfo {
            info: r.bytes(40),
            signer: r.bytes(29),
            sig: r.bytes(64),
        };
        match self.below(3) {
            0 => EnvelopeContent::Call {
                nonce: self.maybe(|r| r.bytes(32)),
                ingress_expiry: self.nat(),
                sender: self.principal(),
                canister_id: self.principal(),
                method_name: self.text(),
                arg: self.bytes(100),
                sender_info: self.maybe(sender_info),
            },
            1 => EnvelopeContent::Query {
                ingress_expiry: self.nat(),
                sender: self.principal(),
                canister_id: self.principal(),
                method_name: self.text(),
                arg: self.bytes(100),
                nonce: self.maybe(|r| r.bytes(32)),
                sender_info: self.maybe(sender_info),
            },
            _ => EnvelopeContent::ReadState {
                ingress_expiry: self.nat(),
                sender: self.principal(),
                paths: (0..self.below(4))
                    .map(|_| {
                        (0..self.below(4))
                            .map(|_| Label::from(self.bytes(33)))
                            .collect()
                    })
                    .collect(),
            },
        }
    }

    fn delegation(&mut self) -> SignedDelegation {
        use ic_agent::identity::DelegationPermissions;
        SignedDelegation {
            delegation: Delegation {
                pubkey: self.bytes(91),
                expiration: self.nat(),
                targets: self.maybe(|r| (0..r.below(4)).map(|_| r.principal()).collect()),
                permissions: self.maybe(|r| {
                    [DelegationPermissions::All, DelegationPermissions::Queries]
                        [r.below(2) as usize]
                }),
            },
            signature: self.bytes(64),
        }
    }
}

fn request_type(content: &EnvelopeContent) -> &'static str {
    match content {
        EnvelopeContent::Call { .. } => "call",
        EnvelopeContent::Query { .. } => "query",
        EnvelopeContent::ReadState { .. } => "read_state",
    }
}

#[test]
fn request_ids_match_ic_transport_types() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..500 {
        let content = rng.content();
        let expected = content.to_request_id();

        // The content map alone, through `hash_map`.
        let value: serde_cbor::Value =
            serde_cbor::from_slice(&serde_cbor::to_vec(&content).unwrap()).unwrap();
        let serde_cbor::Value::Map(map) = value else {
            panic!("content is a map")
        };
        let ours = request_id::hash_map(map.iter()).expect("the content hashes");
        assert_eq!(ours, *expected, "case {case}: {content:?}");

        // And a whole envelope as the network decodes it, delegations and
        // all.
        let chain: Vec<SignedDelegation> = (0..rng.below(3)).map(|_| rng.delegation()).collect();
        let body = Envelope {
            content: Cow::Borrowed(&content),
            sender_pubkey: rng.maybe(|r| r.bytes(44)),
            sender_sig: rng.maybe(|r| r.bytes(64)),
            sender_delegation: (!chain.is_empty()).then(|| chain.clone()),
        }
        .encode_bytes();
        let decoded =
            envelope::decode(&body, request_type(&content)).expect("the envelope decodes");
        assert_eq!(decoded.request_id, *expected, "case {case}");
        let hashes: Vec<[u8; 32]> = decoded.delegations.iter().map(|d| d.hash).collect();
        let expected: Vec<[u8; 32]> = chain
            .iter()
            .map(|d| *ic_agent::to_request_id(&d.delegation).unwrap())
            .collect();
        assert_eq!(hashes, expected, "case {case}: delegations");
    }
}
