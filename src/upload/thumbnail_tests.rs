//! Native tests of memory thumbnails on `VectorMemory`: set with the
//! upload or after it, replaced and removed, checked for size and type,
//! who may set them, their quota, and gallery pages cut by reply size.

use super::tests::{alice, file, Fixture};
use super::*;
use crate::library::encoded_bytes_bound;
use crate::limits::{charged_bytes, Limits, MAX_LIST_REPLY_BYTES};
use crate::stores::thumbnails::{JPEG, MAX_THUMBNAIL_BYTES, WEBP};
use candid::Principal;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

/// The IC's limit on a reply.
const MAX_REPLY_BYTES: usize = 2 * 1024 * 1024;

fn bob() -> Principal {
    Principal::from_slice(&[2; 29])
}

fn carol() -> Principal {
    Principal::from_slice(&[3; 29])
}

/// A JPEG-looking thumbnail of `len` bytes (at least 3).
fn jpeg(len: usize, seed: u8) -> Thumbnail {
    let mut bytes = file(len, seed);
    bytes[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
    Thumbnail {
        mime_type: JPEG.into(),
        bytes: ByteBuf::from(bytes),
    }
}

/// A WebP-looking thumbnail of `len` bytes (at least 12).
fn webp(len: usize, seed: u8) -> Thumbnail {
    let mut bytes = file(len, seed);
    bytes[..4].copy_from_slice(b"RIFF");
    bytes[4..8].copy_from_slice(&(len as u32 - 8).to_le_bytes());
    bytes[8..12].copy_from_slice(b"WEBP");
    Thumbnail {
        mime_type: WEBP.into(),
        bytes: ByteBuf::from(bytes),
    }
}

fn charge(thumbnail: &Thumbnail) -> u64 {
    charged_bytes(thumbnail.bytes.len() as u64)
}

impl Fixture {
    fn begin_with(
        &mut self,
        who: Principal,
        data: &[u8],
        key: &str,
        thumbnail: Option<Thumbnail>,
    ) -> Result<UploadStarted, UploadError> {
        let len = data.len() as u64;
        let request = BeginUpload {
            capsule_id: self.capsule,
            asset: AssetMetadata {
                name: format!("{key}.jpg"),
                mime_type: "image/jpeg".into(),
                byte_len: len,
                sha256: None,
            },
            chunk_size: 1_000,
            expected_chunks: len.div_ceil(1_000) as u32,
            idempotency_key: key.into(),
        }
        .with_thumbnail(thumbnail);
        self.service.begin(who, 1, request)
    }

    /// Uploads and commits a small file as `who`, with `thumbnail`.
    fn commit_with(
        &mut self,
        who: Principal,
        key: &str,
        thumbnail: Option<Thumbnail>,
    ) -> MemoryItemId {
        let data = file(1_500, key.len() as u8);
        let sid = self
            .begin_with(who, &data, key, thumbnail)
            .unwrap()
            .session_id;
        for index in 0..2 {
            self.put_as(
                who,
                sid,
                index,
                &data[index as usize * 1_000..data.len().min((index as usize + 1) * 1_000)],
                2,
            )
            .unwrap();
        }
        let finished = self.service.finish(
            who,
            3,
            FinishUpload {
                session_id: sid,
                sha256: ByteBuf::from(Sha256::digest(&data).to_vec()),
                byte_len: data.len() as u64,
            },
        );
        finished.unwrap().memory_id
    }

    fn set_thumbnail(
        &mut self,
        who: Principal,
        memory: MemoryItemId,
        thumbnail: Option<Thumbnail>,
    ) -> Result<(), UploadError> {
        self.service.set_thumbnail(who, memory, thumbnail)
    }

    fn thumbnail(&self, memory: MemoryItemId) -> Option<Thumbnail> {
        self.service.memory(alice(), memory).unwrap().thumbnail
    }

    fn list(&self, after: Option<MemoryItemId>, limit: u32) -> MemoriesPage {
        let page = self.service.list_memories(
            alice(),
            ListMemories {
                capsule_id: self.capsule,
                after,
                limit,
            },
        );
        page.unwrap()
    }
}

#[test]
fn a_thumbnail_set_with_the_upload_is_the_memorys_when_it_commits() {
    let mut fx = Fixture::new();
    let thumbnail = jpeg(5_000, 1);
    let data = file(1_500, 4);
    let started = fx
        .begin_with(alice(), &data, "photo", Some(thumbnail.clone()))
        .unwrap();
    // Reserved with the upload, and not a memory's yet.
    let usage = fx.service.stats(alice()).caller;
    assert_eq!(
        (usage.reserved_bytes, usage.stored_bytes),
        (charged_bytes(1_500) + charge(&thumbnail), 0)
    );
    assert_eq!(
        fx.service.memory(alice(), started.provisional_memory_id),
        Err(UploadError::MemoryNotFound {
            memory_id: started.provisional_memory_id
        })
    );
    assert_eq!(
        fx.set_thumbnail(alice(), started.provisional_memory_id, None),
        Err(UploadError::MemoryNotFound {
            memory_id: started.provisional_memory_id
        })
    );
    // A retry with the same thumbnail is the same request; another
    // thumbnail, or none, is another request.
    assert_eq!(
        fx.begin_with(alice(), &data, "photo", Some(thumbnail.clone())),
        Ok(started.clone())
    );
    for other in [None, Some(jpeg(5_000, 2)), Some(webp(5_000, 1))] {
        assert_eq!(
            fx.begin_with(alice(), &data, "photo", other),
            Err(UploadError::IdempotencyConflict {
                session_id: started.session_id
            })
        );
    }
    fx.put_as(alice(), started.session_id, 0, &data[..1_000], 2)
        .unwrap();
    fx.put_as(alice(), started.session_id, 1, &data[1_000..], 2)
        .unwrap();
    fx.upgrade();
    let committed = fx.finish(started.session_id, &data, 3).unwrap();
    assert_eq!(committed.memory_id, started.provisional_memory_id);
    assert_eq!(fx.thumbnail(committed.memory_id), Some(thumbnail.clone()));
    assert_eq!(
        fx.list(None, 10).memories[0].thumbnail,
        Some(thumbnail.clone())
    );
    let usage = fx.service.stats(alice()).caller;
    assert_eq!(
        (usage.reserved_bytes, usage.stored_bytes),
        (0, charged_bytes(1_500) + charge(&thumbnail))
    );
    // Still the same session (and thumbnail) for a retry after the commit.
    assert_eq!(
        fx.begin_with(alice(), &data, "photo", Some(thumbnail))
            .unwrap()
            .session_id,
        started.session_id
    );
    assert_eq!(fx.service.thumbnails.len(), 1);
}

#[test]
fn a_thumbnail_is_set_after_the_upload_replaced_and_removed() {
    let mut fx = Fixture::new();
    let memory = fx.commit_with(alice(), "m", None);
    let file_charge = charged_bytes(1_500);
    assert_eq!(fx.thumbnail(memory), None);

    let first = jpeg(MAX_THUMBNAIL_BYTES, 1);
    fx.set_thumbnail(alice(), memory, Some(first.clone()))
        .unwrap();
    assert_eq!(fx.thumbnail(memory), Some(first.clone()));
    assert_eq!(
        fx.service.stats(alice()).caller.stored_bytes,
        file_charge + 32 * 1024
    );

    let second = webp(100, 2);
    fx.set_thumbnail(alice(), memory, Some(second.clone()))
        .unwrap();
    assert_eq!(fx.thumbnail(memory), Some(second.clone()));
    let stats = fx.service.stats(alice());
    assert_eq!(stats.caller.stored_bytes, file_charge + 4096);
    assert_eq!(stats.stored_bytes, file_charge + 4096);
    // The same again changes nothing.
    fx.set_thumbnail(alice(), memory, Some(second.clone()))
        .unwrap();
    assert_eq!(
        fx.service.stats(alice()).caller.stored_bytes,
        file_charge + 4096
    );

    fx.upgrade();
    assert_eq!(fx.thumbnail(memory), Some(second));
    fx.set_thumbnail(alice(), memory, None).unwrap();
    assert_eq!(fx.thumbnail(memory), None);
    assert_eq!(fx.service.stats(alice()).caller.stored_bytes, file_charge);
    // Removing what is not there is fine.
    fx.set_thumbnail(alice(), memory, None).unwrap();
    assert_eq!(fx.service.thumbnails.len(), 0);
}

#[test]
fn thumbnails_of_the_wrong_type_or_size_are_refused_and_change_nothing() {
    let mut fx = Fixture::new();
    let memory = fx.commit_with(alice(), "m", None);
    let kept = jpeg(200, 1);
    fx.set_thumbnail(alice(), memory, Some(kept.clone()))
        .unwrap();
    let stats = fx.service.stats(alice());
    let png = Thumbnail {
        mime_type: "image/png".into(),
        bytes: ByteBuf::from(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
    };
    let webp_as_jpeg = Thumbnail {
        mime_type: JPEG.into(),
        ..webp(100, 3)
    };
    let jpeg_as_webp = Thumbnail {
        mime_type: WEBP.into(),
        ..jpeg(100, 3)
    };
    let not_an_image = Thumbnail {
        mime_type: JPEG.into(),
        bytes: ByteBuf::from(b"<svg onload=alert(1)>".to_vec()),
    };
    let too_large = jpeg(MAX_THUMBNAIL_BYTES + 1, 4);
    let cases = [
        (png, "image/jpeg or image/webp"),
        (webp_as_jpeg, "not a JPEG"),
        (jpeg_as_webp, "not a WebP"),
        (not_an_image, "not a JPEG"),
        (too_large, "32769 bytes, more than the 32768"),
    ];
    for (thumbnail, reason) in cases {
        let Err(UploadError::InvalidArgument { reason: said }) =
            fx.set_thumbnail(alice(), memory, Some(thumbnail.clone()))
        else {
            panic!("{thumbnail:?} was not refused");
        };
        assert!(said.contains(reason), "{said}");
        let Err(UploadError::InvalidArgument { reason: said }) =
            fx.begin_with(alice(), &[1, 2, 3], "bad", Some(thumbnail))
        else {
            panic!("uploads_begin took a bad thumbnail");
        };
        assert!(said.contains(reason), "{said}");
    }
    assert_eq!(fx.thumbnail(memory), Some(kept));
    assert_eq!(fx.service.stats(alice()), stats);
    assert!(fx.service.open_uploads(alice(), 1).is_empty());
}

#[test]
fn only_the_uploader_and_the_capsule_owner_set_a_thumbnail() {
    let mut fx = Fixture::new();
    let capsule = fx.capsule;
    fx.service.grant_write(alice(), capsule, bob()).unwrap();
    fx.service.grant_write(alice(), capsule, carol()).unwrap();
    let alices = fx.commit_with(alice(), "a", None);
    let bobs = fx.commit_with(bob(), "b", None);
    let t = jpeg(100, 1);

    assert_eq!(
        fx.set_thumbnail(Principal::anonymous(), alices, Some(t.clone())),
        Err(UploadError::AnonymousCaller)
    );
    assert_eq!(
        fx.set_thumbnail(alice(), MemoryItemId(99), Some(t.clone())),
        Err(UploadError::MemoryNotFound {
            memory_id: MemoryItemId(99)
        })
    );
    // A writer manages only what it uploaded.
    assert_eq!(
        fx.set_thumbnail(bob(), alices, Some(t.clone())),
        Err(UploadError::NotAuthorized)
    );
    assert_eq!(
        fx.set_thumbnail(carol(), bobs, None),
        Err(UploadError::NotAuthorized)
    );
    // Outsiders not at all.
    let dave = Principal::from_slice(&[4; 29]);
    assert_eq!(
        fx.set_thumbnail(dave, alices, Some(t.clone())),
        Err(UploadError::NotAuthorized)
    );
    assert_eq!(fx.service.thumbnails.len(), 0);

    // The owner sets one on Bob's memory: charged to the owner.
    fx.set_thumbnail(alice(), bobs, Some(t.clone())).unwrap();
    assert_eq!(
        fx.service.stats(alice()).caller.stored_bytes,
        charged_bytes(1_500) + 4096
    );
    assert_eq!(
        fx.service.stats(bob()).caller.stored_bytes,
        charged_bytes(1_500)
    );
    // The uploader replaces it after its write access is revoked: the
    // owner's charge is released, Bob's taken.
    fx.service.revoke_write(alice(), capsule, bob()).unwrap();
    let bigger = webp(10_000, 2);
    fx.set_thumbnail(bob(), bobs, Some(bigger.clone())).unwrap();
    assert_eq!(fx.thumbnail(bobs), Some(bigger.clone()));
    assert_eq!(
        fx.service.stats(alice()).caller.stored_bytes,
        charged_bytes(1_500)
    );
    assert_eq!(
        fx.service.stats(bob()).caller.stored_bytes,
        charged_bytes(1_500) + charge(&bigger)
    );
    // Deleting the memory releases the thumbnail too.
    fx.service.delete_memory(bob(), bobs).unwrap();
    assert_eq!(
        fx.service.stats(bob()).caller,
        CallerUsage::default(),
        "nothing left charged to Bob"
    );
}

#[test]
fn thumbnails_count_in_the_quota_and_are_released_with_their_memory() {
    let mut fx = Fixture::new();
    let file_charge = charged_bytes(1_500);
    // Room for the file and 8 KiB more.
    let limits = Limits {
        max_stored_bytes_per_caller: file_charge + 8 * 1024,
        ..Limits::default()
    };
    fx.service.set_limits(true, limits.clone()).unwrap();
    let memory = fx.commit_with(alice(), "m", None);

    let big = jpeg(8 * 1024 + 1, 1);
    assert_eq!(
        fx.set_thumbnail(alice(), memory, Some(big.clone())),
        Err(UploadError::QuotaExceeded {
            quota: Quota::StoredBytesPerCaller,
            limit: limits.max_stored_bytes_per_caller,
            requested: file_charge + 12 * 1024,
        })
    );
    let fits = jpeg(8 * 1024, 2);
    fx.set_thumbnail(alice(), memory, Some(fits.clone()))
        .unwrap();
    // Replacing frees the old one first: a thumbnail as large fits again.
    fx.set_thumbnail(alice(), memory, Some(jpeg(8 * 1024, 3)))
        .unwrap();
    // An upload with a thumbnail reserves both: no room now.
    assert!(matches!(
        fx.begin_with(alice(), &[1; 10], "more", Some(jpeg(10, 4))),
        Err(UploadError::QuotaExceeded {
            quota: Quota::StoredBytesPerCaller,
            ..
        })
    ));

    // The total counts them too.
    fx.service
        .set_limits(
            true,
            Limits {
                max_total_bytes: file_charge + 8 * 1024,
                ..Limits::default()
            },
        )
        .unwrap();
    let owner_of_none = fx.commit_with_limits_lifted();
    assert_eq!(
        fx.set_thumbnail(alice(), owner_of_none, Some(jpeg(10, 5))),
        Err(UploadError::QuotaExceeded {
            quota: Quota::TotalBytes,
            limit: file_charge + 8 * 1024,
            requested: 2 * file_charge + 12 * 1024,
        })
    );

    fx.service.delete_memory(alice(), memory).unwrap();
    fx.service.delete_memory(alice(), owner_of_none).unwrap();
    let stats = fx.service.stats(alice());
    assert_eq!(
        (stats.caller, stats.stored_bytes, stats.reserved_bytes),
        (CallerUsage::default(), 0, 0)
    );
    assert_eq!(fx.service.thumbnails.len(), 0);
}

impl Fixture {
    /// Commits one more memory (no thumbnail) with the default limits,
    /// then puts the limits back.
    fn commit_with_limits_lifted(&mut self) -> MemoryItemId {
        let limits = self.service.stats(alice()).limits;
        self.service.set_limits(true, Limits::default()).unwrap();
        let memory = self.commit_with(alice(), "lifted", None);
        self.service.set_limits(true, limits).unwrap();
        memory
    }
}

#[test]
fn an_aborted_or_expired_upload_drops_its_thumbnail() {
    let mut fx = Fixture::new();
    let data = file(1_500, 1);
    let aborted = fx
        .begin_with(alice(), &data, "aborted", Some(jpeg(3_000, 1)))
        .unwrap();
    let expiring = fx
        .begin_with(alice(), &data, "expiring", Some(webp(6_000, 2)))
        .unwrap();
    assert_eq!(fx.service.thumbnails.len(), 2);
    fx.service.abort(alice(), 2, aborted.session_id).unwrap();
    assert_eq!(fx.service.thumbnails.len(), 1);
    fx.service.maintenance(expiring.expires_at);
    assert_eq!(fx.service.thumbnails.len(), 0);
    assert_eq!(fx.service.stats(alice()).caller, CallerUsage::default());
    // What they were begun with is kept while their records are (a retry
    // is still told apart), then forgotten with them.
    assert_eq!(
        fx.begin_with(alice(), &data, "aborted", None),
        Err(UploadError::IdempotencyConflict {
            session_id: aborted.session_id
        })
    );
    assert_eq!(fx.service.thumbnails.sessions_len(), 2);
    fx.service
        .maintenance(expiring.expires_at + 2 * 24 * 3_600 * 1_000_000_000);
    assert_eq!(fx.service.thumbnails.sessions_len(), 0);
}

/// 130 memories with 32 KiB thumbnails (4.2 MB of them) come back in pages
/// that each fit well under the reply limit, however many were asked for,
/// and that together are all 130, once each and in order.
#[test]
fn a_gallery_page_is_cut_by_its_size_and_the_pages_hold_every_memory() {
    let mut fx = Fixture::new();
    let mut ids = Vec::new();
    for i in 0..130u32 {
        let key = format!("photo-{i:03}");
        let memory = fx.commit_with(alice(), &key, None);
        let thumbnail = if i % 2 == 0 {
            jpeg(MAX_THUMBNAIL_BYTES, i as u8)
        } else {
            webp(MAX_THUMBNAIL_BYTES, i as u8)
        };
        fx.set_thumbnail(alice(), memory, Some(thumbnail)).unwrap();
        ids.push(memory);
    }
    for limit in [1_000, 130, 50] {
        let mut seen = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = fx.list(after, limit);
            pages += 1;
            let reply = candid::encode_one(Ok::<_, UploadError>(page.clone())).unwrap();
            assert!(
                reply.len() <= MAX_LIST_REPLY_BYTES && reply.len() < MAX_REPLY_BYTES,
                "a page of {} memories is {} bytes",
                page.memories.len(),
                reply.len()
            );
            assert!(!page.memories.is_empty() && page.memories.len() <= limit as usize);
            assert!(page
                .memories
                .iter()
                .all(|m| m.thumbnail.as_ref().map(|t| t.bytes.len()) == Some(MAX_THUMBNAIL_BYTES)));
            seen.extend(page.memories.iter().map(|m| m.memory_id));
            match page.next_after {
                Some(next) => {
                    assert_eq!(Some(next), page.memories.last().map(|m| m.memory_id));
                    after = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(seen, ids, "limit {limit}");
        // A page holds about 46 of them: three pages.
        assert_eq!(pages, 3, "limit {limit}");
    }
    // Without thumbnails one page holds them all.
    for memory in &ids {
        fx.set_thumbnail(alice(), *memory, None).unwrap();
    }
    let page = fx.list(None, 1_000);
    assert_eq!(
        (page.memories.len(), page.next_after),
        (130, None),
        "one page"
    );
    let page = fx.list(None, 100);
    assert_eq!(page.next_after, Some(ids[99]));
}

/// The size estimate a page is cut by is never below the real encoding,
/// even for records at every maximum.
#[test]
fn the_page_size_estimate_bounds_the_encoding() {
    let record = MemoryRecord {
        memory_id: MemoryItemId(u64::MAX),
        capsule_id: CapsuleId(u64::MAX),
        name: "n".repeat(1024),
        mime_type: "m".repeat(256),
        byte_len: u64::MAX,
        sha256: ByteBuf::from(vec![1; 32]),
        blob_id: BlobId(u64::MAX),
        uploaded_by: Principal::from_slice(&[9; 29]),
        created_at: u64::MAX,
        thumbnail: Some(jpeg(MAX_THUMBNAIL_BYTES, 1)),
    };
    for record in [
        record.clone(),
        MemoryRecord {
            thumbnail: None,
            name: String::new(),
            uploaded_by: Principal::anonymous(),
            ..record
        },
    ] {
        let empty = MemoriesPage {
            memories: vec![],
            next_after: None,
        };
        let one = MemoriesPage {
            memories: vec![record.clone()],
            next_after: Some(MemoryItemId(u64::MAX)),
        };
        let encoded = |page: MemoriesPage| {
            candid::encode_one(Ok::<_, UploadError>(page))
                .unwrap()
                .len()
        };
        assert!(encoded(empty) < 1024);
        assert!(
            encoded(one.clone())
                - encoded(MemoriesPage {
                    memories: vec![],
                    ..one
                })
                <= encoded_bytes_bound(&record)
        );
    }
}
