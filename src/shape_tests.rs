//! The shape of the code, checked on every `cargo test` (and so `make test`):
//! the modules of `src/` depend on each other one way only (settings at the
//! bottom, the edge on top: no cycle in the graph of `crate::` paths), and no
//! function is longer than [`MAX_FN_LINES`] lines.
//!
//! The checks read the source files themselves with a small lexer: comments,
//! string and character literals are blanked first, so that a doc comment
//! naming a module above, or a brace in a string, counts for nothing. Each
//! file is one node (`src/gate_tests.rs` is `gate_tests`, `src/edge/io.rs` is
//! `edge::io`); a `crate::a::b` path, in a `use` or in code, is an edge to the
//! longest module it names. A function's length runs from the line of its
//! `fn` to the line of its closing brace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Longest function allowed, in lines.
pub const MAX_FN_LINES: usize = 80;

/// Functions allowed to be longer for now, by file and name: each entry must
/// still be too long (a stale entry fails the check), so the list only shrinks.
const KNOWN_LONG: &[(&str, &str)] = &[];

/// Module name → the modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The source with comments, strings and character literals replaced by
/// spaces (newlines kept, so line numbers stay right).
fn blank(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let wipe = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    while i < b.len() {
        let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let end = if b[i..].starts_with(b"//") {
            b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |n| i + n)
        } else if b[i..].starts_with(b"/*") {
            block_comment_end(b, i)
        } else if !ident_before && raw_string_start(&b[i..]).is_some() {
            let (open, hashes) = raw_string_start(&b[i..]).unwrap_or_default();
            let close: Vec<u8> = std::iter::once(b'"').chain(vec![b'#'; hashes]).collect();
            find(b, i + open, &close).map_or(b.len(), |n| n + close.len())
        } else if b[i] == b'"' {
            string_end(b, i + 1)
        } else if b[i] == b'\'' {
            match char_literal_end(b, i) {
                Some(end) => end,
                None => {
                    i += 1; // a lifetime
                    continue;
                }
            }
        } else {
            i += 1;
            continue;
        };
        wipe(&mut out, i, end);
        i = end;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    (from..b.len()).find(|&n| b[n..].starts_with(needle))
}

/// Where a (nested) block comment that opens at `i` ends.
fn block_comment_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if b[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// `r"`, `r#"`, `br##"`...: the length of the opening and the number of `#`.
fn raw_string_start(b: &[u8]) -> Option<(usize, usize)> {
    let rest = b.strip_prefix(b"b").unwrap_or(b);
    let rest = rest.strip_prefix(b"r")?;
    let hashes = rest.iter().take_while(|&&c| c == b'#').count();
    (rest.get(hashes) == Some(&b'"')).then_some((b.len() - rest.len() + hashes + 1, hashes))
}

/// Where a string whose contents start at `i` ends (after its closing quote).
fn string_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// Where a character literal opening at `i` ends; `None` for a lifetime (`'a`).
fn char_literal_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i + 1) == Some(&b'\\') {
        return find(b, i + 2, b"'").map(|n| n + 1);
    }
    // One character (of up to four bytes of UTF-8), then the closing quote.
    (2..=5)
        .find(|&n| b.get(i + n) == Some(&b'\''))
        .filter(|&n| std::str::from_utf8(&b[i + 1..i + n]).is_ok_and(|c| c.chars().count() == 1))
        .map(|n| i + n + 1)
}

/// The module a file under `src/` is (`None` for the crate root).
fn module_of(relative: &str) -> Option<String> {
    let path = relative.strip_suffix(".rs")?;
    let path = path.strip_suffix("/mod").unwrap_or(path);
    (path != "lib" && path != "main").then(|| path.replace('/', "::"))
}

/// Every path that follows `crate::` in blanked source, `use` groups
/// (`crate::{a, b::{c, d}}`) spelled out.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let used = use_tree(rest, "", &mut out);
        rest = &rest[used..];
    }
    out
}

/// Reads one use tree at the start of `text` under `prefix`, pushing every
/// path it names; returns how many bytes it read.
fn use_tree(text: &str, prefix: &str, out: &mut Vec<String>) -> usize {
    let mut path = prefix.to_string();
    let mut i = 0;
    let b = text.as_bytes();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) == Some(&b'{') {
            i += 1;
            loop {
                i += use_tree(&text[i..], &path, out);
                while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    return (i + 1).min(b.len());
                }
            }
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let ident = &text[start..i];
        if !ident.is_empty() && ident != "self" {
            if !path.is_empty() {
                path.push_str("::");
            }
            path.push_str(ident);
        }
        if text[i..].starts_with("::") {
            i += 2;
            continue;
        }
        if !path.is_empty() {
            out.push(path);
        }
        // `a as b`: the new name is no path.
        let after = text[i..].trim_start();
        if let Some(alias) = after.strip_prefix("as ") {
            let alias = alias.trim_start();
            let name = alias
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(alias.len());
            return text.len() - alias.len() + name;
        }
        return i;
    }
}

