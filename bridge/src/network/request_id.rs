//! Request ids: the representation-independent hash of a request's content
//! map (IC interface specification, "Request ids").
//!
//! Each field hashes to `H(key) · H(value)`; the pairs are sorted and their
//! concatenation hashed. Values hash by their type: blobs and texts as their
//! bytes, naturals as their unsigned LEB128, arrays as the concatenation of
//! their elements' hashes, maps recursively like the content map itself.

use serde_cbor::Value;
use sha2::{Digest, Sha256};

pub type RequestId = [u8; 32];

/// Why a value has no representation-independent hash.
#[derive(Debug, PartialEq, Eq)]
pub struct Unhashable(pub String);

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The hash of one value.
pub fn hash_value(value: &Value) -> Result<[u8; 32], Unhashable> {
    match value {
        Value::Bytes(b) => Ok(sha256(b)),
        Value::Text(t) => Ok(sha256(t.as_bytes())),
        Value::Integer(n) => {
            let mut out = Vec::new();
            if *n >= 0 {
                let n = u64::try_from(*n).map_err(|_| Unhashable("integer too large".into()))?;
                leb128::write::unsigned(&mut out, n).expect("writing to a Vec");
            } else {
                let n = i64::try_from(*n).map_err(|_| Unhashable("integer too small".into()))?;
                leb128::write::signed(&mut out, n).expect("writing to a Vec");
            }
            Ok(sha256(&out))
        }
        Value::Array(items) => {
            let mut all = Vec::with_capacity(32 * items.len());
            for item in items {
                all.extend_from_slice(&hash_value(item)?);
            }
            Ok(sha256(&all))
        }
        Value::Map(map) => hash_map(map.iter()),
        Value::Tag(_, inner) => hash_value(inner),
        other => Err(Unhashable(format!("a value of kind {other:?}"))),
    }
}

/// The hash of a map (the request id, for a request's content).
pub fn hash_map<'a>(
    fields: impl Iterator<Item = (&'a Value, &'a Value)>,
) -> Result<[u8; 32], Unhashable> {
    let mut pairs = Vec::new();
    for (key, value) in fields {
        let Value::Text(key) = key else {
            return Err(Unhashable("a map key that is not text".into()));
        };
        let mut pair = Vec::with_capacity(64);
        pair.extend_from_slice(&sha256(key.as_bytes()));
        pair.extend_from_slice(&hash_value(value)?);
        pairs.push(pair);
    }
    pairs.sort();
    Ok(sha256(&pairs.concat()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    /// The example of the IC interface specification ("Request ids"): a
    /// `call` to `hello` on canister `00000000000004D2` with argument
    /// `DIDL\0\xFD*`, sender anonymous, expiry 1685570400000000000.
    #[test]
    fn the_specifications_example() {
        let mut m = BTreeMap::new();
        m.insert(text("request_type"), text("call"));
        m.insert(text("sender"), Value::Bytes(vec![0x04]));
        m.insert(
            text("ingress_expiry"),
            Value::Integer(1_685_570_400_000_000_000),
        );
        m.insert(
            text("canister_id"),
            Value::Bytes(vec![0, 0, 0, 0, 0, 0, 0x04, 0xD2]),
        );
        m.insert(text("method_name"), text("hello"));
        m.insert(text("arg"), Value::Bytes(b"DIDL\x00\xFD*".to_vec()));
        let id = hash_map(m.iter()).unwrap();
        assert_eq!(
            hex(&id),
            "1d1091364d6bb8a6c16b203ee75467d59ead468f523eb058880ae8ec80e2b101"
        );
    }

    #[test]
    fn arrays_hash_their_elements_hashes() {
        let paths = Value::Array(vec![Value::Array(vec![Value::Bytes(b"time".to_vec())])]);
        let inner = sha256(&sha256(b"time"));
        assert_eq!(hash_value(&paths).unwrap(), sha256(&inner));
    }

    #[test]
    fn floats_have_no_hash() {
        assert!(hash_value(&Value::Float(1.0)).is_err());
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
