//! `uploads_abort`: abandons an upload and frees its space.

use super::sessions::{expire_session, owned_session, release};
use crate::endpoint_error;
use crate::error::UploadError;
use crate::session::SessionError;
use crate::state::State;
use crate::types::SessionId;
use crate::validate::signed_in;
use candid::Principal;
use ic_stable_structures::Memory;

endpoint_error! {
    /// What `uploads_abort` can answer.
    pub enum AbortUploadError: UploadError for "uploads_abort" {
        AnonymousCaller,
        SessionNotFound { session_id: SessionId },
        NotAuthorized,
        AlreadyCommitted { session_id: SessionId },
        SessionExpired { session_id: SessionId },
    }
}

/// Abandons an upload and frees its space. Aborting twice is harmless.
pub fn abort<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    now: u64,
    session_id: SessionId,
) -> Result<(), AbortUploadError> {
    abandon(state, caller, now, session_id).map_err(AbortUploadError::narrow)
}

fn abandon<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    now: u64,
    session_id: SessionId,
) -> Result<(), UploadError> {
    signed_in(caller)?;
    owned_session(state, caller, session_id)?;
    match state.sessions.abort(session_id, now) {
        Ok(session) => {
            release(state, &session);
            Ok(())
        }
        Err(SessionError::Aborted(_)) => Ok(()),
        Err(SessionError::Expired(_)) => {
            expire_session(state, session_id, now);
            Err(UploadError::SessionExpired { session_id })
        }
        Err(other) => Err(other.into()),
    }
}
