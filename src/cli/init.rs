//! `confab init`: writes a commented spec skeleton (optionally with `[[endpoint]]` entries taken
//! from an OpenAPI 3 document, JSON or YAML). `confab check-spec`: says everything that keeps a
//! spec from scanning, each problem with file:line: key.

use confab::spec::check::check;
use confab::spec::openapi::{Include, default_endpoints, read_openapi, skeleton};
use confab::spec::{Spec, parse_errors};
use std::path::PathBuf;
use std::process::ExitCode;

/// The options of `confab init`.
#[derive(clap::Args)]
pub(crate) struct InitArgs {
    /// Where to write the spec.
    #[arg(long, default_value = "confab.toml")]
    pub(crate) out: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub(crate) force: bool,
    /// Fill the endpoints from this OpenAPI 3 document (JSON or YAML).
    #[arg(long, value_name = "FILE")]
    pub(crate) openapi: Option<PathBuf>,
    /// With --openapi: also the operations that take no credentials.
    #[arg(long)]
    pub(crate) include_public: bool,
    /// With --openapi: also DELETE operations (a scan would delete data).
    #[arg(long)]
    pub(crate) include_destructive: bool,
}

/// The options of `confab check-spec`.
#[derive(clap::Args)]
pub(crate) struct CheckSpecArgs {
    /// The spec to check.
    pub(crate) file: PathBuf,
}

/// Writes the skeleton: exit 0 when written, 2 when the OpenAPI document cannot be used or
/// the file cannot be written (or exists, without `--force`).
pub(crate) fn init(args: InitArgs) -> ExitCode {
    let (endpoints, origin, public) = match &args.openapi {
        None => (default_endpoints(), None, Vec::new()),
        Some(path) => match read_openapi(
            path,
            Include {
                public: args.include_public,
                destructive: args.include_destructive,
            },
        ) {
            Ok((e, public)) => (e, Some(path.display().to_string()), public),
            Err(e) => return super::fail(&format!("init: {}", path.display()), &e),
        },
    };
    let text = skeleton(&endpoints, origin.as_deref(), &public);
    // A skeleton that does not parse would be confab's bug; say so rather than write it.
    if let Err(e) = Spec::parse(
        &text,
        &args.out.display().to_string(),
        std::path::Path::new("."),
    ) {
        return super::fail("init: the generated spec is invalid (a confab bug)", &e);
    }
    let open = if args.force {
        std::fs::File::create(&args.out)
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&args.out)
    };
    let result = open.and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
    match result {
        Ok(()) => {
            eprintln!(
                "confab: wrote {} ({} endpoint(s)). Edit the lines marked CHANGE, then: \
                 confab check-spec {0} && confab scan --spec {0}",
                args.out.display(),
                endpoints.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => super::fail(
            &format!("init: {}", args.out.display()),
            &"exists; pass --force to overwrite it, or --out to write elsewhere",
        ),
        Err(e) => super::fail(&format!("init: {}", args.out.display()), &e),
    }
}

/// Checks a spec: every problem on stderr as `error:`/`warning: file:line: key: message`; exit
/// 0 when nothing keeps it from scanning (warnings allowed), 2 otherwise.
pub(crate) fn check_spec(args: CheckSpecArgs) -> ExitCode {
    let spec = match Spec::load(&args.file) {
        Ok(s) => s,
        Err(first) => {
            // A spec that does not parse: every problem of the text at once, where there is
            // text to parse again; else the one error.
            let origin = args.file.display().to_string();
            let mut all = std::fs::read_to_string(&args.file)
                .map(|text| parse_errors(&text, &origin))
                .unwrap_or_default();
            if all.is_empty() {
                all.push(first);
            }
            for e in &all {
                eprintln!("error: {e}");
            }
            eprintln!("confab: check-spec: {} problem(s)", all.len());
            return ExitCode::from(2);
        }
    };
    let problems = check(&spec);
    let errors = problems.iter().filter(|p| p.error).count();
    for p in &problems {
        let label = if p.error { "error" } else { "warning" };
        eprintln!("{label}: {}", p.detail);
    }
    if errors > 0 {
        eprintln!(
            "confab: check-spec: {errors} problem(s), {} warning(s)",
            problems.len() - errors
        );
        ExitCode::from(2)
    } else {
        println!(
            "{}: ok ({} endpoint(s), {} principal(s){})",
            args.file.display(),
            spec.endpoints.len(),
            spec.principals.len(),
            if problems.is_empty() {
                String::new()
            } else {
                format!(", {} warning(s)", problems.len())
            }
        );
        ExitCode::SUCCESS
    }
}
