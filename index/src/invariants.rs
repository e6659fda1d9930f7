//! The controllers' check that the registry matches the buckets.

use crate::calls;
use crate::canister::{call_timeout, read_registry as read};
use crate::registry::job_active;
use crate::types::*;

/// Pages of a bucket's capsules compared per check (of 100 each).
const MAX_PAGES_PER_BUCKET: usize = 50;
/// Buckets compared per check.
const MAX_BUCKETS: usize = 50;

pub async fn check() -> InvariantReport {
    let mut report = InvariantReport::default();
    let t = call_timeout();
    let me = ic_cdk::api::canister_self();
    let buckets: Vec<(BucketNo, BucketRecord)> = read(|r| {
        r.buckets
            .iter()
            .take(MAX_BUCKETS)
            .map(|e| (*e.key(), e.value().0))
            .collect()
    });
    for (no, b) in buckets {
        report.buckets_checked += 1;
        let id = b.canister_id;
        match calls::status(t, id).await {
            Ok(s) => {
                if !s.settings.controllers.contains(&me) {
                    report
                        .problems
                        .push(format!("{id}: the index is not a controller"));
                }
                if b.module_hash.is_some() && s.module_hash != b.module_hash {
                    report
                        .problems
                        .push(format!("{id}: runs another module than recorded"));
                }
            }
            Err(e) => report
                .problems
                .push(format!("{id}: canister_status: {}", e.reason())),
        }
        if b.importing_after.is_some() {
            continue;
        }
        let mut after = None;
        let mut seen = 0u64;
        for _ in 0..MAX_PAGES_PER_BUCKET {
            let page = match calls::capsules_page(t, id, after, 100).await {
                Ok(p) => p,
                Err(e) => {
                    report
                        .problems
                        .push(format!("{id}: bucket_capsules: {}", e.reason()));
                    break;
                }
            };
            for c in &page {
                seen += 1;
                report.capsules_checked += 1;
                let ok = read(|r| {
                    r.slot(c.capsule_id).is_some_and(|slot| {
                        slot.bucket_nos().any(|n| n == no) && r.owner_of(&slot) == c.owner
                    })
                });
                if !ok {
                    report.problems.push(format!(
                        "{id}: holds capsule {} the registry does not place there",
                        c.capsule_id
                    ));
                }
            }
            if page.len() < 100 {
                if seen != b.capsules {
                    report.problems.push(format!(
                        "{id}: holds {seen} capsules, the registry counts {}",
                        b.capsules
                    ));
                }
                break;
            }
            after = page.last().map(|c| c.capsule_id);
        }
    }
    for job in read(|r| r.jobs.iter().map(|e| e.value().0).collect::<Vec<_>>()) {
        if let CreationStep::Registered { canister_id } = job.step {
            if read(|r| r.bucket_no(&canister_id)).is_none() {
                report.problems.push(format!(
                    "job {}: {canister_id} created but not in the registry",
                    job.job_id
                ));
            }
        }
        if job_active(&job) {
            report.problems.push(format!(
                "job {}: still creating a bucket ({:?})",
                job.job_id, job.step
            ));
        }
    }
    let pending = read(|r| r.pending.len());
    if pending > 0 {
        report.problems.push(format!(
            "{pending} capsule registrations are not confirmed yet"
        ));
    }
    report
}