/// The module graph of these files (path under `src/`, contents).
fn module_graph(files: &[(String, String)]) -> Graph {
    let modules: BTreeSet<String> = files.iter().filter_map(|(p, _)| module_of(p)).collect();
    let mut graph = Graph::new();
    for (path, src) in files {
        let Some(me) = module_of(path) else {
            continue;
        };
        let deps = graph.entry(me.clone()).or_default();
        for used in crate_paths(&blank(src)) {
            let segments: Vec<&str> = used.split("::").collect();
            let target = (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|m| modules.contains(m));
            if let Some(target) = target.filter(|t| *t != me) {
                deps.insert(target);
            }
        }
    }
    graph
}

/// Every cycle of the graph, one per strongly connected part, each written
/// as the path that goes round it (`a -> b -> a`).
fn cycles(graph: &Graph) -> Vec<String> {
    // Which modules each module reaches.
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for start in graph.keys() {
        if reported.contains(start) || !reach(start).contains(start) {
            continue;
        }
        // The shortest way round, found breadth first.
        let mut came_from: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        'search: while let Some(m) = queue.pop_front() {
            for next in graph.get(&m).into_iter().flatten() {
                if next == start {
                    came_from.insert(start.clone(), m.clone());
                    break 'search;
                }
                if !came_from.contains_key(next) {
                    came_from.insert(next.clone(), m.clone());
                    queue.push_back(next.clone());
                }
            }
        }
        let mut round = vec![start.clone()];
        let mut at = came_from[start].clone();
        while at != *start {
            round.push(at.clone());
            at = came_from[&at].clone();
        }
        round.push(start.clone());
        round.reverse();
        // Its whole part: everything it reaches that reaches it back.
        let part: BTreeSet<String> = reach(start)
            .into_iter()
            .filter(|m| reach(m).contains(start))
            .collect();
        reported.extend(part.iter().cloned());
        out.push(format!(
            "{} (the cycle's whole part: {})",
            round.join(" -> "),
            part.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    out
}

/// Every function of a source file: name, first line (1-based), length in lines.
fn functions(src: &str) -> Vec<(String, usize, usize)> {
    let code = blank(src);
    let b = code.as_bytes();
    let line_of = |i: usize| code[..i].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("fn").map(|n| from + n) {
        from = at + 2;
        let word_before = at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_');
        if word_before || !b.get(at + 2).is_some_and(|c| c.is_ascii_whitespace()) {
            continue;
        }
        let name_start = at + 2 + code[at + 2..].len() - code[at + 2..].trim_start().len();
        let name_len = code[name_start..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(0);
        if name_len == 0 {
            continue; // `fn (` of a function pointer type
        }
        // The body opens at the first `{` outside parentheses and brackets;
        // a `;` there first means a declaration without a body.
        let mut depth = 0i32;
        let mut open = None;
        for (i, &c) in b.iter().enumerate().skip(name_start) {
            match c {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b';' if depth == 0 => break,
                b'{' if depth == 0 => {
                    open = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(open) = open else {
            continue;
        };
        let mut braces = 0;
        let close = (open..b.len()).find(|&i| {
            match b[i] {
                b'{' => braces += 1,
                b'}' => braces -= 1,
                _ => {}
            }
            braces == 0
        });
        let close = close.unwrap_or(b.len() - 1);
        let name = code[name_start..name_start + name_len].to_string();
        out.push((name, line_of(at), line_of(close) - line_of(at) + 1));
    }
    out
}

/// Functions over `limit` lines, as `file:line name (n lines)`, except those
/// in `allowed`; and the entries of `allowed` that are no longer too long.
fn too_long(
    files: &[(String, String)],
    limit: usize,
    allowed: &[(&str, &str)],
) -> (Vec<String>, Vec<String>) {
    let mut long = Vec::new();
    let mut still_long = BTreeSet::new();
    for (path, src) in files {
        for (name, line, lines) in functions(src) {
            if lines <= limit {
                continue;
            }
            let file = format!("src/{path}");
            if allowed.contains(&(file.as_str(), name.as_str())) {
                still_long.insert((file, name));
            } else {
                long.push(format!("{file}:{line} {name} ({lines} lines)"));
            }
        }
    }
    let stale = allowed
        .iter()
        .filter(|(f, n)| !still_long.contains(&(f.to_string(), n.to_string())))
        .map(|(f, n)| format!("{f} {n}"))
        .collect();
    (long, stale)
}

/// Every `.rs` file under `dir`, as (path relative to `root`, contents).
fn read_sources(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under src/");
            let text = std::fs::read_to_string(&path).expect("a UTF-8 source file");
            out.push((relative.to_string_lossy().replace('\\', "/"), text));
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_sources(&root, &root, &mut files);
    assert!(
        files.len() > 20,
        "only {} files found under src/",
        files.len()
    );
    files
}

#[test]
fn the_module_graph_of_src_has_no_cycle() {
    let graph = module_graph(&sources());
    // The check sees the real graph: the gate's known neighbours are there.
    assert!(graph["gate"].contains("store") && graph["control"].contains("gate"));
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "src/ has import cycles; make dependencies run one way (settings at the bottom, \
         the edge on top):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn no_function_in_src_is_longer_than_80_lines() {
    let (long, stale) = too_long(&sources(), MAX_FN_LINES, KNOWN_LONG);
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines:\n  {}",
        long.join("\n  ")
    );
    assert!(
        stale.is_empty(),
        "no longer too long, remove from KNOWN_LONG: {}",
        stale.join(", ")
    );
}

// ---- the checker on inputs made to fail ---------------------------------------

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect()
}

#[test]
fn a_cycle_is_found_and_printed_whatever_the_spelling_of_the_paths() {
    let bad = files(&[
        ("lib.rs", "pub mod a; pub mod b; pub mod c; pub mod edge;"),
        ("a.rs", "use crate::b::Thing;\nfn f() {}"),
        ("b.rs", "use crate::{c::{self, More}, a as edge};"),
        ("c.rs", "fn g() -> u8 { crate::a::f(); 1 }"),
        ("edge/mod.rs", "mod io;"),
        ("edge/io.rs", "use crate::edge::Other; use crate::a;"),
    ]);
    let graph = module_graph(&bad);
    assert_eq!(
        graph["b"],
        BTreeSet::from(["a".to_string(), "c".to_string()])
    );
    assert_eq!(
        graph["edge::io"],
        BTreeSet::from(["a".into(), "edge".into()])
    );
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("a -> b -> a"), "{}", found[0]);
    assert!(found[0].ends_with("part: a, b, c)"), "{}", found[0]);
}

#[test]
fn comments_strings_and_lifetimes_make_no_edges() {
    let fine = files(&[
        ("a.rs", "//! Used by [`crate::b`].\nfn f<'a>(x: &'a str) -> char { '{' }"),
        (
            "b.rs",
            "use crate::a;\n/// see crate::a\nconst S: &str = \"crate::b\";\nconst R: &str = r#\"crate::b\"#;\n/* crate::b */",
        ),
    ]);
    let graph = module_graph(&fine);
    assert!(graph["a"].is_empty(), "{graph:?}");
    assert!(cycles(&graph).is_empty());
    // a raw string naming `a` does not hide a real use after it
    let one_way = files(&[
        ("a.rs", "const R: &str = r\"x\"; use crate::b::T;"),
        ("b.rs", ""),
    ]);
    assert_eq!(
        module_graph(&one_way)["a"],
        BTreeSet::from(["b".to_string()])
    );
}

#[test]
fn a_function_over_the_limit_is_named_and_braces_in_strings_do_not_count() {
    let body = |n: usize| "    let x = 1;\n".repeat(n);
    let src = format!(
        "fn ok() {{\n{}}}\n\nimpl T {{\n    pub(crate) async fn too_long(&self) -> Result<(), [u8; 2]> {{\n        let s = \"}}}}\";\n{}    }}\n    fn declared(&self);\n}}\n",
        body(78),
        body(78),
    );
    let fns = functions(&src);
    let names: Vec<_> = fns
        .iter()
        .map(|(n, l, len)| (n.as_str(), *l, *len))
        .collect();
    assert_eq!(names, [("ok", 1, 80), ("too_long", 83, 81)]);
    let (long, stale) = too_long(&files(&[("x.rs", &src)]), 80, &[]);
    assert_eq!(long, ["src/x.rs:83 too_long (81 lines)"]);
    assert!(stale.is_empty());
    // an allowed entry hides it; one that is no longer long is reported stale
    let (long, stale) = too_long(
        &files(&[("x.rs", &src)]),
        80,
        &[("src/x.rs", "too_long"), ("src/x.rs", "ok")],
    );
    assert!(long.is_empty());
    assert_eq!(stale, ["src/x.rs ok"]);
    // function pointer types and closures are not functions
    assert!(functions("type F = fn(u8) -> u8;\nlet c = |x| { x };").is_empty());
}
