//! `upload-bridge [--listen 127.0.0.1:PORT] [--gateway 127.0.0.1:PORT]
//! [--wasm PATH] [--state DIR]`: serves the upload canister (the release `.wasm`, built
//! if no path is given) on loopback, with the local HTTP gateway in front
//! of the same canister, and prints one JSON line
//! `{"url", "gateway", "canister", "controller"}` once both listen. See the
//! library's documentation for the routes.

use std::io::Write;

const USAGE: &str =
    "usage: upload-bridge [--listen 127.0.0.1:PORT] [--gateway 127.0.0.1:PORT] [--wasm PATH] [--state DIR] [--raw-candid]
Serves the upload canister's release .wasm, run in the embedded IC host, on
HTTP (raw Candid in and out), with fault injection for tests, and the local
HTTP gateway (share links, every response verified) in front of the same
canister. Port 0 (the default) picks a free port; the first line on stdout
says which, as JSON. --state DIR keeps the network across restarts
(canisters, stable memory, the clock, the ports): it is saved every two
seconds when something changed and on Ctrl-C, and restored at start.
--raw-candid also serves the unsigned test routes /api/update|query/<canister>/<method>
(the caller named by an x-caller header).";

fn main() {
    let mut listen = None;
    let mut gateway_listen = None;
    let mut wasm_path = None;
    let mut state = None;
    let mut raw_candid = false;
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
    let bridge = std::sync::Arc::new(
        upload_bridge::Bridge::start_with_state(&listen, wasm, state.clone())
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
    let line = serde_json::json!({
        "url": bridge.url(),
        "gateway": gateway.url(),
        "canister": bridge.canister().to_text(),
        "controller": bridge.controller().to_text(),
        "root_key": hex(&bridge.root_key()),
    });
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
