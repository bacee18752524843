//! `loadchain completions` and `loadchain man`: generated from the clap definition, printed on
//! stdout, usage errors exit 2.

use crate::common::loadchain;

/// Expects exit 2 and `needle` on stderr.
fn refused(args: &[&str], needle: &str) {
    let out = loadchain().args(args).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains(needle),
        "{args:?}: {needle:?} not in {stderr}"
    );
}

#[test]
fn completions_print_a_script_for_each_shell_naming_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = loadchain().args(["completions", shell]).assert().success();
        let script = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert!(script.len() > 1000, "{shell}: {} bytes", script.len());
        for sub in ["sweep", "run", "report", "mock", "man"] {
            assert!(script.contains(sub), "{shell}: {sub} missing");
        }
        assert!(out.get_output().stderr.is_empty());
    }
    refused(&["completions", "tcsh"], "tcsh");
}

#[test]
fn man_prints_roff_pages_for_the_tool_and_each_subcommand() {
    let out = loadchain().arg("man").assert().success();
    let page = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(page.contains(".TH loadchain 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in ["sweep", "run", "report", "completions"] {
        assert!(page.contains(&format!("loadchain\\-{sub}(1)")), "{sub}");
    }
    let out = loadchain().args(["man", "run"]).assert().success();
    let page = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(page.contains(".TH loadchain-run 1"), "{page}");
    assert!(page.contains("resume"), "{page}");
    refused(&["man", "swep"], "sweep, run");
}
