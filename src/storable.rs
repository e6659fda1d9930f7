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

/// Implements `Storable` for a newtype over a `u64` id (`struct Id(pub u64)`):
/// eight big-endian bytes, so ids sort in numeric order as keys.
#[macro_export]
macro_rules! u64_id_storable {
    ($t:ident) => {
        impl ic_stable_structures::Storable for $t {
            fn to_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
                std::borrow::Cow::Owned(self.0.to_be_bytes().to_vec())
            }

            fn into_bytes(self) -> Vec<u8> {
                self.0.to_be_bytes().to_vec()
            }

            fn from_bytes(bytes: std::borrow::Cow<[u8]>) -> Self {
                assert_eq!(bytes.len(), 8, "bug: a stored id is not 8 bytes");
                $t($crate::storable::read_u64(&bytes, 0))
            }

            const BOUND: ic_stable_structures::storable::Bound =
                ic_stable_structures::storable::Bound::Bounded {
                    max_size: 8,
                    is_fixed_size: true,
                };
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

/// Width of a principal-scoped key: length byte, principal padded to 29
/// bytes, then a big-endian id.
pub const SCOPED_KEY_BYTES: usize = 1 + 29 + 8;

/// `(principal, id)` as a fixed-width key: all ids of one principal sort
/// together and in order, so a range scan lists them.
pub fn scoped_key(principal: &candid::Principal, id: u64) -> [u8; SCOPED_KEY_BYTES] {
    let bytes = principal.as_slice();
    let mut key = [0u8; SCOPED_KEY_BYTES];
    key[0] = bytes.len() as u8;
    key[1..1 + bytes.len()].copy_from_slice(bytes);
    key[30..].copy_from_slice(&id.to_be_bytes());
    key
}

/// The id part of a `scoped_key`.
pub fn scoped_key_id(key: &[u8; SCOPED_KEY_BYTES]) -> u64 {
    read_u64(key, 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the stable layout of principal-scoped keys: changing it would
    /// orphan every stored index entry after an upgrade.
    #[test]
    fn scoped_key_layout_is_pinned() {
        let principal = candid::Principal::from_slice(&[0xAB, 0xCD]);
        let key = scoped_key(&principal, 0x0102_0304);
        let mut expected = [0u8; SCOPED_KEY_BYTES];
        expected[0] = 2;
        expected[1] = 0xAB;
        expected[2] = 0xCD;
        expected[34..].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(key, expected);
        assert_eq!(scoped_key_id(&key), 0x0102_0304);
        assert!(scoped_key(&principal, 1) < scoped_key(&principal, 2));
    }
}
