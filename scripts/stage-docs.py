#!/usr/bin/env python3
"""Stages the DocC input for `make docs` (scripts/docs.sh) into a build directory.

    stage-docs.py SYMBOL_GRAPH_DIR STAGE_DIR

- STAGE_DIR/MilvexReactor.docc: the committed catalog (Docs/MilvexReactor.docc: the landing
  page and its topic groups) plus every guide Docs/*.md as an article. Docs/*.md stay the only
  copy of the guides' text; only their links change here: `[x](connection.md#tls)` becomes
  `[x](<doc:connection#TLS>)` and a link out of Docs/ (`../Benchmarks/README.md`) becomes its
  text followed by its path in the repository, since the archive does not contain that file.
- STAGE_DIR/symbol-graphs: MilvexReactor's symbol graph without the generated protobuf messages
  (Sources/MilvexProtos): they are wire types, not the library's API, and
  would bury it under ~8,000 pages.
"""
import json
import pathlib
import re
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "Docs"
CATALOG = DOCS / "MilvexReactor.docc"
GENERATED = "/Sources/MilvexProtos/"

LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def heading_anchors(text):
    """Maps each heading's GitHub anchor to DocC's (`data-types` -> `Data-types`)."""
    anchors = {}
    for line in text.splitlines():
        match = re.match(r"#{2,6}\s+(.*?)\s*$", line)
        if match:
            title = match.group(1)
            github = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
            docc = re.sub(r"[^\w\-]+", "-", title).strip("-")
            anchors[github] = docc
    return anchors


def rewrite_links(text, name, guides):
    def replace(match):
        label, target = match.group(1), match.group(2)
        if re.match(r"[a-z]+:", target):
            return match.group(0)  # https:, doc: and other absolute links stay
        path, _, fragment = target.partition("#")
        if path == "":
            page = name
        elif path in guides:
            page = path[: -len(".md")]
        else:
            in_repository = (DOCS / path).resolve().relative_to(ROOT).as_posix()
            return label if label == in_repository else f"{label} (`{in_repository}`)"
        anchor = heading_anchors(guides[page + ".md"]).get(fragment, fragment)
        return f"[{label}](<doc:{page}#{anchor}>)" if anchor else f"[{label}](<doc:{page}>)"

    out, fenced = [], False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        out.append(line if fenced else LINK.sub(replace, line))
    return "".join(out)


def stage_catalog(stage):
    catalog = stage / "MilvexReactor.docc"
    shutil.rmtree(catalog, ignore_errors=True)
    shutil.copytree(CATALOG, catalog)
    guides = {p.name: p.read_text() for p in sorted(DOCS.glob("*.md"))}
    for file_name, text in guides.items():
        name = file_name[: -len(".md")]
        (catalog / file_name).write_text(rewrite_links(text, name, guides))


def stage_symbol_graphs(source, stage):
    graphs = stage / "symbol-graphs"
    shutil.rmtree(graphs, ignore_errors=True)
    graphs.mkdir(parents=True)
    removed_total = 0
    for path in sorted(source.glob("MilvexReactor*.symbols.json")):
        graph = json.loads(path.read_text())
        symbols = graph["symbols"]
        generated_types = {
            s["pathComponents"][0]
            for s in symbols
            if GENERATED in s.get("location", {}).get("uri", "")
        }
        removed = {
            s["identifier"]["precise"]
            for s in symbols
            if s["pathComponents"][0] in generated_types
            or GENERATED in s.get("location", {}).get("uri", "")
        }
        graph["symbols"] = [s for s in symbols if s["identifier"]["precise"] not in removed]
        graph["relationships"] = [
            r
            for r in graph["relationships"]
            if r["source"] not in removed and r["target"] not in removed
        ]
        removed_total += len(removed)
        (graphs / path.name).write_text(json.dumps(graph))
    print(f"stage-docs: left out {removed_total} generated protobuf symbols")


def main():
    source, stage = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    stage.mkdir(parents=True, exist_ok=True)
    stage_catalog(stage)
    stage_symbol_graphs(source, stage)


if __name__ == "__main__":
    main()
