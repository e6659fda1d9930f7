//! `upload-bridge [--listen 127.0.0.1:PORT] [--gateway 127.0.0.1:PORT]
//! [--wasm PATH] [--state DIR] [--subnets N] [--index-wasm PATH --bucket-wasm PATH]`:
//! serves the upload canister (the release `.wasm`, built if no path is
//! given) on loopback, with the local HTTP gateway in front of the
//! network's canisters, and prints one JSON line once both listen:
//! `{"url", "gateway", "canister", "controller", "root_key", "subnets"}`,
//! and with a fleet also `"index"`, `"buckets"`, `"fleet_controller"` and
//! `"fleet_controller_secret_key"` (the hex Ed25519 secret key of the
//! index's controller: a TEST key anyone can derive, for tests that sign
//! as the controller, e.g. `Ed25519KeyIdentity.fromSecretKey`). See the
//! library's documentation for the routes.

use std::io::Write;

const USAGE: &str =
    "usage: upload-bridge [--listen 127.0.0.1:PORT] [--gateway 127.0.0.1:PORT] [--wasm PATH] [--state DIR] [--raw-candid]
                     [--subnets N] [--index-wasm PATH --bucket-wasm PATH]
Serves the upload canister's release .wasm, run in the embedded IC host, on
HTTP (raw Candid in and out), with fault injection for tests, and the local
HTTP gateway (share links, every response verified) in front of the same
canister. Port 0 (the default) picks a free port; the first line on stdout
says which, as JSON. --state DIR keeps the network across restarts
(canisters, stable memory, the clock, the ports): it is saved every two
seconds when something changed and on Ctrl-C, and restored at start.
--raw-candid also serves the unsigned test routes /api/update|query/<canister>/<method>
(the caller named by an x-caller header).
--subnets N (default 1) gives the network N subnets: the first is the root
subnet (the default canister's), the others' certificates carry the root
key's delegation. --index-wasm PATH --bucket-wasm PATH (the bucket module
raw or gzipped) start a fleet: the index on the root subnet (at least 3
subnets), 1 000 T cycles, the bucket module uploaded, its jobs run until
it has 2 buckets; the JSON line then names the index, the buckets and the
fleet controller's test key (fleet_controller_secret_key: TEST ONLY, anyone
can derive it). A fleet cannot be kept with --state. The gateway serves any
canister of the network: http://<canister-id>.localhost:PORT/... or
...?canisterId=<canister-id> (the default canister otherwise).";

fn main() {
    let mut listen = None;
    let mut gateway_listen = None;
    let mut wasm_path = None;
    let mut state = None;
    let mut raw_candid = false;
    let mut subnets = 1usize;
    let mut index_wasm = None;
    let mut bucket_wasm = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                listen = Some(
                    args.next()
                        .unwrap_or_else(|| fail("--listen needs an address")),
                )
            }
            "--gateway" => {
                gateway_listen = Some(
                    args.next()
                        .unwrap_or_else(|| fail("--gateway needs an address")),
                )
            }
            "--raw-candid" => raw_candid = true,
            "--state" => {
                state = Some(std::path::PathBuf::from(
                    args.next()
                        .unwrap_or_else(|| fail("--state needs a folder")),
                ))
            }
            "--wasm" => {
                wasm_path = Some(args.next().unwrap_or_else(|| fail("--wasm needs a path")))
            }
            "--subnets" => {
                subnets = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n >= 1)
                    .unwrap_or_else(|| fail("--subnets needs a number from 1"))
            }
            "--index-wasm" => {
                index_wasm = Some(
                    args.next()
                        .unwrap_or_else(|| fail("--index-wasm needs a path")),
                )
            }
            "--bucket-wasm" => {
                bucket_wasm = Some(
                    args.next()
                        .unwrap_or_else(|| fail("--bucket-wasm needs a path")),
                )
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    // A kept network listens where it did, unless told otherwise, so its
    // share links and the page's URL still work.
    let saved = state
        .as_deref()
        .map(|dir| upload_bridge::network::persist::read(dir).unwrap_or_else(|e| fail(&e)))
        .unwrap_or_default();
    let listen = listen
        .or_else(|| saved.as_ref().and_then(|s| s.listen.clone()))
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let gateway_listen = gateway_listen
        .or_else(|| saved.as_ref().and_then(|s| s.gateway.clone()))
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let gateway_addr: std::net::SocketAddr = gateway_listen
        .parse()
        .unwrap_or_else(|e| fail(&format!("--gateway {gateway_listen}: {e}")));
    for addr in [&listen, &gateway_listen] {
        if !addr.starts_with("127.0.0.1:")
            && !addr.starts_with("[::1]:")
            && !addr.starts_with("localhost:")
        {
            fail("the bridge only listens on loopback");
        }
    }
    let wasm = match wasm_path {
        Some(p) => std::fs::read(&p).unwrap_or_else(|e| fail(&format!("reading {p}: {e}"))),
        None => upload_harness::backend_wasm_with(true).to_vec(),
    };
    let read = |p: &str| std::fs::read(p).unwrap_or_else(|e| fail(&format!("reading {p}: {e}")));
    let fleet = match (index_wasm, bucket_wasm) {
        (Some(i), Some(b)) => Some(upload_bridge::FleetWasm {
            index: read(&i),
            bucket: read(&b),
        }),
        (None, None) => None,
        _ => fail("--index-wasm and --bucket-wasm go together"),
    };
    let bridge = std::sync::Arc::new(
        upload_bridge::Bridge::start_with(
            &listen,
            wasm,
            upload_bridge::Options {
                state: state.clone(),
                subnets,
                fleet,
            },
        )
        .unwrap_or_else(|e| fail(&e)),
    );
    let gateway = local_gateway::Gateway::new(std::sync::Arc::new(bridge.http_canister()))
        .spawn(gateway_addr)
        .unwrap_or_else(|e| fail(&format!("gateway on {gateway_addr}: {e}")));
    if !raw_candid {
        bridge.disable_raw_routes();
    }
    if state.is_some() {
        let gateway_url = gateway.url();
        bridge.set_addresses(
            bridge.url().trim_start_matches("http://").to_string(),
            gateway_url.trim_start_matches("http://").to_string(),
        );
        bridge.save().unwrap_or_else(|e| fail(&e));
        let on_exit = bridge.clone();
        ctrlc::set_handler(move || {
            if let Err(e) = on_exit.save() {
                eprintln!("upload-bridge: saving the state: {e}");
            }
            std::process::exit(0);
        })
        .unwrap_or_else(|e| fail(&format!("handling Ctrl-C: {e}")));
    }
    let mut line = serde_json::json!({
        "url": bridge.url(),
        "gateway": gateway.url(),
        "canister": bridge.canister().to_text(),
        "controller": bridge.controller().to_text(),
        "root_key": hex(&bridge.root_key()),
        "subnets": bridge.subnets().iter().map(|s| s.to_text()).collect::<Vec<_>>(),
    });
    if let Some(f) = bridge.fleet() {
        line["index"] = f.index.to_text().into();
        line["buckets"] = f
            .buckets
            .iter()
            .map(|b| b.to_text())
            .collect::<Vec<_>>()
            .into();
        line["fleet_controller"] = f.controller.to_text().into();
        line["fleet_controller_secret_key"] = upload_bridge::fleet::FleetController::default()
            .secret_key_hex()
            .into();
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    drop(out);
    // Serves until the process is stopped.
    loop {
        std::thread::park();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fail(message: &str) -> ! {
    eprintln!("upload-bridge: {message}\n{USAGE}");
    std::process::exit(2)
}
