//! Native tests of share links and certification on `VectorMemory`: the
//! bounded certification steps, and the heap tree rebuilt after an upgrade
//! to exactly the tree before it.

use crate::http::{HttpRequest, SERVE_CHUNK_BYTES};
use crate::limits::MAX_LINKS_PER_MEMORY;
use crate::sharing::links::*;
use crate::upload::tests::{alice, file, Fixture};
use crate::upload::{MemoryItemId, UploadError};
use candid::Principal;
use serde_bytes::ByteBuf;

const CHUNK: u32 = 1_900_000;

/// The upload tests' fixture, with what serving needs beside it.
impl Fixture {
    /// Uploads and commits a `len`-byte file in full chunks, letting
    /// maintenance finish the hash when `uploads_finish` waits for it.
    fn upload(&mut self, len: usize, seed: u8) -> (MemoryItemId, Vec<u8>) {
        let data = file(len, seed);
        let sid = self
            .begin(&data, CHUNK, &format!("k{seed}"))
            .unwrap()
            .session_id;
        for index in 0..len.div_ceil(CHUNK as usize) as u32 {
            self.put(sid, &data, CHUNK, index, 2).unwrap();
        }
        let committed = loop {
            match self.finish(sid, &data, 3) {
                Ok(done) => break done,
                Err(UploadError::VerificationPending { .. }) => {
                    self.service.maintenance(3);
                }
                Err(other) => panic!("{other:?}"),
            }
        };
        (committed.memory_id, data)
    }

    fn get(&self, path: &str, range: Option<&str>) -> crate::http::HttpResponse {
        let request = HttpRequest::new("GET", path, range.map(|r| ("Range", r)).as_slice());
        self.service.http_request(&request, 10, None)
    }

    fn ready(&self, memory: MemoryItemId, link_id: u64) -> bool {
        self.service
            .shares(alice(), memory)
            .unwrap()
            .iter()
            .find(|l| l.link_id == link_id)
            .unwrap()
            .ready
    }
}

#[test]
fn long_files_are_certified_in_bounded_steps_and_answer_404_until_done() {
    let mut f = Fixture::new();
    let empty_root = f.service.certified_data();
    // 48 MB: more than one message's 32 MiB of hashing.
    let (memory, data) = f.upload(24 * SERVE_CHUNK_BYTES as usize, 1);
    let link = f.service.share(alice(), 5, memory, None, [7; 16]).unwrap();
    assert!(!link.ready, "48 MB hashed in one message");
    let pending_root = f.service.certified_data();
    assert_ne!(pending_root, empty_root, "the fixed replies are certified");
    assert_eq!(f.get(&link.path, None).status_code, 404);

    // The rebuilt tree equals the tree before the upgrade, mid-way too.
    f.upgrade();
    assert_eq!(f.service.certified_data(), pending_root);

    let mut steps = 0;
    while f.service.sharing_maintenance(6) {
        steps += 1;
        assert!(steps < 10);
    }
    assert!(f.ready(memory, link.link_id));
    assert!(steps <= 1, "{steps} extra steps for 16 MB");
    let done_root = f.service.certified_data();
    let last = f.get(&link.path, Some("bytes=-1"));
    assert_eq!(last.status_code, 206);
    assert_eq!(*last.body, data[23 * SERVE_CHUNK_BYTES as usize..]);
    f.upgrade();
    assert_eq!(f.service.certified_data(), done_root);

    // A second link certifies nothing; revoking one of two keeps the tree.
    let second = f.service.share(alice(), 7, memory, None, [8; 16]).unwrap();
    assert!(second.ready);
    assert_eq!(f.service.certified_data(), done_root);
    f.service.unshare(alice(), link.link_id).unwrap();
    assert_eq!(f.service.certified_data(), done_root);
    assert_eq!(f.get(&link.path, None).status_code, 404);
    assert_eq!(f.get(&second.path, None).status_code, 206);
    // The last one takes the memory's responses out of the tree.
    f.service.unshare(alice(), second.link_id).unwrap();
    assert_eq!(f.service.certified_data(), empty_root);

    // Shared again: the stored chunk hashes are reused, all in one step.
    let third = f.service.share(alice(), 8, memory, None, [9; 16]).unwrap();
    assert!(third.ready);
    assert_eq!(f.service.certified_data(), done_root);
}

#[test]
fn revoking_during_certification_stops_it_and_links_per_memory_are_capped() {
    let mut f = Fixture::new();
    let empty_root = f.service.certified_data();
    let (memory, _) = f.upload(20 * SERVE_CHUNK_BYTES as usize, 2);
    let link = f.service.share(alice(), 5, memory, None, [1; 16]).unwrap();
    assert!(!link.ready);
    f.service.unshare(alice(), link.link_id).unwrap();
    assert_eq!(f.service.certified_data(), empty_root);
    assert!(
        !f.service.sharing_maintenance(6),
        "work left after revocation"
    );
    assert_eq!(f.service.certified_data(), empty_root);

    assert_eq!(entries_for(20 * SERVE_CHUNK_BYTES), 25);
    for _ in 0..MAX_LINKS_PER_MEMORY {
        f.service.share(alice(), 7, memory, None, [2; 16]).unwrap();
    }
    assert_eq!(
        f.service.share(alice(), 7, memory, None, [2; 16]),
        Err(ShareError::TooManyLinks {
            limit: MAX_LINKS_PER_MEMORY
        })
    );
}

