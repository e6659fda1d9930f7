//! SHA-256 of a file hashed once, in file order, across many messages.
//!
//! The state between messages is the SHA-256 midstate (eight words), the
//! bytes of an unfinished 64-byte block and the count absorbed: small and
//! fixed-size, so it lives in stable memory and survives upgrades.
//! `sha2::compress256` advances the midstate block by block.

use ic_stable_structures::storable::Bound;
use ic_stable_structures::Storable;
use sha2::digest::generic_array::GenericArray;
use std::borrow::Cow;

/// SHA-256 absorbs its input in blocks of this many bytes.
const SHA256_BLOCK_BYTES: usize = 64;
const INITIAL_STATE: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// A SHA-256 computation paused between messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sha256Midstate {
    state: [u32; 8],
    tail: [u8; SHA256_BLOCK_BYTES],
    tail_len: u8,
    absorbed: u64,
}

impl Default for Sha256Midstate {
    fn default() -> Self {
        Self {
            state: INITIAL_STATE,
            tail: [0; SHA256_BLOCK_BYTES],
            tail_len: 0,
            absorbed: 0,
        }
    }
}

impl Sha256Midstate {
    /// Bytes absorbed so far.
    pub fn absorbed(&self) -> u64 {
        self.absorbed
    }

    /// Feeds the next bytes of the stream.
    pub fn absorb(&mut self, mut data: &[u8]) {
        self.absorbed += data.len() as u64;
        if self.tail_len > 0 {
            let have = usize::from(self.tail_len);
            let take = (SHA256_BLOCK_BYTES - have).min(data.len());
            self.tail[have..have + take].copy_from_slice(&data[..take]);
            self.tail_len += take as u8;
            data = &data[take..];
            if usize::from(self.tail_len) < SHA256_BLOCK_BYTES {
                return;
            }
            let block = self.tail;
            self.compress(&block);
            self.tail_len = 0;
        }
        let mut blocks = data.chunks_exact(SHA256_BLOCK_BYTES);
        for block in &mut blocks {
            self.compress(block);
        }
        let rest = blocks.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len() as u8;
    }

    /// The digest of everything absorbed (the midstate itself is kept).
    pub fn finalize(&self) -> [u8; 32] {
        let mut copy = self.clone();
        let bit_len = self.absorbed.wrapping_mul(8);
        let mut padding = [0u8; 2 * SHA256_BLOCK_BYTES];
        padding[0] = 0x80;
        let tail = usize::from(self.tail_len);
        let pad_len = if tail < 56 { 56 - tail } else { 120 - tail };
        padding[pad_len..pad_len + 8].copy_from_slice(&bit_len.to_be_bytes());
        copy.absorb(&padding[..pad_len + 8]);
        debug_assert_eq!(copy.tail_len, 0);
        let mut digest = [0u8; 32];
        for (out, word) in digest.chunks_exact_mut(4).zip(copy.state) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }

    fn compress(&mut self, block: &[u8]) {
        sha2::compress256(
            &mut self.state,
            core::slice::from_ref(GenericArray::from_slice(block)),
        );
    }
}

const ENCODED_LEN: usize = 32 + SHA256_BLOCK_BYTES + 1 + 8;

impl Storable for Sha256Midstate {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_LEN);
        for word in self.state {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&self.tail);
        out.push(self.tail_len);
        out.extend_from_slice(&self.absorbed.to_be_bytes());
        out
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut state = [0u32; 8];
        for (i, word) in state.iter_mut().enumerate() {
            *word = crate::storable::read_u32(&bytes, i * 4);
        }
        let mut tail = [0u8; SHA256_BLOCK_BYTES];
        tail.copy_from_slice(&bytes[32..32 + SHA256_BLOCK_BYTES]);
        Self {
            state,
            tail,
            tail_len: bytes[32 + SHA256_BLOCK_BYTES],
            absorbed: crate::storable::read_u64(&bytes, 33 + SHA256_BLOCK_BYTES),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: ENCODED_LEN as u32,
        is_fixed_size: true,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    /// Pins the stored midstate: the eight state words, the 64-byte tail,
    /// its length, and the bytes absorbed (big-endian). After "abc" the
    /// state is still SHA-256's initial one. Changing the layout would
    /// corrupt the hash of every upload open across an upgrade.
    #[test]
    fn stored_midstate_layout_is_pinned() {
        let mut midstate = Sha256Midstate::default();
        midstate.absorb(b"abc");
        let golden = format!(
            "{}{}{}{}{}",
            "6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19",
            "616263",
            "00".repeat(61),
            "03",
            "0000000000000003",
        );
        let encoded: String = midstate
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(encoded, golden);
        let stored: Vec<u8> = (0..golden.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&golden[i..i + 2], 16).unwrap())
            .collect();
        let decoded = Sha256Midstate::from_bytes(Cow::Owned(stored));
        assert_eq!(decoded.finalize()[..], Sha256::digest(b"abc")[..]);
    }

    #[test]
    fn empty_input_has_the_known_digest() {
        assert_eq!(
            Sha256Midstate::default().finalize(),
            <[u8; 32]>::from(Sha256::digest(b""))
        );
    }

    proptest! {
        /// Any split of any input, with the state stored and reloaded
        /// between pieces, gives the one-shot digest.
        #[test]
        fn split_and_stored_hashing_matches_one_shot(
            data in proptest::collection::vec(any::<u8>(), 0..700),
            cuts in proptest::collection::vec(0usize..700, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.push(0);
            cuts.push(data.len());
            cuts.sort();
            let mut midstate = Sha256Midstate::default();
            for pair in cuts.windows(2) {
                midstate.absorb(&data[pair[0]..pair[1]]);
                midstate = Sha256Midstate::from_bytes(Cow::Owned(midstate.to_bytes().into_owned()));
            }
            prop_assert_eq!(midstate.absorbed(), data.len() as u64);
            prop_assert_eq!(midstate.finalize(), <[u8; 32]>::from(Sha256::digest(&data)));
        }
    }
}
