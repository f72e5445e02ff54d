//! `confab check-spec`: everything that keeps `confab scan` from running a spec (errors) or
//! makes its campaign weaker than it could be (warnings), each located at its file, line and
//! key.

use super::{JWT_SECRET_PLACEHOLDER, Spec, SpecError};
use crate::generators::token::MintContext;
use crate::guard::ScopeSet;

/// A problem of a spec: an error keeps `confab scan` from running, a warning makes its
/// campaign weaker than it could be.
pub struct Problem {
    pub error: bool,
    pub detail: SpecError,
}

/// Everything `confab scan` needs of a spec beyond parsing.
pub fn check(spec: &Spec) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut err = |key: &str, msg: String| {
        out.push(Problem {
            error: true,
            detail: spec.error_at(key, msg),
        })
    };
    if spec.target.is_none() {
        err(
            "target",
            "missing: [target] says how to start the API or where it runs".into(),
        );
    }
    if spec.downstream.is_none() {
        err(
            "downstream",
            "missing: [downstream] resource = \"/docs/{id}\" tells the sink what to serve".into(),
        );
    }
    if spec.endpoints.is_empty() {
        err(
            "endpoint",
            "no [[endpoint]]: nothing to send cases to".into(),
        );
    }
    if spec.principals.is_empty() {
        err(
            "principal",
            "no [[principal]]: confab mints tokens for principals".into(),
        );
    }
    if !spec.secret_is_generated()
        && let Err(e) = spec.guard()
    {
        out.push(Problem {
            error: true,
            detail: e,
        });
    }
    if !spec.principals.is_empty() {
        for e in &spec.endpoints {
            if let Err(e) = MintContext::for_spec(spec, ScopeSet::parse(&e.scope)) {
                out.push(Problem {
                    error: true,
                    detail: e,
                });
                break;
            }
        }
    }
    let mut warn = |key: &str, msg: String| {
        out.push(Problem {
            error: false,
            detail: spec.error_at(key, msg),
        })
    };
    let env_text = spec
        .target
        .as_ref()
        .map(|t| t.env.values().cloned().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let command_text = spec
        .target
        .as_ref()
        .and_then(|t| t.command.as_ref())
        .map(|c| c.join(" "))
        .unwrap_or_default();
    let passed = |p: &str| env_text.contains(p) || command_text.contains(p);
    if spec.target.is_some() {
        let model_urls = [
            "{llm_base_url}",
            "{anthropic_base_url}",
            "{ollama_base_url}",
        ];
        if spec.endpoints.iter().any(|e| e.llm) && !model_urls.iter().any(|p| passed(p)) {
            warn(
                "target.env",
                "no variable carries {llm_base_url} (or {anthropic_base_url}, \
                 {ollama_base_url}): the API cannot find confab's fake model"
                    .into(),
            );
        }
        if spec.downstream.is_some() && !passed("{downstream_url}") {
            warn(
                "target.env",
                "no variable carries {downstream_url}: the API's downstream calls miss the sink"
                    .into(),
            );
        }
        if spec.secret_is_generated() && !passed(JWT_SECRET_PLACEHOLDER) {
            warn(
                "auth.secret",
                "is {jwt_secret} but no [target.env] variable passes {jwt_secret} to the API: \
                 it cannot verify confab's tokens"
                    .into(),
            );
        }
    }
    for (i, e) in spec.endpoints.iter().enumerate() {
        let required = ScopeSet::parse(&e.scope);
        if !spec.principals.is_empty()
            && !spec
                .principals
                .iter()
                .any(|p| ScopeSet::parse(&p.scope).includes(&required))
        {
            warn(
                &format!("endpoint[{i}].scope"),
                format!(
                    "no principal holds {:?}: confab cannot send a valid request to {}",
                    e.scope, e.name
                ),
            );
        }
        if e.llm && !e.takes_prompt() {
            warn(
                &format!("endpoint[{i}].llm"),
                format!(
                    "{} reaches the model but nothing carries \"{{prompt}}\": the cases' prompts never reach it",
                    e.name
                ),
            );
        }
    }
    if spec.principals.len() == 1 {
        warn(
            "principal",
            "only one principal: cross-tenant cases (OWNERSHIP, IDOR) need two".into(),
        );
    }
    for (i, p) in spec.principals.iter().enumerate() {
        if p.owns.is_empty() {
            warn(
                &format!("principal[{i}].owns"),
                format!(
                    "{} owns no resource: give it ids so that cases can use them",
                    p.name
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::openapi::{default_endpoints, skeleton};
    use std::path::Path;

    #[test]
    fn the_skeleton_is_a_spec_without_problems() {
        let text = skeleton(&default_endpoints(), None, &[]);
        let spec = Spec::parse(&text, "confab.toml", Path::new(".")).expect("parses");
        let problems: Vec<String> = check(&spec).iter().map(|p| p.detail.to_string()).collect();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(spec.endpoints.len(), 2);
        // Every key is explained: each `key =` line has a comment or follows one.
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim();
            if t.contains(" = ") && !t.starts_with('#') && !t.starts_with("[[") {
                let explained = t.contains('#')
                    || lines[..i]
                        .iter()
                        .rev()
                        .take(12)
                        .any(|p| p.trim_start().starts_with('#'));
                assert!(explained, "line {} unexplained: {t}", i + 1);
            }
        }
    }

    #[test]
    fn check_explains_what_keeps_a_spec_from_scanning() {
        let src = "[auth]\nalg = \"HS256\"\nsecret = \"{jwt_secret}\"\n\n[[endpoint]]\nname = \"a\"\nmethod = \"POST\"\npath = \"/a\"\nscope = \"x:y\"\nllm = true\n";
        let spec = Spec::parse(src, "s.toml", Path::new(".")).expect("parses");
        let problems = check(&spec);
        let text: Vec<String> = problems
            .iter()
            .map(|p| format!("{}{}", if p.error { "E " } else { "W " }, p.detail))
            .collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("E s.toml: target: missing")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("E s.toml: downstream: missing"))
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("E s.toml: principal: no"))
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("W s.toml:10: endpoint[0].llm:")),
            "{text:?}"
        );
    }
}
