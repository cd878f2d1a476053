//! The house's shape, checked (issue 19): every file of `src/` belongs to a layer, and
//! may import only from its own layer or the ones below; and no two files import each
//! other, directly or around a circle. The layers, from the bottom:
//!
//! | layer | files |
//! | --- | --- |
//! | leaves | error, query, redact, access_log, file_type, representation, headers, route_table, clock, demo |
//! | config | config/ |
//! | engines | storage/, auth/, media/, cache/, cluster/ (the client: ring, signatures, fills, purges), metrics, eager/queue |
//! | http | http/ (envelope, exchange, delivery, presentation) |
//! | services | services |
//! | fetch | fetch/ (originals and derived results: owner or local, plan, obtain, write back) |
//! | handlers | routes/, front/, admin, eager/worker |
//! | hosts | gate, proxy, lane |
//! | process | server, tls/, header_deadline, drain, logging, seed/, cli, lib, main |
//!
//! An import is any `crate::` path in code (comments aside), a `super::` path, and, in
//! a `mod.rs`, a path through one of its own child modules. A failure names the file,
//! the import and the rule it breaks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of a module path (`cache::tiers`), lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaves",
        &[
            "error",
            "query",
            "redact",
            "access_log",
            "file_type",
            "representation",
            "headers",
            "route_table",
            "clock",
            "demo",
        ],
    ),
    ("config", &["config"]),
    (
        "engines",
        &[
            "storage",
            "auth",
            "media",
            "cache",
            "cluster",
            "metrics",
            "rate_limit",
            "eager::queue",
        ],
    ),
    ("http", &["http"]),
    ("services", &["services"]),
    ("fetch", &["fetch"]),
    (
        "handlers",
        &["routes", "front", "admin", "eager::worker", "eager"],
    ),
    ("hosts", &["gate", "proxy", "lane"]),
    (
        "process",
        &[
            "server",
            "tls",
            "header_deadline",
            "drain",
            "logging",
            "seed",
            "cli",
            "",
        ],
    ),
];

/// The layer index of a module: the longest matching prefix in [`LAYERS`].
fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    let mut best: Option<(usize, usize, &'static str)> = None;
    for (i, (name, prefixes)) in LAYERS.iter().enumerate() {
        for p in *prefixes {
            let matches = module == *p
                || (!p.is_empty() && module.starts_with(&format!("{p}::")))
                || (p.is_empty() && (module.is_empty() || module == "main"));
            if matches && best.is_none_or(|(len, _, _)| p.len() > len) {
                best = Some((p.len(), i, name));
            }
        }
    }
    best.map(|(_, i, name)| (i, name))
}

/// A source file: its module path and whether it is a `mod.rs` (or the crate root).
struct SourceFile {
    module: String,
    path: PathBuf,
    is_dir_module: bool,
}

fn source_files(root: &Path) -> Vec<SourceFile> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(root).expect("under src");
            let mut parts: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let last = parts.last().cloned().unwrap_or_default();
            let is_dir_module = last == "mod" || last == "lib" || last == "main";
            if last == "mod" || last == "lib" {
                parts.pop();
            }
            out.push(SourceFile {
                module: parts.join("::"),
                path,
                is_dir_module,
            });
        }
    }
    out
}

