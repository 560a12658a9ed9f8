//! README.md, BENCHMARKS.md and docs/ name only what exists: every `make` target, `livecount`
//! command and flag, script, and environment variable or constant they mention.

// Test helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::expect_used)]

use clap::CommandFactory;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md, BENCHMARKS.md and every page of docs/, with their names.
fn pages() -> Vec<(String, String)> {
    let mut paths = vec![root().join("README.md"), root().join("BENCHMARKS.md")];
    let docs = std::fs::read_dir(root().join("docs")).expect("docs/");
    paths.extend(
        docs.filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "md")),
    );
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a page");
            (p.display().to_string(), text)
        })
        .collect()
}

/// The words that follow `prefix` in `text` (a word: letters, digits, `-` and `_`).
fn words_after<'a>(text: &'a str, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.match_indices(prefix).map(move |(at, _)| {
        let rest = &text[at + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        &rest[..end]
    })
}

/// Every source file's text: code, infrastructure and scripts (where a variable must be read).
fn sources() -> String {
    fn walk(dir: &Path, out: &mut String) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !["target", "node_modules", "cdk.out", "dist", ".terraform"].contains(&&*name) {
                    walk(&path, out);
                }
            } else if name == "Makefile"
                || ["rs", "ts", "tf", "sh", "json", "js", "mjs", "py"]
                    .iter()
                    .any(|x| name.ends_with(&format!(".{x}")))
            {
                out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let mut out = String::new();
    for dir in [
        "core",
        "ingest",
        "edge",
        "aggregate",
        "read",
        "api",
        "local",
        "cli",
        "sim",
        "bench",
        "tests",
        "fuzz",
        "infra",
        "scripts",
        "clients",
    ] {
        walk(&root().join(dir).join(""), &mut out);
    }
    out.push_str(&std::fs::read_to_string(root().join("Makefile")).unwrap_or_default());
    out
}

/// The inline code spans of `text` (between single backticks, outside fenced blocks).
fn code_spans(text: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            spans.extend(line.split('`').skip(1).step_by(2));
        }
    }
    spans
}

/// Whether `word` reads as an environment variable or a constant: capitals, digits and `_`,
/// with at least one `_` (`AWS_REGION`, `COUNT_MAX_AGE_MS`).
fn constant_name(word: &str) -> bool {
    word.contains('_')
        && word.starts_with(|c: char| c.is_ascii_uppercase())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Names of DynamoDB's, Lambda's and the AWS CLI's own that the docs quote, which livecount's
/// sources need not spell.
const AWS_WORDS: &[&str] = &["ALL_OLD", "NEW_AND_OLD_IMAGES", "TRIM_HORIZON", "AWS_IAM"];

#[test]
fn every_make_target_command_and_variable_the_docs_name_exists() {
    let makefile = std::fs::read_to_string(root().join("Makefile")).expect("Makefile");
    let targets: Vec<&str> = makefile
        .lines()
        .filter_map(|l| l.split_once(':').map(|(t, _)| t))
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    let cli = livecount_cli::Cli::command();
    let commands: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
    let sources = sources();
    let mut missing = Vec::new();
    for (page, text) in pages() {
        for target in words_after(&text, "`make ") {
            if !targets.contains(&target) {
                missing.push(format!("{page}: make {target}"));
            }
        }
        for command in words_after(&text, "`livecount ") {
            if !commands.contains(&command) {
                missing.push(format!("{page}: livecount {command}"));
            }
        }
        for variable in words_after(&text, "LIVECOUNT_") {
            let name = format!("LIVECOUNT_{variable}");
            if !variable.is_empty() && !sources.contains(&format!("\"{name}\"")) {
                missing.push(format!("{page}: {name}"));
            }
        }
    }
    for (page, text) in pages() {
        for span in code_spans(&text) {
            let words: Vec<&str> = span.split_whitespace().collect();
            // `livecount dev --virtual-shards K`: the flags of the command it names.
            if let ["livecount", command, rest @ ..] = words.as_slice()
                && let Some(sub) = cli.find_subcommand(command)
            {
                for flag in rest.iter().filter_map(|w| w.strip_prefix("--")) {
                    let flag = flag.split('=').next().unwrap_or(flag);
                    let known = sub.get_arguments().any(|a| {
                        a.get_long() == Some(flag)
                            || a.get_all_aliases().is_some_and(|all| all.contains(&flag))
                    }) || ["help", "version"].contains(&flag);
                    if !known {
                        missing.push(format!("{page}: livecount {command} --{flag}"));
                    }
                }
            }
            // `scripts/smoke.sh`: the file.
            for word in &words {
                if let Some(at) = word.find("scripts/") {
                    let path = word[at..].trim_end_matches(|c: char| ",.;:)".contains(c));
                    let exists = if path.ends_with('/') {
                        root().join(path).is_dir()
                    } else {
                        root().join(path).is_file()
                    };
                    if !exists {
                        missing.push(format!("{page}: {path}"));
                    }
                }
            }
            // `AWS_ENDPOINT_URL_DYNAMODB`, `SCALE_SECONDS=40`: a name some source spells.
            let name = span.split('=').next().unwrap_or(span);
            if constant_name(name) && !AWS_WORDS.contains(&name) && !sources.contains(name) {
                missing.push(format!("{page}: {name}"));
            }
        }
    }
    assert!(missing.is_empty(), "named but missing: {missing:#?}");
}

/// The fenced code block of `language` in `text` that contains `marker`.
fn code_block<'a>(text: &'a str, language: &str, marker: &str) -> Option<&'a str> {
    let fence = format!("```{language}\n");
    text.match_indices(&fence).find_map(|(at, _)| {
        let body = &text[at + fence.len()..];
        let body = &body[..body.find("```")?];
        body.contains(marker).then_some(body)
    })
}

/// docs/deploy.md's token functions, in JavaScript (node) and Python (python3), run as they
/// stand on the page with the clock at 0, sign the known vector the Rust signer and verifier are
/// tested with (`core/src/token.rs`): secret `0123456789abcdef`, stream `s`, session `a`,
/// expiry 1.
#[test]
fn the_token_functions_deploy_md_gives_sign_the_known_vector() {
    const VECTOR: &str = "v1.1.ZZcc13Dt9fHJl8CqMGDcsfkziWQi2KdMP9DJtoC7kCo";
    let deploy = std::fs::read_to_string(root().join("docs/deploy.md")).expect("deploy.md");
    let dir = std::env::temp_dir().join(format!("livecount-doc-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let js = code_block(&deploy, "js", "function livecountToken").expect("the Node function");
    let python = code_block(&deploy, "python", "def livecount_token").expect("the Python function");
    let cases = [
        (
            "node",
            "token.mjs",
            format!(
                "{js}\nDate.now = () => 0;\nconsole.log(livecountToken('0123456789abcdef', 's', 'a', 1));\n"
            ),
        ),
        (
            "python3",
            "token.py",
            format!(
                "{python}\nimport time\ntime.time = lambda: 0\nprint(livecount_token(b'0123456789abcdef', 's', 'a', 1))\n"
            ),
        ),
    ];
    for (program, file, source) in cases {
        let path = dir.join(file);
        std::fs::write(&path, source).expect("the script");
        let output = std::process::Command::new(program)
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("{program} could not run: {e}"));
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(printed.trim(), VECTOR, "{program}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
