//! A local HTTP gateway for the embedded IC host: what the IC's boundary
//! nodes do for `https://<canister>.icp0.io`, on `127.0.0.1`.
//!
//! A browser request becomes the query `http_request` (the canister's HTTP
//! interface, certificate version 2) on a canister in an embedded
//! [`embedded_ic_host::Host`]; the answer is verified with
//! `ic-response-verification` against the host's root key and clock
//! before anything of it is passed on. A response that fails verification
//! is answered `502 Bad Gateway` instead; a long asset (a first `206`
//! without a `Range` request) is streamed chunk by chunk, every chunk
//! verified ([`protocol`]).
//!
//! Requests are routed by canister id as on the IC: the host name
//! `<canister-id>.localhost[:port]` (any host whose first label is a
//! canister id) or the query parameter `?canisterId=<canister-id>` name
//! the canister ([`server::requested_canister`]); without either, the
//! gateway's own canister answers. Another canister is reached through
//! [`HttpCanister::route`] and verified against the same root key: its
//! certificate must speak for it, through the root key's delegation to its
//! subnet when it is not on the root subnet. An unknown canister is a 404
//! of the gateway.
//!
//! The library ([`Gateway`], [`HttpCanister`]) is what a process embeds
//! (a test, a loopback bridge sharing the host); the `local-gateway`
//! binary is a thin wrapper that installs the upload canister.

pub mod canister;
pub mod protocol;
pub mod publish;
pub mod server;
pub mod shared_host;

pub use canister::{CanisterResponse, HostCanister, HttpCanister};
pub use protocol::{GatewayError, VerifiedResponse};
pub use server::{Gateway, GatewayBody, RunningGateway};
pub use shared_host::SharedHost;