#[test]
fn malformed_urls_get_the_root_404_certified_and_never_trap() {
    let f = Fixture::new();
    for url in [
        "",
        "%zz",
        "s/1/2/3",
        "http://[::1",
        "/%",
        "*",
        "//",
        "/s//",
        "/s/1/",
    ] {
        let request = HttpRequest {
            method: "GET".into(),
            url: url.into(),
            headers: vec![("Range".into(), "bytes=--".into())],
            body: ByteBuf::new(),
            certificate_version: None,
        };
        let response = f.service.http_request(&request, 0, Some(b"certificate"));
        assert_eq!(response.status_code, 404, "{url}");
        assert!(
            response
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("IC-Certificate")),
            "{url}"
        );
    }
}

#[test]
fn the_certified_response_cap_counts_memories_once_and_is_released() {
    let mut f = Fixture::new();
    f.service.shares.set_entries_cap(7 + 10);
    let (small, _) = f.upload(1_000, 3); // 7 responses
    let (long, _) = f.upload(5 * SERVE_CHUNK_BYTES as usize, 4); // 10 responses
    let (other, _) = f.upload(2_000, 5); // 7 responses
    let a = f.service.share(alice(), 5, small, None, [1; 16]).unwrap();
    // Further links of a shared memory reserve nothing.
    f.service.share(alice(), 5, small, None, [2; 16]).unwrap();
    let b = f.service.share(alice(), 5, long, None, [3; 16]).unwrap();
    assert_eq!(f.service.shares.certified_entries(), 17);
    assert_eq!(
        f.service.share(alice(), 5, other, None, [4; 16]),
        Err(ShareError::CapacityExhausted {
            needed: 7,
            available: 0
        })
    );
    // Revoking the long file's only link releases its 10.
    f.service.unshare(alice(), b.link_id).unwrap();
    assert_eq!(f.service.shares.certified_entries(), 7);
    f.service.share(alice(), 6, other, None, [4; 16]).unwrap();
    // One of the small file's two links gone: still reserved once.
    f.service.unshare(alice(), a.link_id).unwrap();
    assert_eq!(f.service.shares.certified_entries(), 14);
    // The count survives an upgrade.
    f.upgrade();
    assert_eq!(f.service.shares.certified_entries(), 14);
}

/// Every error the share methods list, each provoked, checked against the
/// contract (`admission::RULES`) and the set compared with the lists: all
/// but `RandomnessUnavailable`, which only the canister's `raw_rand` call
/// gives (`canister::link_secret`).
#[test]
fn share_methods_return_each_listed_error() {
    use crate::testing::contract::{case_name, declared_errors};
    use std::collections::BTreeSet;

    let mut f = Fixture::new();
    let bob = Principal::from_slice(&[2; 29]);
    let anonymous = Principal::anonymous();
    let (memory, _) = f.upload(1_000, 1);
    let (other, _) = f.upload(1_000, 2);
    let missing = MemoryItemId(99);
    let mut seen = BTreeSet::new();
    let mut observe = |method: &str, error: Option<ShareError>| {
        let error = error.unwrap_or_else(|| panic!("{method} succeeded"));
        seen.insert(format!("{method} {}", case_name(&error)));
    };

    let share = "memories_share";
    observe(
        share,
        f.service.share(anonymous, 5, memory, None, [1; 16]).err(),
    );
    observe(
        share,
        f.service.share(alice(), 5, missing, None, [1; 16]).err(),
    );
    observe(share, f.service.share(bob, 5, memory, None, [1; 16]).err());
    observe(
        share,
        f.service.share(alice(), 5, memory, Some(5), [1; 16]).err(),
    );
    let link = f.service.share(alice(), 5, memory, None, [1; 16]).unwrap();
    for _ in 1..MAX_LINKS_PER_MEMORY {
        f.service.share(alice(), 5, memory, None, [2; 16]).unwrap();
    }
    observe(
        share,
        f.service.share(alice(), 5, memory, None, [3; 16]).err(),
    );
    let entries = f.service.shares.certified_entries();
    f.service.shares.set_entries_cap(entries);
    observe(
        share,
        f.service.share(alice(), 5, other, None, [4; 16]).err(),
    );

    let shares = "memories_shares";
    observe(shares, f.service.shares(anonymous, memory).err());
    observe(shares, f.service.shares(alice(), missing).err());
    observe(shares, f.service.shares(bob, memory).err());

    let unshare = "memories_unshare";
    observe(unshare, f.service.unshare(alice(), 12_345).err());
    observe(unshare, f.service.unshare(anonymous, link.link_id).err());
    observe(unshare, f.service.unshare(bob, link.link_id).err());

    let mut listed = BTreeSet::new();
    for method in [share, shares, unshare] {
        for case in declared_errors(method) {
            if case != "RandomnessUnavailable" {
                listed.insert(format!("{method} {case}"));
            }
        }
    }
    assert_eq!(seen, listed);
}
