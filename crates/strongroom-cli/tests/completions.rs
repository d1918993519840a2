//! `strongroom completions SHELL`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

fn script(shell: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["completions", shell])
        .output()
        .unwrap()
}

#[test]
fn bash_zsh_and_fish_scripts_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let o = script(shell);
        assert!(o.status.success(), "{shell}: {o:?}");
        let text = String::from_utf8(o.stdout).unwrap();
        for sub in ["import", "revoke-prefix", "audit"] {
            assert!(text.contains(sub), "{shell} script does not mention {sub}");
        }
    }
    let bash = String::from_utf8(script("bash").stdout).unwrap();
    assert!(bash.contains("complete -F"), "not a bash completion script");
}

#[test]
fn other_shells_are_a_usage_error() {
    assert_eq!(script("tcsh").status.code(), Some(2));
}
