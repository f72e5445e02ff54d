//! Generators: every value comes with its ground truth (why a correct guard rejects it, or
//! which identifiers it invents). Each is a proptest `Strategy` and reachable from
//! `arbitrary` bytes, so property tests, fuzz targets and the harness share one catalogue.

pub mod case;
pub(crate) mod obfuscate;
pub mod output;
pub mod prompt;
pub mod token;
