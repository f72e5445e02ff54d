//! The target spec (TOML), DESIGN.md §3.
