//! The layering test: imports go one way, `cli -> ops -> {bank, detect, restore} -> archive ->
//! leaves` (every other top-level module, `records`, `fs`, `config`, `host`, `error`, ... is a
//! leaf; leaves may use each other). It reads every file under `src/`, finds each `crate::X`
//! path (a grouped `crate::{X, Y}` counts each name) and fails naming every file whose import
//! goes up the layers, or sideways between bank, detect and restore, the way the docs test
//! checks the CLI against the reference.

use std::path::{Path, PathBuf};

/// How high a top-level module sits; a module may import only lower ones (or itself, or, for a
/// leaf, another leaf).
fn rank(module: &str) -> u8 {
    match module {
        "cli" => 4,
        "ops" => 3,
        "bank" | "detect" | "restore" => 2,
        "archive" => 1,
        _ => 0,
    }
}

fn allowed(from: &str, to: &str) -> bool {
    from == to || rank(to) < rank(from) || (rank(from) == 0 && rank(to) == 0)
}

/// The top-level module a file under `src/` belongs to (`None` for the crate root files).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        name => Some(name.trim_end_matches(".rs").to_string()),
    }
}

/// Every top-level module `text` names through `crate::`.
fn imported(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Only the names at the group's top level (a nested `a::{b, c}` is a's).
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.push(ident(group[start..i].trim()));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(ident(group[start..i].trim()));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.push(ident(rest));
        }
    }
    found.retain(|name| !name.is_empty() && name != "self");
    found
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `file: from -> to` for every import of `text` (a file of module `from`) that breaks the
/// layers.
fn violations(file: &str, from: &str, text: &str) -> Vec<String> {
    let mut bad: Vec<String> = imported(text)
        .into_iter()
        .filter(|to| !allowed(from, to))
        .map(|to| format!("{file}: {from} -> {to}"))
        .collect();
    bad.dedup();
    bad
}

#[test]
fn imports_go_one_way_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 50, "read only {} files", files.len());
    let mut bad = Vec::new();
    for path in &files {
        let relative = path.strip_prefix(&src).unwrap();
        let Some(from) = module_of(relative) else {
            continue;
        };
        let text = std::fs::read_to_string(path).unwrap();
        bad.extend(violations(&relative.display().to_string(), &from, &text));
    }
    assert!(
        bad.is_empty(),
        "imports that go up or sideways cli -> ops -> {{bank, detect, restore}} -> archive -> \
         leaves:\n{}",
        bad.join("\n")
    );
}

/// `text` with `c::` spelled `crate::` (so this file's own examples are no imports).
fn c(text: &str) -> String {
    text.replace("c::", "crate::")
}

#[test]
fn the_check_flags_upward_and_sideways_imports_and_passes_downward_ones() {
    let up = c("use c::ops::backup;\nuse c::{config::Limits, detect::{a, b}};");
    assert_eq!(
        violations("archive/x.rs", "archive", &up),
        [
            "archive/x.rs: archive -> ops",
            "archive/x.rs: archive -> detect"
        ]
    );
    assert_eq!(
        violations("bank/x.rs", "bank", &c("x = c::restore::plan();")),
        ["bank/x.rs: bank -> restore"]
    );
    assert_eq!(
        violations("records/x.rs", "records", &c("use c::archive::Limits;")),
        ["records/x.rs: records -> archive"]
    );
    let down = c("use c::{archive::read, records::hex, fs::atomic};\nuse c::ops::x;");
    assert!(violations("cli/x.rs", "cli", &down).is_empty());
    assert!(violations("fs/walk.rs", "fs", &c("use c::records::hex;")).is_empty());
    assert!(violations("ops/x.rs", "ops", &c("statectl::cli::run; myc::cli")).is_empty());
}
