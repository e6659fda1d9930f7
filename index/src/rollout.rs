//! Rollouts: upgrading every bucket to the staged Wasm, one canary first,
//! then batches of 2, 4, ... Each bucket is stopped, upgraded, started
//! (always, whatever failed) and asked for its health; any failure halts
//! the rollout with every bucket serving, on the old Wasm or the new.

use crate::calls::{self, InstallMode, UpgradeFlags};
use crate::canister::{call_timeout, mutate_registry as mutate, read_registry as read};
use crate::types::*;
use candid::Principal;

/// The buckets still below the rollout's version, `batch` of them, in
/// registry order.
fn next_batch(version: u32, batch: u32) -> Vec<(BucketNo, Principal)> {
    read(|r| {
        r.buckets
            .iter()
            .map(|e| (*e.key(), e.value().0))
            .filter(|(_, b)| b.wasm_version < version)
            .take(batch as usize)
            .map(|(no, b)| (no, b.canister_id))
            .collect()
    })
}

pub async fn step(report: &mut JobsReport) {
    let Some(mut rollout) = read(|r| r.rollout()) else {
        return;
    };
    if rollout.state != RolloutState::Running {
        return;
    }
    let Some((info, module)) = read(|r| {
        r.wasm_meta()
            .staged
            .filter(|(w, _)| w.sha256 == rollout.wasm.sha256)
            .map(|(w, slot)| (w, r.module(slot)))
    }) else {
        rollout.state = RolloutState::Halted {
            bucket: Principal::anonymous(),
            reason: "the staged Wasm changed: start the rollout again".into(),
        };
        mutate(|r| r.set_rollout(Some(rollout)));
        return;
    };
    let batch = next_batch(info.version, rollout.next_batch);
    if batch.is_empty() {
        rollout.state = RolloutState::Done;
        mutate(|r| {
            r.set_rollout(Some(rollout));
            r.promote_staged();
        });
        return;
    }
    for (no, bucket) in batch {
        // A bucket may have reported a newer layout since the start.
        let newer = read(|r| r.bucket(no)).is_some_and(|b| Some(b.layout_version) > info.layout);
        let outcome = if newer {
            Err((
                false,
                "the bucket's layout is newer than the Wasm's".to_string(),
            ))
        } else {
            upgrade_one(bucket, &module).await
        };
        let upgraded = !matches!(outcome, Err((false, _)));
        mutate(|r| {
            if let Some(mut b) = r.bucket(no) {
                if upgraded {
                    b.wasm_version = info.version;
                    b.module_hash = Some(info.sha256.clone());
                }
                b.last_error = outcome.as_ref().err().map(|(_, e)| e.clone());
                r.set_bucket(no, b);
            }
        });
        if let Err((_, reason)) = outcome {
            rollout.state = RolloutState::Halted { bucket, reason };
            mutate(|r| r.set_rollout(Some(rollout)));
            return;
        }
        rollout.upgraded += 1;
        report.upgraded += 1;
    }
    let max = read(|r| r.settings().rollout_max_batch).max(1);
    rollout.next_batch = (rollout.next_batch * 2).min(max);
    mutate(|r| r.set_rollout(Some(rollout)));
}

/// Stop, upgrade, start, health. `Err((installed, reason))`: whether the
/// new module is in place when it failed.
async fn upgrade_one(bucket: Principal, module: &[u8]) -> Result<(), (bool, String)> {
    let t = call_timeout();
    if let Err(e) = calls::stop(t, bucket).await {
        let _ = calls::start(t, bucket).await;
        return Err((false, format!("stop_canister: {}", e.reason())));
    }
    let install = calls::install(
        t,
        bucket,
        InstallMode::Upgrade(Some(UpgradeFlags {
            skip_pre_upgrade: Some(false),
        })),
        module,
    )
    .await;
    // Started whatever happened: a bucket always goes back to serving.
    let started = calls::start(t, bucket).await;
    if let Err(e) = install {
        return Err((false, format!("install_code: {}", e.reason())));
    }
    if let Err(e) = started {
        return Err((true, format!("start_canister: {}", e.reason())));
    }
    match calls::health(t, bucket).await {
        Ok(h) if h.invariants_ok => Ok(()),
        Ok(h) => Err((true, format!("health check failed: {}", h.detail))),
        Err(e) => Err((true, format!("bucket_health: {}", e.reason()))),
    }
}
