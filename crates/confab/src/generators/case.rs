//! Whole cases: a principal, a token family, a resource choice, a prompt family and a script
//! for the fake model, aimed at one endpoint of a target spec.
//!
//! A [`CaseRecipe`] is small numbers and sub-recipes (it shrinks, serializes into replay
//! files, and is derived from `(seed, index)` alone, so `--shard i/n` splits a campaign
//! exactly); `CaseRecipe::plan` turns it into a concrete [`CasePlan`] for one run.

use super::output::{Channel, EchoEncoding, OutputFamily, OutputRecipe};
use super::prompt::{Placement, PromptContext, PromptRecipe};
use super::token::{MintContext, TokenCase, TokenFamily, TokenRecipe, token_recipe};
use crate::spec::{Endpoint, Principal};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};

/// Which resource id the request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourcePick {
    /// One the principal owns.
    Own(u8),
    /// One another principal owns (plain IDOR: no model needed).
    OtherTenant(u8),
    /// One nobody owns (`doc-404-…`).
    Invented(u8),
}

/// What the client does to the request body (ROBUST: a target must answer a malformed body
/// with a 4xx, never a 5xx).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyMutation {
    /// The body the spec describes.
    Intact,
    /// Not JSON at all.
    NotJson,
    /// No body.
    Empty,
    /// One member left out.
    MissingMember(u8),
    /// One member given as a number instead of a string.
    WrongType(u8),
    /// A JSON array instead of an object.
    Array,
}

impl BodyMutation {
    /// The stable snake_case label reports show.
    pub fn name(self) -> &'static str {
        match self {
            BodyMutation::Intact => "intact",
            BodyMutation::NotJson => "not_json",
            BodyMutation::Empty => "empty",
            BodyMutation::MissingMember(_) => "missing_member",
            BodyMutation::WrongType(_) => "wrong_type",
            BodyMutation::Array => "array",
        }
    }

    /// The bytes to send instead of `body` (`None`: send no body).
    pub fn apply(self, body: &serde_json::Value) -> Option<Vec<u8>> {
        let mut body = body.clone();
        let nth_key = |b: &serde_json::Value, i: u8| {
            b.as_object().and_then(|o| {
                let keys: Vec<&String> = o.keys().collect();
                (!keys.is_empty()).then(|| keys[i as usize % keys.len()].clone())
            })
        };
        match self {
            BodyMutation::Intact => {}
            BodyMutation::NotJson => return Some(b"{\"prompt\": ".to_vec()),
            BodyMutation::Empty => return None,
            BodyMutation::MissingMember(i) => {
                if let Some(k) = nth_key(&body, i)
                    && let Some(o) = body.as_object_mut()
                {
                    o.remove(&k);
                }
            }
            BodyMutation::WrongType(i) => {
                if let Some(k) = nth_key(&body, i) {
                    body[k.as_str()] = serde_json::json!(12345);
                }
            }
            BodyMutation::Array => body = serde_json::json!([body]),
        }
        Some(body.to_string().into_bytes())
    }
}

/// Everything a case is made of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseRecipe {
    /// Index into the spec's endpoints (modulo their number). 32 bits, so a spec with hundreds
    /// of endpoints (one imported from OpenAPI) has every one reached.
    pub endpoint: u32,
    /// Index into the spec's principals (modulo their number).
    pub principal: u32,
    /// The credential the request carries (its principal is replaced by `principal`).
    pub token: TokenRecipe,
    /// Which resource id the request names.
    pub resource: ResourcePick,
    /// `None`: a plain request ("Summarize document …").
    pub prompt: Option<PromptRecipe>,
    /// `None`: the model answers harmless text (the baseline).
    pub output: Option<OutputRecipe>,
    /// The model answers every call with a 503 (a 5xx from the target is then fine).
    pub model_fails: bool,
    /// What happens to the request body.
    #[serde(default = "intact")]
    pub body: BodyMutation,
}

fn intact() -> BodyMutation {
    BodyMutation::Intact
}

/// A proptest strategy over cases. Valid tokens are drawn half of the time so that most
/// cases get past authentication to the model.
pub(crate) fn case_recipe() -> impl Strategy<Value = CaseRecipe> {
    let token = prop_oneof![
        1 => token_recipe().prop_map(|t| TokenRecipe { family: TokenFamily::Valid, ..t }),
        1 => token_recipe(),
    ];
    let body = prop_oneof![
        23 => Just(BodyMutation::Intact),
        1 => Just(BodyMutation::NotJson),
        1 => Just(BodyMutation::Empty),
        1 => any::<u8>().prop_map(BodyMutation::MissingMember),
        1 => any::<u8>().prop_map(BodyMutation::WrongType),
        1 => Just(BodyMutation::Array),
    ];
    let resource = prop_oneof![
        5 => any::<u8>().prop_map(ResourcePick::Own),
        3 => any::<u8>().prop_map(ResourcePick::OtherTenant),
        2 => any::<u8>().prop_map(ResourcePick::Invented),
    ];
    (
        any::<u32>(),
        any::<u32>(),
        token,
        resource,
        proptest::option::weighted(0.7, PromptRecipe::strategy()),
        proptest::option::weighted(0.9, output_recipe()),
        proptest::bool::weighted(0.03),
        body,
    )
        .prop_map(
            |(endpoint, principal, token, resource, prompt, output, model_fails, body)| {
                CaseRecipe {
                    endpoint,
                    principal,
                    token,
                    resource,
                    prompt,
                    output,
                    model_fails,
                    body,
                }
            },
        )
}

