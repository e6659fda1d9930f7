//! Sparse stable memory with a rollback journal.
//!
//! Stable memory is stored as a map of 64 KiB wasm pages that exist only once
//! written (reads of absent pages yield zeros), so a canister that grows to
//! 20 GiB but writes 256 MiB costs 256 MiB of RAM. A transaction journal keeps
//! the previous contents of every page the first time it is modified, so a
//! trapping message (or a query) is rolled back in time proportional to what
//! it changed. Per message, the distinct 4 KiB pages dirtied and accessed are
//! tracked for the replica's dirty-page charge and per-message limits.

use std::collections::{HashMap, HashSet};

/// Wasm page size (64 KiB), the unit of `stable64_grow`/`stable64_size`.
pub const WASM_PAGE: u64 = 65536;
/// OS page size (4 KiB), the unit the replica charges and limits accesses in.
pub const OS_PAGE: u64 = 4096;

type Page = Box<[u8]>;

fn zero_page() -> Page {
    vec![0u8; WASM_PAGE as usize].into_boxed_slice()
}

/// Sparse stable memory of one canister.
#[derive(Default)]
pub struct StableMemory {
    pages: HashMap<u64, Page>,
    size_pages: u64,
    tx: Option<Journal>,
    msg_dirty: HashSet<u64>,
    msg_accessed: HashSet<u64>,
}

struct Journal {
    size_pages: u64,
    saved: HashMap<u64, Option<Page>>,
}

/// Out-of-bounds access (the caller turns it into a trap).
#[derive(Debug)]
pub struct OutOfBounds;

impl StableMemory {
    /// Current size in 64 KiB pages.
    pub fn size_pages(&self) -> u64 {
        self.size_pages
    }

    /// Bytes of RAM actually held by written pages.
    pub fn resident_bytes(&self) -> u64 {
        self.pages.len() as u64 * WASM_PAGE
    }

    /// Starts a transaction (one message, or an upgrade spanning several).
    pub fn begin_tx(&mut self) {
        self.tx = Some(Journal {
            size_pages: self.size_pages,
            saved: HashMap::new(),
        });
        self.start_message();
    }

    /// Resets the per-message dirty/accessed page sets.
    pub fn start_message(&mut self) {
        self.msg_dirty.clear();
        self.msg_accessed.clear();
    }

    /// Keeps all changes since `begin_tx`.
    pub fn commit_tx(&mut self) {
        self.tx = None;
    }

    /// Undoes all changes since `begin_tx`.
    pub fn rollback_tx(&mut self) {
        if let Some(j) = self.tx.take() {
            for (idx, old) in j.saved {
                match old {
                    Some(p) => {
                        self.pages.insert(idx, p);
                    }
                    None => {
                        self.pages.remove(&idx);
                    }
                }
            }
            self.size_pages = j.size_pages;
        }
    }

    /// Wipes the memory (reinstall); journaled like any change.
    pub fn clear(&mut self) {
        let idxs: Vec<u64> = self.pages.keys().copied().collect();
        for idx in idxs {
            let old = self.pages.remove(&idx);
            if let Some(j) = &mut self.tx {
                j.saved.entry(idx).or_insert(old);
            }
        }
        self.size_pages = 0;
    }

    /// Grows by `new_pages`; returns the old size or -1 if `max_pages` would be exceeded.
    pub fn grow(&mut self, new_pages: u64, max_pages: u64) -> i64 {
        let old = self.size_pages;
        match old.checked_add(new_pages) {
            Some(n) if n <= max_pages => {
                self.size_pages = n;
                old as i64
            }
            _ => -1,
        }
    }

    /// Whether `[offset, offset + len)` lies within the current size (no overflow).
    pub fn in_bounds(&self, offset: u64, len: u64) -> bool {
        offset
            .checked_add(len)
            .is_some_and(|end| end <= self.size_pages.saturating_mul(WASM_PAGE))
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), OutOfBounds> {
        if self.in_bounds(offset, len) {
            Ok(())
        } else {
            Err(OutOfBounds)
        }
    }

    fn touch(&mut self, offset: u64, len: u64, write: bool) -> u64 {
        if len == 0 {
            return 0;
        }
        let mut new_dirty = 0;
        for p in offset / OS_PAGE..=(offset + len - 1) / OS_PAGE {
            self.msg_accessed.insert(p);
            if write && self.msg_dirty.insert(p) {
                new_dirty += 1;
            }
        }
        new_dirty
    }

    /// Distinct 4 KiB pages dirtied in the current message.
    pub fn msg_dirty_pages(&self) -> u64 {
        self.msg_dirty.len() as u64
    }

