//! The scenario suite on PocketIC, when a server binary is available.
//!
//! `POCKET_IC_BIN` must name a PocketIC server (16.x, matching the crate).
//! Without it the suite prints one line saying it was skipped and why, and
//! reports nothing as passed.

#[path = "../../scenarios/mod.rs"]
mod scenarios;

use upload_harness::{IcEnv, PocketIcEnv};

fn main() {
    if let Err(reason) = PocketIcEnv::from_env() {
        println!("PocketIC scenarios skipped: {reason}");
        return;
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, scenario) in scenarios::ALL {
        let mut env = PocketIcEnv::from_env().expect("checked above");
        let env: &mut dyn IcEnv = &mut env;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(env))) {
            Ok(Ok(())) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Ok(Err(reason)) => {
                println!("test {name} ... skipped: {reason}");
                skipped += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("pocketic: {passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        std::process::exit(1);
    }
}