/// The text of a file with comments and string literals blanked (so a doc link or a
/// message mentioning `crate::x` is not an import).
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(text.len(), |n| i + n);
            i = end;
            continue;
        }
        if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(text.len(), |n| i + n + 2);
            i = end;
            continue;
        }
        if let Some(raw) = rest.strip_prefix("r#\"") {
            let end = raw.find("\"#").map_or(text.len(), |n| i + 3 + n + 2);
            out.push_str("\"\"");
            i = end;
            continue;
        }
        if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                if bytes[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j + 1;
            continue;
        }
        if bytes[i] == b'\''
            && i + 2 < bytes.len()
            && (bytes[i + 2] == b'\'' || bytes[i + 1] == b'\\')
        {
            // A char literal ('"', '\''), not a lifetime.
            let end = text[i + 1..]
                .find('\'')
                .map_or(text.len(), |n| i + 1 + n + 1);
            let end = if bytes[i + 1] == b'\\' {
                text[i + 3..]
                    .find('\'')
                    .map_or(text.len(), |n| i + 3 + n + 1)
            } else {
                end
            };
            out.push_str("' '");
            i = end;
            continue;
        }
        let ch = rest.chars().next().expect("a char");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// `code` without its `#[cfg(test)] mod ... { ... }` blocks: unit tests sit inside the
/// module they test (their `super::` is that module) and are not part of its shape.
fn without_test_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        if !trimmed.starts_with("mod ") {
            out.push_str("#[cfg(test)]");
            rest = after;
            continue;
        }
        let Some(open) = after.find('{') else {
            rest = "";
            break;
        };
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, b) in after.bytes().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every path named after `prefix` (`crate`, `super`, a child module) in `code`,
/// expanding use-trees (`a::{b, c::d}`).
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let needle = format!("{prefix}::");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find(&needle) {
        let start = from + at;
        from = start + needle.len();
        if start > 0 && (is_ident(bytes[start - 1]) || bytes[start - 1] == b':') {
            continue;
        }
        let mut pos = from;
        tree(code, &mut pos, Vec::new(), &mut out);
    }
    out
}

/// Parses a use-tree at `pos` (after a `::`), pushing each full path.
fn tree(code: &str, pos: &mut usize, base: Vec<String>, out: &mut Vec<Vec<String>>) {
    let bytes = code.as_bytes();
    let skip_ws = |p: &mut usize| {
        while *p < bytes.len() && bytes[*p].is_ascii_whitespace() {
            *p += 1;
        }
    };
    skip_ws(pos);
    if *pos < bytes.len() && bytes[*pos] == b'{' {
        *pos += 1;
        loop {
            skip_ws(pos);
            if *pos >= bytes.len() || bytes[*pos] == b'}' {
                *pos += 1;
                return;
            }
            tree_item(code, pos, base.clone(), out);
            skip_ws(pos);
            if *pos < bytes.len() && bytes[*pos] == b',' {
                *pos += 1;
            }
        }
    }
    tree_item(code, pos, base, out);
}

fn tree_item(code: &str, pos: &mut usize, mut base: Vec<String>, out: &mut Vec<Vec<String>>) {
    let bytes = code.as_bytes();
    loop {
        let start = *pos;
        while *pos < bytes.len() && is_ident(bytes[*pos]) {
            *pos += 1;
        }
        if *pos == start {
            // `*` or the end of a tree.
            if *pos < bytes.len() && bytes[*pos] == b'*' {
                *pos += 1;
            }
            out.push(base);
            return;
        }
        base.push(code[start..*pos].to_string());
        if code[*pos..].starts_with("::") {
            *pos += 2;
            if *pos < bytes.len() && bytes[*pos] == b'{' {
                tree(code, pos, base, out);
                return;
            }
            continue;
        }
        // `as name`, or the end of the path.
        out.push(base);
        return;
    }
}

/// The file module a path lands in: its longest prefix that is a file.
fn resolve(modules: &BTreeSet<String>, path: &[String]) -> Option<String> {
    (0..=path.len()).rev().find_map(|n| {
        let m = path[..n].join("::");
        modules.contains(&m).then_some(m)
    })
}

