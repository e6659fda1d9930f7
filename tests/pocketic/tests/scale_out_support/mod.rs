//! A fleet on PocketIC: an NNS subnet running the real cycles minting
//! canister (PocketIC's `cycles_minting` ICP feature, whose Wasm the
//! server ships), three application subnets, the index's release `.wasm`
//! on the first of them, and the bucket `.wasm` (gzipped, as a controller
//! hands it to the index) uploaded to the index in chunks: the same fleet
//! as `index/tests/support/mod.rs` builds on the embedded host.
//!
//! The index creates buckets on its own subnet through the management
//! canister and on the other two through the CMC's `create_canister`
//! (with `subnet_selection`), as on the IC. The CMC lets a caller create
//! canisters on its default subnets or on the subnets it is authorized
//! for; when PocketIC has not made the application subnets default ones,
//! the fleet authorizes the index for them, as an NNS proposal would
//! (`set_authorized_subnetwork_list`, called as NNS governance).
//!
//! The test principal [`admin`] controls the index and, as the index's
//! break-glass operator (`Settings::operators`), every bucket: PocketIC
//! shows a canister's module hash, status and controllers only through
//! the management canister, to controllers (the embedded host shows them
//! to the test directly), and the operator's rights are also what lets a
//! scenario break a bucket out-of-band.

#![allow(dead_code)]

use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::{CandidType, Encode, Principal};
use ic_management_canister_types::CanisterStatusType;
use pocket_ic::common::rest::{IcpFeatures, IcpFeaturesConfig};
use pocket_ic::{CreateCanisterParams, CreateCanisterPlacement, PocketIc, PocketIcBuilder};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use upload_harness::IcEnv;
use upload_index::types::*;

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const T: u128 = 1_000_000_000_000;

/// The NNS governance canister: the only caller the CMC takes subnet
/// authorizations from.
const NNS_GOVERNANCE: &str = "rrkah-fqaaa-aaaaa-aaaaq-cai";

/// The PocketIC server to run on, or why there is none.
pub fn server_binary() -> Result<PathBuf, String> {
    match std::env::var_os("POCKET_IC_BIN").filter(|p| !p.is_empty()) {
        Some(path) if Path::new(&path).is_file() => Ok(PathBuf::from(path)),
        Some(path) => Err(format!(
            "POCKET_IC_BIN={} is not a file",
            path.to_string_lossy()
        )),
        None => Err(
            "POCKET_IC_BIN is not set; set it to a PocketIC 16.x server binary \
             (published with the releases of github.com/dfinity/pocketic)"
                .into(),
        ),
    }
}

// --- the modules ---

/// The index's release `.wasm`, built once per process.
pub fn index_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let path = embedded_ic_host::build_canister_wasm(&manifest, "upload-index");
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    })
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).to_vec()
}

/// The bucket module as deployed: the release `.wasm`, gzipped.
pub fn bucket_wasm_gz() -> &'static [u8] {
    static GZ: OnceLock<Vec<u8>> = OnceLock::new();
    GZ.get_or_init(|| gzip(upload_harness::backend_wasm()))
}

/// The same bucket code with a custom section naming `tag` added: it
/// behaves as [`bucket_wasm_gz`] but has its own module hash, so a
/// bucket's `canister_status` tells which release it runs.
pub fn bucket_wasm_gz_tagged(tag: &str) -> Vec<u8> {
    gzip(&with_custom_section(
        upload_harness::backend_wasm(),
        "scale-out-test-release",
        tag.as_bytes(),
    ))
}

/// A broken bucket release PocketIC really runs: the bucket code without
/// its `bucket_health` query. It installs and serves, and the index's
/// health check after the upgrade is rejected by the replica (no such
/// method).
pub fn bucket_wasm_gz_without_health() -> Vec<u8> {
    gzip(&without_export(
        upload_harness::backend_wasm(),
        "canister_query bucket_health",
    ))
}

