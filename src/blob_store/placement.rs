//! Where a blob's written bytes sit in its own space.
//!
//! Written at their stream offsets, chunks sent far apart would each leave
//! a partly written 4 KiB block at both ends, and each such block takes a
//! whole block of stable memory (`block_map`): with small chunks, many
//! times the bytes sent. Instead each new piece of a blob is placed where
//! the previous one ended, in the order pieces arrive, and a map records
//! where. The blob's space fills from its start whatever the order of the
//! chunks, so only its last block is ever partly written. Sent in order,
//! every piece lands at its own offset and extends the one before: the
//! map holds one entry per run of chunks that arrived in order.
//!
//! A blob laid out before this has no tail entry: its bytes stay at their
//! stream offsets.

use super::*;

/// Key of a blob's tail entry (placed bytes), after every stream offset.
const TAIL: u64 = u64::MAX;

/// The pieces of each blob, and the blobs whose pieces are left to forget.
pub(super) struct Placements<M: Memory> {
    /// `(blob, stream offset) -> (place, len)`, and `(blob, TAIL) ->
    /// (bytes placed, 0)`.
    pieces: StableBTreeMap<(u64, u64), (u64, u64), Vm<M>>,
    /// Freed blobs whose pieces are removed in bounded steps.
    forgotten: StableBTreeMap<u64, (), Vm<M>>,
}

/// Part of a stream range: `len` bytes at index `at` of the range, at
/// `place` in the blob's space (`None`: nothing written there yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Run {
    pub(super) place: Option<u64>,
    pub(super) at: u64,
    pub(super) len: u64,
}

/// Where a write goes: its runs, all placed, and what placing the new ones
/// records.
pub(super) struct PlacedWrite {
    pub(super) runs: Vec<Run>,
    new_pieces: Vec<(u64, u64, u64)>,
    tail: u64,
}

impl<M: Memory + Clone> Placements<M> {
    pub(super) fn init(pieces: Vm<M>, forgotten: Vm<M>) -> Self {
        Self {
            pieces: StableBTreeMap::init(pieces),
            forgotten: StableBTreeMap::init(forgotten),
        }
    }
}

impl<M: Memory> Placements<M> {
    /// Lays out a new blob by placement.
    pub(super) fn start(&mut self, blob: BlobId) {
        self.pieces.insert((blob.0, TAIL), (0, 0));
    }

    /// Bytes placed so far, or `None` for a blob laid out at its stream
    /// offsets.
    pub(super) fn tail(&self, blob: BlobId) -> Option<u64> {
        self.pieces.get(&(blob.0, TAIL)).map(|(placed, _)| placed)
    }

    /// The runs of `[offset, offset + len)` of a placed blob, in order.
    pub(super) fn runs(&self, blob: BlobId, offset: u64, len: u64) -> Vec<Run> {
        let end = offset + len;
        let mut runs = Vec::new();
        let mut pos = offset;
        let mut take = |key: u64, place: u64, piece_len: u64, runs: &mut Vec<Run>| {
            let (start, stop) = (key.max(pos), (key + piece_len).min(end));
            if start >= stop {
                return;
            }
            if start > pos {
                runs.push(Run {
                    place: None,
                    at: pos - offset,
                    len: start - pos,
                });
            }
            runs.push(Run {
                place: Some(place + (start - key)),
                at: start - offset,
                len: stop - start,
            });
            pos = stop;
        };
        // The piece that starts at or before `offset`, then those inside.
        if let Some(entry) = self
            .pieces
            .range((blob.0, 0)..=(blob.0, offset))
            .next_back()
        {
            let ((_, key), (place, piece_len)) = entry.into_pair();
            take(key, place, piece_len, &mut runs);
        }
        if offset + 1 < end {
            for entry in self.pieces.range((blob.0, offset + 1)..(blob.0, end)) {
                let ((_, key), (place, piece_len)) = entry.into_pair();
                take(key, place, piece_len, &mut runs);
            }
        }
        if pos < end {
            runs.push(Run {
                place: None,
                at: pos - offset,
                len: end - pos,
            });
        }
        runs
    }

