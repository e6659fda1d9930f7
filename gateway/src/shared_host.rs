//! The harness's [`IcEnv`](upload_harness::IcEnv) over a host the gateway
//! shares, so the project's Rust client
//! ([`upload_harness::client::UploadClient`]) can upload and share files in
//! the very host the gateway serves from.

use embedded_ic_host::Host;
use std::sync::{Arc, Mutex};

/// An embedded host behind a mutex, with one controller:
/// `SharedHost::shared(controller)`; `host()` hands it to
/// [`crate::HostCanister`].
pub type SharedHost = upload_harness::EmbeddedEnv<Arc<Mutex<Host>>>;