/// A gzipped module the replica refuses to install: the Wasm header and
/// bytes that are no section.
pub fn invalid_wasm_gz() -> Vec<u8> {
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    module.extend_from_slice(&[0xff; 64]);
    gzip(&module)
}

// --- editing a Wasm binary (sections, exports, custom sections) ---

fn read_leb(bytes: &[u8], pos: &mut usize) -> u32 {
    let mut value = 0u32;
    let mut shift = 0;
    loop {
        let byte = bytes[*pos];
        *pos += 1;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
        assert!(shift < 35, "a LEB128 u32 is at most 5 bytes");
    }
}

fn write_leb(out: &mut Vec<u8>, mut n: u32) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The module's sections in order: (id, contents).
fn sections(wasm: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert_eq!(&wasm[..8], b"\0asm\x01\0\0\0", "a Wasm 1 module");
    let mut pos = 8;
    let mut out = Vec::new();
    while pos < wasm.len() {
        let id = wasm[pos];
        pos += 1;
        let len = read_leb(wasm, &mut pos) as usize;
        out.push((id, wasm[pos..pos + len].to_vec()));
        pos += len;
    }
    out
}

fn assemble(sections: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"\0asm\x01\0\0\0".to_vec();
    for (id, contents) in sections {
        out.push(*id);
        write_leb(&mut out, contents.len() as u32);
        out.extend_from_slice(contents);
    }
    out
}

/// `wasm` without the export named `name` (the function stays).
pub fn without_export(wasm: &[u8], name: &str) -> Vec<u8> {
    const EXPORT: u8 = 7;
    let mut found = false;
    let sections: Vec<(u8, Vec<u8>)> = sections(wasm)
        .into_iter()
        .map(|(id, contents)| {
            if id != EXPORT {
                return (id, contents);
            }
            let mut pos = 0;
            let count = read_leb(&contents, &mut pos);
            let mut kept = Vec::new();
            let mut entries = Vec::new();
            for _ in 0..count {
                let start = pos;
                let len = read_leb(&contents, &mut pos) as usize;
                let export_name = &contents[pos..pos + len];
                pos += len;
                pos += 1; // the kind
                read_leb(&contents, &mut pos); // the index
                if export_name == name.as_bytes() {
                    found = true;
                } else {
                    entries.push(contents[start..pos].to_vec());
                }
            }
            write_leb(&mut kept, entries.len() as u32);
            for e in entries {
                kept.extend_from_slice(&e);
            }
            (id, kept)
        })
        .collect();
    assert!(found, "the module exports {name}");
    assemble(&sections)
}

/// `wasm` with a custom section `name` holding `payload` at its end.
pub fn with_custom_section(wasm: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut sections = sections(wasm);
    let mut contents = Vec::new();
    write_leb(&mut contents, name.len() as u32);
    contents.extend_from_slice(name.as_bytes());
    contents.extend_from_slice(payload);
    sections.push((0, contents));
    assemble(&sections)
}

// --- principals and settings ---

pub fn admin() -> Principal {
    upload_harness::user(200)
}

/// `index/tests/support/mod.rs`'s test settings, and [`admin`] as every
/// bucket's break-glass operator (see the module's doc).
pub fn test_settings(subnets: Vec<Principal>) -> Settings {
    Settings {
        close_at_bytes: 4 * MIB,
        seal_at_bytes: 6 * MIB,
        min_open_room_bytes: 2 * MIB,
        expected_capsule_bytes: 64 * KIB,
        subnets,
        max_buckets_per_subnet: 2,
        bucket_initial_cycles: 5 * T,
        creation_fee_cycles: 500_000_000_000,
        treasury_floor_cycles: 20 * T,
        top_up_below_cycles: 3 * T,
        top_up_cycles: 5 * T,
        // Long enough that only `admin_run_jobs` runs them.
        jobs_interval_seconds: 30 * 24 * 3600,
        operators: vec![admin()],
        ..Settings::default()
    }
}

// --- the environment ---

/// `IcEnv` over a PocketIC instance this file builds (the harness's
/// `PocketIcEnv` builds a single-subnet one), so that the harness's upload
/// client drives the buckets.
pub struct PicEnv {
    pub pic: PocketIc,
}

