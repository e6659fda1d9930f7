//! The interface as shipped: the release `.wasm` exports exactly the
//! methods of `backend.did`; the packaged module carries the interface as
//! `candid:service` metadata, is shrunk and gzipped, and still works; and
//! `dfx.json` points at it and is what dfx accepts.

use embedded_ic_host::Host;
use packager::{MethodKind, Packaged};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn did() -> String {
    let path = packager::workspace_root().join("backend.did");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn packaged() -> &'static Packaged {
    static P: OnceLock<Packaged> = OnceLock::new();
    P.get_or_init(|| {
        packager::package_all(upload_harness::backend_wasm(), &did()).expect("packaging fails")
    })
}

#[test]
fn wasm_exports_exactly_the_methods_of_backend_did() {
    let did = did();
    let declared = packager::did_methods(&did).unwrap();
    let exported = packager::exported_methods(upload_harness::backend_wasm()).unwrap();
    let problems = packager::interface_differences(&declared, &exported);
    assert!(
        problems.is_empty(),
        "the .wasm and backend.did disagree:\n  {}",
        problems.join("\n  ")
    );
    // ic-cdk's own methods (the timers' self-call target) are updates that
    // reject other callers; a query among them would leak past the did.
    let internal = packager::internal_methods(upload_harness::backend_wasm()).unwrap();
    assert!(
        internal.values().all(|k| *k == MethodKind::Update),
        "{internal:?}"
    );
    // The parsers see what a reader sees.
    assert_eq!(declared.get("stats"), Some(&MethodKind::Query));
    assert_eq!(declared.get("uploads_begin"), Some(&MethodKind::Update));
    let queries = did.lines().filter(|l| l.trim_end().ends_with("query;"));
    assert_eq!(
        queries.count(),
        declared
            .values()
            .filter(|k| **k == MethodKind::Query)
            .count()
    );
    assert!(declared.len() >= 19, "{declared:?}");
}

#[test]
fn packaging_refuses_a_did_the_wasm_does_not_implement() {
    let wasm = upload_harness::backend_wasm();
    let did = did();
    packager::check_interface(wasm, &did).expect("the real did matches");

    let as_update = did.replace("stats : () -> (Stats) query;", "stats : () -> (Stats);");
    assert_ne!(
        as_update, did,
        "backend.did no longer declares stats as expected"
    );
    let e = packager::package(wasm, &as_update).unwrap_err();
    assert!(
        e.contains("stats: declared Update but exported Query"),
        "{e}"
    );

    let extra = did.replace(
        "stats : () -> (Stats) query;",
        "stats : () -> (Stats) query;\n  not_there : () -> ();",
    );
    let e = packager::package(wasm, &extra).unwrap_err();
    assert!(e.contains("not_there: declared"), "{e}");

    let missing = did.replace("stats : () -> (Stats) query;", "");
    let e = packager::package(wasm, &missing).unwrap_err();
    assert!(e.contains("stats: exported"), "{e}");

    assert!(packager::package(wasm, "service : { broken").is_err());
}

#[test]
fn packaged_module_carries_the_interface_and_is_smaller() {
    let raw = upload_harness::backend_wasm();
    let did = did();
    let p = packaged();

    let unzipped = packager::gunzip(&p.gzipped).expect("the .gz decompresses");
    assert_eq!(unzipped, p.wasm);
    assert!(unzipped.starts_with(b"\0asm"));

    let service = packager::custom_section(&unzipped, "icp:public candid:service")
        .unwrap()
        .expect("no icp:public candid:service section");
    assert_eq!(String::from_utf8(service).unwrap(), did);
    let args = packager::custom_section(&unzipped, "icp:public candid:args")
        .unwrap()
        .expect("no icp:public candid:args section");
    assert_eq!(args, b"()");
    // Shrunk: only metadata custom sections are left (no names, producers,
    // debug info).
    let names = packager::custom_section_names(&unzipped).unwrap();
    assert!(
        names.iter().all(|n| n.starts_with("icp:")),
        "left-over custom sections: {names:?}"
    );
    // The layout the module writes stays readable: an index reads it
    // before rolling the module out to its buckets.
    let layout = packager::custom_section(&unzipped, "icp:public upload:layout")
        .unwrap()
        .expect("no icp:public upload:layout section");
    assert_eq!(layout, backend::layout::CURRENT_LAYOUT.to_le_bytes());

    assert!(
        p.wasm.len() < raw.len() + did.len(),
        "shrinking removed nothing"
    );
    assert!(p.gzipped.len() < raw.len(), "gzip made it no smaller");
    assert!(p.gzipped.len() < p.wasm.len());
    assert_eq!(
        packager::exported_methods(&p.wasm).unwrap(),
        packager::exported_methods(raw).unwrap()
    );
    eprintln!(
        "sizes: raw {} B, shrunk with metadata {} B ({} B of it backend.did), gzipped {} B",
        raw.len(),
        p.wasm.len(),
        did.len(),
        p.gzipped.len()
    );
}

