//! confab's integration tests: one test binary (as ripgrep has), a module per area. Shared
//! fixtures live in [`common`]. Tests that need an optional tool (python3 with Flask or PyJWT,
//! chromium) skip with a message when it is missing, unless `CONFAB_REQUIRE_TOOLS=1` (CI sets
//! it), where a missing tool fails the test.

mod capability;
mod cli_ci;
mod cli_interrupt;
mod cli_verify;
mod common;
mod dialects;
mod flask_campaigns;
mod fuzz_corpus;
mod gen_llm;
mod gen_llm_outputs;
mod gen_llm_prompts;
mod guard_tokens;
mod harness_smoke;
mod in_process;
mod known_vectors;
mod log_attribution;
mod precision;
mod precision_rules;
mod provenance;
mod readme_walkthrough;
mod reference_campaigns;
mod reference_target;
mod report_html;
mod report_sarif;
mod scrub_cli;
mod scrubber;
mod testing_api;
mod webapp_campaigns;