impl IcEnv for PicEnv {
    fn name(&self) -> &'static str {
        "PocketIC"
    }

    fn controller(&self) -> Principal {
        admin()
    }

    fn install(&mut self, wasm: &[u8]) -> Principal {
        let canister = self.pic.create_canister_with_settings(Some(admin()), None);
        self.pic.add_cycles(canister, 100 * T);
        self.pic.install_canister(
            canister,
            wasm.to_vec(),
            candid::encode_args(()).expect("empty args"),
            Some(admin()),
        );
        canister
    }

    fn upgrade(&mut self, canister: Principal, wasm: &[u8]) -> Result<(), String> {
        self.pic
            .upgrade_canister(
                canister,
                wasm.to_vec(),
                candid::encode_args(()).expect("empty args"),
                Some(admin()),
            )
            .map_err(|e| e.to_string())
    }

    fn update_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        self.pic
            .update_call(canister, caller, method, arg)
            .map_err(|e| e.to_string())
    }

    fn query_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        self.pic
            .query_call(canister, caller, method, arg)
            .map_err(|e| e.to_string())
    }

    fn advance_time(&mut self, by: Duration) {
        self.pic.advance_time(by);
    }

    fn tick(&mut self) {
        for _ in 0..5 {
            self.pic.tick();
        }
    }
}

#[derive(CandidType)]
struct SetAuthorizedSubnetworkListArgs {
    who: Option<Principal>,
    subnets: Vec<Principal>,
}

/// Makes sure the CMC creates canisters for `index` on `subnets`.
fn authorize_on_cmc(pic: &PocketIc, index: Principal, subnets: &[Principal]) {
    let cmc = upload_index::calls::cmc();
    let reply = pic
        .query_call(
            cmc,
            Principal::anonymous(),
            "get_default_subnets",
            candid::encode_args(()).expect("no args"),
        )
        .unwrap_or_else(|e| {
            panic!("the CMC ({cmc}, PocketIC's cycles_minting feature) does not answer: {e}")
        });
    let (defaults,): (Vec<Principal>,) =
        candid::decode_args(&reply).expect("get_default_subnets answers subnets");
    if subnets.iter().all(|s| defaults.contains(s)) {
        return;
    }
    let governance = Principal::from_text(NNS_GOVERNANCE).expect("governance's id");
    pic.update_call(
        cmc,
        governance,
        "set_authorized_subnetwork_list",
        candid::encode_one(SetAuthorizedSubnetworkListArgs {
            who: Some(index),
            subnets: subnets.to_vec(),
        })
        .expect("encode"),
    )
    .unwrap_or_else(|e| panic!("authorizing the index on the CMC for {subnets:?}: {e}"));
}

pub struct Fleet {
    pub env: PicEnv,
    pub index: Principal,
    /// The application subnets, the index's first.
    pub subnets: Vec<Principal>,
}

impl Fleet {
    /// An index on the first application subnet with
    /// `settings(subnets)`, 1 000 T cycles and the bucket Wasm (version 1).
    pub fn new(settings: impl FnOnce(Vec<Principal>) -> Settings) -> Fleet {
        Self::with_first_wasm(settings, bucket_wasm_gz())
    }

