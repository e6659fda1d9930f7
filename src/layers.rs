//! The import graph of `src/`, checked from the `use` lines and paths of
//! the production code (test modules and `testing/` left out): every
//! module sits on a floor, an import never points to a higher floor, and
//! the modules of one floor import each other without a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module's floor, lowest first; a module not named takes the floor
/// of its nearest named parent.
const FLOORS: &[(&str, u32)] = &[
    ("storable", 0),
    ("stable_memory", 0),
    ("limits", 0),
    ("layout", 0),
    ("session", 1),
    ("blob_store", 1),
    ("http", 1),
    ("types", 2),
    ("error", 2),
    ("validate", 2),
    ("stores", 3),
    ("sharing::links", 3),
    ("state", 4),
    ("upload", 5),
    ("library", 5),
    ("admin", 5),
    ("bucket", 5),
    ("sharing", 5),
    ("jobs", 6),
    ("admission", 7),
    ("canister", 8),
];

fn floor_of(module: &str) -> u32 {
    let mut path = module;
    loop {
        if let Some((_, floor)) = FLOORS.iter().find(|(name, _)| *name == path) {
            return *floor;
        }
        match path.rsplit_once("::") {
            Some((parent, _)) => path = parent,
            None => panic!("module {module} has no floor in FLOORS"),
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
fn module_of(file: &Path, src: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The production text of a file: up to its test module, without comments.
fn production_code(text: &str) -> String {
    let end = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..end]
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules named by `crate::` paths in `code` (a path's longest
/// prefix that is a module of the crate).
fn imports(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let mut best = None;
        let mut prefix = String::new();
        for part in path.split("::").filter(|p| !p.is_empty()) {
            if !prefix.is_empty() {
                prefix.push_str("::");
            }
            prefix.push_str(part);
            if modules.contains(&prefix) {
                best = Some(prefix.clone());
            }
        }
        if let Some(module) = best {
            found.insert(module);
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The graph: module -> modules it imports (itself and its own children
/// left out), for the production modules.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let is_test = |module: &str| {
        module.starts_with("testing")
            || module == "layers"
            || module == "limits_table"
            || module == "lib"
            || module
                .split("::")
                .any(|p| p == "tests" || p.ends_with("_tests"))
    };
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            (
                module_of(f, &src),
                std::fs::read_to_string(f).expect("read"),
            )
        })
        .filter(|(m, _)| !is_test(m))
        .collect();
    let modules: BTreeSet<String> = sources.iter().map(|(m, _)| m.clone()).collect();
    sources
        .iter()
        .map(|(module, text)| {
            let used = imports(&production_code(text), &modules)
                .into_iter()
                .filter(|u| u != module && !u.starts_with(&format!("{module}::")))
                .filter(|u| !module.starts_with(&format!("{u}::")))
                .collect();
            (module.clone(), used)
        })
        .collect()
}

#[test]
fn module_layers_point_down() {
    let graph = graph();
    let mut upward = Vec::new();
    for (module, used) in &graph {
        for target in used {
            if floor_of(target) > floor_of(module) {
                upward.push(format!(
                    "{module} (floor {}) -> {target} (floor {})",
                    floor_of(module),
                    floor_of(target)
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports up a floor:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_import_graph_has_no_circle() {
    let graph = graph();
    // Depth-first search; a module met again on the current path closes a
    // circle.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(at) = path.iter().position(|m| *m == module) {
            panic!("import circle: {} -> {module}", path[at..].join(" -> "));
        }
        path.push(module);
        for target in graph.get(module).into_iter().flatten() {
            visit(target, graph, path, done);
        }
        path.pop();
        done.insert(module);
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
    assert!(
        graph.len() > 30,
        "the graph covers src/ ({} modules)",
        graph.len()
    );
    // The check sees the edges it must: the composition root, a feature,
    // the entry points.
    for (from, to) in [
        ("state", "sharing::links"),
        ("state", "session"),
        ("upload::begin", "state"),
        ("library::memories", "sharing::serve"),
        ("jobs", "upload::sessions"),
        ("canister", "jobs"),
    ] {
        assert!(
            graph[from].contains(to),
            "{from} -> {to} missing: {:?}",
            graph[from]
        );
    }
}