    /// Where writing `[offset, offset + len)` of a placed blob goes: bytes
    /// already placed are written over where they are, the rest is placed
    /// at the tail. Nothing is recorded until [`Self::record`].
    pub(super) fn place(&self, blob: BlobId, tail: u64, offset: u64, len: u64) -> PlacedWrite {
        let mut runs = self.runs(blob, offset, len);
        let mut new_pieces = Vec::new();
        let mut tail = tail;
        for run in runs.iter_mut().filter(|run| run.place.is_none()) {
            run.place = Some(tail);
            new_pieces.push((offset + run.at, tail, run.len));
            tail += run.len;
        }
        PlacedWrite {
            runs,
            new_pieces,
            tail,
        }
    }

    /// Records the pieces a write placed.
    pub(super) fn record(&mut self, blob: BlobId, write: &PlacedWrite) {
        if write.new_pieces.is_empty() {
            return;
        }
        for &(key, place, len) in &write.new_pieces {
            // A piece that follows its predecessor both in the stream and
            // in the space extends it: a file sent in order is one piece.
            let before = self
                .pieces
                .range((blob.0, 0)..(blob.0, key))
                .next_back()
                .map(|entry| entry.into_pair());
            match before {
                Some(((_, start), (at, n))) if start + n == key && at + n == place => {
                    self.pieces.insert((blob.0, start), (at, n + len));
                }
                _ => {
                    self.pieces.insert((blob.0, key), (place, len));
                }
            }
        }
        self.pieces.insert((blob.0, TAIL), (write.tail, 0));
    }

    /// Queues a freed blob's pieces for removal (ids are never reused, so
    /// nothing reads them meanwhile); a blob with none is forgotten now.
    pub(super) fn forget(&mut self, blob: BlobId) {
        match self.tail(blob) {
            // Nothing placed: the tail entry is all there is.
            Some(0) => {
                self.pieces.remove(&(blob.0, TAIL));
            }
            Some(_) => {
                self.forgotten.insert(blob.0, ());
            }
            None => {}
        }
    }

    /// Removes at most `limit` pieces of forgotten blobs; true while some
    /// are left.
    pub(super) fn purge(&mut self, limit: usize) -> bool {
        let mut left = limit;
        while let Some((blob, ())) = self.forgotten.first_key_value() {
            if left == 0 {
                return true;
            }
            let of_blob = (blob, 0)..=(blob, TAIL);
            let keys: Vec<(u64, u64)> =
                self.pieces.keys_range(of_blob.clone()).take(left).collect();
            for key in &keys {
                self.pieces.remove(key);
            }
            left -= keys.len();
            if left == 0 && self.pieces.keys_range(of_blob).next().is_some() {
                return true;
            }
            self.forgotten.remove(&blob);
        }
        false
    }

    /// Makes `blob` one laid out at its stream offsets, as blobs written
    /// before placement are.
    #[cfg(test)]
    pub(super) fn lay_out_at_offsets(&mut self, blob: BlobId) {
        self.pieces.remove(&(blob.0, TAIL));
    }

    /// A placed blob's pieces as `(stream offset, place, len)`, by offset
    /// (for tests and the fuzzer).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn pieces_of(&self, blob: BlobId) -> Vec<(u64, u64, u64)> {
        self.pieces
            .range((blob.0, 0)..(blob.0, TAIL))
            .map(|entry| {
                let ((_, offset), (place, len)) = entry.into_pair();
                (offset, place, len)
            })
            .collect()
    }

    /// Blobs with entries, and whether each is queued to be forgotten (for
    /// tests and the fuzzer).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn blobs_with_entries(&self) -> Vec<(u64, bool)> {
        let mut blobs: Vec<u64> = self.pieces.keys().map(|(blob, _)| blob).collect();
        blobs.dedup();
        blobs
            .into_iter()
            .map(|blob| (blob, self.forgotten.contains_key(&blob)))
            .collect()
    }
}
