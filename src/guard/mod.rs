//! The reference guard: what a correct bearer-token API decides for any request.
//!
//! It depends on nothing else in the crate, so a Rust service can use it as is.

pub mod audit;
pub mod error;
pub mod scope;
pub mod scrub;
pub mod secret;

pub use error::Rejection;
pub use scope::ScopeSet;
pub use secret::Secret;