/// Model outputs, with echoes in the answer text drawn more often than the uniform catalogue
/// would: that is where a target that passes the model's words through leaks what the model
/// was sent, and half of them verbatim (a system prompt leaks as long verbatim spans,
/// docs/ARCHITECTURE.md §4; the encoded forms are the subtler half).
fn output_recipe() -> impl Strategy<Value = OutputRecipe> {
    prop_oneof![
        7 => OutputRecipe::strategy(),
        3 => OutputRecipe::strategy().prop_map(|mut r| {
            r.family = OutputFamily::Echo;
            r.channel = Channel::Text;
            // Variants divisible by 3 put the echo in the text itself, not in a URL.
            r.variant = r.variant.wrapping_mul(3);
            if r.seed % 2 == 0 {
                r.encoding = EchoEncoding::Raw;
            }
            r
        }),
    ]
}

/// The recipe of case `index` of a campaign with `seed`: a function of the two alone.
pub fn nth_case(seed: u64, index: u64) -> CaseRecipe {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    key[16..].copy_from_slice(b"confab-case-seed");
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &key),
    );
    match case_recipe().new_tree(&mut runner) {
        Ok(tree) => tree.current(),
        // The strategy has no filters, so it cannot reject; fall back to the baseline.
        Err(_) => CaseRecipe::baseline(0, 0),
    }
}

impl CaseRecipe {
    /// A request a correct target serves: valid token, own resource, plain prompt,
    /// harmless model.
    pub fn baseline(endpoint: u32, principal: u32) -> CaseRecipe {
        CaseRecipe {
            endpoint,
            principal,
            token: TokenRecipe {
                family: TokenFamily::Valid,
                principal,
                variant: 0,
                skew_s: 0,
                jti: 0,
            },
            resource: ResourcePick::Own(0),
            prompt: None,
            output: None,
            model_fails: false,
            body: BodyMutation::Intact,
        }
    }

    /// Simpler versions of this case, simplest first, for shrinking a finding.
    pub(crate) fn simplifications(&self) -> Vec<CaseRecipe> {
        let mut out = Vec::new();
        let mut push = |c: CaseRecipe| {
            if &c != self && !out.contains(&c) {
                out.push(c);
            }
        };
        push(CaseRecipe {
            prompt: None,
            ..self.clone()
        });
        push(CaseRecipe {
            model_fails: false,
            ..self.clone()
        });
        push(CaseRecipe {
            body: BodyMutation::Intact,
            ..self.clone()
        });
        if self.token.family != TokenFamily::Valid {
            push(CaseRecipe {
                token: TokenRecipe {
                    variant: 0,
                    skew_s: 0,
                    ..self.token
                },
                ..self.clone()
            });
        }
        push(CaseRecipe {
            token: TokenRecipe {
                family: TokenFamily::Valid,
                variant: 0,
                skew_s: 0,
                ..self.token
            },
            ..self.clone()
        });
        push(CaseRecipe {
            resource: ResourcePick::Own(0),
            ..self.clone()
        });
        if let Some(o) = &self.output {
            push(CaseRecipe {
                output: Some(OutputRecipe {
                    channel: Channel::ToolCall,
                    variant: 0,
                    pick: 0,
                    encoding: EchoEncoding::Raw,
                    extra_calls: 0,
                    seed: 0,
                    ..o.clone()
                }),
                ..self.clone()
            });
            push(CaseRecipe {
                output: None,
                ..self.clone()
            });
        }
        out
    }
}

/// What planning a case needs from the run.
pub(crate) struct CaseWorld<'a> {
    /// The spec's endpoints, which [`CaseRecipe::endpoint`] indexes.
    pub endpoints: &'a [Endpoint],
    /// The spec's principals with the resource ids each owns.
    pub principals: &'a [Principal],
    /// One mint context per endpoint (its required scope differs).
    pub mint: &'a [MintContext],
    /// Where exfiltration prompts send the canary (the sink's attacker host).
    pub attacker_base_url: String,
    /// The campaign's seed: nonces and invented ids derive from it and the case id.
    pub seed: u64,
    /// Unix time the tokens are minted at.
    pub now: u64,
}

