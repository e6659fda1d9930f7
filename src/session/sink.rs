//! Where the bytes of a chunk go.
//!
//! The session service validates a chunk and records its arrival; a
//! `ByteSink` owns the bytes. Offsets are positions in the whole stream
//! (`index * chunk_size`), so a sink can put each chunk in its final place
//! whatever order chunks arrive in.

/// Why a sink refused an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkError {
    /// The range `[offset, offset + len)` lies outside the sink's space.
    OutOfBounds {
        offset: u64,
        len: u64,
        capacity: u64,
    },
    /// The sink's storage no longer exists (e.g. freed after an abort).
    Gone,
    /// The storage cannot grow to hold the bytes.
    OutOfSpace,
}

/// A destination for chunk bytes at absolute stream offsets.
pub trait ByteSink {
    /// Writes `bytes` at `offset`, replacing whatever was there.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), SinkError>;

    /// Fills `buf` with the bytes stored at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SinkError>;
}
