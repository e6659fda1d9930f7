//! Capsules and the memories committed into them: the endpoints that are
//! not about uploads in progress.

pub mod capsules;
pub mod memories;

pub use capsules::*;
pub use memories::*;