#[test]
fn packaged_module_installs_and_answers_stats() {
    let did = did();
    let wasm = packager::gunzip(&packaged().gzipped).unwrap();
    let mut host = Host::new();
    let controller = upload_harness::user(1);
    let canister = host
        .install(&wasm, candid::encode_args(()).unwrap(), controller)
        .unwrap_or_else(|e| panic!("the packaged module does not install: {e}"));
    let reply = host
        .query(
            canister,
            upload_harness::user(2),
            "stats",
            candid::encode_args(()).unwrap(),
        )
        .unwrap_or_else(|e| panic!("stats fails on the packaged module: {e}"));
    // Decoded against the reply type backend.did declares.
    let (env, _, service) = packager::load_did(&did).unwrap();
    let method = env.get_method(&service, "stats").unwrap();
    let value = candid::IDLArgs::from_bytes_with_types(&reply, &env, &method.rets)
        .unwrap_or_else(|e| panic!("the stats reply does not decode as Stats: {e}"));
    assert_eq!(value.args.len(), 1);
    let text = value.to_string();
    assert!(text.contains("high_water_bytes"), "{text}");
}

/// Calls `method` of the packaged canister with arguments in Candid text,
/// both ways typed by `backend.did`; the reply as Candid text.
fn call_as_declared(
    host: &mut Host,
    canister: candid::Principal,
    caller: candid::Principal,
    method: &str,
    args: &str,
) -> String {
    let (env, _, service) = packager::load_did(&did()).unwrap();
    let func = env.get_method(&service, method).unwrap();
    let arg = candid_parser::parse_idl_args(args)
        .unwrap_or_else(|e| panic!("{method} arguments {args}: {e}"))
        .to_bytes_with_types(&env, &func.args)
        .unwrap_or_else(|e| panic!("{method} arguments {args} do not fit backend.did: {e}"));
    let reply = if func.is_query() {
        host.query(canister, caller, method, arg)
    } else {
        host.update(canister, caller, method, arg)
    }
    .unwrap_or_else(|e| panic!("{method} fails: {e}"));
    candid::IDLArgs::from_bytes_with_types(&reply, &env, &func.rets)
        .unwrap_or_else(|e| panic!("the {method} reply does not decode as declared: {e}"))
        .to_string()
}

/// The bucket endpoints on the packaged module, through the interface
/// `backend.did` declares: adopted by an index, which registers a capsule,
/// reads the report and the health check, and seals the bucket.
#[test]
fn packaged_module_serves_as_a_bucket() {
    let wasm = packager::gunzip(&packaged().gzipped).unwrap();
    let mut host = Host::new();
    let controller = upload_harness::user(1);
    let (owner, index) = (upload_harness::user(2), upload_harness::user(3));
    let canister = host
        .install(&wasm, candid::encode_args(()).unwrap(), controller)
        .unwrap();
    let mut call = |caller, method: &str, args: &str| {
        call_as_declared(&mut host, canister, caller, method, args)
    };
    let refused = call(index, "bucket_report", "()");
    assert!(refused.contains("NotIndex"), "{refused}");
    let set = call(
        controller,
        "admin_set_index",
        &format!("(opt principal \"{index}\")"),
    );
    assert!(set.contains("Ok"), "{set}");
    let registered = call(
        index,
        "bucket_register_capsule",
        &format!(
            "(record {{ capsule_id = 42 : nat64; owner = principal \"{owner}\"; name = \"family\"; \
             writers = vec {{}}; created_at = 7 : nat64 }})"
        ),
    );
    assert!(
        registered.contains("Ok") && registered.contains("42"),
        "{registered}"
    );
    let create = call(owner, "capsules_create", "(\"mine\")");
    assert!(create.contains("ManagedByIndex"), "{create}");
    let report = call(index, "bucket_report", "()");
    for field in [
        "capsule_count = 1",
        "uploaded_bytes_total = 0",
        "state = variant { Open }",
    ] {
        assert!(report.contains(field), "{field} not in {report}");
    }
    let sealed = call(index, "bucket_set_state", "(variant { Sealed })");
    assert!(sealed.contains("Ok"), "{sealed}");
    let health = call(controller, "bucket_health", "()");
    assert!(health.contains("invariants_ok = true"), "{health}");
}