#[test]
fn imports_only_look_down_and_never_close_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = source_files(&root);
    let modules: BTreeSet<String> = files.iter().map(|f| f.module.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(&f.path).expect("read a source file");
        let code = without_test_modules(&code_only(&text));
        let mut targets = BTreeSet::new();
        for p in paths_after(&code, "crate") {
            if let Some(t) = resolve(&modules, &p) {
                targets.insert(t);
            }
        }
        // `super` is the parent of this file's module (of a mod.rs: of its directory).
        let parent: Vec<String> = {
            let mut m: Vec<String> = if f.module.is_empty() {
                Vec::new()
            } else {
                f.module.split("::").map(str::to_string).collect()
            };
            m.pop();
            m
        };
        for p in paths_after(&code, "super") {
            let full: Vec<String> = parent.iter().cloned().chain(p).collect();
            if let Some(t) = resolve(&modules, &full) {
                targets.insert(t);
            }
        }
        if f.is_dir_module {
            // Paths through this module's own children (`use key::CacheKey;`).
            let own: Vec<String> = if f.module.is_empty() {
                Vec::new()
            } else {
                f.module.split("::").map(str::to_string).collect()
            };
            for child in modules.iter().filter_map(|m| {
                let rest = if f.module.is_empty() {
                    Some(m.as_str())
                } else {
                    m.strip_prefix(&format!("{}::", f.module))
                };
                rest.filter(|r| !r.is_empty() && !r.contains("::"))
            }) {
                for p in paths_after(&code, child) {
                    let full: Vec<String> = own
                        .iter()
                        .cloned()
                        .chain(std::iter::once(child.to_string()))
                        .chain(p)
                        .collect();
                    if let Some(t) = resolve(&modules, &full) {
                        targets.insert(t);
                    }
                }
            }
        }
        targets.remove(&f.module);
        let Some((mine, my_layer)) = layer_of(&f.module) else {
            problems.push(format!("{} is in no layer (add it to LAYERS)", f.module));
            continue;
        };
        for t in &targets {
            match layer_of(t) {
                Some((theirs, their_layer)) if theirs > mine => problems.push(format!(
                    "{} ({my_layer}) imports {t} ({their_layer}): an import that climbs a layer",
                    f.module
                )),
                None => problems.push(format!("{t} is in no layer")),
                _ => {}
            }
        }
        graph.insert(f.module.clone(), targets);
    }
    for circle in circles(&graph) {
        problems.push(format!("an import circle: {}", circle.join(" -> ")));
    }
    assert!(
        problems.is_empty(),
        "{} layering problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// The strongly connected components of more than one file, each as a path around it.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            let edges: Vec<&'a str> = self
                .graph
                .get(v)
                .map(|e| e.iter().map(String::as_str).collect())
                .unwrap_or_default();
            for w in edges {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.reverse();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found
}

#[test]
fn the_parser_finds_use_trees_and_skips_comments() {
    let code = code_only(
        "use crate::cache::{key::CacheKey, Found}; // crate::nope\n/// [`crate::doc`]\nlet s = \"crate::str\"; crate::media::vips::vips();\nuse super::x as y;",
    );
    let mut paths = paths_after(&code, "crate");
    paths.sort();
    assert_eq!(
        paths,
        vec![
            vec!["cache".to_string(), "Found".to_string()],
            vec![
                "cache".to_string(),
                "key".to_string(),
                "CacheKey".to_string()
            ],
            vec!["media".to_string(), "vips".to_string(), "vips".to_string()],
        ]
    );
    assert_eq!(paths_after(&code, "super"), vec![vec!["x".to_string()]]);
    let code = without_test_modules(
        "use crate::a::b;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    fn f() { if x { crate::z::y(); } }\n}\nuse crate::c;",
    );
    assert_eq!(
        paths_after(&code, "crate"),
        vec![
            vec!["a".to_string(), "b".to_string()],
            vec!["c".to_string()]
        ]
    );
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(circles(&g), vec![vec!["a".to_string(), "b".to_string()]]);
    assert_eq!(layer_of("eager::worker").map(|l| l.1), Some("handlers"));
    assert_eq!(layer_of("eager::queue").map(|l| l.1), Some("engines"));
    assert_eq!(layer_of("").map(|l| l.1), Some("process"));
}
