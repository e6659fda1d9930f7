//! Packages the upload canister's `.wasm` the way dfx deploys a canister:
//! the Candid interface embedded as public `candid:service` (and
//! `candid:args`) metadata, non-`icp:` custom sections and dead code removed
//! (`ic-wasm shrink`), then gzipped.
//!
//! Before it packages anything it checks that the module's exported methods
//! are exactly the methods of the service in the `.did` file, with the same
//! query/update kinds, so a `.wasm` never ships with an interface it does
//! not implement.

use candid::types::FuncMode;
use candid::types::{Type, TypeInner};
use candid::TypeEnv;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Metadata section holding the service's Candid interface.
pub const CANDID_SERVICE: &str = "candid:service";
/// Metadata section holding the types of the init arguments.
pub const CANDID_ARGS: &str = "candid:args";
/// Prefix of public metadata custom sections: anyone may read them from the
/// state tree (`/canister/<id>/metadata/<name>`).
pub const PUBLIC_PREFIX: &str = "icp:public ";

/// How the IC runs a method: the export name prefix of each kind is
/// `canister_update`, `canister_query` and `canister_composite_query`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MethodKind {
    Update,
    Query,
    CompositeQuery,
}

impl MethodKind {
    fn export_prefix(self) -> &'static str {
        match self {
            MethodKind::Update => "canister_update ",
            MethodKind::Query => "canister_query ",
            MethodKind::CompositeQuery => "canister_composite_query ",
        }
    }
}

/// Where the packager writes `backend.wasm` and `backend.wasm.gz`,
/// relative to the workspace root (`dfx.json`'s `wasm` points here).
pub const DEFAULT_OUT_DIR: &str = "target/canister";

/// Method name to kind.
pub type Methods = BTreeMap<String, MethodKind>;

/// The output of [`package_all`].
#[derive(Clone, Debug)]
pub struct Packaged {
    /// Shrunk module with the metadata, uncompressed.
    pub wasm: Vec<u8>,
    /// `wasm` gzipped: what is deployed.
    pub gzipped: Vec<u8>,
}

/// Checks the interface, shrinks, adds metadata and gzips: returns the
/// gzipped module (the `.wasm.gz` dfx would install).
pub fn package(wasm: &[u8], did: &str) -> Result<Vec<u8>, String> {
    package_all(wasm, did).map(|p| p.gzipped)
}

/// Like [`package`], returning the uncompressed module as well.
pub fn package_all(wasm: &[u8], did: &str) -> Result<Packaged, String> {
    let wasm = shrink_with_metadata(wasm, did)?;
    let gzipped = gzip(&wasm)?;
    Ok(Packaged { wasm, gzipped })
}

/// Checks that `wasm` implements exactly the service of `did`, then shrinks
/// it (`ic-wasm shrink`: drops custom sections other than `icp:*` and
/// unreachable code) and adds public `candid:service` (the text of `did`)
/// and `candid:args` metadata. Returns an uncompressed module.
pub fn shrink_with_metadata(wasm: &[u8], did: &str) -> Result<Vec<u8>, String> {
    check_interface(wasm, did)?;
    let init_args = init_args(did)?;
    let mut module = ic_wasm::utils::parse_wasm(wasm, false).map_err(|e| e.to_string())?;
    ic_wasm::shrink::shrink(&mut module);
    use ic_wasm::metadata::{add_metadata, Kind};
    add_metadata(
        &mut module,
        Kind::Public,
        CANDID_SERVICE,
        did.as_bytes().to_vec(),
    );
    add_metadata(
        &mut module,
        Kind::Public,
        CANDID_ARGS,
        init_args.into_bytes(),
    );
    let out = module.emit_wasm();
    // What we emit must still be a module the methods can be found in.
    exported_methods(&out).map_err(|e| format!("the shrunk module is broken: {e}"))?;
    Ok(out)
}

/// Parses and type-checks a `.did` file: its type environment, the init
/// argument types of its service, and the service type. Errors are returned,
/// not printed.
pub fn load_did(did: &str) -> Result<(TypeEnv, Vec<Type>, Type), String> {
    let prog: candid_parser::IDLProg = did.parse().map_err(|e| format!("{e}"))?;
    let mut env = TypeEnv::new();
    let actor = candid_parser::check_prog(&mut env, &prog)
        .map_err(|e| e.to_string())?
        .ok_or("the .did has no service")?;
    let actor = env.trace_type(&actor).map_err(|e| e.to_string())?;
    match actor.as_ref() {
        TypeInner::Class(args, service) => {
            let (args, service) = (args.clone(), service.clone());
            Ok((env, args, service))
        }
        TypeInner::Service(_) => Ok((env, Vec::new(), actor)),
        _ => Err("the .did's main type is not a service".to_string()),
    }
}

