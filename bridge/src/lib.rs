//! The local network: the upload canister's release `.wasm`, run in the
//! embedded IC host, behind the IC's public HTTP interface on 127.0.0.1
//! ([`network`], routed by `http_api`), so the IC's own clients
//! (`HttpAgent`, `ic-agent`, `icp`, `ic-http-gateway`) reach it unmodified.
//!
//! Routes:
//! - `GET /api/v2/status`; `POST /api/v2|v3|v4/canister/{id}/call`,
//!   `/api/v2|v3/canister/{id}/query`, `/api/v2|v3/canister|subnet/{id}/read_state`:
//!   the IC's interface (see [`network`]).
//! - Only with `--raw-candid` (the binary) or the library's default (Rust
//!   tests): `POST /api/update/{canister}/{method}` and
//!   `POST /api/query/{canister}/{method}`, unsigned, header
//!   `x-caller: <principal>` (absent: anonymous), body the Candid argument.
//!   `200`: the body is the Candid reply. `400`: the call was rejected or
//!   trapped; header `x-reject-code`, body the message. `503`: a transport
//!   failure injected by the faults.
//! - `GET /admin/info`: the default canister and its controller (JSON).
//! - `POST /admin/install`: a fresh canister (JSON `{"canister": ...}`);
//!   body `{"controller": "<principal>"}` to name its controller,
//!   `{"subnet": "<subnet id>"}` (one of [`Bridge::subnets`]) to put it
//!   on another subnet than the default one.
//! - `GET /admin/fleet`: the fleet started with `--index-wasm` (JSON
//!   `{"index", "subnets", "buckets", "controller", "controller_secret_key"}`;
//!   404 without one), the buckets as the index lists them now.
//! - `POST /admin/upgrade/{canister}`: upgrades it to the same `.wasm`.
//! - `POST /admin/faults`: sets the [`Faults`] (JSON) and restarts their count.
//! - `GET /admin/stats`, `POST /admin/stats/reset`: what the network saw ([`Stats`]).
//! - `POST /admin/advance_time/{seconds}`: moves the network's clock on.
//!
//! The clock follows the wall clock (plus what was advanced); due timers
//! run after every update, as rounds would on a subnet, and (with a fleet)
//! every second, so the index's periodic jobs run on their own.
//!
//! # Subnets
//! [`Options::subnets`] (`--subnets N`): the host's default subnet is the
//! root subnet (its certificates are signed by the root key directly, its
//! id for agents is the root key's self-authenticating id, as on a local
//! replica); the others sign with their own keys and every certificate
//! for their canisters carries the root key's delegation (subnet id, key,
//! canister range). Query replies are signed by the node of the
//! canister's subnet. Every subnet's state tree holds `/subnet/<id>/
//! {public_key, canister_ranges, node/<node>/public_key}` and
//! `/canister_ranges/<id>/...` of every subnet, so agents verify calls to
//! canisters anywhere with the root key alone.
//!
//! # The host as the source of truth
//! Canisters the host created itself (the index's buckets, made through
//! the management canister or the CMC stand-in) are reached like those
//! ingress created: existence, module hash, controllers, run status and
//! cycles are read from the host; the bridge's records add only what the
//! host lacks (the metadata sections of modules the bridge installed, the
//! installed module for `--state`, an ingress `stop_canister`).

mod faults;
pub mod fleet;
mod http_api;
mod http_gateway;
pub mod network;

pub use http_gateway::BridgeCanister;

pub use faults::{DropPoint, Faults};

use candid::Principal;
use embedded_ic_host::{Host, HostError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Worker threads: more than the calls a client keeps in flight, so held
/// (delayed) replies never stall the others.
const WORKERS: usize = 32;

/// What the bridge saw since the last reset.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Calls received, by method.
    pub calls: BTreeMap<String, u64>,
    /// Calls the canister executed, by method (dropped-before ones are not).
    pub executed: BTreeMap<String, u64>,
    pub dropped_before: u64,
    pub dropped_after: u64,
    /// Replies sent after the reply of a call that executed later.
    pub replies_out_of_order: u64,
    pub upgrades: u64,
    pub corrupted_reads: u64,
}

