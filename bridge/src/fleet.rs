//! `--index-wasm PATH --bucket-wasm PATH`: a scale-out fleet at startup.
//!
//! The index's module is installed on the root (default) subnet with the
//! Candid init argument `opt Settings` ([`fleet_settings`]: small test
//! thresholds, every subnet allowed), given [`INDEX_CYCLES`], handed the
//! bucket module (gzipped, as a controller uploads it) through
//! `admin_wasm_begin` / `admin_wasm_put_chunk` / `admin_wasm_commit`, and
//! its jobs are run (`admin_run_jobs`) until it has [`MIN_BUCKETS`]
//! buckets. The buckets are the index's own: created through the host's
//! management canister (own subnet) or its CMC stand-in (the others), on
//! the subnets the index chose, and reachable through the network like
//! any canister.
//!
//! The index's controllers are the fleet controller ([`FleetController`],
//! a fixed Ed25519 test key whose secret the startup line prints, so a
//! test's `HttpAgent` can sign as it and call the `admin_*` methods) and
//! the network's controller; the fleet controller is also the index's
//! operator, so it controls every bucket too (the management canister's
//! `canister_status`, `install_code`, ... through ingress). **The key is a test key: anyone can derive
//! it** (SHA-256 of a fixed text); never use it outside a local network.

use crate::network::{self, auth};
use candid::{Decode, Encode, Principal};
use upload_index::types::{AdminError, BucketRow, JobsReport, Settings, WasmInfo, WasmUpload};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const T: u128 = 1_000_000_000_000;

/// Cycles the index starts with.
pub const INDEX_CYCLES: u128 = 1_000 * T;
/// Buckets the fleet has before the network says it is up.
pub const MIN_BUCKETS: usize = 2;
/// Runs of the jobs tried before giving up on [`MIN_BUCKETS`].
const MAX_JOB_RUNS: usize = 40;
/// The text whose SHA-256 is the fleet controller's Ed25519 secret key.
const CONTROLLER_SEED: &[u8] = b"upload-bridge fleet controller (a test key: anyone can derive it)";

/// The settings the index starts with: buckets close at 8 MiB, seal at
/// 12 MiB, a new one is made while the open buckets have less than 16 MiB
/// of room (so two exist after startup), at most 2 per subnet, on every
/// subnet of the network, the jobs every 60 s; `operators` (the fleet
/// controller) control every bucket beside the index.
pub fn fleet_settings(subnets: Vec<Principal>, operators: Vec<Principal>) -> Settings {
    Settings {
        close_at_bytes: 8 * MIB,
        seal_at_bytes: 12 * MIB,
        min_open_room_bytes: 16 * MIB,
        expected_capsule_bytes: 64 * KIB,
        subnets,
        max_buckets_per_subnet: 2,
        bucket_initial_cycles: 5 * T,
        creation_fee_cycles: 500_000_000_000,
        treasury_floor_cycles: 20 * T,
        top_up_below_cycles: 3 * T,
        top_up_cycles: 5 * T,
        jobs_interval_seconds: 60,
        operators,
        ..Settings::default()
    }
}

/// The fleet's controller: a fixed Ed25519 key (test only).
pub struct FleetController {
    signing: ed25519_dalek::SigningKey,
}

impl Default for FleetController {
    fn default() -> Self {
        use sha2::Digest as _;
        let seed: [u8; 32] = sha2::Sha256::digest(CONTROLLER_SEED).into();
        FleetController {
            signing: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }
}

impl FleetController {
    /// The public key, DER (`SubjectPublicKeyInfo`).
    pub fn public_key_der(&self) -> Vec<u8> {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        self.signing
            .verifying_key()
            .to_public_key_der()
            .expect("an Ed25519 key encodes")
            .into_vec()
    }

    /// The self-authenticating principal of the key.
    pub fn principal(&self) -> Principal {
        auth::self_authenticating(&self.public_key_der())
    }