#[test]
fn package_canister_binary_writes_both_files() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("package-canister-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input.wasm");
    std::fs::write(&input, upload_harness::backend_wasm()).unwrap();
    let out_dir = dir.join("out");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_package-canister"))
        .arg("--wasm")
        .arg(&input)
        .arg("--out-dir")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "package-canister failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = packaged();
    assert_eq!(std::fs::read(out_dir.join("backend.wasm")).unwrap(), p.wasm);
    assert_eq!(
        std::fs::read(out_dir.join("backend.wasm.gz")).unwrap(),
        p.gzipped,
        "the .gz is not reproducible"
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_package-canister"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    std::fs::remove_dir_all(&dir).ok();
}

/// A published schema kept beside these tests (`tests/schemas/`, see its
/// README for source, version and licence).
fn published_schema(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schemas")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading the schema {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"))
}

fn dfx_schema() -> Value {
    published_schema("dfx-json-schema.json")
}

fn dfx_json() -> Value {
    let path = packager::workspace_root().join("dfx.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading dfx.json: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("dfx.json is not JSON: {e}"))
}

fn schema_errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn dfx_json_is_valid_and_points_at_the_packaged_wasm() {
    let validator = jsonschema::validator_for(&dfx_schema()).expect("the schema compiles");
    let dfx = dfx_json();
    let errors = schema_errors(&validator, &dfx);
    assert!(
        errors.is_empty(),
        "dfx.json is invalid:\n{}",
        errors.join("\n")
    );

    let backend = &dfx["canisters"]["backend"];
    assert_eq!(backend["type"], "custom");
    assert_eq!(backend["candid"], "backend.did");
    assert_eq!(
        backend["wasm"].as_str(),
        Some(format!("{}/backend.wasm.gz", packager::DEFAULT_OUT_DIR).as_str())
    );
    let build = backend["build"].as_str().expect("one build command");
    assert!(build.contains("package-canister"), "{build}");
    let root = packager::workspace_root();
    assert!(root.join("backend.did").is_file());

    // The test must catch a broken dfx.json: broken copies fail.
    type Breakage = (&'static str, fn(&mut Value));
    let breakages: [Breakage; 5] = [
        ("no wasm", |d| {
            d["canisters"]["backend"]
                .as_object_mut()
                .unwrap()
                .remove("wasm");
        }),
        ("no candid", |d| {
            d["canisters"]["backend"]
                .as_object_mut()
                .unwrap()
                .remove("candid");
        }),
        ("unknown type", |d| {
            d["canisters"]["backend"]["type"] = "wasm".into()
        }),
        ("version as text", |d| d["version"] = "1".into()),
        ("bad visibility", |d| {
            d["canisters"]["backend"]["metadata"] =
                serde_json::json!([{ "name": "candid:service", "visibility": "everyone" }]);
        }),
    ];
    for (what, breaks) in breakages {
        let mut broken = dfx.clone();
        breaks(&mut broken);
        assert!(
            !validator.is_valid(&broken),
            "a dfx.json with {what} passes validation"
        );
    }
}

fn icp_yaml_errors(manifest: &Value) -> Vec<String> {
    let schema = published_schema("icp-yaml-schema.json");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    schema_errors(&validator, manifest)
}

/// icp-cli (dfx's successor) builds the same package: `icp.yaml` must be
/// what it accepts, and hand its script step the packager's output.
#[test]
fn icp_yaml_is_valid_and_runs_the_packager() {
    let path = packager::workspace_root().join("icp.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading icp.yaml: {e}"));
    let manifest: Value = serde_yaml::from_str(&text).expect("icp.yaml is YAML");
    let errors = icp_yaml_errors(&manifest);
    assert!(
        errors.is_empty(),
        "icp.yaml is invalid:\n{}",
        errors.join("\n")
    );
    let canister = &manifest["canisters"][0];
    assert_eq!(canister["name"], "backend");
    let commands = canister["build"]["steps"][0]["commands"].to_string();
    assert!(commands.contains("package-canister"), "{commands}");
    assert!(commands.contains("$ICP_WASM_OUTPUT_PATH"), "{commands}");

    let mut broken = manifest.clone();
    broken["canisters"][0]["build"]["steps"][0]["type"] = Value::from("scripted");
    assert!(
        !icp_yaml_errors(&broken).is_empty(),
        "an unknown step type must be refused"
    );
}

/// The interface of the released v0.1.0, as it shipped.
fn released_did() -> String {
    let path = packager::workspace_root().join("tests/releases/backend-v0.1.0.did");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn the_released_did_is_the_released_wasms_interface() {
    let path = packager::workspace_root().join("tests/releases/backend-v0.1.0-6ebf7c7.wasm.gz");
    let gzipped =
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let wasm = packager::gunzip(&gzipped).expect("the release .gz decompresses");
    let service = packager::custom_section(&wasm, "icp:public candid:service")
        .unwrap()
        .expect("the release carries candid:service");
    candid_parser::utils::service_equal(
        candid_parser::utils::CandidSource::Text(&String::from_utf8(service).unwrap()),
        candid_parser::utils::CandidSource::Text(&released_did()),
    )
    .expect("tests/releases/backend-v0.1.0.did is the release's interface");
}

/// Clients built against v0.1.0 keep working: today's interface is a
/// Candid subtype of the released one (methods only added, nothing a
/// released method takes or returns changed incompatibly), but for the
/// known exception below.
///
/// Known exceptions, both new cases of `Quota`, which every method's
/// `UploadError` can carry: `ReservedBytesTotal` (layout 2, the cap on all
/// reservations together) and `RepairRounds` (layout 3, the bound on
/// re-hashing after checksum mismatches); and two new cases of
/// `UploadError` itself (layout 6), which only a canister an index
/// manages answers: `ManagedByIndex` (`capsules_create`) and
/// `BucketSealed` (`uploads_begin`). A v0.1.0 client decodes every reply
/// as before except those errors (which it cannot decode); deployed alone,
/// the canister never answers the last two. Candid reports them once per
/// method. Anything else incompatible fails this test.
#[test]
fn backend_did_is_a_compatible_extension_of_the_release() {
    use candid_parser::utils::{service_compatibility_report, CandidSource};
    // The released interface plus the accepted breaks.
    let released = released_did();
    let accepted = released.replace(
        "  ReservedBytesPerCaller;\n};",
        "  ReservedBytesPerCaller;\n  ReservedBytesTotal;\n  RepairRounds;\n};",
    );
    assert_ne!(accepted, released, "the released Quota type moved");
    let with_quotas = accepted;
    let accepted = with_quotas.replace(
        "type UploadError = variant {\n",
        "type UploadError = variant {\n  ManagedByIndex : record { index : principal };\n  BucketSealed;\n",
    );
    assert_ne!(accepted, with_quotas, "the released UploadError type moved");
    let breaks = |did: &str| -> Vec<String> {
        service_compatibility_report(CandidSource::Text(did), CandidSource::Text(&accepted))
            .expect("both interfaces parse")
            .iter()
            .map(|i| i.to_string())
            .collect()
    };
    let report = breaks(&did());
    assert!(
        report.is_empty(),
        "backend.did breaks v0.1.0 clients:\n  {}",
        report.join("\n  ")
    );
    // The check can fail: a removed method, a changed argument, or a new
    // variant case in a reply are all refused.
    let removed = did().replace("stats : () -> (Stats) query;", "");
    assert!(!breaks(&removed).is_empty());
    let changed = did().replace("memories_delete : (nat64)", "memories_delete : (text)");
    assert_ne!(changed, did());
    assert!(!breaks(&changed).is_empty());
    let new_case = did().replace(
        "type UploadStatusError = variant {\n",
        "type UploadStatusError = variant {\n  Brand_new_case;\n",
    );
    assert_ne!(new_case, did());
    assert!(!breaks(&new_case).is_empty());
}

/// The index is packaged like the bucket: its module exports exactly the
/// methods of `index/index.did`, carries it as `candid:service`, and
/// dfx.json and icp.yaml build it with the packager.
#[test]
fn the_index_is_packaged_with_its_interface_for_dfx_and_icp() {
    let canister = packager::Canister::Index;
    let wasm = std::fs::read(packager::build_wasm(canister)).expect("the index wasm");
    let root = packager::workspace_root();
    let did = std::fs::read_to_string(root.join(canister.did())).expect("index/index.did");
    packager::check_interface(&wasm, &did).expect("the index exports index.did");
    let packaged = packager::package_all(&wasm, &did).expect("packaged");
    let unzipped = packager::gunzip(&packaged.gzipped).unwrap();
    let service = packager::custom_section(&unzipped, "icp:public candid:service")
        .unwrap()
        .expect("candid:service");
    assert_eq!(String::from_utf8(service).unwrap(), did);

    let dfx = dfx_json();
    let index = &dfx["canisters"]["index"];
    assert_eq!(index["candid"], "index/index.did");
    assert_eq!(
        index["wasm"].as_str(),
        Some(format!("{}/index.wasm.gz", packager::DEFAULT_OUT_DIR).as_str())
    );
    assert!(index["build"]
        .as_str()
        .unwrap()
        .contains("--canister index"));
    let manifest: Value =
        serde_yaml::from_str(&std::fs::read_to_string(root.join("icp.yaml")).expect("icp.yaml"))
            .expect("YAML");
    let icp_index = manifest["canisters"]
        .as_array()
        .expect("canisters")
        .iter()
        .find(|c| c["name"] == "index")
        .expect("an index canister in icp.yaml");
    let commands = icp_index["build"]["steps"][0]["commands"].to_string();
    assert!(
        commands.contains("--canister index") && commands.contains("index.wasm.gz"),
        "{commands}"
    );
}
