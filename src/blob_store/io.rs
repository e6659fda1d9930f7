//! Byte I/O: reading a blob's range and the `StableBlobSink` that writes a
//! chunk straight to its final place, both walking the blob's extents.

use super::placement::Run;
use super::*;

/// Calls `piece(address, at, len)` for each piece of the stream range
/// `[offset, offset + len)`: `len` bytes at memory `address` correspond to
/// `buf[at..at + len]` of a buffer that starts at `offset`. The range must lie
/// within the extents.
fn for_each_piece(
    extents: &[Extent],
    offset: u64,
    len: u64,
    mut piece: impl FnMut(u64, usize, usize),
) {
    let end = offset + len;
    let mut pos = offset;
    let mut extent_offset = 0u64;
    for extent in extents {
        if pos >= end {
            break;
        }
        let extent_end = extent_offset + extent.blocks * BLOB_BLOCK_BYTES;
        if pos < extent_end {
            let n = end.min(extent_end) - pos;
            let address = extent.start_block * BLOB_BLOCK_BYTES + (pos - extent_offset);
            piece(address, (pos - offset) as usize, n as usize);
            pos += n;
        }
        extent_offset = extent_end;
    }
    assert!(
        pos >= end,
        "bug: a blob's extents are shorter than its length"
    );
}

/// `Ok` if `[offset, offset + len)` lies within `byte_len`.
fn check_range(offset: u64, len: u64, byte_len: u64) -> Result<(), BlobStoreError> {
    match offset.checked_add(len) {
        Some(end) if end <= byte_len => Ok(()),
        _ => Err(BlobStoreError::OutOfBounds {
            offset,
            len,
            byte_len,
        }),
    }
}

impl<M: Memory + Clone> BlobStore<M> {
    /// Fills `buf` with the blob's bytes at `offset`, and returns the runs
    /// it read them in (pieces placed apart, each costing about
    /// [`READ_RUN_COST_BYTES`] beside its bytes).
    pub fn read(&self, id: BlobId, offset: u64, buf: &mut [u8]) -> Result<u64, BlobStoreError> {
        let record = self.record(id)?;
        check_range(offset, buf.len() as u64, record.byte_len)?;
        let layout = Layout {
            data: &self.data,
            placements: &self.placements,
            id,
            extents: &record.extents,
            placed: self.placements.tail(id).is_some(),
        };
        Ok(layout.read(offset, buf))
    }

    /// A sink that writes (and reads) the blob's bytes at stream offsets.
    /// It loads the extents once, so each chunk costs no table lookup.
    pub fn sink(&mut self, id: BlobId) -> Result<StableBlobSink<'_, M>, BlobStoreError> {
        let record = self.record(id)?;
        let placed = self.placements.tail(id).is_some();
        Ok(StableBlobSink {
            data: &self.data,
            placements: &mut self.placements,
            id,
            byte_len: record.byte_len,
            extents: record.extents,
            placed,
        })
    }
}

/// Writes one blob's bytes, addressed by their offsets in its stream.
pub struct StableBlobSink<'a, M: Memory> {
    data: &'a SparseData<M>,
    placements: &'a mut Placements<M>,
    id: BlobId,
    byte_len: u64,
    extents: Vec<Extent>,
    /// False for a blob laid out at its stream offsets (written before
    /// placement existed).
    placed: bool,
}

impl<M: Memory> StableBlobSink<'_, M> {
    /// The blob this sink writes.
    #[cfg(test)]
    pub fn id(&self) -> BlobId {
        self.id
    }

    /// The blob's declared length: the end of the writable range.
    #[cfg(test)]
    pub fn byte_len(&self) -> u64 {
        self.byte_len
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), SinkError> {
        check_range(offset, len as u64, self.byte_len).map_err(|_| SinkError::OutOfBounds {
            offset,
            len: len as u64,
            capacity: self.byte_len,
        })
    }

    fn layout(&self) -> Layout<'_, M> {
        Layout {
            data: self.data,
            placements: &*self.placements,
            id: self.id,
            extents: &self.extents,
            placed: self.placed,
        }
    }
}

/// What reading a blob needs: its extents, and its pieces if it is placed.
struct Layout<'a, M: Memory> {
    data: &'a SparseData<M>,
    placements: &'a Placements<M>,
    id: BlobId,
    extents: &'a [Extent],
    placed: bool,
}

impl<M: Memory> Layout<'_, M> {
    /// Fills `buf` with the bytes at stream `offset` (the range is checked
    /// by the caller); zeros where a placed blob has nothing yet. Returns
    /// the runs read.
    fn read(&self, offset: u64, buf: &mut [u8]) -> u64 {
        if !self.placed {
            read_extents(self.data, self.extents, offset, buf);
            return 1;
        }
        let runs = self.placements.runs(self.id, offset, buf.len() as u64);
        let count = runs.len() as u64;
        for run in runs {
            let part = &mut buf[run.at as usize..(run.at + run.len) as usize];
            match run.place {
                Some(place) => read_extents(self.data, self.extents, place, part),
                None => part.fill(0),
            }
        }
        count
    }
}

/// Fills `buf` with the bytes at `offset` of the space laid out in
/// `extents`.
fn read_extents<M: Memory>(data: &SparseData<M>, extents: &[Extent], offset: u64, buf: &mut [u8]) {
    for_each_piece(extents, offset, buf.len() as u64, |address, at, len| {
        data.read(address, &mut buf[at..at + len]);
    });
}

impl<M: Memory> ByteSink for StableBlobSink<'_, M> {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), SinkError> {
        self.check(offset, bytes.len())?;
        let len = bytes.len() as u64;
        // Where each part goes in the blob's space: its stream offset, or
        // its place (the tail read afresh, so sinks on one blob agree).
        let placed = self.placed.then(|| {
            let tail = self
                .placements
                .tail(self.id)
                .expect("bug: a placed blob lost its tail");
            self.placements.place(self.id, tail, offset, len)
        });
        let at_offset = [Run {
            place: Some(offset),
            at: 0,
            len,
        }];
        let runs: &[Run] = placed.as_ref().map_or(&at_offset, |write| &write.runs);
        let (mut highest, mut pieces) = (0, 0);
        for run in runs {
            let place = run.place.expect("bug: a write part has no place");
            for_each_piece(&self.extents, place, run.len, |address, _, n| {
                highest = highest.max(address + n as u64);
                pieces += 1;
            });
        }
        // Room for every piece first, so that a refusal changes nothing.
        self.data
            .room_for(highest, len, pieces)
            .map_err(|_| SinkError::OutOfSpace)?;
        let mut written = Ok(());
        for run in runs {
            let place = run.place.expect("bug: a write part has no place");
            let part = &bytes[run.at as usize..(run.at + run.len) as usize];
            for_each_piece(&self.extents, place, run.len, |address, at, n| {
                if written.is_ok() {
                    written = self.data.write(address, &part[at..at + n]);
                }
            });
        }
        written.map_err(|_| SinkError::OutOfSpace)?;
        if let Some(write) = placed {
            self.placements.record(self.id, &write);
        }
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SinkError> {
        self.check(offset, buf.len())?;
        self.layout().read(offset, buf);
        Ok(())
    }
}
