#!/usr/bin/env python3
"""Checks that every message, field, enum value and rpc in Protos/ matches Milvus's wire format.

Protos/ holds a hand-written subset of Milvus's .proto files. A field with a wrong number or
type would not fail to compile: it would silently put data in the wrong place on the wire. So this
script compiles Protos/ with protoc into a FileDescriptorSet and compares it, element by element,
with the descriptors pymilvus ships (pymilvus.grpc_gen), which are compiled from Milvus's own
.proto files.

What must match, for everything present in Protos/ (a subset may leave fields out):
  - messages: the full name exists in pymilvus;
  - fields: name, number, type, label, type_name (message and enum fields), oneof membership and
    proto3 `optional`;
  - enums: every value's name and number;
  - service methods: input and output types.

Run it with the project venv, where pymilvus is installed:
    .venv/bin/python scripts/check-protos.py
Exit status 0 with a summary when everything matches, 1 with a list of mismatches otherwise,
2 when the check itself cannot run (no protoc, no pymilvus, a .proto that does not compile).
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "Protos"


def fail_to_run(message):
    print(f"check-protos: {message}", file=sys.stderr)
    sys.exit(2)


try:
    from google.protobuf import descriptor_pb2, descriptor_pool
    import pymilvus
    # Importing milvus_pb2 registers it and everything it imports (common, schema, ...) in the
    # default pool, which is where reference descriptors are looked up by full name.
    from pymilvus.grpc_gen import milvus_pb2  # noqa: F401
except ImportError as error:
    fail_to_run(f"{error}; run with the project venv: .venv/bin/python {sys.argv[0]}")

FieldProto = descriptor_pb2.FieldDescriptorProto
TYPE_NAMES = {number: name[len("TYPE_"):].lower() for name, number in FieldProto.Type.items()}
LABEL_NAMES = {number: name[len("LABEL_"):].lower() for name, number in FieldProto.Label.items()}


def compile_protos():
    """Compiles Protos/**/*.proto with protoc and returns the FileDescriptorSet."""
    if shutil.which("protoc") is None:
        fail_to_run("protoc not found (apt-get install protobuf-compiler)")
    files = sorted(str(path.relative_to(PROTOS)) for path in PROTOS.rglob("*.proto"))
    if not files:
        fail_to_run(f"no .proto files under {PROTOS}")
    with tempfile.TemporaryDirectory() as scratch:
        out = pathlib.Path(scratch) / "protos.pb"
        result = subprocess.run(
            ["protoc", f"--proto_path={PROTOS}", f"--descriptor_set_out={out}", *files],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            fail_to_run(f"protoc failed:\n{result.stderr}")
        descriptor_set = descriptor_pb2.FileDescriptorSet()
        descriptor_set.ParseFromString(out.read_bytes())
    return descriptor_set


class Checker:
    def __init__(self):
        self.pool = descriptor_pool.Default()
        self.mismatches = []
        self.notes = []
        self.counts = dict.fromkeys(
            ["messages", "fields", "enums", "enum values", "methods", "fields left out"], 0
        )

    def mismatch(self, where, what):
        self.mismatches.append(f"{where}: {what}")

    def reference(self, find, full_name):
        """The pymilvus descriptor of full_name as a *DescriptorProto, or None."""
        try:
            descriptor = find(full_name)
        except KeyError:
            return None
        proto = {
            self.pool.FindMessageTypeByName: descriptor_pb2.DescriptorProto,
            self.pool.FindEnumTypeByName: descriptor_pb2.EnumDescriptorProto,
            self.pool.FindServiceByName: descriptor_pb2.ServiceDescriptorProto,
        }[find]()
        descriptor.CopyToProto(proto)
        return proto

    def check_message(self, ours, full_name):
        theirs = self.reference(self.pool.FindMessageTypeByName, full_name)
        if theirs is None:
            self.mismatch(full_name, "message not in pymilvus")
            return
        self.counts["messages"] += 1
        their_fields = {field.name: field for field in theirs.field}
        for field in ours.field:
            where = f"{full_name}.{field.name}"
            their_field = their_fields.get(field.name)
            if their_field is None:
                self.mismatch(where, "field not in pymilvus")
                continue
            self.counts["fields"] += 1
            self.compare(where, "number", field.number, their_field.number)
            self.compare(where, "type", TYPE_NAMES[field.type], TYPE_NAMES[their_field.type])
            self.compare(where, "label", LABEL_NAMES[field.label], LABEL_NAMES[their_field.label])
            self.compare(where, "type_name", field.type_name, their_field.type_name)
            self.compare(where, "oneof", oneof_name(ours, field), oneof_name(theirs, their_field))
            self.compare(
                where, "proto3 optional", field.proto3_optional, their_field.proto3_optional
            )
        self.counts["fields left out"] += len(their_fields.keys() - {f.name for f in ours.field})
        for nested in ours.nested_type:
            self.check_message(nested, f"{full_name}.{nested.name}")
        for enum in ours.enum_type:
            self.check_enum(enum, f"{full_name}.{enum.name}")

    def check_enum(self, ours, full_name):
        theirs = self.reference(self.pool.FindEnumTypeByName, full_name)
        if theirs is None:
            self.mismatch(full_name, "enum not in pymilvus")
            return
        self.counts["enums"] += 1
        their_values = {value.name: value.number for value in theirs.value}
        for value in ours.value:
            where = f"{full_name}.{value.name}"
            if value.name not in their_values:
                self.mismatch(where, "enum value not in pymilvus")
                continue
            self.counts["enum values"] += 1
            self.compare(where, "number", value.number, their_values[value.name])
        missing = their_values.keys() - {value.name for value in ours.value}
        if missing:
            # Not a failure: a server sending one of these decodes as an unrecognized number,
            # which the typed API must handle anyway for values newer than pymilvus.
            self.notes.append(f"{full_name}: values left out: {', '.join(sorted(missing))}")

    def check_service(self, ours, full_name):
        theirs = self.reference(self.pool.FindServiceByName, full_name)
        if theirs is None:
            self.mismatch(full_name, "service not in pymilvus")
            return
        their_methods = {method.name: method for method in theirs.method}
        for method in ours.method:
            where = f"{full_name}/{method.name}"
            their_method = their_methods.get(method.name)
            if their_method is None:
                self.mismatch(where, "method not in pymilvus")
                continue
            self.counts["methods"] += 1
            self.compare(where, "input_type", method.input_type, their_method.input_type)
            self.compare(where, "output_type", method.output_type, their_method.output_type)
            self.compare(
                where,
                "streaming",
                (method.client_streaming, method.server_streaming),
                (their_method.client_streaming, their_method.server_streaming),
            )

    def compare(self, where, what, ours, theirs):
        if ours != theirs:
            self.mismatch(where, f"{what} {shown(ours)} in Protos/, {shown(theirs)} in pymilvus")


def shown(value):
    """A value as a mismatch line prints it; an empty type_name or oneof reads as (none)."""
    return "(none)" if value in ("", None) else value


def oneof_name(message, field):
    """The name of the real oneof field belongs to; None for plain and proto3 `optional` fields."""
    if field.proto3_optional or not field.HasField("oneof_index"):
        return None
    return message.oneof_decl[field.oneof_index].name


def main():
    checker = Checker()
    for file in compile_protos().file:
        prefix = f"{file.package}." if file.package else ""
        for message in file.message_type:
            checker.check_message(message, prefix + message.name)
        for enum in file.enum_type:
            checker.check_enum(enum, prefix + enum.name)
        for service in file.service:
            checker.check_service(service, prefix + service.name)

    for note in checker.notes:
        print(f"check-protos: note: {note}")
    summary = ", ".join(f"{count} {name}" for name, count in checker.counts.items())
    if checker.mismatches:
        print(f"check-protos: {len(checker.mismatches)} mismatches with pymilvus "
              f"{pymilvus.__version__}:", file=sys.stderr)
        for line in checker.mismatches:
            print(f"  {line}", file=sys.stderr)
        print("check-protos: Protos/ must match Milvus's wire format exactly; fix the lines above.",
              file=sys.stderr)
        sys.exit(1)
    print(f"check-protos: Protos/ matches pymilvus {pymilvus.__version__}: {summary}")


if __name__ == "__main__":
    main()
