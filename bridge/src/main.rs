//! `upload-bridge [--listen 127.0.0.1:PORT] [--gateway 127.0.0.1:PORT]
//! [--wasm PATH]`: serves the upload canister (the release `.wasm`, built
//! if no path is given) on loopback, with the local HTTP gateway in front
//! of the same canister, and prints one JSON line
//! `{"url", "gateway", "canister", "controller"}` once both listen. See the
//! library's documentation for the routes.

use std::io::Write;

const USAGE: &str =
    "usage: upload-bridge [--listen 127.0.0.1:PORT] [--gateway 127.0.0.1:PORT] [--wasm PATH]
Serves the upload canister's release .wasm, run in the embedded IC host, on
HTTP (raw Candid in and out), with fault injection for tests, and the local
HTTP gateway (share links, every response verified) in front of the same
canister. Port 0 (the default) picks a free port; the first line on stdout
says which, as JSON.";

fn main() {
    let mut listen = "127.0.0.1:0".to_string();
    let mut gateway_listen = "127.0.0.1:0".to_string();
    let mut wasm_path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                listen = args
                    .next()
                    .unwrap_or_else(|| fail("--listen needs an address"))
            }
            "--gateway" => {
                gateway_listen = args
                    .next()
                    .unwrap_or_else(|| fail("--gateway needs an address"))
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
    let bridge = upload_bridge::Bridge::start(&listen, wasm).unwrap_or_else(|e| fail(&e));
    let gateway = local_gateway::Gateway::new(std::sync::Arc::new(bridge.http_canister()))
        .spawn(gateway_addr)
        .unwrap_or_else(|e| fail(&format!("gateway on {gateway_addr}: {e}")));
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
    bridge.wait();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fail(message: &str) -> ! {
    eprintln!("upload-bridge: {message}\n{USAGE}");
    std::process::exit(2)
}
