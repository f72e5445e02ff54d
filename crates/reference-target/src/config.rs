//! The target's configuration ([`ReferenceConfig`]): from environment variables, from a
//! [`TargetContext`](confab_target::TargetContext), or built in code; and why it cannot start.

use crate::log::LogSink;
use crate::{DEFAULT_CALL_CAP, Flaws, Mode};
use confab_guard::{AuthConfig, ConfigError, Guard, Secret};
use confab_target::{LogWriter, Outbound, TargetContext};
use std::sync::Arc;
use std::time::Duration;

/// Everything the reference target needs. Build it with [`ReferenceConfig::new`] (tests,
/// in-process use) or [`ReferenceConfig::from_env`] (the CLI); `Debug` shows no secret.
#[derive(Clone, Debug)]
pub struct ReferenceConfig {
    /// The reference guard that decides tokens.
    pub guard: Arc<Guard>,
    /// The model's base URL, ending in `/v1` (`OPENAI_BASE_URL`).
    pub llm_base_url: String,
    /// The key sent to the model (`OPENAI_API_KEY`).
    pub llm_api_key: Secret,
    /// The documents API (`DOCS_API_URL`).
    pub downstream_url: String,
    /// The planted flaws ([`Flaws::none`]: hardened).
    pub flaws: Flaws,
    /// Model calls per `/assist` request.
    pub call_cap: u32,
    /// Ask the model for SSE streams instead of JSON.
    pub stream: bool,
    /// The HS256 secret, needed only by the `skip_claim_checks` flaw (which verifies the
    /// signature itself, without the guard); also scrubbed from answers.
    pub jwt_secret: Option<Secret>,
    /// Where log and audit lines go.
    pub log: LogSink,
    /// Timeout of each call to the model or the downstream.
    pub outbound_timeout: Duration,
    /// Time budget of a whole request; past it the target answers 504.
    pub request_deadline: Duration,
    /// How the model and the downstream are reached; `None` builds an HTTP client.
    pub outbound: Option<Outbound>,
}

/// Why the target cannot start. Names variables, never their values.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("{0} is not set")]
    /// A required variable is not set.
    Missing(&'static str),
    #[error("{var}: {problem}")]
    /// A variable is set but unusable.
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// What is wrong with it, without its value.
        problem: String,
    },
    #[error("JWT settings: {0}")]
    /// The JWT settings do not make a guard.
    Guard(#[from] ConfigError),
    #[error("cannot build the target: {0}")]
    /// The HTTP client or a guard structure could not be built.
    Build(String),
}

impl ReferenceConfig {
    /// A configuration with the defaults (call cap 4, JSON answers, stderr log, 5 s per
    /// outbound call, 8 s per request).
    pub fn new(
        guard: Arc<Guard>,
        llm_base_url: impl Into<String>,
        llm_api_key: Secret,
        downstream_url: impl Into<String>,
        flaws: Flaws,
    ) -> ReferenceConfig {
        ReferenceConfig {
            guard,
            llm_base_url: llm_base_url.into(),
            llm_api_key,
            downstream_url: downstream_url.into(),
            flaws,
            call_cap: DEFAULT_CALL_CAP,
            stream: false,
            jwt_secret: None,
            log: LogSink::stderr(),
            outbound_timeout: Duration::from_secs(5),
            request_deadline: Duration::from_secs(8),
            outbound: None,
        }
    }

    /// Reads the environment of docs/ARCHITECTURE.md §3: `OPENAI_BASE_URL`, `OPENAI_API_KEY`,
    /// `DOCS_API_URL`, `JWT_SECRET` (HS256), `JWT_ISSUER`, `JWT_AUDIENCE`,
    /// `CONFAB_REFERENCE_MODE` (`hardened`, the default, or `vulnerable`), and optionally
    /// `CONFAB_REFERENCE_FLAWS` (a comma list that replaces the mode's flaws),
    /// `CONFAB_REFERENCE_CALL_CAP` and `CONFAB_REFERENCE_STREAM=1`.
    pub fn from_env() -> Result<ReferenceConfig, ReferenceError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// The configuration a campaign hands the embedded target: read from the context's
    /// `[target.env]`, logging into the campaign's log, reaching the model and the
    /// downstream through the context's outbound.
    pub fn from_context(ctx: &TargetContext) -> Result<ReferenceConfig, ReferenceError> {
        let mut cfg = Self::from_vars(|k| ctx.env.get(k).cloned())?;
        cfg.log = LogSink::to_writer(LogWriter::new(ctx.log.clone()));
        cfg.outbound = Some(ctx.outbound.clone());
        Ok(cfg)
    }

