#!/usr/bin/env python3
"""Fails when a target or product name of ours also appears in the graph of a typical Swift
server application (make check-names; issue 22).

SwiftPM refuses a graph in which two packages declare a target of the same name, and a product
name clash breaks `.product(name:package:)` look-ups; so every name this repository's packages
declare (the library's, and the examples' package) is compared with every target and product
name in the resolved graphs of Hummingbird, Vapor, grpc-swift-2, swift-nio-ssl,
async-http-client and swift-crypto (with all their dependencies), and with the names
applications commonly give their own targets. Resolution only, nothing is built: a throwaway
package in .build-names depends on them, `swift package resolve` checks them out, and
`swift package dump-package` reads every manifest.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, ".build-names")
SWIFT = os.environ.get("SWIFT", "swift")

# The typical server application's dependencies, at the releases the mirror holds.
APPLICATION = [
    ("https://github.com/hummingbird-project/hummingbird", "2.28.1"),
    ("https://github.com/vapor/vapor", "4.122.3"),
    ("https://github.com/grpc/grpc-swift-2", "2.4.3"),
    ("https://github.com/grpc/grpc-swift-nio-transport", "2.9.2"),
    ("https://github.com/grpc/grpc-swift-protobuf", "2.4.1"),
    ("https://github.com/apple/swift-nio-ssl", "2.37.6"),
    ("https://github.com/swift-server/async-http-client", "1.37.0"),
    ("https://github.com/apple/swift-crypto", "3.12.3"),
]
# Names applications give their own targets (templates of Vapor, Hummingbird, swift package init).
APPLICATION_TARGETS = {
    "App", "Run", "Server", "Client", "Demo", "Example", "QuickStart", "SearchService", "Main",
    "Core", "Models", "Shared", "COpenSSL", "CNGHTTP2", "CCARES", "CHTTPParser"
}
# CLibEV is the one name the design fixes (README: "Add it to your package").
ALLOWED = {"CLibEV"}


def dump(path):
    out = subprocess.run(
        [SWIFT, "package", "dump-package", "--package-path", path],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def names(manifest):
    targets = {t["name"] for t in manifest.get("targets", [])}
    products = {p["name"] for p in manifest.get("products", [])}
    return targets, products


def main():
    ours = {}
    packages = [ROOT, os.path.join(ROOT, "Examples")]
    for package in (p for p in packages if os.path.exists(os.path.join(p, "Package.swift"))):
        targets, products = names(dump(package))
        for name in targets | products:
            ours[name] = os.path.relpath(package, ROOT) or "."
    unmarked = sorted(n for n in ours if "milvex" not in n.lower() and n not in ALLOWED
                      and not n.endswith("Tests"))
    # Test targets never enter a dependent's graph; every other name must carry ours.

    os.makedirs(WORK, exist_ok=True)
    deps = ",\n    ".join(f'.package(url: "{url}", from: "{version}")'
                          for url, version in APPLICATION)
    with open(os.path.join(WORK, "Package.swift"), "w") as manifest:
        manifest.write(
            "// swift-tools-version:6.0\n"
            "import PackageDescription\n"
            f"let package = Package(name: \"NameCheck\", dependencies: [\n    {deps}\n])\n")
    subprocess.run([SWIFT, "package", "resolve", "--package-path", WORK], check=True,
                   stdout=subprocess.DEVNULL)
    checkouts = os.path.join(WORK, ".build", "checkouts")
    theirs = {}
    for package in sorted(os.listdir(checkouts)):
        targets, products = names(dump(os.path.join(checkouts, package)))
        for name in targets | products:
            theirs.setdefault(name, set()).add(package)
    for name in APPLICATION_TARGETS:
        theirs.setdefault(name, set()).add("an application's own targets")

    clashes = sorted(n for n in ours if n in theirs and n not in ALLOWED)
    print(f"check-names: {len(ours)} names of ours, {len(theirs)} in the graphs of "
          f"{len(os.listdir(checkouts))} packages and of applications")
    for name in unmarked:
        print(f"check-names: '{name}' ({ours[name]}) does not carry the library's name")
    for name in clashes:
        print(f"check-names: '{name}' ({ours[name]}) is also declared by "
              f"{', '.join(sorted(theirs[name]))}")
    if unmarked or clashes:
        return 1
    print("check-names: no clash, every name carries 'Milvex' (but CLibEV)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
