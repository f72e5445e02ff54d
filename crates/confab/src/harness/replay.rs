//! Replay files: one finding's case, enough to rerun its whole exchange against the same spec.

use super::exchange::Exchange;
use super::plan::Options;
use super::run::{CampaignError, Run, run};
use crate::generators::case::CaseRecipe;
use crate::spec::Spec;
use crate::triage::Report;
use confab_target::BuildRouter;
use tokio_util::sync::CancellationToken;

/// A replay file: enough to rerun one exchange against the same spec.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ReplayFile {
    /// The confab version that wrote it.
    pub confab_version: String,
    /// The spec the campaign ran (the default for `confab replay`).
    pub spec: String,
    /// The finding's fingerprint: whether it still fails is decided by it.
    pub fingerprint: String,
    /// The campaign's seed (secrets and markers are made anew; the case is the same).
    pub seed: u64,
    /// The case's id in the campaign (its nonce and token are derived from it).
    pub case_id: u64,
    /// The shrunk case.
    pub recipe: CaseRecipe,
}

pub(super) fn write_replay(
    run: &Run,
    dir: &std::path::Path,
    fingerprint: &str,
    ex: &Exchange,
) -> Result<String, CampaignError> {
    let name: String = fingerprint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let path = dir.join(format!("{name}.json"));
    let file = ReplayFile {
        confab_version: env!("CARGO_PKG_VERSION").to_owned(),
        spec: run.spec.origin.clone(),
        fingerprint: fingerprint.to_owned(),
        seed: run.seed,
        case_id: ex.plan.id,
        recipe: ex.plan.recipe.clone(),
    };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
        std::fs::write(&path, text)
    };
    write().map_err(|source| CampaignError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path.display().to_string())
}

/// Reruns the case of a replay file against the spec's target; the report holds what it
/// shows now (baselines included).
pub async fn replay(
    spec: Spec,
    file: &ReplayFile,
    served: Option<BuildRouter>,
    cancel: Option<CancellationToken>,
) -> Result<Report, CampaignError> {
    let options = Options {
        cases: 0,
        seed: file.seed,
        concurrency: 1,
        shrink_budget: 0,
        explicit: vec![(file.case_id, file.recipe.clone())],
        cancel,
        ..Options::default()
    };
    run(spec, options, served).await
}