    /// [`ReferenceConfig::from_env`] over any variable source.
    pub fn from_vars(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<ReferenceConfig, ReferenceError> {
        let need = |var: &'static str| {
            get(var)
                .filter(|v| !v.is_empty())
                .ok_or(ReferenceError::Missing(var))
        };
        let http_url = |var: &'static str| -> Result<String, ReferenceError> {
            let v = need(var)?;
            if v.starts_with("http://") || v.starts_with("https://") {
                Ok(v.trim_end_matches('/').to_owned())
            } else {
                Err(ReferenceError::Invalid {
                    var,
                    problem: "must be an http:// or https:// URL".into(),
                })
            }
        };
        let llm_base_url = http_url("OPENAI_BASE_URL")?;
        let downstream_url = http_url("DOCS_API_URL")?;
        let llm_api_key = Secret::from(need("OPENAI_API_KEY")?);
        let jwt_secret = Secret::from(need("JWT_SECRET")?);
        let optional = |var: &str| get(var).filter(|v| !v.is_empty());
        let mode = match optional("CONFAB_REFERENCE_MODE") {
            None => Mode::Hardened,
            Some(m) => Mode::parse(&m).ok_or(ReferenceError::Invalid {
                var: "CONFAB_REFERENCE_MODE",
                problem: "use hardened or vulnerable".into(),
            })?,
        };
        let flaws = match optional("CONFAB_REFERENCE_FLAWS") {
            None => mode.flaws(),
            Some(list) => Flaws::parse_list(&list).map_err(|e| ReferenceError::Invalid {
                var: "CONFAB_REFERENCE_FLAWS",
                problem: e.to_string(),
            })?,
        };
        let call_cap = match optional("CONFAB_REFERENCE_CALL_CAP") {
            None => DEFAULT_CALL_CAP,
            Some(c) => {
                c.parse::<u32>()
                    .ok()
                    .filter(|c| *c >= 1)
                    .ok_or(ReferenceError::Invalid {
                        var: "CONFAB_REFERENCE_CALL_CAP",
                        problem: "must be a whole number, at least 1".into(),
                    })?
            }
        };
        let stream = optional("CONFAB_REFERENCE_STREAM").is_some_and(|v| v == "1" || v == "true");
        let auth = AuthConfig {
            alg: "HS256".into(),
            secret: Some(jwt_secret.clone()),
            secret_base64url: None,
            public_key_file: None,
            private_key_file: None,
            issuer: optional("JWT_ISSUER"),
            audience: optional("JWT_AUDIENCE"),
            leeway_s: 30,
            typ: None,
            max_token_bytes: None,
            // The guard's default realm, as when it is built from the spec's `[auth]`.
            realm: None,
            keys: Vec::new(),
            ..AuthConfig::default()
        };
        let guard = Guard::from_config(&auth, std::path::Path::new("."))?;
        let mut cfg = ReferenceConfig::new(
            Arc::new(guard),
            llm_base_url,
            llm_api_key,
            downstream_url,
            flaws,
        );
        cfg.call_cap = call_cap;
        cfg.stream = stream;
        cfg.jwt_secret = Some(jwt_secret);
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vars_names_variables_not_values() {
        let vars = |k: &str| match k {
            "OPENAI_BASE_URL" => Some("http://127.0.0.1:1/v1".to_owned()),
            "OPENAI_API_KEY" => Some("sk-canary-canary-canary".to_owned()),
            "DOCS_API_URL" => Some("http://127.0.0.1:2".to_owned()),
            "JWT_SECRET" => Some("jwt-secret-jwt-secret-jwt-secret".to_owned()),
            "CONFAB_REFERENCE_MODE" => Some("vulnerable".to_owned()),
            _ => None,
        };
        let cfg = ReferenceConfig::from_vars(vars).expect("valid");
        assert_eq!(cfg.flaws, Flaws::all());
        assert_eq!(cfg.call_cap, DEFAULT_CALL_CAP);
        let dbg = format!("{cfg:?}");
        assert!(
            !dbg.contains("sk-canary") && !dbg.contains("jwt-secret-jwt"),
            "{dbg}"
        );

        let err = ReferenceConfig::from_vars(|k| {
            if k == "CONFAB_REFERENCE_MODE" {
                Some("sloppy".to_owned())
            } else {
                vars(k)
            }
        })
        .expect_err("bad mode");
        assert!(err.to_string().contains("CONFAB_REFERENCE_MODE"));
        let err = ReferenceConfig::from_vars(|k| if k == "JWT_SECRET" { None } else { vars(k) })
            .expect_err("missing");
        assert_eq!(err.to_string(), "JWT_SECRET is not set");
        let one = ReferenceConfig::from_vars(|k| match k {
            "CONFAB_REFERENCE_FLAWS" => Some("idor_read".to_owned()),
            _ => vars(k),
        })
        .expect("valid");
        assert_eq!(one.flaws, Flaws::only("idor_read").expect("known"));
    }
}
