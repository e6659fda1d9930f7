//! A fleet on the embedded host: the index's release `.wasm` on the
//! default subnet, two more application subnets, the bucket `.wasm`
//! (gzipped, as a controller hands it to the index) uploaded in chunks.

#![allow(dead_code)]

use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::{Encode, Principal};
use embedded_ic_host::Host;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use upload_harness::EmbeddedEnv;
use upload_index::types::*;

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const T: u128 = 1_000_000_000_000;

pub fn index_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let path = embedded_ic_host::build_canister_wasm(&manifest, "upload-index");
        std::fs::read(&path).expect("the index wasm")
    })
}

/// The bucket module as deployed: the release `.wasm`, gzipped.
pub fn bucket_wasm_gz() -> &'static [u8] {
    static GZ: OnceLock<Vec<u8>> = OnceLock::new();
    GZ.get_or_init(|| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(upload_harness::backend_wasm()).expect("gzip");
        e.finish().expect("gzip")
    })
}

pub fn admin() -> Principal {
    upload_harness::user(200)
}

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
        ..Settings::default()
    }
}

pub struct Fleet {
    pub env: EmbeddedEnv,
    pub index: Principal,
    pub subnets: Vec<Principal>,
}

impl Fleet {
    /// An index on the default subnet with `settings(subnets)`, 1 000 T
    /// cycles and the bucket Wasm (version 1).
    pub fn new(settings: impl FnOnce(Vec<Principal>) -> Settings) -> Fleet {
        let mut env = EmbeddedEnv::new();
        let host = env.host();
        host.set_echo_logs(false);
        let mut subnets = vec![host.default_subnet()];
        subnets.push(host.add_subnet());
        subnets.push(host.add_subnet());
        let settings = settings(subnets.clone());
        let index = host
            .install(index_wasm(), Encode!(&Some(settings)).unwrap(), admin())
            .expect("install the index");
        host.add_cycles(index, 1_000 * T).unwrap();
        let mut fleet = Fleet {
            env,
            index,
            subnets,
        };
        fleet
            .upload_wasm(1, bucket_wasm_gz())
            .expect("the bucket wasm");
        fleet
    }

    pub fn host(&mut self) -> &mut Host {
        self.env.host()
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
        use sha2::{Digest, Sha256};
        let (r,): (Result<(), AdminError>,) = self.call(
            admin(),
            "admin_wasm_begin",
            (WasmUpload {
                version,
                sha256: Sha256::digest(module).to_vec(),
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
        panic!("the index made {} buckets, not {n}", self.buckets().len());
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

    /// Canisters on the host besides the index.
    pub fn other_canisters(&mut self) -> Vec<Principal> {
        let index = self.index;
        let mut all = self.host().all_canisters();
        all.retain(|c| *c != index);
        all.sort();
        all
    }
}
