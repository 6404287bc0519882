#!/usr/bin/env python3
"""Checks that src/ imports run one way: down the layers, and without cycles among files.

The layer order lives in ONE place, the module comment of src/lib.rs: the lines after the line
"Layers, bottom up" that start with "//! N." list the layers, bottom first; top-level modules
(src/x.rs or src/x/) named on one line are peers, which must not import each other. `bin` is
src/bin/**. A line may end with "(may import only: a, b, ...)": that layer's modules may import
from no other modules than those (and their own), as the path is written: `session::TrainConfig`
is fine though `session` re-exports it from `train`.

What counts as an import of a file (an edge from the file that writes it):
- every path in a `use` declaration (`crate::`, `super::`, `self::`, a child module's name, and
  `bertlab::` in src/bin), and every such path written inline in code (`crate::a::b::f()`,
  `super::X`, `child::Y`);
- the path is resolved to the src/ file that defines the item: module by module, then through the
  `pub use` re-exports of the file it stops in (a mod.rs's facade is see-through);
- `mod x;` declarations are not imports, and neither is a mod.rs's `pub use` of its own child (a
  re-export), unless the mod.rs's own code uses a name that re-export brings in.
So a parent mod.rs and its children relate like any two files: a child may use its parent's items
only if the parent's code does not use that child's items (through a path or a re-exported name);
otherwise the two form a cycle.

Fails (exit 1) printing file, line and rule for (a) an import against the layer order and (b) a
cycle among src/ files (the files of one cycle, in order). Python 3.11, stdlib only.
"""
import os
import re
import sys
from collections import defaultdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.normpath(os.path.join(ROOT, "src"))
CRATE = "bertlab"


def rel(path):
    return os.path.relpath(path, ROOT)