/// The init arguments of the service in `did`, as dfx writes `candid:args`:
/// `()` for `service : () -> {...}` or a service without init arguments.
pub fn init_args(did: &str) -> Result<String, String> {
    let (_, args, _) = load_did(did)?;
    let args: Vec<String> = args.iter().map(|t| t.to_string()).collect();
    Ok(format!("({})", args.join(", ")))
}

/// The methods of the service in `did`, with their kinds (a `oneway`
/// method is exported as an update).
pub fn did_methods(did: &str) -> Result<Methods, String> {
    let (env, _, service) = load_did(did)?;
    let methods = env.as_service(&service).map_err(|e| e.to_string())?;
    let mut out = Methods::new();
    for (name, ty) in methods {
        let func = env.as_func(ty).map_err(|e| e.to_string())?;
        let kind = if func.modes.contains(&FuncMode::CompositeQuery) {
            MethodKind::CompositeQuery
        } else if func.modes.contains(&FuncMode::Query) {
            MethodKind::Query
        } else {
            MethodKind::Update
        };
        if out.insert(name.clone(), kind).is_some() {
            return Err(format!("method {name} is declared twice"));
        }
    }
    Ok(out)
}

/// Prefix of the methods ic-cdk exports for its own use (ic-cdk-timers runs
/// each timer through a self-call to `<ic-cdk internal> timer_executor`, and
/// rejects other callers). They are not part of the Candid interface, and no
/// Candid method name can start with `<`.
pub const IC_CDK_INTERNAL_PREFIX: &str = "<ic-cdk internal> ";

/// The public methods `wasm` exports (`canister_update <name>`,
/// `canister_query <name>`, `canister_composite_query <name>`), without
/// ic-cdk's internal ones (see [`internal_methods`]). Other exports
/// (`memory`, `canister_init`, `canister_global_timer`, ...) are not methods.
pub fn exported_methods(wasm: &[u8]) -> Result<Methods, String> {
    let mut all = all_exported_methods(wasm)?;
    all.retain(|name, _| !name.starts_with(IC_CDK_INTERNAL_PREFIX));
    Ok(all)
}

/// The methods ic-cdk exports for itself (names starting with
/// [`IC_CDK_INTERNAL_PREFIX`]).
pub fn internal_methods(wasm: &[u8]) -> Result<Methods, String> {
    let mut all = all_exported_methods(wasm)?;
    all.retain(|name, _| name.starts_with(IC_CDK_INTERNAL_PREFIX));
    Ok(all)
}

fn all_exported_methods(wasm: &[u8]) -> Result<Methods, String> {
    let mut out = Methods::new();
    for export in exports(wasm)? {
        for kind in [
            MethodKind::Update,
            MethodKind::Query,
            MethodKind::CompositeQuery,
        ] {
            if let Some(name) = export.strip_prefix(kind.export_prefix()) {
                if let Some(previous) = out.insert(name.to_string(), kind) {
                    return Err(format!(
                        "method {name} is exported as both {previous:?} and {kind:?}"
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Every export name of `wasm`.
pub fn exports(wasm: &[u8]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::ExportSection(reader) = payload.map_err(|e| e.to_string())? {
            for export in reader {
                out.push(export.map_err(|e| e.to_string())?.name.to_string());
            }
        }
    }
    Ok(out)
}

/// The contents of the custom section named exactly `name` (e.g.
/// `icp:public candid:service`), if `wasm` has one.
pub fn custom_section(wasm: &[u8], name: &str) -> Result<Option<Vec<u8>>, String> {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CustomSection(reader) = payload.map_err(|e| e.to_string())? {
            if reader.name() == name {
                return Ok(Some(reader.data().to_vec()));
            }
        }
    }
    Ok(None)
}

/// Names of all custom sections of `wasm`, in order.
pub fn custom_section_names(wasm: &[u8]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CustomSection(reader) = payload.map_err(|e| e.to_string())? {
            out.push(reader.name().to_string());
        }
    }
    Ok(out)
}

/// Fails unless `wasm` exports exactly the methods of the service in `did`,
/// each with the kind the `.did` gives it. The error lists every difference.
pub fn check_interface(wasm: &[u8], did: &str) -> Result<(), String> {
    let declared = did_methods(did).map_err(|e| format!("backend.did: {e}"))?;
    let exported = exported_methods(wasm).map_err(|e| format!("the .wasm: {e}"))?;
    let problems = interface_differences(&declared, &exported);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the .wasm does not implement the .did:\n  {}",
            problems.join("\n  ")
        ))
    }
}

/// Human-readable differences between declared and exported methods.
pub fn interface_differences(declared: &Methods, exported: &Methods) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, kind) in declared {
        match exported.get(name) {
            None => problems.push(format!("{name}: declared ({kind:?}) but not exported")),
            Some(e) if e != kind => {
                problems.push(format!("{name}: declared {kind:?} but exported {e:?}"))
            }
            Some(_) => {}
        }
    }
    for (name, kind) in exported {
        if !declared.contains_key(name) {
            problems.push(format!("{name}: exported ({kind:?}) but not declared"));
        }
    }
    problems
}