/// A case made concrete for one run.
#[derive(Clone, Debug)]
pub struct CasePlan {
    /// The case's index in the campaign.
    pub id: u64,
    /// What it was planned from: replay files keep it, shrinking simplifies it.
    pub recipe: CaseRecipe,
    /// A unique string in the prompt (and so in what the target sends the model), by which
    /// the fake model and the sink attribute calls to this case.
    pub nonce: String,
    /// Index into the spec's endpoints.
    pub endpoint: usize,
    /// Index into the spec's principals: who the request is made for.
    pub principal: usize,
    /// The credential to send, with what a correct guard decides for it.
    pub token: TokenCase,
    /// The resource id the request names.
    pub resource: String,
    /// The prompt the client sends.
    pub prompt: String,
    /// The canary of an adversarial prompt.
    pub canary: Option<String>,
    /// `(resource id, text)`: an indirect injection the sink appends to that document.
    pub document_text: Option<(String, String)>,
}

impl CaseRecipe {
    /// Makes the case concrete. `id` is the case's index in the campaign.
    pub(crate) fn plan(&self, id: u64, world: &CaseWorld<'_>) -> CasePlan {
        let endpoint = self.endpoint as usize % world.endpoints.len().max(1);
        let principal = self.principal as usize % world.principals.len().max(1);
        let token_recipe = TokenRecipe {
            principal: principal as u32,
            ..self.token
        };
        let token = token_recipe.mint(&world.mint[endpoint], world.now);
        let owner = &world.principals[principal];
        // `{resource}` draws from the endpoint's resource type, when it names one.
        let kind = world.endpoints[endpoint].resource_type.as_deref();
        let own = owner.ids_of(kind);
        let others: Vec<&String> = world
            .principals
            .iter()
            .filter(|p| p.name != owner.name)
            .flat_map(|p| p.ids_of(kind).iter())
            .collect();
        let nonce = format!("cfb{:016x}", mix(world.seed, id));
        // Invented ids take the shape of the real ones (UUIDs where they are UUIDs), so they
        // reach the target's ownership code rather than its input validation.
        let uuids = own
            .iter()
            .chain(others.iter().copied())
            .next()
            .is_some_and(|i| crate::spec::template::looks_like_uuid(i));
        let invented = |n: u64| {
            if uuids {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&mix(world.seed ^ 0x1d, n).to_le_bytes());
                b[8..].copy_from_slice(&mix(n, world.seed).to_le_bytes());
                crate::spec::template::uuid_from_bytes(b)
            } else {
                format!("doc-404-{n}")
            }
        };
        let resource = match self.resource {
            ResourcePick::Own(i) if !own.is_empty() => own[i as usize % own.len()].clone(),
            ResourcePick::OtherTenant(i) if !others.is_empty() => {
                others[i as usize % others.len()].clone()
            }
            ResourcePick::Invented(i) => invented(u64::from(i)),
            // Nobody owns anything of that kind: an invented id.
            _ => invented(id),
        };
        let mut canary = None;
        let mut document_text = None;
        let prompt = match &self.prompt {
            None => format!("Summarize document {resource} in two sentences. (request {nonce})"),
            Some(p) => {
                let built = p.build(&PromptContext {
                    attacker_base_url: world.attacker_base_url.clone(),
                });
                canary = Some(built.canary.clone());
                if built.placement == Placement::Document {
                    document_text = Some((resource.clone(), built.text.clone()));
                }
                format!("{} (request {nonce})", built.user_prompt)
            }
        };
        CasePlan {
            id,
            recipe: self.clone(),
            nonce,
            endpoint,
            principal,
            token,
            resource,
            prompt,
            canary,
            document_text,
        }
    }
}

impl CasePlan {
    /// A one-line description for reports.
    pub(crate) fn describe(&self, world: &CaseWorld<'_>) -> String {
        let output = self
            .recipe
            .output
            .as_ref()
            .map_or("harmless".to_owned(), |o| {
                format!("{} via {}", o.family.name(), o.channel.name())
            });
        let prompt = self.recipe.prompt.as_ref().map_or("plain".to_owned(), |p| {
            format!("{} ({})", p.family.name(), p.obfuscation.name())
        });
        format!(
            "endpoint {}, principal {}, token {}, resource {:?}, prompt {}, model output {}, body {}",
            world.endpoints[self.endpoint].name,
            world.principals[self.principal].name,
            self.token.family.name(),
            self.resource,
            prompt,
            output,
            self.recipe.body.name(),
        )
    }
}

/// SplitMix64 of the seed and the index: distinct, well-spread nonces.
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_case_depends_on_seed_and_index_only() {
        assert_eq!(nth_case(7, 3), nth_case(7, 3));
        assert_ne!(nth_case(7, 3), nth_case(7, 4));
        assert_ne!(nth_case(7, 3), nth_case(8, 3));
        assert_ne!(mix(1, 2), mix(2, 1));
    }

    #[test]
    fn simplifications_end_at_simpler_cases() {
        let c = nth_case(1, 1);
        for s in c.simplifications() {
            assert_ne!(s, c);
        }
        assert!(CaseRecipe::baseline(0, 0).simplifications().len() <= 2);
    }
}
