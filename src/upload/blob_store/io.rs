//! Byte I/O: reading a blob's range and the `StableBlobSink` that writes a
//! chunk straight to its final place, both walking the blob's extents.

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
    /// Fills `buf` with the blob's bytes at `offset`.
    pub fn read(&self, id: BlobId, offset: u64, buf: &mut [u8]) -> Result<(), BlobStoreError> {
        let record = self.record(id)?;
        check_range(offset, buf.len() as u64, record.byte_len)?;
        read_extents(&self.data, &record.extents, offset, buf);
        Ok(())
    }

    /// A sink that writes (and reads) the blob's bytes at stream offsets.
    /// It loads the extents once, so each chunk costs no table lookup, and
    /// borrows the store immutably.
    pub fn sink(&self, id: BlobId) -> Result<StableBlobSink<'_, M>, BlobStoreError> {
        let record = self.record(id)?;
        Ok(StableBlobSink {
            data: &self.data,
            id,
            byte_len: record.byte_len,
            extents: record.extents,
        })
    }
}

/// Writes one blob's bytes in place, at offsets of its stream.
pub struct StableBlobSink<'a, M: Memory> {
    data: &'a SparseData<M>,
    id: BlobId,
    byte_len: u64,
    extents: Vec<Extent>,
}

impl<M: Memory> StableBlobSink<'_, M> {
    /// The blob this sink writes.
    pub fn id(&self) -> BlobId {
        self.id
    }

    /// The blob's declared length: the end of the writable range.
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
}

/// Fills `buf` with the bytes at stream `offset` of a blob laid out in
/// `extents` (the range is checked by the caller).
fn read_extents<M: Memory>(data: &SparseData<M>, extents: &[Extent], offset: u64, buf: &mut [u8]) {
    for_each_piece(extents, offset, buf.len() as u64, |address, at, len| {
        data.read(address, &mut buf[at..at + len]);
    });
}

impl<M: Memory> ByteSink for StableBlobSink<'_, M> {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), SinkError> {
        self.check(offset, bytes.len())?;
        let (mut highest, mut pieces) = (0, 0);
        for_each_piece(
            &self.extents,
            offset,
            bytes.len() as u64,
            |address, _, len| {
                highest = highest.max(address + len as u64);
                pieces += 1;
            },
        );
        // Room for every piece first, so that a refusal changes nothing.
        self.data
            .room_for(highest, bytes.len() as u64, pieces)
            .map_err(|_| SinkError::OutOfSpace)?;
        let mut written = Ok(());
        for_each_piece(
            &self.extents,
            offset,
            bytes.len() as u64,
            |address, at, len| {
                if written.is_ok() {
                    written = self.data.write(address, &bytes[at..at + len]);
                }
            },
        );
        written.map_err(|_| SinkError::OutOfSpace)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SinkError> {
        self.check(offset, buf.len())?;
        read_extents(self.data, &self.extents, offset, buf);
        Ok(())
    }
}
