//! Several subnets behind one network, as ic-agent 0.49 meets them (its
//! certificate and query-signature checks on, the network's root key the
//! only key it trusts):
//!
//! - a canister on the third subnet takes calls and queries and its state
//!   is read; its certificates carry the root key's delegation to the
//!   third subnet (whose canister ranges hold the canister), its query
//!   replies are signed by that subnet's node;
//! - a fleet (`Options::fleet`: the index and its buckets, created inside
//!   the host through the management canister and the CMC): the buckets
//!   on other subnets answer the agent like canisters ingress created, and
//!   the fleet controller's test key signs the index's `admin_*` calls.

use backend::upload::{Capsule, CapsuleId, UploadError};
use candid::{Encode, Principal};
use ic_agent::hash_tree::{Label, LookupResult};
use ic_agent::identity::BasicIdentity;
use ic_agent::{Agent, Identity};
use sha2::{Digest, Sha256};
use upload_bridge::{Bridge, FleetWasm, Options};

fn agent(bridge: &Bridge, identity: impl Identity + 'static) -> Agent {
    let agent = Agent::builder()
        .with_url(bridge.url())
        .with_identity(identity)
        .with_verify_query_signatures(true)
        .build()
        .expect("agent builds");
    agent.set_root_key(bridge.root_key());
    agent
}

fn index_wasm() -> Vec<u8> {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    std::fs::read(embedded_ic_host::build_canister_wasm(
        &manifest,
        "upload-index",
    ))
    .expect("the index wasm")
}

/// The delegation's subnet id in a certificate, if it has one.
fn delegated_subnet(cert: &ic_agent::Certificate) -> Option<Principal> {
    cert.delegation
        .as_ref()
        .map(|d| Principal::from_slice(&d.subnet_id))
}

#[tokio::test]
async fn a_canister_on_the_third_subnet_is_called_queried_and_read_with_the_root_key_only() {
    let bridge = Bridge::start_with(
        "127.0.0.1:0",
        upload_harness::backend_wasm().to_vec(),
        Options {
            subnets: 3,
            ..Options::default()
        },
    )
    .expect("bridge starts");
    let subnets = bridge.subnets();
    assert_eq!(subnets.len(), 3);
    let identity = BasicIdentity::from_raw_key(&[7; 32]);
    let me = identity.sender().unwrap();
    let canister = bridge
        .install_on(subnets[2], upload_harness::backend_wasm(), me)
        .expect("installed on the third subnet");
    assert_eq!(bridge.subnet_of(canister), Some(subnets[2]));
    assert_ne!(bridge.subnet_of(bridge.canister()), Some(subnets[2]));
    let agent = agent(&bridge, identity);

    // An update (v4 call: its certificate is the third subnet's, with the
    // root key's delegation) and queries (signed by the third subnet's
    // node, its key read from a delegated read_state).
    let reply = agent
        .update(&canister, "capsules_create")
        .with_arg(candid::encode_one("far away").unwrap())
        .call_and_wait()
        .await
        .expect("the call verifies");
    let capsule = candid::decode_one::<Result<Capsule, UploadError>>(&reply)
        .unwrap()
        .expect("created");
    assert_eq!(capsule.owner, me);
    let reply = agent
        .query(&canister, "capsules_get")
        .with_arg(candid::encode_one(capsule.capsule_id).unwrap())
        .call()
        .await
        .expect("the query's signature verifies");
    assert_eq!(
        candid::decode_one::<Result<Capsule, UploadError>>(&reply).unwrap(),
        Ok(capsule.clone())
    );

    // Its state: module hash and controllers, certified by its subnet.
    let module_hash = agent
        .read_state_canister_info(canister, "module_hash")
        .await
        .unwrap();
    assert_eq!(
        module_hash,
        Sha256::digest(upload_harness::backend_wasm()).to_vec()
    );
    assert_eq!(
        agent
            .read_state_canister_controllers(canister)
            .await
            .unwrap(),
        vec![me]
    );
    let cert = agent
        .read_state_raw(vec![vec![Label::from("time")]], canister)
        .await
        .unwrap();
    assert_eq!(delegated_subnet(&cert), Some(subnets[2]));

    // The subnet's own endpoint: its ranges hold the canister, not the
    // default canister.
    let ranges = agent
        .read_state_subnet_canister_ranges(subnets[2])
        .await
        .unwrap();
    let holds = |c: Principal| ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
    assert!(holds(canister), "{ranges:?}");
    assert!(!holds(bridge.canister()), "{ranges:?}");
    let public_key_path = vec![
        Label::from("subnet"),
        Label::from(subnets[2].as_slice()),
        Label::from("public_key"),
    ];
    let cert = agent
        .read_state_raw(vec![public_key_path.clone()], subnets[2])
        .await
        .unwrap();
    assert!(matches!(
        cert.tree.lookup_path(&public_key_path),
        LookupResult::Found(_)
    ));

    // The default canister is on the root subnet: no delegation.
    let cert = agent
        .read_state_raw(vec![vec![Label::from("time")]], bridge.canister())
        .await
        .unwrap();
    assert_eq!(delegated_subnet(&cert), None);

    // Under another root key nothing of the third subnet verifies.
    let other = Agent::builder().with_url(bridge.url()).build().unwrap();
    other.set_root_key(
        embedded_ic_host::certification::SubnetKey::from_seed(b"another")
            .root_key_der()
            .to_vec(),
    );
    assert!(other
        .query(&canister, "capsules_get")
        .with_arg(candid::encode_one(CapsuleId(0)).unwrap())
        .call()
        .await
        .is_err());
}