    /// [`Fleet::new`] with `first` as the bucket Wasm of version 1.
    pub fn with_first_wasm(
        settings: impl FnOnce(Vec<Principal>) -> Settings,
        first: &[u8],
    ) -> Fleet {
        let binary = server_binary().expect("a PocketIC server (checked before)");
        let pic = PocketIcBuilder::new()
            .with_server_binary(binary)
            .with_icp_features(IcpFeatures {
                cycles_minting: Some(IcpFeaturesConfig::DefaultConfig),
                ..IcpFeatures::default()
            })
            .with_application_subnet()
            .with_application_subnet()
            .with_application_subnet()
            .build();
        let subnets = pic.topology().get_app_subnets();
        assert_eq!(subnets.len(), 3, "three application subnets: {subnets:?}");
        let settings = settings(subnets.clone());
        let index = pic
            .create_canister_with_params(
                Some(admin()),
                CreateCanisterParams {
                    cycles: Some(1_000 * T),
                    settings: None,
                    placement: Some(CreateCanisterPlacement::SubnetId(subnets[0])),
                },
            )
            .expect("create the index");
        pic.install_canister(
            index,
            index_wasm().to_vec(),
            Encode!(&Some(settings)).expect("encode the settings"),
            Some(admin()),
        );
        authorize_on_cmc(&pic, index, &subnets);
        let mut fleet = Fleet {
            env: PicEnv { pic },
            index,
            subnets,
        };
        fleet.upload_wasm(1, first).expect("the first bucket wasm");
        fleet
    }

    pub fn pic(&self) -> &PocketIc {
        &self.env.pic
    }