def strip_code(text):
    """The text with comments, string and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12]):
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12])
            out.append(" " * len(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Module:
    def __init__(self, path, file):
        self.path = path  # tuple of names from the crate root
        self.file = file
        self.children = {}  # name -> Module (file-backed only)


def mod_file(dirpath, name):
    for cand in (os.path.join(dirpath, name + ".rs"), os.path.join(dirpath, name, "mod.rs")):
        if os.path.exists(cand):
            return cand
    return None


def child_dir(file):
    base = os.path.basename(file)
    if base in ("mod.rs", "lib.rs", "main.rs"):
        return os.path.dirname(file)
    return file[:-3]


MOD_DECL = re.compile(r"^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([\w: ]+\))?\s+)?mod\s+(\w+)\s*;", re.M)


def build_tree(file, path, files):
    m = Module(path, file)
    files[file] = m
    text = strip_code(open(file, encoding="utf-8").read())
    for name in MOD_DECL.findall(text):
        f = mod_file(child_dir(file), name)
        if f:
            m.children[name] = build_tree(f, path + (name,), files)
    return m


USE = re.compile(r"(?<![\w:])((?:pub(?:\([\w: ]+\))?\s+)?)use\s+([^;]*);", re.S)


def expand(tree):
    """`a::{b, c::{d as e}}` -> [(['a','b'], 'b'), (['a','c','d'], 'e')]."""
    tree = re.sub(r"\s+", " ", tree).strip()
    out = []

    def walk(prefix, s):
        s = s.strip()
        if not s:
            return
        m = re.match(r"^((?:[\w$]+\s*::\s*)*)\{(.*)\}$", s)
        if m:
            pre = [p.strip() for p in m.group(1).split("::") if p.strip()]
            depth, cur = 0, ""
            for ch in m.group(2) + ",":
                if ch == "," and depth == 0:
                    walk(prefix + pre, cur)
                    cur = ""
                    continue
                depth += ch == "{"
                depth -= ch == "}"
                cur += ch
            return
        alias = None
        am = re.match(r"^(.*?)\s+as\s+(\w+)$", s)
        if am:
            s, alias = am.group(1), am.group(2)
        segs = [p.strip() for p in s.split("::") if p.strip()]
        if segs and segs[-1] == "self":
            segs = segs[:-1]
        full = prefix + segs
        if full:
            out.append((full, alias or full[-1]))

    walk([], tree)
    return out


class Checker:
    def __init__(self):
        self.files = {}
        self.root = build_tree(os.path.join(SRC, "lib.rs"), (), self.files)
        self.bins = []
        for dirpath, _, names in os.walk(os.path.join(SRC, "bin")):
            for n in names:
                if n.endswith(".rs"):
                    self.bins.append(os.path.join(dirpath, n))
        for b in self.bins:
            if b not in self.files:
                self.files[b] = Module(("bin",), b)
        self.text = {f: strip_code(open(f, encoding="utf-8").read()) for f in self.files}
        self.reexports = {}  # file -> {name: [(segments, is_glob)]}
        self.uses = {}  # file -> [(line, segments, alias, is_pub)]
        for f in self.files:
            self.scan_uses(f)

    def scan_uses(self, f):
        text = self.text[f]
        rex = defaultdict(list)
        uses = []
        for m in USE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            is_pub = bool(m.group(1).strip())
            for segs, alias in expand(m.group(2)):
                uses.append((line, segs, alias, is_pub))
                if is_pub:
                    rex[alias].append(segs)
        self.reexports[f] = rex
        self.uses[f] = uses

    def inline_depth(self, f, line):
        """How many inline `mod x { }` blocks enclose `line` of file f."""
        text = self.text[f]
        depth_stack, depth, cur = [], 0, 1
        for m in re.finditer(r"\bmod\s+\w+\s*\{|[{}]|\n", text):
            tok = m.group(0)
            if tok == "\n":
                cur += 1
                if cur > line:
                    break
            elif tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth_stack and depth_stack[-1] == depth:
                    depth_stack.pop()
            else:
                depth_stack.append(depth)
                depth += 1
        return len(depth_stack)

    def resolve(self, f, segs, line, seen=None):
        """The src file a path written in file f names (None: outside the crate)."""
        mod = self.files[f]
        is_bin = f in self.bins
        segs = list(segs)
        if not segs:
            return None
        head = segs[0]
        if head in ("crate", "$crate") or (is_bin and head == CRATE):
            cur = self.root
            segs = segs[1:]
        elif head == "self":
            cur = mod
            segs = segs[1:]
        elif head == "super":
            inline = self.inline_depth(f, line) if line else 0
            cur = mod
            while segs and segs[0] == "super":
                if inline > 0:
                    inline -= 1
                else:
                    cur = self.parent(cur)
                    if cur is None:
                        return None
                segs = segs[1:]
        elif head in mod.children:
            cur = mod
        else:
            return None
        return self.walk(cur, segs, seen or set())

    def parent(self, mod):
        if mod.file in self.bins or not mod.path:
            return None
        p = self.root
        for n in mod.path[:-1]:
            p = p.children[n]
        return p

    def walk(self, cur, segs, seen):
        while segs and segs[0] in cur.children:
            cur = cur.children[segs[0]]
            segs = segs[1:]
        if not segs or segs[0] == "*":
            return cur.file
        key = (cur.file, segs[0])
        if key in seen:
            return cur.file
        seen.add(key)
        targets = self.reexports[cur.file].get(segs[0])
        if targets:
            return self.resolve(cur.file, targets[0] + segs[1:], 0, seen) or cur.file
        if not self.defines(cur.file, segs[0]):
            for (gsegs) in self.reexports[cur.file].get("*", []):
                t = self.resolve(cur.file, gsegs[:-1] + segs, 0, seen)
                if t and t != cur.file:
                    return t
        return cur.file

    def defines(self, f, name):
        return re.search(r"\b(?:fn|struct|enum|const|static|type|trait|mod|union|macro_rules!)\s+" + re.escape(name) + r"\b", self.text[f]) is not None

    def edges(self):
        """(from file, line, to file, is a child's re-export, the top module the path names)."""
        out = []
        for f in self.files:
            mod = self.files[f]
            text = self.text[f]
            use_spans = [(m.start(), m.end()) for m in USE.finditer(text)]
            for line, segs, alias, is_pub in self.uses[f]:
                t = self.resolve(f, segs, line)
                if not t or t == f:
                    continue
                facade = is_pub and self.is_descendant(t, f)
                if facade and re.search(r"\b" + re.escape(alias) + r"\b", self.outside(text, use_spans)):
                    facade = False
                out.append((f, line, t, facade, self.written(f, segs)))
            heads = ["crate", "super", "self", r"\$crate"] + list(mod.children) + ([CRATE] if f in self.bins else [])
            pat = re.compile(r"(?<![\w:$])((?:" + "|".join(heads) + r")(?:\s*::\s*\w+)+)")
            body = self.outside(text, use_spans)
            for m in pat.finditer(body):
                line = body.count("\n", 0, m.start()) + 1
                segs = [s.strip() for s in m.group(1).split("::")]
                t = self.resolve(f, segs, line)
                if t and t != f:
                    out.append((f, line, t, False, self.written(f, segs)))
        return sorted(set(out), key=lambda e: (e[0], e[1], e[2]))

    def written(self, f, segs):
        """The top-level module a path names as written (before re-exports are followed)."""
        if segs[0] in ("crate", "$crate", CRATE) and len(segs) > 1:
            return segs[1]
        return self.top(f)

    @staticmethod
    def outside(text, spans):
        chars = list(text)
        for a, b in spans:
            for i in range(a, b):
                if chars[i] != "\n":
                    chars[i] = " "
        return "".join(chars)

    def is_descendant(self, t, f):
        d = child_dir(f)
        return os.path.basename(f) == "mod.rs" and t.startswith(d + os.sep)

    def top(self, f):
        if f in self.bins:
            return "bin"
        r = os.path.relpath(f, SRC)
        if r == "lib.rs":
            return None
        return r.split(os.sep)[0].removesuffix(".rs")


def read_layers():
    lib = open(os.path.join(SRC, "lib.rs"), encoding="utf-8").read()
    layers, only, on = [], {}, False
    for line in lib.splitlines():
        if "Layers, bottom up" in line:
            on = True
            continue
        if on:
            m = re.match(r"^//!\s*(\d+)\.\s*(.*)$", line)
            if not m:
                if layers and not line.startswith("//!   "):
                    break
                continue
            body = m.group(2)
            allow = None
            am = re.search(r"\(may import only:([^)]*)\)", body)
            if am:
                allow = {x.strip(" `") for x in am.group(1).split(",") if x.strip()}
                body = body[:am.start()]
            body = body.split(":")[0]
            names = [x.strip(" `[]") for x in body.split(",") if x.strip(" `[]")]
            layers.append(names)
            for n in names:
                if allow is not None:
                    only[n] = allow
    return layers, only


def main():
    layers, only = read_layers()
    if not layers:
        print("check_layers: src/lib.rs has no \"Layers, bottom up\" list")
        return 1
    level = {n: i for i, names in enumerate(layers) for n in names}
    ck = Checker()
    problems = []
    graph = defaultdict(dict)
    for f, line, t, facade, named in ck.edges():
        a, b = ck.top(f), ck.top(t)
        if a is not None and b is not None and a != b:
            if a not in level or b not in level:
                missing = a if a not in level else b
                problems.append(f"{rel(f)}:{line}: imports {rel(t)}; `{missing}` is in no layer of src/lib.rs's list")
            elif level[b] > level[a]:
                problems.append(f"{rel(f)}:{line}: imports {rel(t)}: `{a}` (layer {level[a] + 1}) may not import `{b}` (layer {level[b] + 1}, above it)")
            elif level[b] == level[a]:
                problems.append(f"{rel(f)}:{line}: imports {rel(t)}: `{a}` and `{b}` are peers (layer {level[a] + 1}) and may not import each other")
        if a in only and named != a and named not in only[a]:
            problems.append(f"{rel(f)}:{line}: imports `{named}` ({rel(t)}): `{a}` may import only {', '.join(sorted(only[a]))} (`session` re-exports what the adapters need)")
        if not facade:
            graph[f].setdefault(t, line)
    # cycles among files: strongly connected components (Tarjan), each reported with one cycle
    index, low, stack, on_stack, sccs = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    for v in sorted(ck.files):
        if v not in index:
            strong(v)
    for comp in sccs:
        members = set(comp)
        start = min(comp)
        # shortest cycle through `start` inside the component
        prev, queue, found = {start: None}, [start], None
        while queue and found is None:
            nxt = []
            for v in queue:
                for w in graph[v]:
                    if w == start:
                        found = v
                        break
                    if w in members and w not in prev:
                        prev[w] = v
                        nxt.append(w)
                if found is not None:
                    break
            queue = nxt
        path, v = [], found
        while v is not None:
            path.append(v)
            v = prev[v]
        path.reverse()
        steps = [f"{rel(a)}:{graph[a][b]}" for a, b in zip(path, path[1:] + [start])]
        problems.append(f"cycle among files: {' -> '.join(steps)} -> {rel(start)} (files that import each other, directly or around the cycle)")
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} problem(s); the layer order is src/lib.rs's module comment")
        return 1
    print(f"check_layers: {len(ck.files)} files, {len(layers)} layers: imports run one way, no cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
