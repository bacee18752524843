//! `sweep --exec`: the flags that shape an HTTP call, which a local program never makes.

/// Flags refused next to `sweep --exec` (exit 2): where and how requests go (`--target`,
/// `--api`, `--model`, headers, body, TLS, HTTP/2, streaming, redirects), the chain's shape
/// (the program is the whole chain) and `--warmup` (there is no pool to warm).
pub const SWEEP_EXEC_CONFLICTS: &[&str] = &[
    "target",
    "api",
    "model",
    "api_key_env",
    "headers",
    "method",
    "body",
    "insecure",
    "http2",
    "stream",
    "follow_redirects",
    "chain",
    "steps",
    "warmup",
];
