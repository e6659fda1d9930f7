//! Share links and HTTP serving, beside the upload domain: `links` is the
//! store (links, their grammar, the certification tree), `serve` the
//! endpoints (`memories_share`, `memories_shares`, `memories_unshare`,
//! `http_request`) and the bounded certification work the timers run.

pub mod links;
pub mod randomness;
pub mod serve;

#[cfg(test)]
mod tests;
