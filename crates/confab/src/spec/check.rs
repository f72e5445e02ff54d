//! `confab check-spec`: every problem of a spec, each with its file and line.