    /// Distinct 4 KiB pages read or written in the current message.
    pub fn msg_accessed_pages(&self) -> u64 {
        self.msg_accessed.len() as u64
    }

    /// Reads `dst.len()` bytes at `offset`.
    pub fn read(&mut self, offset: u64, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        self.check(offset, dst.len() as u64)?;
        self.touch(offset, dst.len() as u64, false);
        self.read_untracked(offset, dst);
        Ok(())
    }

    /// Reads without touching the per-message access sets (host inspection).
    pub fn read_untracked(&self, offset: u64, dst: &mut [u8]) {
        for (idx, in_page, done, n) in page_pieces(offset, dst.len()) {
            match self.pages.get(&idx) {
                Some(p) => dst[done..done + n].copy_from_slice(&p[in_page..in_page + n]),
                None => dst[done..done + n].fill(0),
            }
        }
    }

    /// The written 64 KiB pages, by index (for a snapshot on disk).
    pub fn written_pages(&self) -> Vec<(u64, &[u8])> {
        let mut out: Vec<(u64, &[u8])> = self.pages.iter().map(|(i, p)| (*i, &p[..])).collect();
        out.sort_unstable_by_key(|(i, _)| *i);
        out
    }

    /// Stable memory of `size_pages` holding `pages` (a snapshot read back).
    pub fn from_pages(size_pages: u64, pages: impl IntoIterator<Item = (u64, Vec<u8>)>) -> Self {
        let mut m = StableMemory {
            size_pages,
            ..StableMemory::default()
        };
        for (idx, bytes) in pages {
            let mut page = zero_page();
            let n = bytes.len().min(WASM_PAGE as usize);
            page[..n].copy_from_slice(&bytes[..n]);
            m.pages.insert(idx, page);
        }
        m
    }

    /// Feeds size and contents to `state` (absent pages as zeros).
    pub fn hash_contents(&self, state: &mut impl std::hash::Hasher) {
        state.write_u64(self.size_pages);
        let mut written: Vec<_> = self.pages.iter().collect();
        written.sort_unstable_by_key(|(idx, _)| **idx);
        for (idx, page) in written {
            if page.iter().any(|b| *b != 0) {
                state.write_u64(*idx);
                state.write(page);
            }
        }
    }

    /// Writes `src` at `offset`; returns how many 4 KiB pages were dirtied
    /// for the first time in this message.
    pub fn write(&mut self, offset: u64, src: &[u8]) -> Result<u64, OutOfBounds> {
        self.check(offset, src.len() as u64)?;
        let new_dirty = self.touch(offset, src.len() as u64, true);
        for (idx, in_page, done, n) in page_pieces(offset, src.len()) {
            if let Some(j) = &mut self.tx {
                let pages = &self.pages;
                j.saved
                    .entry(idx)
                    .or_insert_with(|| pages.get(&idx).cloned());
            }
            let page = self.pages.entry(idx).or_insert_with(zero_page);
            page[in_page..in_page + n].copy_from_slice(&src[done..done + n]);
        }
        Ok(new_dirty)
    }
}

/// The pieces of `[offset, offset + len)` that each lie in one wasm page:
/// (page index, offset in the page, offset in the buffer, length).
fn page_pieces(offset: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize, usize)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        (done < len).then(|| {
            let pos = offset + done as u64;
            let in_page = (pos % WASM_PAGE) as usize;
            let n = (WASM_PAGE as usize - in_page).min(len - done);
            let piece = (pos / WASM_PAGE, in_page, done, n);
            done += n;
            piece
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_rollback() {
        let mut m = StableMemory::default();
        m.begin_tx();
        assert_eq!(m.grow(320_000, u64::MAX), 0); // ~20 GiB
        m.write(19 * (1 << 30), &[1, 2, 3]).unwrap();
        m.commit_tx();
        assert_eq!(m.resident_bytes(), WASM_PAGE);
        m.begin_tx();
        m.write(19 * (1 << 30) + 1, &[9]).unwrap();
        m.write(5, &[7; 10]).unwrap();
        assert_eq!(m.grow(1, u64::MAX), 320_000);
        m.rollback_tx();
        let mut b = [0u8; 3];
        m.read_untracked(19 * (1 << 30), &mut b);
        assert_eq!(b, [1, 2, 3]);
        m.read_untracked(5, &mut b);
        assert_eq!(b, [0, 0, 0]);
        assert_eq!(m.size_pages(), 320_000);
        assert!(m.read(320_000 * WASM_PAGE - 1, &mut [0u8; 2]).is_err());
    }
}
