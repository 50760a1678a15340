//! The layering that src/lib.rs states, checked on the source: every module
//! imports only modules of its own layer or the layers before it in lib.rs's
//! numbered list, and no set of modules imports each other in a cycle.
//!
//! References are read from the text: `crate::a::b` and `super::a` paths
//! (in `use` items, braces included, and inline), outside `#[cfg(test)]`
//! modules, resolved to the longest module path that exists under src/.
//! The CLI (src/cli/, src/main.rs) is the top and may use anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`share::reader`) of every library source file.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut mods = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts == ["lib"] || parts == ["main"] || parts[0] == "cli" {
            continue;
        }
        mods.insert(parts.join("::"), f);
    }
    mods
}

/// The text without `#[cfg(test)]` modules and without comments.
fn code_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let next_is_mod = lines
            .get(i + 1)
            .is_some_and(|l| l.trim_start().starts_with("mod ") || l.contains(" mod "));
        if lines[i].trim() == "#[cfg(test)]" && next_is_mod {
            if lines[i + 1].trim_end().ends_with(';') {
                i += 2;
                continue;
            }
            let mut depth = 0i32;
            let mut j = i + 1;
            loop {
                depth += lines[j].matches('{').count() as i32;
                depth -= lines[j].matches('}').count() as i32;
                if depth == 0 && lines[i + 1..=j].iter().any(|l| l.contains('{')) {
                    break;
                }
                j += 1;
            }
            i = j + 1;
            continue;
        }
        let line = match lines[i].find("//") {
            Some(at) => &lines[i][..at],
            None => lines[i],
        };
        out.push_str(line);
        out.push('\n');
        i += 1;
    }
    out
}

/// Module paths referenced by the code of module `m`.
fn references(m: &str, code: &str, mods: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let here: Vec<&str> = m.split("::").collect();
    // `super` is the parent module, from a mod.rs as from any other file.
    let parent: Vec<String> = here[..here.len() - 1]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let resolve = |start: &str, segs: Vec<String>, out: &mut BTreeSet<String>| {
        let mut base: Vec<String> = if start == "crate" {
            Vec::new()
        } else {
            parent.clone()
        };
        let mut segs = segs;
        while segs.first().is_some_and(|s| s == "super") {
            base.pop();
            segs.remove(0);
        }
        let full: Vec<String> = base.into_iter().chain(segs).collect();
        for k in (1..=full.len()).rev() {
            let cand = full[..k].join("::");
            if mods.contains_key(&cand) {
                if cand != m {
                    out.insert(cand);
                }
                break;
            }
        }
    };
    let mut out = BTreeSet::new();
    let text = code;
    for start in ["crate", "super"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &text[at + start.len()..];
            if !rest.starts_with("::") {
                continue;
            }
            // The path, then an optional brace group of a `use`.
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let prefix: Vec<String> = path
                .trim_matches(':')
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let after = &rest[path.len()..];
            if path.ends_with("::") && after.starts_with('{') {
                let group = &after[1..after.find('}').unwrap_or(after.len())];
                for item in group.split(',') {
                    let item = item.split(" as ").next().unwrap().trim();
                    if item.is_empty() || item == "self" {
                        resolve(start, prefix.clone(), &mut out);
                        continue;
                    }
                    let segs = prefix
                        .iter()
                        .cloned()
                        .chain(item.split("::").map(str::to_string))
                        .collect();
                    resolve(start, segs, &mut out);
                }
            } else {
                resolve(start, prefix, &mut out);
            }
        }
    }
    out
}

/// Layer numbers from lib.rs's list ("N. [`name`]"); the utilities beside
/// the layers as lib.rs describes them: `buffer` below everything, `error`
/// and `output` in the layer of `share` (they wrap its errors and serve its
/// readers).
fn layers(lib: &str) -> BTreeMap<String, u32> {
    let mut rank = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! ") else {
            continue;
        };
        let Some((n, tail)) = rest.split_once(". [`") else {
            continue;
        };
        let Ok(n) = n.trim().parse::<u32>() else {
            continue;
        };
        let name = tail.split('`').next().unwrap().to_string();
        rank.insert(name, n);
    }
    let share = rank["share"];
    rank.insert("buffer".into(), 0);
    rank.insert("error".into(), share);
    rank.insert("output".into(), share);
    rank
}

#[test]
fn modules_import_only_their_layer_and_those_before_it_without_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mods = modules(&src);
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let rank = layers(&lib);
    let top = |m: &str| m.split("::").next().unwrap().to_string();
    for m in mods.keys() {
        assert!(
            rank.contains_key(&top(m)),
            "src/lib.rs's layer list does not name module {}",
            top(m)
        );
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for (m, path) in &mods {
        let text = std::fs::read_to_string(path).unwrap();
        let refs = references(m, &code_of(&text), &mods);
        for r in &refs {
            if rank[&top(r)] > rank[&top(m)] {
                upward.push(format!(
                    "{m} (layer {}) uses {r} (layer {})",
                    rank[&top(m)],
                    rank[&top(r)]
                ));
            }
        }
        edges.insert(m.clone(), refs);
    }
    assert!(
        upward.is_empty(),
        "imports against the layer order:\n{}",
        upward.join("\n")
    );

    // Cycles: a depth-first search that reports the first back edge's loop.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        for n in &edges[m] {
            match state.get(n.as_str()).copied().unwrap_or(0) {
                0 => {
                    if let Some(c) = visit(n, edges, state, path) {
                        return Some(c);
                    }
                }
                1 => {
                    let at = path.iter().position(|p| p == n).unwrap();
                    let mut cycle = path[at..].to_vec();
                    cycle.push(n.clone());
                    return Some(cycle);
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if state.get(m.as_str()).copied().unwrap_or(0) == 0
            && let Some(cycle) = visit(m, &edges, &mut state, &mut Vec::new())
        {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

/// The checker itself sees what it must: a made-up upward and a made-up
/// cyclic reference are found in text of the same shapes as real code.
#[test]
fn references_are_found_in_every_form() {
    let mods: BTreeMap<String, PathBuf> = ["a", "a::x", "a::y", "b", "b::z"]
        .iter()
        .map(|m| (m.to_string(), PathBuf::new()))
        .collect();
    let code = "use crate::b::z::Thing;\nuse super::{y::Other, self};\nfn f() { crate::b::g() }\n";
    let refs = references("a::x", code, &mods);
    assert_eq!(
        refs,
        ["a", "a::y", "b", "b::z"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let test_only = "#[cfg(test)]\nmod tests {\n    use crate::b::z;\n}\n";
    assert!(references("a::x", &code_of(test_only), &mods).is_empty());
    let commented = "// use crate::b::z;\n";
    assert!(references("a::x", &code_of(commented), &mods).is_empty());
}