    pub fn call<A: ArgumentEncoder, R: for<'de> ArgumentDecoder<'de>>(
        &mut self,
        caller: Principal,
        method: &str,
        args: A,
    ) -> R {
        upload_harness::update(&mut self.env, self.index, caller, method, args)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    pub fn query<A: ArgumentEncoder, R: for<'de> ArgumentDecoder<'de>>(
        &mut self,
        caller: Principal,
        method: &str,
        args: A,
    ) -> R {
        upload_harness::query(&mut self.env, self.index, caller, method, args)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    pub fn upload_wasm(&mut self, version: u32, module: &[u8]) -> Result<WasmInfo, AdminError> {
        let (r,): (Result<(), AdminError>,) = self.call(
            admin(),
            "admin_wasm_begin",
            (WasmUpload {
                version,
                sha256: sha256(module),
                length: module.len() as u64,
            },),
        );
        r?;
        for (n, chunk) in module.chunks(1 << 20).enumerate() {
            let (r,): (Result<u64, AdminError>,) = self.call(
                admin(),
                "admin_wasm_put_chunk",
                ((n << 20) as u64, serde_bytes::ByteBuf::from(chunk.to_vec())),
            );
            r?;
        }
        let (r,): (Result<WasmInfo, AdminError>,) = self.call(admin(), "admin_wasm_commit", ());
        r
    }

    pub fn run_jobs(&mut self) -> JobsReport {
        let (r,): (Result<JobsReport, AdminError>,) = self.call(admin(), "admin_run_jobs", ());
        r.expect("admin_run_jobs")
    }

    pub fn status(&mut self) -> IndexStatus {
        let (s,): (IndexStatus,) = self.query(admin(), "index_status", ());
        s
    }

    pub fn buckets(&mut self) -> Vec<BucketRow> {
        let (r,): (Result<Vec<BucketRow>, AdminError>,) =
            self.query(admin(), "admin_buckets", (None::<Principal>, 200u32));
        r.expect("admin_buckets")
    }

    pub fn bucket(&mut self, id: Principal) -> BucketRecord {
        let (r,): (Result<BucketRecord, AdminError>,) = self.query(admin(), "admin_bucket", (id,));
        r.expect("admin_bucket")
    }

    pub fn jobs(&mut self) -> Vec<CreationJob> {
        let (r,): (Result<Vec<CreationJob>, AdminError>,) =
            self.query(admin(), "admin_creation_jobs", ());
        r.expect("admin_creation_jobs")
    }

    pub fn create_capsule(
        &mut self,
        owner: Principal,
        name: &str,
    ) -> Result<CapsuleLocation, PlacementError> {
        let (r,): (Result<CapsuleLocation, PlacementError>,) =
            self.call(owner, "capsules_create", (name.to_string(),));
        r
    }

    pub fn locate(
        &mut self,
        caller: Principal,
        capsule_id: u64,
    ) -> Result<CapsuleLocation, PlacementError> {
        let (r,): (Result<CapsuleLocation, PlacementError>,) =
            self.call(caller, "capsules_locate", (capsule_id,));
        r
    }

    pub fn settings(&mut self) -> Settings {
        let (r,): (Result<Settings, AdminError>,) = self.query(admin(), "admin_settings", ());
        r.expect("admin_settings")
    }

    pub fn set_settings(&mut self, settings: Settings) {
        let (r,): (Result<(), AdminError>,) = self.call(admin(), "admin_set_settings", (settings,));
        r.expect("admin_set_settings")
    }

    pub fn invariants(&mut self) -> InvariantReport {
        let (r,): (Result<InvariantReport, AdminError>,) =
            self.call(admin(), "admin_check_invariants", ());
        r.expect("admin_check_invariants")
    }

    /// Runs the jobs until the index has at least `n` buckets (each run
    /// creates at most one).
    pub fn grow_to(&mut self, n: usize) {
        for _ in 0..3 * n {
            if self.buckets().len() >= n {
                return;
            }
            self.run_jobs();
        }
        let jobs = self.jobs();
        panic!(
            "the index made {} buckets, not {n}; its creation jobs: {jobs:?}",
            self.buckets().len()
        );
    }

    /// Uploads `data` into `capsule` on `bucket` as `caller`, in 256 KiB
    /// chunks; returns the memory id.
    pub fn upload(
        &mut self,
        bucket: Principal,
        caller: Principal,
        capsule: u64,
        data: &[u8],
        key: &str,
    ) -> u64 {
        use upload_harness::client::{ok, UploadClient};
        let chunk = 256 * KIB as u32;
        let mut c = UploadClient::new(&mut self.env, bucket, caller);
        let started = ok(c.begin(
            backend::types::CapsuleId(capsule),
            key,
            data.len() as u64,
            chunk,
            key,
        ));
        for i in 0..started.expected_chunks {
            ok(c.put_chunk_of(started.session_id, data, chunk, i));
        }
        ok(c.finish(started.session_id, data)).memory_id.0
    }

    pub fn read_back(
        &mut self,
        bucket: Principal,
        caller: Principal,
        memory: u64,
        len: u64,
    ) -> Vec<u8> {
        use upload_harness::client::UploadClient;
        let mut c = UploadClient::new(&mut self.env, bucket, caller);
        c.read_all(backend::types::MemoryItemId(memory), len)
            .expect("read back")
    }

    /// Upgrades the index to its own release `.wasm` (settings kept).
    pub fn upgrade_index(&mut self) {
        let arg = candid::encode_one(None::<Settings>).expect("encode");
        self.env
            .pic
            .upgrade_canister(self.index, index_wasm().to_vec(), arg, Some(admin()))
            .unwrap_or_else(|e| panic!("upgrade the index: {e}"));
    }

    /// A bucket's (or any canister's) status, asked as [`admin`].
    pub fn canister_status(
        &self,
        canister: Principal,
    ) -> ic_management_canister_types::CanisterStatusResult {
        self.pic()
            .canister_status(canister, Some(admin()))
            .unwrap_or_else(|e| panic!("canister_status of {canister}: {e}"))
    }

    pub fn module_hash(&self, canister: Principal) -> Option<Vec<u8>> {
        self.canister_status(canister).module_hash
    }

    pub fn is_running(&self, canister: Principal) -> bool {
        self.canister_status(canister).status == CanisterStatusType::Running
    }

    /// The canisters created on the index's subnet after the index, in
    /// order. A subnet gives its new canisters consecutive ids (PocketIC
    /// as the replica), so these are those of the next 16 ids after the
    /// index's that exist; PocketIC has no call that lists a subnet's
    /// canisters.
    pub fn canisters_after_index(&self) -> Vec<Principal> {
        let bytes = self.index.as_slice();
        assert_eq!(bytes.len(), 10, "a canister id of the replica's form");
        let first = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        (1..=16u64)
            .map(|n| {
                let mut id = (first + n).to_be_bytes().to_vec();
                id.extend_from_slice(&bytes[8..]);
                Principal::from_slice(&id)
            })
            .filter(|id| self.pic().canister_exists(*id))
            .collect()
    }
}