struct World {
    net: network::World,
    /// Execution order of the calls, for the reorder count.
    executed: u64,
    advanced: Duration,
    /// Bumped by whatever may change a canister (for `--state`).
    changes: u64,
}

/// How often a network with a fleet runs due timers between requests.
pub const TICK_EVERY: Duration = Duration::from_secs(1);

/// How often a network with `--state` is saved when something changed.
pub const SAVE_EVERY: Duration = Duration::from_secs(2);

/// Writes the state folder if anything changed since the last save.
fn save(shared: &Shared) -> Result<(), String> {
    let Some(dir) = &shared.state else {
        return Ok(());
    };
    let mut saved = lock(&shared.saved_changes);
    let (pending, changes) = {
        let world = lock(&shared.world);
        if world.changes == *saved {
            return Ok(());
        }
        let (listen, gateway) = lock(&shared.addresses).clone();
        let mut pending = world.net.prepare_save(listen, gateway);
        pending.set_default_canister(shared.canister);
        (pending, world.changes)
    };
    pending
        .write(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    *saved = changes;
    Ok(())
}

struct FaultState {
    faults: Faults,
    calls: u64,
}

struct Shared {
    world: Mutex<World>,
    /// `--index-wasm`: the fleet started with the network.
    fleet: Option<fleet::Fleet>,
    faults: Mutex<FaultState>,
    stats: Mutex<(Stats, u64)>,
    keys: network::Keys,
    wasm: Vec<u8>,
    controller: Principal,
    canister: Principal,
    started: Instant,
    epoch_ns: u64,
    /// `--state DIR`.
    state: Option<std::path::PathBuf>,
    /// `changes` at the last save.
    saved_changes: Mutex<u64>,
    stopping: std::sync::atomic::AtomicBool,
    /// Whether the unsigned raw-Candid routes answer (tests in Rust).
    raw_routes: std::sync::atomic::AtomicBool,
    addresses: Mutex<(Option<String>, Option<String>)>,
}

/// A running bridge; stops when dropped.
pub struct Bridge {
    server: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A worker that panicked leaves consistent data (every update of the
    // guarded state is a single assignment or a host call).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a [`Bridge`] starts.
#[derive(Default)]
pub struct Options {
    /// `--state DIR` (see [`network::persist`]).
    pub state: Option<std::path::PathBuf>,
    /// Subnets of the network (`--subnets N`; 0 or 1: one, the root subnet).
    pub subnets: usize,
    /// `--index-wasm` and `--bucket-wasm`: a fleet at startup (see
    /// [`fleet`]); the network then has at least 3 subnets. Not with
    /// `state` (the buckets the index creates are not saved).
    pub fleet: Option<FleetWasm>,
}

/// The modules of a fleet.
pub struct FleetWasm {
    pub index: Vec<u8>,
    /// The bucket module, gzipped or raw (gzipped before the upload).
    pub bucket: Vec<u8>,
}

/// Subnets a network with a fleet has at least.
pub const FLEET_MIN_SUBNETS: usize = 3;

impl Bridge {
    /// Installs `wasm` in a fresh canister and serves on `addr` (port 0:
    /// any free port).
    pub fn start(addr: &str, wasm: Vec<u8>) -> Result<Bridge, String> {
        Self::start_with_state(addr, wasm, None)
    }

    /// [`Bridge::start`], keeping the network in `state` (see
    /// [`network::persist`]): a save found there is restored instead of a
    /// fresh canister installed, and the network is saved while it runs
    /// (every [`SAVE_EVERY`] when something changed, and by
    /// [`Bridge::save`]).
    pub fn start_with_state(
        addr: &str,
        wasm: Vec<u8>,
        state: Option<std::path::PathBuf>,
    ) -> Result<Bridge, String> {
        Self::start_with(
            addr,
            wasm,
            Options {
                state,
                ..Options::default()
            },
        )
    }

    /// [`Bridge::start`] with [`Options`]: subnets, a fleet, a state folder.
    pub fn start_with(addr: &str, wasm: Vec<u8>, options: Options) -> Result<Bridge, String> {
        let Options {
            state,
            subnets,
            fleet: fleet_wasm,
        } = options;
        if fleet_wasm.is_some() && state.is_some() {
            // A save keeps the canisters whose modules the bridge
            // installed; the buckets the index creates inside the host
            // would not come back.
            return Err("a fleet (--index-wasm) cannot be kept with --state".into());
        }
        let subnets = if fleet_wasm.is_some() {
            subnets.max(FLEET_MIN_SUBNETS)
        } else {
            subnets.max(1)
        };
        let controller = Principal::from_slice(&[0xC0; 29]);
        let mut host = Host::new();
        host.set_echo_logs(false);
        for _ in 1..subnets {
            host.add_subnet();
        }
        // The agents check certificates' times against their own clocks:
        // the network's clock starts at the wall clock.
        host.set_time(wall_clock_ns());
        let keys = network::Keys::of_host(&host);
        let mut net = network::World::new(host);
        let saved = match &state {
            Some(dir) => network::persist::read(dir)?,
            None => None,
        };
        let canister = match (&saved, &state) {
            (Some(saved), Some(dir)) => {
                net.restore(dir, saved)?;
                let first = saved
                    .default_canister
                    .as_deref()
                    .ok_or("the save names no canister")?;
                Principal::from_text(first).map_err(|e| e.to_string())?
            }
            _ => install(&mut net, &wasm, controller)?,
        };
        let fleet = match fleet_wasm {
            Some(FleetWasm { index, bucket }) => {
                Some(fleet::start(&mut net, &index, bucket, controller)?)
            }
            None => None,
        };
        let epoch_ns = net.host.time();
        let server = Arc::new(tiny_http::Server::http(addr).map_err(|e| e.to_string())?);
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or("the bridge listens on an IP address")?;
        let shared = Arc::new(Shared {
            world: Mutex::new(World {
                net,
                executed: 0,
                advanced: Duration::ZERO,
                changes: 1,
            }),
            faults: Mutex::new(FaultState {
                faults: Faults::default(),
                calls: 0,
            }),
            stats: Mutex::new((Stats::default(), 0)),
            fleet,
            keys,
            wasm,
            controller,
            canister,
            started: Instant::now(),
            epoch_ns,
            state,
            saved_changes: Mutex::new(0),
            addresses: Mutex::new((None, None)),
            stopping: std::sync::atomic::AtomicBool::new(false),
            raw_routes: std::sync::atomic::AtomicBool::new(true),
        });
        let workers = (0..WORKERS)
            .map(|_| {
                let server = server.clone();
                let shared = shared.clone();
                std::thread::spawn(move || {
                    while let Ok(request) = server.recv() {
                        handle(&shared, request);
                    }
                })
            })
            .collect::<Vec<_>>();
        let mut workers = workers;
        if shared.fleet.is_some() {
            // The index's jobs run on its timer: rounds go on between requests.
            let shared = shared.clone();
            workers.push(std::thread::spawn(move || {
                while !shared.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(TICK_EVERY);
                    let mut world = lock(&shared.world);
                    sync_clock(&shared, &mut world);
                    world.net.host.tick();
                }
            }));
        }
        if shared.state.is_some() {
            let shared = shared.clone();
            workers.push(std::thread::spawn(move || {
                while !shared.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(SAVE_EVERY);
                    if let Err(e) = save(&shared) {
                        eprintln!("upload-bridge: saving the state: {e}");
                    }
                }
            }));
        }
        Ok(Bridge {
            server,
            shared,
            workers,
            addr,
        })
    }

    /// The network's clock, in nanoseconds since the epoch.
    pub fn time_ns(&self) -> u64 {
        lock(&self.shared.world).net.host.time()
    }

    /// Saves the network into its state folder now (nothing without
    /// `--state`), e.g. before the process exits.
    pub fn save(&self) -> Result<(), String> {
        save(&self.shared)
    }

    /// Turns off the unsigned raw-Candid routes (`/api/update|query/…`,
    /// the caller named by a header): the binary serves only the IC's
    /// interface unless asked (`--raw-candid`), so no local process can
    /// act as any principal, controllers included.
    pub fn disable_raw_routes(&self) {
        self.shared
            .raw_routes
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records the addresses a restart should listen on again.
    pub fn set_addresses(&self, listen: String, gateway: String) {
        *lock(&self.shared.addresses) = (Some(listen), Some(gateway));
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The canister installed at start.
    pub fn canister(&self) -> Principal {
        self.shared.canister
    }

    /// The host's ids of the network's subnets, the root (default) subnet
    /// first: what the index, the CMC's `subnet_selection` and
    /// `/admin/install`'s `subnet` name. (Agents see the root subnet under
    /// the root key's self-authenticating id; `/api/v2/subnet/<id>/read_state`
    /// takes either.)
    pub fn subnets(&self) -> Vec<Principal> {
        self.shared.keys.subnets.iter().map(|k| k.host_id).collect()
    }

    /// The subnet a canister is on (host id).
    pub fn subnet_of(&self, canister: Principal) -> Option<Principal> {
        let world = lock(&self.shared.world);
        world.net.exists(&canister).then(|| {
            self.shared
                .keys
                .of_canister(&world.net.host, &canister)
                .host_id
        })
    }

    /// The fleet started with the network (`--index-wasm`), its buckets as
    /// they were at startup.
    pub fn fleet(&self) -> Option<fleet::Fleet> {
        self.shared.fleet.clone()
    }

    /// The index's buckets now (`admin_buckets`, as the fleet controller).
    pub fn fleet_buckets(&self) -> Option<Vec<Principal>> {
        let f = self.shared.fleet.as_ref()?;
        let mut world = lock(&self.shared.world);
        fleet::buckets(&mut world.net, f.index, f.controller)
            .ok()
            .map(|rows| rows.into_iter().map(|r| r.bucket).collect())
    }

    /// Installs `wasm` (gzipped or not) in a new canister on `subnet` (one
    /// of [`Bridge::subnets`]), `controller` its controller, with an
    /// empty init argument.
    pub fn install_on(
        &self,
        subnet: Principal,
        wasm: &[u8],
        controller: Principal,
    ) -> Result<Principal, String> {
        let mut world = lock(&self.shared.world);
        world.changes += 1;
        world
            .net
            .install_new_on(
                Some(subnet),
                wasm,
                candid::encode_args(()).expect("empty args"),
                vec![controller],
                network::management::DEFAULT_PROVISIONAL_CYCLES,
            )
            .map_err(|e| e.message)
    }

    /// An update call straight into the host (no envelope, no faults), as
    /// `caller`; due timers run after it.
    pub fn update(
        &self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let mut world = lock(&self.shared.world);
        sync_clock(&self.shared, &mut world);
        world.changes += 1;
        let r = world.net.host.update(canister, caller, method, arg);
        world.net.host.tick();
        r.map_err(|e| e.to_string())
    }

    /// Moves the network's clock on by `by` and runs due timers (as
    /// `POST /admin/advance_time/<seconds>`).
    pub fn advance_time(&self, by: Duration) {
        let mut world = lock(&self.shared.world);
        world.changes += 1;
        world.advanced += by;
        sync_clock(&self.shared, &mut world);
        world.net.host.tick();
    }

    /// A query straight into the host, as `caller`.
    pub fn query(
        &self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let mut world = lock(&self.shared.world);
        sync_clock(&self.shared, &mut world);
        world
            .net
            .host
            .query(canister, caller, method, arg)
            .map_err(|e| e.to_string())
    }

    /// The network's root key, DER-encoded (the key agents verify
    /// certificates with: `HttpAgent.create({ rootKey })`).
    pub fn root_key(&self) -> Vec<u8> {
        self.shared.keys.root_key_der().to_vec()
    }

    /// The controller of every canister the bridge installs.
    pub fn controller(&self) -> Principal {
        self.shared.controller
    }

    /// The canister installed at start, as the local HTTP gateway sees it
    /// (`local_gateway::Gateway::new(Arc::new(bridge.http_canister()))`):
    /// share links served from the same host the Candid calls reach.
    pub fn http_canister(&self) -> BridgeCanister {
        BridgeCanister {
            shared: self.shared.clone(),
            canister: None,
        }
    }

    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).0.clone()
    }

    /// Blocks until the server stops (never, for the binary).
    pub fn wait(mut self) {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.shared
            .stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.server.unblock();
        for _ in 1..WORKERS {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn install(
    net: &mut network::World,
    wasm: &[u8],
    controller: Principal,
) -> Result<Principal, String> {
    net.install_new(wasm, controller)
        .map_err(|e| format!("installing the canister: {}", e.message))
}

fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(embedded_ic_host::DEFAULT_TIME_NS)
}

type Reply = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn reply(status: u16, body: Vec<u8>, content_type: &str) -> Reply {
    tiny_http::Response::from_data(body)
        .with_status_code(status)
        .with_header(header("content-type", content_type))
}

fn text(status: u16, body: impl Into<String>) -> Reply {
    reply(
        status,
        body.into().into_bytes(),
        "text/plain; charset=utf-8",
    )
}

fn json(value: &impl Serialize) -> Reply {
    reply(
        200,
        serde_json::to_vec(value).expect("serializable"),
        "application/json",
    )
}

fn handle(shared: &Shared, mut request: tiny_http::Request) {
    let mut body = Vec::new();
    let response = match request.as_reader().read_to_end(&mut body) {
        Ok(_) => route(shared, &request, body),
        Err(e) => text(400, format!("reading the body: {e}")),
    }
    // The demo page is served from another origin than the bridge.
    .with_header(header("access-control-allow-origin", "*"))
    .with_header(header(
        "access-control-allow-headers",
        "x-caller, content-type",
    ))
    .with_header(header("access-control-allow-methods", "GET, POST"))
    .with_header(header("access-control-expose-headers", "x-reject-code"));
    // The client may have given up on the call: nothing to do then.
    let _ = request.respond(response);
}

fn route(shared: &Shared, request: &tiny_http::Request, body: Vec<u8>) -> Reply {
    use tiny_http::Method::{Get, Options, Post};
    let path = request.url().split('?').next().unwrap_or("");
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let caller = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("x-caller"))
        .map(|h| h.value.as_str().to_string());
    match (request.method(), parts.as_slice()) {
        (Options, _) => text(204, ""),
        (Get, ["api", "v2", "status"]) => http_api::status(shared),
        (
            Post,
            ["api", version @ ("v2" | "v3" | "v4"), scope @ ("canister" | "subnet"), id, endpoint],
        ) => http_api::route(shared, version, scope, id, endpoint, body),
        (Post, ["api", kind @ ("update" | "query"), canister, method])
            if shared.raw_routes.load(std::sync::atomic::Ordering::Relaxed) =>
        {
            match parse_principals(caller.as_deref(), canister) {
                Ok((caller, canister)) => {
                    call(shared, *kind == "update", canister, caller, method, body)
                }
                Err(e) => text(404, e),
            }
        }
        (Get, ["admin", "info"]) => json(&serde_json::json!({
            "canister": shared.canister.to_text(),
            "controller": shared.controller.to_text(),
        })),
        (Post, ["admin", "install"]) => {
            // `{"controller": "<principal>"}` names a controller that can
            // sign (a test's identity); without it, the network's own.
            #[derive(serde::Deserialize, Default)]
            struct Install {
                controller: Option<String>,
                subnet: Option<String>,
            }
            let install_arg = serde_json::from_slice::<Install>(&body).unwrap_or_default();
            let controller = match install_arg.controller {
                Some(c) => match Principal::from_text(&c) {
                    Ok(p) => p,
                    Err(e) => return text(400, format!("controller: {e}")),
                },
                None => shared.controller,
            };
            let subnet = match install_arg.subnet.as_deref().map(Principal::from_text) {
                None => None,
                Some(Ok(s)) => match shared.keys.by_id(&s) {
                    Some(k) => Some(k.host_id),
                    None => return text(404, format!("no subnet {s} on this network")),
                },
                Some(Err(e)) => return text(400, format!("subnet: {e}")),
            };
            let mut world = lock(&shared.world);
            world.changes += 1;
            let installed = world
                .net
                .install_new_on(
                    subnet,
                    &shared.wasm,
                    candid::encode_args(()).expect("empty args"),
                    vec![controller],
                    network::management::DEFAULT_PROVISIONAL_CYCLES,
                )
                .map_err(|e| format!("installing the canister: {}", e.message));
            match installed {
                Ok(id) => json(&serde_json::json!({ "canister": id.to_text() })),
                Err(e) => text(500, e),
            }
        }
        (Post, ["admin", "upgrade", canister]) => match Principal::from_text(canister) {
            Ok(canister) => {
                let mut world = lock(&shared.world);
                world.changes += 1;
                let arg = candid::encode_args(()).expect("empty args");
                match world.net.host.upgrade(canister, &shared.wasm, arg) {
                    Ok(()) => {
                        lock(&shared.stats).0.upgrades += 1;
                        text(200, "upgraded")
                    }
                    Err(e) => text(500, format!("upgrade failed: {e}")),
                }
            }
            Err(e) => text(404, format!("canister id: {e}")),
        },
        (Post, ["admin", "faults"]) => match serde_json::from_slice::<Faults>(&body) {
            Ok(faults) => {
                *lock(&shared.faults) = FaultState { faults, calls: 0 };
                text(200, "faults set")
            }
            Err(e) => text(400, format!("faults: {e}")),
        },
        (Get, ["admin", "fleet"]) => match &shared.fleet {
            Some(f) => {
                let buckets = {
                    let mut world = lock(&shared.world);
                    fleet::buckets(&mut world.net, f.index, f.controller)
                        .map(|rows| rows.into_iter().map(|r| r.bucket.to_text()).collect())
                        .unwrap_or_else(|_| f.buckets.iter().map(Principal::to_text).collect())
                };
                let buckets: Vec<String> = buckets;
                json(&serde_json::json!({
                    "index": f.index.to_text(),
                    "subnets": shared.keys.subnets.iter().map(|k| k.host_id.to_text()).collect::<Vec<_>>(),
                    "buckets": buckets,
                    "controller": f.controller.to_text(),
                    "controller_secret_key": fleet::FleetController::default().secret_key_hex(),
                }))
            }
            None => text(
                404,
                "no fleet: start the network with --index-wasm and --bucket-wasm",
            ),
        },
        (Get, ["admin", "stats"]) => json(&lock(&shared.stats).0),
        (Post, ["admin", "stats", "reset"]) => {
            lock(&shared.stats).0 = Stats::default();
            text(200, "reset")
        }
        (Post, ["admin", "advance_time", seconds]) => match seconds.parse::<u64>() {
            Ok(s) => {
                let mut world = lock(&shared.world);
                world.changes += 1;
                world.advanced += Duration::from_secs(s);
                sync_clock(shared, &mut world);
                world.net.host.tick();
                text(200, "advanced")
            }
            Err(e) => text(400, format!("seconds: {e}")),
        },
        _ => text(404, "no such route"),
    }
}

impl Shared {
    /// Counts a call or query and decides its fate.
    fn fate(&self, method: &str) -> faults::Fate {
        let fate = {
            let mut f = lock(&self.faults);
            f.calls += 1;
            f.faults.fate(f.calls)
        };
        let mut stats = lock(&self.stats);
        *stats.0.calls.entry(method.to_string()).or_default() += 1;
        if fate.drop_before {
            stats.0.dropped_before += 1;
        }
        fate
    }

    /// Runs one call or query as the faults say: dropped before it runs
    /// (503), or run on the world (`run`, its clock synced) and booked
    /// (`executed` says whether it really ran), its reply held, then maybe
    /// lost (503). The result is what `run` gave, unless a fault answered.
    fn through_faults<R>(
        &self,
        method: &str,
        run: impl FnOnce(&mut World) -> R,
        executed: impl FnOnce(&R) -> bool,
    ) -> Result<R, Reply> {
        let fate = self.fate(method);
        if fate.drop_before {
            return Err(text(503, "dropped before execution by the local network"));
        }
        let (result, seq) = {
            let mut world = lock(&self.world);
            sync_clock(self, &mut world);
            let result = run(&mut world);
            world.executed += 1;
            (result, world.executed)
        };
        self.after_execution(method, executed(&result), fate, seq);
        if fate.drop_after {
            return Err(text(503, "reply lost after execution by the local network"));
        }
        Ok(result)
    }

    /// Books a call that reached the canister (the `seq`-th; `executed`:
    /// it ran, rather than being refused or repeating a request already
    /// run) and holds its reply as its fate says.
    fn after_execution(&self, method: &str, executed: bool, fate: faults::Fate, seq: u64) {
        {
            let mut stats = lock(&self.stats);
            if executed {
                *stats.0.executed.entry(method.to_string()).or_default() += 1;
            }
            if fate.drop_after {
                stats.0.dropped_after += 1;
            }
        }
        http_api::hold(fate.hold_ms);
        let mut stats = lock(&self.stats);
        let (s, latest) = &mut *stats;
        if seq < *latest {
            s.replies_out_of_order += 1;
        }
        *latest = (*latest).max(seq);
    }
}

/// Flips the last byte of a `memories_read` reply that carries bytes.
fn corrupt_read(reply: &mut [u8]) -> bool {
    if is_ok_blob(reply) {
        faults::corrupt_last_byte(reply);
        true
    } else {
        false
    }
}

fn parse_principals(
    caller: Option<&str>,
    canister: &str,
) -> Result<(Principal, Principal), String> {
    let caller = match caller {
        Some(c) => Principal::from_text(c).map_err(|e| format!("x-caller: {e}"))?,
        None => Principal::anonymous(),
    };
    let canister = Principal::from_text(canister).map_err(|e| format!("canister id: {e}"))?;
    Ok((caller, canister))
}

fn sync_clock(shared: &Shared, world: &mut World) {
    let now = shared.epoch_ns + (shared.started.elapsed() + world.advanced).as_nanos() as u64;
    if now > world.net.host.time() {
        world.net.host.set_time(now);
    }
}

fn call(
    shared: &Shared,
    update: bool,
    canister: Principal,
    caller: Principal,
    method: &str,
    arg: Vec<u8>,
) -> Reply {
    let corrupt_reads = lock(&shared.faults).faults.corrupt_reads;
    let run = |world: &mut World| {
        if update {
            world.changes += 1;
            let r = world.net.host.update(canister, caller, method, arg);
            world.net.host.tick();
            r
        } else {
            world.net.host.query(canister, caller, method, arg)
        }
    };
    let result = match shared.through_faults(method, run, |_| true) {
        Ok(result) => result,
        Err(fault) => return fault,
    };
    match result {
        Ok(mut bytes) => {
            if corrupt_reads && method == "memories_read" && corrupt_read(&mut bytes) {
                lock(&shared.stats).0.corrupted_reads += 1;
            }
            reply(200, bytes, "application/octet-stream")
        }
        Err(e) => text(400, e.to_string())
            .with_header(header("x-reject-code", &reject_code(&e).to_string())),
    }
}

/// Whether a `memories_read` reply is `Ok` with at least one byte (an `Err`
/// must not be corrupted: it would no longer decode).
fn is_ok_blob(reply: &[u8]) -> bool {
    type ReadReply = Result<serde_bytes::ByteBuf, candid::Reserved>;
    matches!(candid::decode_one::<ReadReply>(reply), Ok(Ok(b)) if !b.is_empty())
}

/// The IC's reject code for a host error: 4 canister reject, 5 canister
/// error, 3 destination invalid.
fn reject_code(e: &HostError) -> u32 {
    match e {
        HostError::CanisterRejected { code, .. } => *code,
        HostError::CanisterNotFound(_) | HostError::MethodNotFound(_) => 3,
        _ => 5,
    }
}
