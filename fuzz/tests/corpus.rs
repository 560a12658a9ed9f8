//! Every input of the committed corpus (`fuzz/corpus/`, what `make fuzz` found and minimised)
//! through its fuzz target: the targets compile with the workspace and hold on every run of
//! `make test`, not only when someone fuzzes.

use std::path::Path;

/// Runs each file of `fuzz/corpus/{target}` through `check`; returns how many there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("the corpus {}: {e}", dir.display()));
    let mut inputs = 0;
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{target}'s corpus: {e}"))
            .path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check(&data);
        inputs += 1;
    }
    inputs
}

#[test]
fn the_parse_body_corpus_holds() {
    assert!(replay("parse_body", livecount_fuzz::parse_body) >= 100);
}

#[test]
fn the_stream_record_corpus_holds() {
    assert!(replay("stream_record", livecount_fuzz::stream_record) >= 100);
}