    /// The 32-byte Ed25519 secret key (seed), hex: what
    /// `Ed25519KeyIdentity.fromSecretKey(hexToBytes(..))` (agent-js) and
    /// `ic_agent::identity::BasicIdentity::from_signing_key` take.
    pub fn secret_key_hex(&self) -> String {
        self.signing
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn signing_key(&self) -> &ed25519_dalek::SigningKey {
        &self.signing
    }
}

/// What a fleet is once up.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub index: Principal,
    pub buckets: Vec<Principal>,
    /// The fleet controller's principal (a controller of the index).
    pub controller: Principal,
}

/// The bucket module as the index installs it: gzipped (compressed here
/// if it is raw).
pub fn gzipped(module: Vec<u8>) -> Vec<u8> {
    if module.starts_with(&[0x1f, 0x8b]) {
        return module;
    }
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&module).expect("gzip to memory");
    e.finish().expect("gzip to memory")
}

fn update<R: candid::CandidType + for<'de> candid::Deserialize<'de>>(
    net: &mut network::World,
    index: Principal,
    caller: Principal,
    method: &str,
    arg: Vec<u8>,
) -> Result<R, String> {
    let reply = net
        .host
        .update(index, caller, method, arg)
        .map_err(|e| format!("{method}: {e}"))?;
    net.host.tick();
    Decode!(&reply, R).map_err(|e| format!("{method}: the reply does not decode: {e}"))
}

/// The index's buckets (`admin_buckets`).
pub fn buckets(
    net: &mut network::World,
    index: Principal,
    caller: Principal,
) -> Result<Vec<BucketRow>, String> {
    let reply = net
        .host
        .query(
            index,
            caller,
            "admin_buckets",
            Encode!(&None::<Principal>, &200u32).expect("encode"),
        )
        .map_err(|e| format!("admin_buckets: {e}"))?;
    Decode!(&reply, Result<Vec<BucketRow>, AdminError>)
        .map_err(|e| format!("admin_buckets: {e}"))?
        .map_err(|e| format!("admin_buckets: {e:?}"))
}

/// Installs the index, hands it the bucket module and grows the fleet to
/// [`MIN_BUCKETS`] buckets.
pub fn start(
    net: &mut network::World,
    index_wasm: &[u8],
    bucket_wasm: Vec<u8>,
    network_controller: Principal,
) -> Result<Fleet, String> {
    use sha2::Digest as _;
    let controller = FleetController::default().principal();
    let settings = fleet_settings(net.host.subnets(), vec![controller]);
    let index = net
        .install_new_with(
            index_wasm,
            Encode!(&Some(settings)).expect("settings encode"),
            vec![controller, network_controller],
            INDEX_CYCLES,
        )
        .map_err(|e| format!("installing the index: {}", e.message))?;
    let module = gzipped(bucket_wasm);
    let begin = WasmUpload {
        version: 1,
        sha256: sha2::Sha256::digest(&module).to_vec(),
        length: module.len() as u64,
    };
    update::<Result<(), AdminError>>(
        net,
        index,
        controller,
        "admin_wasm_begin",
        Encode!(&begin).expect("encode"),
    )?
    .map_err(|e| format!("admin_wasm_begin: {e:?}"))?;
    for (n, chunk) in module.chunks(1 << 20).enumerate() {
        update::<Result<u64, AdminError>>(
            net,
            index,
            controller,
            "admin_wasm_put_chunk",
            Encode!(
                &((n as u64) << 20),
                &serde_bytes::ByteBuf::from(chunk.to_vec())
            )
            .expect("encode"),
        )?
        .map_err(|e| format!("admin_wasm_put_chunk: {e:?}"))?;
    }
    update::<Result<WasmInfo, AdminError>>(
        net,
        index,
        controller,
        "admin_wasm_commit",
        Encode!().expect("encode"),
    )?
    .map_err(|e| format!("admin_wasm_commit: {e:?}"))?;
    let mut notes = Vec::new();
    for _ in 0..MAX_JOB_RUNS {
        if buckets(net, index, controller)?.len() >= MIN_BUCKETS {
            break;
        }
        let report = update::<Result<JobsReport, AdminError>>(
            net,
            index,
            controller,
            "admin_run_jobs",
            Encode!().expect("encode"),
        )?
        .map_err(|e| format!("admin_run_jobs: {e:?}"))?;
        notes.extend(report.notes);
    }
    let buckets: Vec<Principal> = buckets(net, index, controller)?
        .into_iter()
        .map(|b| b.bucket)
        .collect();
    if buckets.len() < MIN_BUCKETS {
        return Err(format!(
            "the index made {} buckets, not {MIN_BUCKETS}: {}",
            buckets.len(),
            notes.join("; ")
        ));
    }
    Ok(Fleet {
        index,
        buckets,
        controller,
    })
}
