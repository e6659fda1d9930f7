//! Placeholder: the embedded IC host.
