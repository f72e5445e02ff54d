//! `confab check-spec`: everything that keeps `confab scan` from running a spec (errors) or
//! makes its campaign weaker than it could be (warnings), each located at its file, line and
//! key.

use super::{JWT_SECRET_PLACEHOLDER, Spec, SpecError};
use crate::generators::token::MintContext;
use crate::guard::ScopeSet;

/// A problem of a spec: an error keeps `confab scan` from running, a warning makes its
/// campaign weaker than it could be.
pub struct Problem {
    /// True for an error (`confab check-spec` exits 2), false for a warning.
    pub error: bool,
    /// What is wrong, with the file, line and key it is at.
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
    out.extend(unknown_placeholders(spec));
    out
}

/// Words in braces that look like a placeholder but are none that confab fills in (sent as
/// written, which is rarely what was meant: `{uuid}` was, before confab knew it), and
/// `{setup.NAME}` that no setup step saves. Warnings, each at its line.
fn unknown_placeholders(spec: &Spec) -> Vec<Problem> {
    // Braces with a meaning of their own in some keys: `{id}` in capabilities and the
    // downstream resource, `{confab}` in the target command.
    const OTHER_MEANINGS: [&str; 2] = ["id", "confab"];
    let saved: Vec<&String> = spec.setup.iter().flat_map(|s| s.save.keys()).collect();
    let mut out = Vec::new();
    for (n, line) in spec.source.lines().enumerate() {
        let code = line.split_once(" #").map_or(line, |(c, _)| c);
        if code.trim_start().starts_with('#') {
            continue;
        }
        let mut rest = code;
        while let Some(open) = rest.find('{') {
            let tail = &rest[open + 1..];
            if tail.starts_with('{') {
                // `{{name}}`: an escape, sent as `{name}`.
                rest = tail.trim_start_matches('{');
                continue;
            }
            let Some(close) = tail.find('}') else { break };
            let name = &tail[..close];
            rest = &tail[close + 1..];
            let word = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.".contains(&b));
            if !word || OTHER_MEANINGS.contains(&name) {
                continue;
            }
            let message = match name.strip_prefix("setup.") {
                Some(saved_name) if !saved.iter().any(|s| s.as_str() == saved_name) => format!(
                    "{{{name}}}: no [[setup]] step saves {saved_name:?} (save = {{ {saved_name} = \"/json/pointer\" }})"
                ),
                Some(_) => continue,
                None if super::template::is_known(name) => continue,
                None => format!(
                    "{{{name}}} is not a placeholder confab fills in: it is sent as written \
                     (known: {})",
                    super::template::KNOWN.join(", ")
                ),
            };
            out.push(Problem {
                error: false,
                detail: SpecError {
                    origin: spec.origin.clone(),
                    line: Some(n + 1),
                    key: None,
                    message,
                },
            });
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
                .any(|t| t.starts_with("E s.toml: principal: no"))
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("W s.toml:10: endpoint[0].llm:")),
            "{text:?}"
        );
    }

    #[test]
    fn words_in_braces_that_confab_does_not_fill_are_warned_about() {
        let text = "[target]\nbase_url = \"http://127.0.0.1:{port}\"\n[auth]\nalg = \"HS256\"\nsecret = \"{jwt_secret}\"\n[[principal]]\nname = \"a\"\nowns = [\"{setup.chat}\"]\n[[endpoint]]\nname = \"e\"\nmethod = \"GET\"\npath = \"/x/{uuid}/{nope}/{{literal}}\"\ncapabilities = [\"GET /x/{id}\"]\n";
        let spec = Spec::parse(text, "s.toml", Path::new(".")).expect("parses");
        let warnings: Vec<String> = check(&spec)
            .iter()
            .filter(|p| !p.error)
            .map(|p| p.detail.to_string())
            .filter(|t| t.contains("{setup.") || t.contains("not a placeholder"))
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with("s.toml:8: {setup.chat}: no [[setup]] step saves"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].starts_with("s.toml:12: {nope} is not a placeholder"),
            "{warnings:?}"
        );
    }
}
