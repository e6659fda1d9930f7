//! `--state DIR`: the network kept across restarts. What is kept: every
//! canister (its module as installed, stable memory, controllers and
//! settings, run state, cycles, version, certified data), the clock, the
//! next canister id and the ports. What is not: heaps (each canister comes
//! back through `canister_post_upgrade`, as after an upgrade), request
//! statuses (a reply not read before the restart is gone) and the faults.
//!
//! Layout: `network.json` (the clock, the ports, the canisters' records),
//! and per canister `<id>.wasm` (the module as installed) and `<id>.stable`
//! (its written 64 KiB pages: index as u64 little-endian, then the page).
//! Each file is written beside its final name and renamed over it, so a
//! crash mid-save leaves the previous save whole.

use super::{CanisterRecord, RunState, World};
use candid::{Decode, Encode, Principal};
use embedded_ic_host::stable_memory::{StableMemory, WASM_PAGE};
use embedded_ic_host::CanisterSnapshot;
use ic_management_canister_types::DefiniteCanisterSettings;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::Path;

#[derive(Serialize, Deserialize)]
pub struct Saved {
    pub time_ns: u64,
    pub next_canister_index: u64,
    /// The addresses the network and its gateway listened on.
    pub listen: Option<String>,
    pub gateway: Option<String>,
    /// The canister the network installed at its first start.
    pub default_canister: Option<String>,
    pub canisters: Vec<SavedCanister>,
}

#[derive(Serialize, Deserialize)]
pub struct SavedCanister {
    pub id: String,
    /// Candid of the settings (`DefiniteCanisterSettings`), hex.
    pub settings: String,
    pub stopped: bool,
    pub cycles: String,
    /// Present when a module is installed.
    pub module: Option<SavedModule>,
}

#[derive(Serialize, Deserialize)]
pub struct SavedModule {
    pub installer: String,
    pub canister_version: u64,
    pub certified_data: String,
    pub stable_pages: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("?"), 16).map_err(|e| e.to_string()))
        .collect()
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = path.with_extension("partial");
    let mut f = std::fs::File::create(&tmp)?;
    write(&mut f)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

/// What a save copies under the world's lock, to write without it.
pub struct Pending {
    saved: Saved,
    modules: Vec<(Principal, Vec<u8>, CanisterSnapshot)>,
}

impl World {
    /// Copies what a save needs (quick: memory to memory).
    pub fn prepare_save(&self, listen: Option<String>, gateway: Option<String>) -> Pending {
        let mut canisters = Vec::new();
        let mut modules = Vec::new();
        for (id, record) in &self.canisters {
            let snapshot = record
                .installed_module
                .as_ref()
                .and_then(|m| self.host.snapshot(*id).map(|s| (m.clone(), s)));
            let module = snapshot.as_ref().map(|(_, s)| SavedModule {
                installer: s.controller.to_text(),
                canister_version: s.canister_version,
                certified_data: hex(&s.certified_data),
                stable_pages: s.stable.size_pages(),
            });
            canisters.push(SavedCanister {
                id: id.to_text(),
                settings: hex(&Encode!(&record.settings).expect("settings encode")),
                stopped: record.run_state == RunState::Stopped,
                cycles: self.host.cycles(*id).unwrap_or(record.cycles).to_string(),
                module,
            });
            if let Some((wasm, s)) = snapshot {
                modules.push((*id, wasm, s));
            }
        }
        Pending {
            saved: Saved {
                time_ns: self.host.time(),
                next_canister_index: self.host.next_canister_index(),
                listen,
                gateway,
                default_canister: None,
                canisters,
            },
            modules,
        }
    }

    /// Rebuilds the canisters of a save into this (empty) world.
    pub fn restore(&mut self, dir: &Path, saved: &Saved) -> Result<(), String> {
        self.host.set_next_canister_index(saved.next_canister_index);
        if saved.time_ns > self.host.time() {
            self.host.set_time(saved.time_ns);
        }
        for c in &saved.canisters {
            let id =
                Principal::from_text(&c.id).map_err(|e| format!("canister id {}: {e}", c.id))?;
            let settings = Decode!(&unhex(&c.settings)?, DefiniteCanisterSettings)
                .map_err(|e| format!("settings of {id}: {e}"))?;
            let cycles: u128 = c
                .cycles
                .parse()
                .map_err(|e| format!("cycles of {id}: {e}"))?;
            let mut record = CanisterRecord::new(settings.controllers.clone(), cycles);
            record.settings = settings;
            record.run_state = if c.stopped {
                RunState::Stopped
            } else {
                RunState::Running
            };
            if let Some(m) = &c.module {
                let wasm = std::fs::read(dir.join(format!("{id}.wasm")))
                    .map_err(|e| format!("module of {id}: {e}"))?;
                let stable = read_stable(&dir.join(format!("{id}.stable")), m.stable_pages)
                    .map_err(|e| format!("stable memory of {id}: {e}"))?;
                let snapshot = CanisterSnapshot {
                    controller: Principal::from_text(&m.installer).map_err(|e| e.to_string())?,
                    controllers: record.settings.controllers.clone(),
                    canister_version: m.canister_version,
                    cycles,
                    certified_data: unhex(&m.certified_data)?,
                    stable,
                };
                let module = super::management::decompress(&wasm)?;
                self.host
                    .restore_at(id, &module, snapshot, Encode!().expect("empty args"))
                    .map_err(|e| format!("restarting {id}: {e}"))?;
                record.module_hash = Some(<sha2::Sha256 as sha2::Digest>::digest(&wasm).into());
                record.metadata = super::management::custom_sections(&module);
                record.installed_module = Some(wasm);
            }
            self.canisters.insert(id, record);
        }
        Ok(())
    }
}

impl Pending {
    pub fn set_default_canister(&mut self, id: Principal) {
        self.saved.default_canister = Some(id.to_text());
    }

    /// Writes the save into `dir`.
    pub fn write(self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (id, wasm, snapshot) in &self.modules {
            write_atomically(&dir.join(format!("{id}.wasm")), |f| f.write_all(wasm))?;
            write_atomically(&dir.join(format!("{id}.stable")), |f| {
                let mut out = std::io::BufWriter::new(f);
                for (idx, page) in snapshot.stable.written_pages() {
                    out.write_all(&idx.to_le_bytes())?;
                    out.write_all(page)?;
                }
                out.flush()
            })?;
        }
        let json = serde_json::to_vec_pretty(&self.saved).map_err(std::io::Error::other)?;
        write_atomically(&dir.join("network.json"), |f| f.write_all(&json))
    }
}

/// The save in `dir`, if there is one.
pub fn read(dir: &Path) -> Result<Option<Saved>, String> {
    let path = dir.join("network.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn read_stable(path: &Path, size_pages: u64) -> std::io::Result<StableMemory> {
    let mut f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut pages = Vec::new();
    loop {
        let mut idx = [0u8; 8];
        match f.read_exact(&mut idx) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let mut page = vec![0u8; WASM_PAGE as usize];
        f.read_exact(&mut page)?;
        pages.push((u64::from_le_bytes(idx), page));
    }
    Ok(StableMemory::from_pages(size_pages, pages))
}
