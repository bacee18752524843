//! The command line as a report shows it: header values and URL credentials redacted, each
//! argument quoted for a POSIX shell.

use std::path::Path;

/// The command line as typed, with header values redacted (they often carry keys).
pub fn redacted_command(args: impl IntoIterator<Item = String>) -> String {
    let mut out = Vec::new();
    let mut redact_next = false;
    for (i, arg) in args.into_iter().enumerate() {
        let shown = if redact_next {
            redact_next = false;
            redact_header_value(&arg)
        } else if arg == "-H" || arg == "--header" {
            redact_next = true;
            arg
        } else if let Some(v) = arg.strip_prefix("--header=") {
            format!("--header={}", redact_header_value(v))
        } else if let Some(v) = arg.strip_prefix("-H").filter(|v| !v.is_empty()) {
            format!("-H{}", redact_header_value(v))
        } else if i == 0 {
            Path::new(&arg)
                .file_name()
                .map_or(arg.clone(), |f| f.to_string_lossy().into_owned())
        } else {
            crate::endpoint::redact::redact_urls(&arg).into_owned()
        };
        out.push(shell_quote(&shown));
    }
    out.join(" ")
}

fn redact_header_value(h: &str) -> String {
    match h.split_once(':') {
        Some((name, _)) => format!("{}: <redacted>", name.trim()),
        None => "<redacted>".to_string(),
    }
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,:/@%+".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
