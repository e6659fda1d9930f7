//! Helpers to store records in stable structures.
//!
//! Records (values) are Candid-encoded: Candid tolerates added optional
//! fields, so a record type can grow across upgrades. Keys that must sort are
//! fixed-width big-endian byte arrays built by hand, never Candid.

/// Implements `Storable` for a Candid type as an unbounded value.
#[macro_export]
macro_rules! candid_storable {
    ($t:ty) => {
        impl ic_stable_structures::Storable for $t {
            fn to_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
                std::borrow::Cow::Owned(self.clone().into_bytes())
            }

            fn into_bytes(self) -> Vec<u8> {
                candid::encode_one(&self).expect("bug: a stored record failed to encode")
            }

            fn from_bytes(bytes: std::borrow::Cow<[u8]>) -> Self {
                candid::decode_one(&bytes).expect("bug: a stored record failed to decode")
            }

            const BOUND: ic_stable_structures::storable::Bound =
                ic_stable_structures::storable::Bound::Unbounded;
        }
    };
}

/// Big-endian `u64` at `bytes[at..at + 8]`.
pub fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(word)
}

/// Big-endian `u32` at `bytes[at..at + 4]`.
pub fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(word)
}
