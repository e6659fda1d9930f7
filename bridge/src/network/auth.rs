//! Authentication of requests as the IC does it (specification,
//! "Authentication"): the sender is the anonymous principal with no key,
//! or the self-authenticating principal of `sender_pubkey`, which signs
//! the request id directly or through a chain of delegations, each
//! unexpired, their `targets` naming the canister the request goes to.
//!
//! Keys are DER `SubjectPublicKeyInfo`s: Ed25519, ECDSA on secp256k1 and
//! ECDSA on P-256 (signatures `r ‖ s` over SHA-256). Canister signatures
//! (Internet Identity's own root key) are not supported: the network has
//! no canister that issues them.

use super::envelope::{Envelope, SignedDelegation};
use candid::Principal;
use sha2::{Digest, Sha224};

/// Domain separator of a request signature.
const REQUEST_DOMAIN: &[u8] = b"\x0Aic-request";
/// Domain separator of a delegation signature.
const DELEGATION_DOMAIN: &[u8] = b"\x1Aic-request-auth-delegation";
/// The IC refuses longer chains.
pub const MAX_DELEGATIONS: usize = 20;
/// ... and more targets per delegation.
pub const MAX_TARGETS: usize = 1_000;

/// Why a request is refused before it executes (HTTP 400, this text).
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub String);

fn refused(message: impl Into<String>) -> Refused {
    Refused(message.into())
}

/// The self-authenticating principal of a DER public key.
pub fn self_authenticating(der: &[u8]) -> Principal {
    let mut bytes: Vec<u8> = Sha224::digest(der).to_vec();
    bytes.push(0x02);
    Principal::from_slice(&bytes)
}

/// The key kinds the network verifies.
enum Key {
    Ed25519(ed25519_dalek::VerifyingKey),
    Secp256k1(k256::ecdsa::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

fn parse_key(der: &[u8]) -> Result<Key, Refused> {
    use ed25519_dalek::pkcs8::DecodePublicKey as _;
    if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
        return Ok(Key::Ed25519(k));
    }
    if let Ok(k) = k256::ecdsa::VerifyingKey::from_public_key_der(der) {
        return Ok(Key::Secp256k1(k));
    }
    if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
        return Ok(Key::P256(k));
    }
    Err(refused(
        "the public key is not a DER-encoded Ed25519, ECDSA secp256k1 or ECDSA P-256 key",
    ))
}

/// Whether `signature` by the key `der` signs `domain ‖ message`.
fn verify(der: &[u8], domain: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Refused> {
    let mut signed = domain.to_vec();
    signed.extend_from_slice(message);
    let ok = match parse_key(der)? {
        Key::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
            .is_ok_and(|sig| key.verify_strict(&signed, &sig).is_ok()),
        Key::Secp256k1(key) => {
            use k256::ecdsa::signature::Verifier as _;
            k256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(&signed, &sig).is_ok())
        }
        Key::P256(key) => {
            use p256::ecdsa::signature::Verifier as _;
            p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(&signed, &sig).is_ok())
        }
    };
    if ok {
        Ok(())
    } else {
        Err(refused("the signature does not verify"))
    }
}

/// Checks who sent `envelope`, at time `now_ns`, for a request to
/// `target` (the canister a call or query addresses, or the effective
/// canister of a `read_state`).
pub fn authenticate(envelope: &Envelope, now_ns: u64, target: &Principal) -> Result<(), Refused> {
    if envelope.sender == Principal::anonymous() {
        if envelope.sender_pubkey.is_some() || envelope.sender_sig.is_some() {
            return Err(refused(
                "an anonymous request carries no key and no signature",
            ));
        }
        if !envelope.delegations.is_empty() {
            return Err(refused("an anonymous request carries no delegation"));
        }
        return Ok(());
    }
    let (Some(pubkey), Some(sig)) = (&envelope.sender_pubkey, &envelope.sender_sig) else {
        return Err(refused(format!(
            "Invalid signature: the request from {} is not signed (no sender_pubkey or sender_sig)",
            envelope.sender
        )));
    };
    if self_authenticating(pubkey) != envelope.sender {
        return Err(refused(format!(
            "Invalid signature: the sender {} is not the principal of sender_pubkey ({})",
            envelope.sender,
            self_authenticating(pubkey)
        )));
    }
    let signer = check_delegations(pubkey, &envelope.delegations, now_ns, target)?;
    verify(signer, REQUEST_DOMAIN, &envelope.request_id, sig).map_err(|e| {
        refused(format!(
            "Invalid signature: the request signature of {} does not verify ({})",
            envelope.sender, e.0
        ))
    })
}

/// Walks the chain from the sender's key; returns the key that must sign
/// the request.
fn check_delegations<'a>(
    sender_key: &'a [u8],
    chain: &'a [SignedDelegation],
    now_ns: u64,
    target: &Principal,
) -> Result<&'a [u8], Refused> {
    if chain.len() > MAX_DELEGATIONS {
        return Err(refused(format!(
            "Invalid delegation: a chain of {} delegations is longer than {MAX_DELEGATIONS}",
            chain.len()
        )));
    }
    let mut signer = sender_key;
    for (i, d) in chain.iter().enumerate() {
        verify(signer, DELEGATION_DOMAIN, &d.hash, &d.signature).map_err(|e| {
            refused(format!(
                "Invalid delegation: the signature of delegation {i} does not verify ({})",
                e.0
            ))
        })?;
        if d.expiration < now_ns {
            return Err(refused(format!(
                "Invalid delegation expiry: delegation {i} expired at {} ns, the time is {now_ns} ns",
                d.expiration
            )));
        }
        if let Some(targets) = &d.targets {
            if targets.len() > MAX_TARGETS {
                return Err(refused(format!(
                    "Invalid delegation: delegation {i} has more than {MAX_TARGETS} targets"
                )));
            }
            if !targets.contains(target) {
                return Err(refused(format!(
                    "Invalid delegation: canister {target} is not one of the targets of delegation {i}"
                )));
            }
        }
        signer = &d.pubkey;
    }
    Ok(signer)
}
