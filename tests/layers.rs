//! The layer check: modules of `src/` point one way (docs/architecture.md).
//!
//! Every `.rs` file under `src/` belongs to a top-level module (`src/pulse/answers.rs` to
//! `pulse`). A file may name `crate::<other>` only when `<other>` sits below its own module in
//! [`LAYERS`]. References are found in paths and `use` lines, brace groups included
//! (`use crate::{config::Settings, storage::Store}`); comments and string literals are
//! ignored. A failure names the file and line of each upward reference.

use std::fs;
use std::path::{Path, PathBuf};

/// Bottom to top. Modules on one row are peers that must not refer to each other.
const LAYERS: &[&[&str]] = &[
    &["clock", "memory", "telemetry", "tls"],
    &["domain"],
    &["config"],
    &["storage"],
    &["slack"],
    &["digest"],
    &["pulse"],
    &["scheduler"],
    &["http"],
    &["startup"],
    &["demo"],
    &["cli"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

/// One reference that points up (or sideways to a peer).
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    line: usize,
    from: String,
    to: String,
}

/// The text with comments and the contents of string and char literals blanked out (line
/// breaks kept, so line numbers stay right).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !is_ident(&chars, i) {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let closing: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let start = j + 1;
            let rest: String = chars[start..].iter().collect();
            let len = rest
                .find(&closing)
                .map_or(rest.len(), |at| at + closing.len());
            let end = start + rest[..len].chars().count();
            for &ch in &chars[i..end.min(chars.len())] {
                out.push(blank(ch));
            }
            i = end;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            // 'x' closes at i + 2; an escape ('\n', '\'', '\u{…}') at the next quote after i + 2.
            let close = if next == Some('\\') {
                (i + 3..chars.len())
                    .find(|&k| chars[k] == '\'')
                    .unwrap_or(chars.len() - 1)
            } else {
                i + 2
            };
            for &ch in &chars[i..=close] {
                out.push(blank(ch));
            }
            i = close + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// `'x'` or `'\n'` (a char literal), not `'a` (a lifetime).
fn is_char_literal(chars: &[char], i: usize) -> bool {
    matches!(
        (chars.get(i + 1), chars.get(i + 2)),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

/// The top-level modules named after `crate::` in `code`, each with its line.
fn references(code: &str) -> Vec<(usize, String)> {
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(pos) = code[from..].find("crate::") {
        let at = from + pos;
        from = at + "crate::".len();
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `mycrate::`
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            // A brace group: its top-level items, split at commas outside nested braces.
            let mut depth = 0;
            let mut item_start = 0;
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        push_item(
                            &mut found,
                            &group[item_start..k],
                            line_of(from + 1 + item_start),
                        );
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        push_item(
                            &mut found,
                            &group[item_start..k],
                            line_of(from + 1 + item_start),
                        );
                        item_start = k + 1;
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((line_of(at), name));
            }
        }
    }
    found
}

fn push_item(found: &mut Vec<(usize, String)>, item: &str, line: usize) {
    let leading = item.len() - item.trim_start().len();
    let line = line + item[..leading].matches('\n').count();
    let name: String = item
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if !name.is_empty() && name != "self" {
        found.push((line, name));
    }
}

/// The references in `text` (a file of top-level module `module`) that point up or sideways.
fn violations(module: &str, text: &str) -> Vec<Violation> {
    let own = rank(module);
    references(&code_only(text))
        .into_iter()
        .filter(|(_, to)| to != module)
        .filter_map(|(line, to)| {
            let theirs = rank(&to)?;
            (own.is_none_or(|own| theirs >= own)).then(|| Violation {
                line,
                from: module.to_string(),
                to,
            })
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/pulse/answers.rs` → `pulse`; `src/startup.rs` → `startup`; `None` for lib.rs and main.rs.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        name => Some(name.trim_end_matches(".rs").to_string()),
    }
}

#[test]
fn no_module_refers_to_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let Some(module) = top_module(&src, file) else {
            continue;
        };
        if rank(&module).is_none() {
            problems.push(format!(
                "{}: the top-level module `{module}` has no place in LAYERS (tests/layers.rs); add it where it belongs",
                file.display()
            ));
            continue;
        }
        let text = fs::read_to_string(file).expect("read file");
        for v in violations(&module, &text) {
            problems.push(format!(
                "{}:{}: `{}` refers to `crate::{}`, a layer above it (or a peer)",
                file.strip_prefix(src.parent().unwrap())
                    .unwrap_or(file)
                    .display(),
                v.line,
                v.from,
                v.to
            ));
        }
    }
    assert!(
        files.len() > 20,
        "expected the crate's files, found {}",
        files.len()
    );
    assert!(
        problems.is_empty(),
        "modules must point one way (bottom to top: {:?}):\n{}",
        LAYERS,
        problems.join("\n")
    );
}

#[test]
fn the_check_finds_upward_references_in_paths_uses_and_brace_groups() {
    let text = "use crate::storage::Store;\n\
                use crate::{clock::Clock,\n    http::error::ApiError};\n\
                fn f() { crate::scheduler::tick(); }\n";
    assert_eq!(
        violations("pulse", text),
        vec![
            Violation {
                line: 3,
                from: "pulse".into(),
                to: "http".into()
            },
            Violation {
                line: 4,
                from: "pulse".into(),
                to: "scheduler".into()
            },
        ]
    );
}

#[test]
fn the_check_ignores_comments_strings_and_the_module_itself() {
    let text = "//! See [`crate::http`].\n\
                /* crate::cli */ // crate::startup\n\
                const S: &str = \"crate::http\";\n\
                const R: &str = r#\"crate::http \"quoted\"\"#;\n\
                const C: char = '\"';\n\
                fn f<'a>(x: &'a str) -> &'a str { crate::pulse::g(x) }\n";
    assert_eq!(violations("pulse", text), vec![]);
}

#[test]
fn peers_may_not_refer_to_each_other() {
    assert_eq!(
        violations("clock", "use crate::telemetry::init_logging;"),
        vec![Violation {
            line: 1,
            from: "clock".into(),
            to: "telemetry".into()
        }]
    );
}
