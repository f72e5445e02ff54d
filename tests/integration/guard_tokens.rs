//! The guard's token half against the token generators: every generated case is decided
//! exactly as its label says, for every algorithm and policy of the example specs.

use crate::common::{NOW, fixtures};
use confab::generators::token::{Expected, TokenCase, TokenFamily, TokenRecipe, token_recipe};
use confab::guard::{Rejection, ScopeSet};
use proptest::prelude::*;
use std::collections::BTreeSet;

fn check(fx: &crate::common::Fixture, case: &TokenCase) -> Result<(), String> {
    let got = fx
        .guard
        .decide(&case.header_bytes(), &fx.mint.required_scope, NOW);
    let ok = match (&case.expect, &got) {
        (Expected::Accept { sub, scopes }, Ok(who)) => &who.sub == sub && &who.scopes == scopes,
        (Expected::Reject(want), Err(got)) => want == got,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{}: family {:?}: expected {:?}, guard said {:?}\ncase: {case:?}",
            fx.name, case.family, case.expect, got
        ))
    }
}

#[test]
fn every_family_and_variant_is_decided_as_labelled() {
    let mut failures = Vec::new();
    for fx in fixtures() {
        for family in TokenFamily::ALL {
            for variant in 0..12u8 {
                let recipe = TokenRecipe {
                    family,
                    principal: u32::from(variant),
                    variant,
                    skew_s: u16::from(variant) * 7,
                    jti: u32::from(variant),
                };
                if let Err(e) = check(fx, &recipe.mint(&fx.mint, NOW)) {
                    failures.push(e);
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rejection_reason_is_produced_by_some_family() {
    let mut seen = BTreeSet::new();
    for fx in fixtures() {
        for family in TokenFamily::ALL {
            for variant in 0..12u8 {
                let recipe = TokenRecipe {
                    family,
                    principal: 0,
                    variant,
                    skew_s: 1,
                    jti: 1,
                };
                if let Expected::Reject(r) = recipe.mint(&fx.mint, NOW).expect {
                    seen.insert(r);
                }
            }
        }
    }
    // `session_mismatch` needs a principal that logged in with bound claims: the unit test
    // `login_derived_tokens_keep_the_apps_claims` (generators/token.rs) covers it.
    let missing: Vec<_> = Rejection::ALL
        .iter()
        .filter(|r| !seen.contains(r) && **r != Rejection::SessionMismatch)
        .collect();
    assert!(missing.is_empty(), "no generator produces {missing:?}");
}

#[test]
fn valid_baselines_are_accepted_everywhere() {
    for fx in fixtures() {
        let recipe = TokenRecipe {
            family: TokenFamily::Valid,
            principal: 0,
            variant: 0,
            skew_s: 0,
            jti: 0,
        };
        let case = recipe.mint(&fx.mint, NOW);
        assert!(
            matches!(case.expect, Expected::Accept { .. }),
            "{}",
            fx.name
        );
        check(fx, &case).unwrap_or_else(|e| panic!("{e}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn generated_tokens_are_decided_as_labelled(fx_index in 0..crate::common::SPECS.len(), recipe in token_recipe()) {
        let fx = &fixtures()[fx_index];
        let case = recipe.mint(&fx.mint, NOW);
        if let Err(e) = check(fx, &case) {
            return Err(TestCaseError::fail(e));
        }
    }

    #[test]
    fn arbitrary_header_bytes_never_panic(headers in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..3)) {
        let fx = &fixtures()[0];
        let refs: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
        let _ = fx.guard.decide(&refs, &fx.mint.required_scope, NOW);
    }

    #[test]
    fn token_shaped_garbage_is_rejected_without_panic(body in "[A-Za-z0-9_.=+/~-]{0,600}", scheme in "(?i)bearer| ") {
        for fx in fixtures() {
            let header = format!("{scheme} {body}");
            let got = fx.guard.decide(&[header.as_bytes()], &fx.mint.required_scope, NOW);
            prop_assert!(got.is_err());
        }
    }

    #[test]
    fn scope_matching_is_exact(
        granted in prop::collection::btree_set("[!#-\\[\\]-~]{1,10}", 0..6),
        required in prop::collection::btree_set("[!#-\\[\\]-~]{1,10}", 0..3),
        borrow in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    ) {
        // Sometimes require scopes that are granted, so both outcomes occur.
        let granted_list: Vec<&String> = granted.iter().collect();
        let mut required = required;
        if !granted_list.is_empty() {
            for i in &borrow {
                required.insert(i.get(&granted_list).to_string());
            }
        }
        let fx = &fixtures()[0];
        let granted_set: ScopeSet = granted.iter().map(String::as_str).collect();
        let required_set: ScopeSet = required.iter().map(String::as_str).collect();
        let token = fx.mint.mint_valid("alice", &granted_set, NOW, 600);
        let header = format!("Bearer {token}");
        let got = fx.guard.decide(&[header.as_bytes()], &required_set, NOW);
        let expected = required.is_subset(&granted);
        match got {
            Ok(who) => {
                prop_assert!(expected);
                let got_scopes: BTreeSet<String> = who.scopes.iter().map(str::to_owned).collect();
                prop_assert_eq!(got_scopes, granted);
            }
            Err(r) => {
                prop_assert!(!expected);
                prop_assert_eq!(r, Rejection::InsufficientScope);
            }
        }
    }
}

#[test]
fn from_bytes_reaches_the_same_catalogue() {
    let fx = &fixtures()[0];
    let mut families = BTreeSet::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..4000 {
        // Spread bytes (a fuzzer's are), so the enum index covers its range.
        let bytes: Vec<u8> = (0..16)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect();
        if let Ok(recipe) = TokenRecipe::from_bytes(&bytes) {
            families.insert(recipe.family.name());
            check(fx, &recipe.mint(&fx.mint, NOW)).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert!(
        families.len() == TokenFamily::ALL.len(),
        "only {families:?}"
    );
}
