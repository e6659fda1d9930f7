//! Share-link secrets: 128 bits each from a ChaCha20 generator seeded with
//! 32 bytes of the management canister's `raw_rand`, fetched once per
//! canister version (the generator is heap state: an upgrade reseeds it).

use super::links::ShareError;
use crate::limits::SECRET_BYTES;
use candid::Principal;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::cell::RefCell;

thread_local! {
    static LINK_RNG: RefCell<Option<ChaCha20Rng>> = const { RefCell::new(None) };
}

/// A fresh link secret; the first after install or upgrade awaits
/// `raw_rand`.
pub async fn link_secret() -> Result<[u8; SECRET_BYTES], ShareError> {
    if LINK_RNG.with(|rng| rng.borrow().is_none()) {
        let unavailable = |reason: String| ShareError::RandomnessUnavailable { reason };
        let reply = ic_cdk::call::Call::bounded_wait(Principal::management_canister(), "raw_rand")
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let bytes: Vec<u8> = reply.candid().map_err(|e| unavailable(e.to_string()))?;
        let seed: [u8; 32] = bytes
            .get(..32)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| unavailable(format!("raw_rand returned {} bytes", bytes.len())))?;
        LINK_RNG.with(|rng| {
            rng.borrow_mut()
                .get_or_insert_with(|| ChaCha20Rng::from_seed(seed));
        });
    }
    let mut secret = [0u8; SECRET_BYTES];
    LINK_RNG.with(|rng| {
        rng.borrow_mut()
            .as_mut()
            .expect("bug: link generator not seeded")
            .fill_bytes(&mut secret)
    });
    Ok(secret)
}