/// Gzips `bytes` at the best compression level. The header carries no file
/// name and a zero modification time, so equal input gives equal output.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).map_err(|e| e.to_string())?;
    encoder.finish().map_err(|e| e.to_string())
}

/// Decompresses a gzip stream.
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// The workspace root (where `backend.did` and `dfx.json` live).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("packager/ has a parent")
        .to_path_buf()
}

/// Builds the release `backend.wasm` (wasm32, into `target/canister-wasm`)
/// and returns its path.
pub fn build_backend_wasm() -> PathBuf {
    build_wasm(Canister::Backend)
}

/// The repository's two canisters: the upload canister (a bucket, or a
/// canister on its own) and the index that places capsules on buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Canister {
    Backend,
    Index,
}

impl Canister {
    pub fn parse(name: &str) -> Option<Canister> {
        match name {
            "backend" => Some(Canister::Backend),
            "index" => Some(Canister::Index),
            _ => None,
        }
    }

    /// The name in dfx.json and icp.yaml, and of the packaged files.
    pub fn name(self) -> &'static str {
        match self {
            Canister::Backend => "backend",
            Canister::Index => "index",
        }
    }

    pub fn package(self) -> &'static str {
        match self {
            Canister::Backend => "backend",
            Canister::Index => "upload-index",
        }
    }

    /// Its Candid interface, relative to the workspace root.
    pub fn did(self) -> &'static str {
        match self {
            Canister::Backend => "backend.did",
            Canister::Index => "index/index.did",
        }
    }
}

/// Builds a canister's release `.wasm` and returns its path.
pub fn build_wasm(canister: Canister) -> PathBuf {
    embedded_ic_host::build_canister_wasm(&workspace_root().join("Cargo.toml"), canister.package())
}

/// Writes `backend.wasm` and `backend.wasm.gz` into `out_dir` (each through
/// a temporary file and a rename, so a reader never sees half a file) and
/// returns their paths.
pub fn write_outputs(out_dir: &Path, packaged: &Packaged) -> Result<(PathBuf, PathBuf), String> {
    write_outputs_of(Canister::Backend, out_dir, packaged)
}

/// [`write_outputs`] for either canister: `<name>.wasm` and `<name>.wasm.gz`.
pub fn write_outputs_of(
    canister: Canister,
    out_dir: &Path,
    packaged: &Packaged,
) -> Result<(PathBuf, PathBuf), String> {
    std::fs::create_dir_all(out_dir).map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
    let wasm = out_dir.join(format!("{}.wasm", canister.name()));
    let gz = out_dir.join(format!("{}.wasm.gz", canister.name()));
    write_atomically(&wasm, &packaged.wasm)?;
    write_atomically(&gz, &packaged.gzipped)?;
    Ok((wasm, gz))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming to {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DID: &str = r#"
        type R = variant { Ok; Err : text };
        service : () -> {
          put : (blob) -> (R);
          get : (nat64) -> (blob) query;
          peek : () -> (nat) composite_query;
          ping : () -> () oneway;
        }"#;

    #[test]
    fn did_methods_have_their_kinds() {
        let m = did_methods(DID).unwrap();
        let got: Vec<_> = m.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        assert_eq!(
            got,
            [
                ("get", MethodKind::Query),
                ("peek", MethodKind::CompositeQuery),
                ("ping", MethodKind::Update),
                ("put", MethodKind::Update),
            ]
        );
        assert_eq!(init_args(DID).unwrap(), "()");
        assert_eq!(
            init_args("service : (nat, opt text) -> {}").unwrap(),
            "(nat, opt text)"
        );
        assert_eq!(init_args("service : {}").unwrap(), "()");
    }

    #[test]
    fn differences_name_every_mismatch() {
        let declared = did_methods(DID).unwrap();
        let mut exported = declared.clone();
        exported.insert("get".into(), MethodKind::Update);
        exported.remove("put");
        exported.insert("extra".into(), MethodKind::Query);
        let d = interface_differences(&declared, &exported);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d.iter().any(|p| p.starts_with("get: declared Query")));
        assert!(d.iter().any(|p| p.starts_with("put: declared")));
        assert!(d.iter().any(|p| p.starts_with("extra: exported")));
    }

    #[test]
    fn gzip_round_trips_and_is_deterministic() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let a = gzip(&data).unwrap();
        assert_eq!(a, gzip(&data).unwrap());
        assert_eq!(&a[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(gunzip(&a).unwrap(), data);
        assert!(gunzip(b"not gzip").is_err());
    }
}
