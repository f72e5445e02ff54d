//! Example targets confab ships in-process, so a campaign can run with nothing to set up.
//!
//! A target here is an ordinary HTTP service (an axum [`Router`](axum::Router)) that confab
//! starts on a loopback listener, or as `confab reference-target`, exactly like any target
//! described by a spec: it reads the fake model, the sink and the JWT material from the
//! environment of DESIGN.md §3. Each ships in a hardened form (built on [`crate::guard`], must
//! come out of every campaign clean) and a vulnerable form (plants known flaws, each of which
//! a campaign must find), so both directions of confab's claims are checked.

pub mod reference;
