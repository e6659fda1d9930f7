//! Checks of arguments shared by the endpoints, answering `UploadError`.

use crate::error::UploadError;
use candid::Principal;

pub fn signed_in(caller: Principal) -> Result<(), UploadError> {
    if caller == Principal::anonymous() {
        Err(UploadError::AnonymousCaller)
    } else {
        Ok(())
    }
}

pub fn check_text(what: &str, value: &str, max: usize) -> Result<(), UploadError> {
    if value.len() > max {
        return Err(UploadError::InvalidArgument {
            reason: format!("{what} is longer than {max} bytes"),
        });
    }
    Ok(())
}

pub fn check_digest(what: &str, digest: &[u8]) -> Result<(), UploadError> {
    if digest.len() != 32 {
        return Err(UploadError::InvalidArgument {
            reason: format!("{what} must be 32 bytes (SHA-256), got {}", digest.len()),
        });
    }
    Ok(())
}

/// The one check behind every `admin_*` operation: the caller must be a
/// controller of the canister.
pub fn controllers_only(caller_is_controller: bool) -> Result<(), UploadError> {
    if caller_is_controller {
        Ok(())
    } else {
        Err(UploadError::NotAuthorized)
    }
}
