#!/usr/bin/env python3
"""Prints the public API of module MilvexReactor, one declaration per line, sorted.

    api-listing.py SYMBOL_GRAPH_DIR > API/MilvexReactor.api.txt

Reads the symbol graph that `swift package dump-symbol-graph --include-spi-symbols
--skip-synthesized-members` wrote (scripts/api.sh). Each line is the declaration as Swift
prints it (labels, types, default values, effects, generic constraints), prefixed with the
type it belongs to; a type's line lists its conformances. `@_spi` marks declarations only
SPI clients see (the fuzzers and benchmarks). No file paths or USRs, so a line changes only
when the declaration does.

The generated protobuf messages (Sources/MilvexProtos) are left out: they
are wire types that follow Protos/ (scripts/check-protos.py guards those) and would be three
quarters of the listing. The counts with and without them go to stderr.
"""
import json
import pathlib
import sys

GENERATED = "/Sources/MilvexProtos/"
TYPE_KINDS = {"swift.struct", "swift.class", "swift.enum", "swift.protocol"}


def declaration(symbol):
    text = "".join(fragment["spelling"] for fragment in symbol["declarationFragments"])
    return " ".join(text.split())  # one line, whatever the fragments' line breaks


def requirements(constraints):
    """`Output == ()`, `Element : Sendable`, as Swift writes generic requirements."""
    relation = {"conformance": ":", "superclass": ":", "sameType": "=="}
    return ", ".join(f"{c['lhs']} {relation[c['kind']]} {c['rhs']}" for c in constraints)


def main():
    graph_dir = pathlib.Path(sys.argv[1])
    graph = json.loads((graph_dir / "MilvexReactor.symbols.json").read_text())
    symbols = {s["identifier"]["precise"]: s for s in graph["symbols"]}
    for extra in sorted(graph_dir.glob("MilvexReactor@*.symbols.json")):
        more = json.loads(extra.read_text())
        symbols.update((s["identifier"]["precise"], s) for s in more["symbols"])
        graph["relationships"] += more["relationships"]

    conformances = {}
    for relation in graph["relationships"]:
        if relation["kind"] != "conformsTo" or relation["source"] not in symbols:
            continue
        target = symbols.get(relation["target"])
        name = ".".join(target["pathComponents"]) if target else relation["targetFallback"]
        name = name.removeprefix("Swift.")
        constraints = relation.get("swiftConstraints")
        if constraints:
            name += " where " + requirements(constraints)
        conformances.setdefault(relation["source"], set()).add(name)

    generated_types = {
        s["pathComponents"][0]
        for s in symbols.values()
        if GENERATED in s.get("location", {}).get("uri", "")
    }
    entries, generated = [], 0
    for usr, symbol in symbols.items():
        path = symbol["pathComponents"]
        if path[0] in generated_types:
            generated += 1
            continue
        line = declaration(symbol)
        kind = symbol["kind"]["identifier"]
        if kind in TYPE_KINDS or len(path) == 1:
            # A type's line comes first among its members and says what it conforms to (a
            # protocol's declaration says it already). SendableMetatype is implied by Sendable
            # from Swift 6.2 on; it adds nothing.
            names = sorted(conformances.get(usr, set()) - {"SendableMetatype"})
            if names and kind != "swift.protocol":
                head, where, constraints = line.partition(" where ")
                line = f"{head}: {', '.join(names)}{where}{constraints}"
            key = (".".join(path), 0)
        else:
            key = (".".join(path[:-1]), 1)
        if len(path) > 1:
            # Members of a constrained extension (`extension MilvusCall where Output == Void`)
            # exist only under that constraint, which their own declaration does not show.
            owner = ".".join(path[:-1])
            extension = symbol.get("swiftExtension", {}).get("constraints")
            if extension:
                owner += " where " + requirements(extension)
            line = f"{owner}: {line}"
        if symbol.get("spi"):
            line = "@_spi " + line
        entries.append((key, line))
    lines = [line for _, line in sorted(entries)]

    sys.stdout.write("".join(line + "\n" for line in lines))
    spi = sum(line.startswith("@_spi ") for line in lines)
    print(
        f"api-listing: {len(lines)} public declarations ({spi} of them @_spi) without the "
        f"generated protobuf messages; {len(lines) + generated} with the {generated} generated "
        "ones",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
