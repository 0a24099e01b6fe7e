//! `--format github` prints workflow commands. No file name or message may end a command and
//! start another (a newline followed by `::warning`), and GitHub must read back exactly the
//! text we meant: escaped as its runner unescapes (`%25`, `%0D`, `%0A`; and `%3A`, `%2C` in
//! properties). Cases: RULEPACK_FUZZ_CASES (default 2000).

mod common;

use common::fuzz::{self, NON_ASCII, Rng};
use rulepack::diag::{Code, Diagnostic, render_github};
use rulepack::source::SourceMap;

/// What GitHub's runner does to a property value or message.
fn unescape(s: &str) -> String {
    s.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

/// Splits `::error file=F,line=L,col=C::MSG` into F and MSG, as the runner does: the property
/// ends at the first `,` and the message starts after the second `::`.
fn parse(line: &str) -> (String, String) {
    let rest = line.strip_prefix("::error file=").expect(line);
    let (file, rest) = rest.split_once(',').expect(line);
    let (_, msg) = rest.split_once("::").expect(line);
    (unescape(file), unescape(msg))
}

fn one(path: &str, message: &str) -> String {
    let d = Diagnostic::error(Code::Io, message).in_file(path);
    render_github(&d, &SourceMap::default())
}

#[test]
fn a_file_name_cannot_forge_a_workflow_command() {
    let path = "rules/x\n::warning file=a.yml::owned,%0A.yml";
    let line = one(path, "cannot read\r\n::error::forged");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(!line.contains("\n::"), "{line}");
    let (file, msg) = parse(&line);
    assert_eq!(file, path);
    assert_eq!(msg, "R001: cannot read\r\n::error::forged");
}

#[test]
fn generated_names_and_messages_read_back_exactly() {
    const PIECES: &[&str] = &[
        "\n",
        "\r",
        "\r\n",
        "::",
        ":",
        ",",
        "%",
        "%0A",
        "%25",
        "::warning ",
        "file=",
        "line=",
        "a",
        "/",
        " ",
        "=",
    ];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let n = fuzz::cases(2000);
    for _ in 0..n {
        let mut text = || {
            (0..1 + rng.below(8))
                .map(|_| {
                    if rng.below(4) == 0 {
                        *rng.pick(NON_ASCII)
                    } else {
                        *rng.pick(PIECES)
                    }
                })
                .collect::<String>()
        };
        let (path, message) = (text(), text());
        let line = one(&path, &message);
        assert_eq!(line.lines().count(), 1, "{line:?}");
        let (file, msg) = parse(&line);
        assert_eq!(file, path, "{line:?}");
        assert_eq!(msg, format!("R001: {message}"), "{line:?}");
    }
    println!("github format: {n} generated names and messages, all read back exactly");
}
