//! Ingress envelopes: the CBOR `{content, sender_pubkey, sender_sig,
//! sender_delegation}` a client posts, decoded into what the network acts
//! on, with the request id computed from the content as sent.

use super::request_id::{hash_map, RequestId};
use candid::Principal;
use serde_cbor::Value;
use std::collections::BTreeMap;

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Call(CanisterCall),
    Query(CanisterCall),
    ReadState { paths: Vec<Vec<Vec<u8>>> },
}

/// The fields of a `call` or a `query`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanisterCall {
    pub canister_id: Principal,
    pub method_name: String,
    pub arg: Vec<u8>,
}

/// One link of a delegation chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedDelegation {
    pub pubkey: Vec<u8>,
    pub expiration: u64,
    pub targets: Option<Vec<Principal>>,
    /// The hash the signer signed (of the delegation map as sent).
    pub hash: [u8; 32],
    pub signature: Vec<u8>,
}

/// A decoded request.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub content: Content,
    pub sender: Principal,
    pub ingress_expiry: u64,
    pub request_id: RequestId,
    pub sender_pubkey: Option<Vec<u8>>,
    pub sender_sig: Option<Vec<u8>>,
    pub delegations: Vec<SignedDelegation>,
}

impl Envelope {
    pub fn request_type(&self) -> &'static str {
        match self.content {
            Content::Call(_) => "call",
            Content::Query(_) => "query",
            Content::ReadState { .. } => "read_state",
        }
    }
}

/// A malformed envelope: HTTP 400 with this text.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

fn malformed(message: impl Into<String>) -> Malformed {
    Malformed(message.into())
}

fn untag(value: Value) -> Value {
    match value {
        Value::Tag(_, inner) => untag(*inner),
        other => other,
    }
}

type Map = BTreeMap<Value, Value>;

fn as_map(value: Value, what: &str) -> Result<Map, Malformed> {
    match untag(value) {
        Value::Map(m) => Ok(m),
        _ => Err(malformed(format!("{what} is not a CBOR map"))),
    }
}

fn field(map: &Map, name: &str) -> Option<Value> {
    map.get(&Value::Text(name.into())).cloned().map(untag)
}

fn bytes(map: &Map, name: &str) -> Result<Option<Vec<u8>>, Malformed> {
    match field(map, name) {
        None => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(b)),
        Some(_) => Err(malformed(format!("field `{name}` is not a blob"))),
    }
}

fn required_bytes(map: &Map, name: &str) -> Result<Vec<u8>, Malformed> {
    bytes(map, name)?.ok_or_else(|| malformed(format!("missing field `{name}`")))
}

fn nat(map: &Map, name: &str) -> Result<u64, Malformed> {
    match field(map, name) {
        Some(Value::Integer(n)) => {
            u64::try_from(n).map_err(|_| malformed(format!("field `{name}` is not a nat64")))
        }
        Some(_) => Err(malformed(format!("field `{name}` is not a number"))),
        None => Err(malformed(format!("missing field `{name}`"))),
    }
}

fn text(map: &Map, name: &str) -> Result<String, Malformed> {
    match field(map, name) {
        Some(Value::Text(t)) => Ok(t),
        Some(_) => Err(malformed(format!("field `{name}` is not text"))),
        None => Err(malformed(format!("missing field `{name}`"))),
    }
}

fn principal(bytes: Vec<u8>, name: &str) -> Result<Principal, Malformed> {
    Principal::try_from_slice(&bytes)
        .map_err(|e| malformed(format!("field `{name}` is not a principal: {e}")))
}

/// Decodes a posted envelope of the expected request type.
pub fn decode(body: &[u8], expected: &'static str) -> Result<Envelope, Malformed> {
    let value: Value = serde_cbor::from_slice(body)
        .map_err(|e| malformed(format!("the body is not a CBOR envelope: {e}")))?;
    let envelope = as_map(value, "the envelope")?;
    let content_value =
        field(&envelope, "content").ok_or_else(|| malformed("missing field `content`"))?;
    let content = as_map(content_value, "`content`")?;
    let request_id = hash_map(content.iter())
        .map_err(|e| malformed(format!("`content` has no request id: {}", e.0)))?;
    let request_type = text(&content, "request_type")?;
    if request_type != expected {
        return Err(malformed(format!(
            "the request type is `{request_type}`, this endpoint takes `{expected}`"
        )));
    }
    let sender = principal(required_bytes(&content, "sender")?, "sender")?;
    let ingress_expiry = nat(&content, "ingress_expiry")?;
    let content = match expected {
        "read_state" => Content::ReadState {
            paths: paths(
                field(&content, "paths").ok_or_else(|| malformed("missing field `paths`"))?,
            )?,
        },
        kind => {
            let call = CanisterCall {
                canister_id: principal(required_bytes(&content, "canister_id")?, "canister_id")?,
                method_name: text(&content, "method_name")?,
                arg: required_bytes(&content, "arg")?,
            };
            if kind == "call" {
                Content::Call(call)
            } else {
                Content::Query(call)
            }
        }
    };
    let delegations = match field(&envelope, "sender_delegation") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(delegation)
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(malformed("`sender_delegation` is not an array")),
    };
    Ok(Envelope {
        content,
        sender,
        ingress_expiry,
        request_id,
        sender_pubkey: bytes(&envelope, "sender_pubkey")?,
        sender_sig: bytes(&envelope, "sender_sig")?,
        delegations,
    })
}

fn paths(value: Value) -> Result<Vec<Vec<Vec<u8>>>, Malformed> {
    let Value::Array(paths) = value else {
        return Err(malformed("`paths` is not an array"));
    };
    paths
        .into_iter()
        .map(|path| match untag(path) {
            Value::Array(labels) => labels
                .into_iter()
                .map(|label| match untag(label) {
                    Value::Bytes(b) => Ok(b),
                    _ => Err(malformed("a path label is not a blob")),
                })
                .collect(),
            _ => Err(malformed("a path is not an array")),
        })
        .collect()
}

fn delegation(value: Value) -> Result<SignedDelegation, Malformed> {
    let signed = as_map(value, "a signed delegation")?;
    let inner = as_map(
        field(&signed, "delegation")
            .ok_or_else(|| malformed("a signed delegation has no `delegation`"))?,
        "`delegation`",
    )?;
    let hash = hash_map(inner.iter())
        .map_err(|e| malformed(format!("a delegation has no hash: {}", e.0)))?;
    let targets = match field(&inner, "targets") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .map(|t| match untag(t) {
                    Value::Bytes(b) => principal(b, "targets"),
                    _ => Err(malformed("a delegation target is not a blob")),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(malformed("a delegation's `targets` is not an array")),
    };
    Ok(SignedDelegation {
        pubkey: required_bytes(&inner, "pubkey")?,
        expiration: nat(&inner, "expiration")?,
        targets,
        hash,
        signature: required_bytes(&signed, "signature")?,
    })
}