#[tokio::test]
async fn the_fleets_buckets_answer_the_agent_and_its_controller_key_runs_the_index() {
    let bridge = Bridge::start_with(
        "127.0.0.1:0",
        upload_harness::backend_wasm().to_vec(),
        Options {
            fleet: Some(FleetWasm {
                index: index_wasm(),
                bucket: upload_harness::backend_wasm().to_vec(),
            }),
            ..Options::default()
        },
    )
    .expect("the network and its fleet start");
    let fleet = bridge.fleet().expect("a fleet");
    assert!(bridge.subnets().len() >= 3);
    assert!(fleet.buckets.len() >= 2, "{:?}", fleet.buckets);
    assert_eq!(bridge.subnet_of(fleet.index), Some(bridge.subnets()[0]));
    let remote = fleet
        .buckets
        .iter()
        .copied()
        .find(|b| bridge.subnet_of(*b) != Some(bridge.subnets()[0]))
        .expect("a bucket on another subnet than the index's");

    // A bucket the index created through the CMC on another subnet: the
    // agent queries it (node signature of its subnet), reads its state
    // (delegated), and calls it (the bucket refuses capsules_create: it
    // is managed by the index; a certified reply all the same).
    let anonymous = agent(&bridge, ic_agent::identity::AnonymousIdentity);
    let stats = anonymous
        .query(&remote, "stats")
        .with_arg(candid::encode_args(()).unwrap())
        .call()
        .await
        .expect("a verified query");
    candid::decode_one::<backend::upload::Stats>(&stats).unwrap();
    let controllers = anonymous
        .read_state_canister_controllers(remote)
        .await
        .unwrap();
    assert!(controllers.contains(&fleet.index), "{controllers:?}");
    let cert = anonymous
        .read_state_raw(vec![vec![Label::from("time")]], remote)
        .await
        .unwrap();
    assert_eq!(delegated_subnet(&cert), bridge.subnet_of(remote));
    let module_hash = anonymous
        .read_state_canister_info(remote, "module_hash")
        .await
        .unwrap();
    assert_eq!(module_hash.len(), 32);
    let owner = agent(&bridge, BasicIdentity::from_raw_key(&[9; 32]));
    let reply = owner
        .update(&remote, "capsules_create")
        .with_arg(candid::encode_one("direct").unwrap())
        .call_and_wait()
        .await
        .expect("a certified reply");
    assert!(candid::decode_one::<Result<Capsule, UploadError>>(&reply)
        .unwrap()
        .is_err());

    // The fleet controller's key (the startup line's secret) signs as a
    // controller of the index.
    let secret = upload_bridge::fleet::FleetController::default().secret_key_hex();
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&secret[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let controller = BasicIdentity::from_raw_key(&bytes.try_into().unwrap());
    assert_eq!(controller.sender().unwrap(), fleet.controller);
    let admin = agent(&bridge, controller);

    // Ingress reaches the host's bucket through the management canister
    // with the host's facts: its controllers (the index and the fleet
    // controller, its operator) decide, and its status is the host's.
    let status = |agent: Agent| async move {
        agent
            .update(&Principal::management_canister(), "canister_status")
            .with_effective_canister_id(remote)
            .with_arg(
                Encode!(&ic_management_canister_types::CanisterIdRecord {
                    canister_id: remote
                })
                .unwrap(),
            )
            .call_and_wait()
            .await
    };
    let reply = status(admin.clone())
        .await
        .expect("a controller reads the status");
    let got =
        candid::decode_one::<ic_management_canister_types::CanisterStatusResult>(&reply).unwrap();
    assert!(got.settings.controllers.contains(&fleet.index));
    assert_eq!(got.module_hash.as_deref(), Some(module_hash.as_slice()));
    assert!(got.cycles > 0u8);
    match status(anonymous.clone()).await {
        Err(ic_agent::AgentError::CertifiedReject { reject, .. }) => {
            assert_eq!(reject.error_code.as_deref(), Some("IC0512"), "{reject:?}")
        }
        other => panic!("a stranger gets the status: {other:?}"),
    }
    let reply = admin
        .update(&fleet.index, "admin_run_jobs")
        .with_arg(Encode!().unwrap())
        .call_and_wait()
        .await
        .expect("admin_run_jobs");
    let r: Result<upload_index::types::JobsReport, upload_index::types::AdminError> =
        candid::decode_one(&reply).unwrap();
    r.expect("the controller runs the jobs");
    let reply = anonymous
        .update(&fleet.index, "admin_run_jobs")
        .with_arg(Encode!().unwrap())
        .call_and_wait()
        .await
        .expect("a certified reply");
    let r: Result<upload_index::types::JobsReport, upload_index::types::AdminError> =
        candid::decode_one(&reply).unwrap();
    assert!(r.is_err(), "anyone else is refused");

    // The index's jobs run on its timer as the network's clock moves on
    // (every 60 s): the bucket's last report is newer afterwards.
    let last_report = || {
        let reply = bridge
            .query(
                fleet.index,
                fleet.controller,
                "admin_bucket",
                Encode!(&remote).unwrap(),
            )
            .unwrap();
        let r: Result<upload_index::types::BucketRecord, upload_index::types::AdminError> =
            candid::decode_one(&reply).unwrap();
        r.expect("admin_bucket").last_report_at
    };
    let before = last_report();
    bridge.advance_time(std::time::Duration::from_secs(121));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(last_report() > before, "the jobs ran on their own");

    // A capsule placed by the index lands on one of its buckets, which
    // takes uploads from the owner through the agent.
    let reply = owner
        .update(&fleet.index, "capsules_create")
        .with_arg(candid::encode_one("placed").unwrap())
        .call_and_wait()
        .await
        .unwrap();
    let placed: Result<upload_index::types::CapsuleLocation, upload_index::types::PlacementError> =
        candid::decode_one(&reply).unwrap();
    let placed = placed.expect("placed");
    assert!(fleet.buckets.contains(&placed.upload_bucket));
    let reply = owner
        .query(&placed.upload_bucket, "capsules_get")
        .with_arg(candid::encode_one(CapsuleId(placed.capsule_id)).unwrap())
        .call()
        .await
        .expect("a verified query of the bucket");
    let got = candid::decode_one::<Result<Capsule, UploadError>>(&reply).unwrap();
    assert_eq!(
        got.expect("registered").owner,
        owner.get_principal().unwrap()
    );
}
