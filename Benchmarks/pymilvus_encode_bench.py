"""pymilvus's local encoding of an insert, for Docs/benchmarks.md (issue 13, item 7).

Builds the rows MilvexClientBench encodes (Benchmarks/Sources/MilvexClientBench/
MixedTypesCodec.swift and main.swift's localCodec): 10,000 rows of the mixed schema (int64 key,
float16[128], sparse with 40 entries, nullable varchar with every third row None, ARRAY of 8
int64, JSON object, dynamic key) and of the float-vector schema (int64 key, varchar, double,
JSON, float[128], dynamic key). Times pymilvus's own insert encoding, the code
`MilvusClient.insert` runs before the gRPC call: `Prepare.row_insert_param` (rows to an
`InsertRequest` message) and, as gRPC then does, `SerializeToString()`. No server: the fields
info that `describe_collection` would give is built locally from a pymilvus `CollectionSchema`
through the same conversions (schema → proto → `abstract.CollectionSchema(...).dict()`).

    .venv/bin/python Benchmarks/pymilvus_encode_bench.py [--rows N] [--repeat R]

Prints µs/row, the best of R (default 3) runs of each.
"""

import argparse
import time

import numpy as np
import pymilvus
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.abstract import CollectionSchema as DescribedSchema
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import milvus_pb2

DIMENSION = 128
SPARSE_ENTRIES = 40


def fields_info(schema: CollectionSchema):
    """The `fields` of what describe_collection returns for `schema`, built locally."""
    proto = Prepare.get_schema_from_collection_schema("c", schema)
    described = DescribedSchema(milvus_pb2.DescribeCollectionResponse(schema=proto)).dict()
    return described["fields"], described.get("enable_dynamic_field", False)


def float_schema():
    return CollectionSchema(
        [
            FieldSchema("id", DataType.INT64, is_primary=True),
            FieldSchema("title", DataType.VARCHAR, max_length=64),
            FieldSchema("price", DataType.DOUBLE),
            FieldSchema("meta", DataType.JSON),
            FieldSchema("embedding", DataType.FLOAT_VECTOR, dim=DIMENSION),
        ],
        enable_dynamic_field=True,
    )


def mixed_schema():
    return CollectionSchema(
        [
            FieldSchema("id", DataType.INT64, is_primary=True),
            FieldSchema("half", DataType.FLOAT16_VECTOR, dim=DIMENSION),
            FieldSchema("sparse", DataType.SPARSE_FLOAT_VECTOR),
            FieldSchema("title", DataType.VARCHAR, max_length=64, nullable=True),
            FieldSchema(
                "tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=16
            ),
            FieldSchema("meta", DataType.JSON),
        ],
        enable_dynamic_field=True,
    )


def vector(index: int, dimension: int):
    """The same components as MilvexClientBench's `vector(_:_:)` (as float32)."""
    return [float(np.float32((j * 31 + index * 17) % 1000) / np.float32(1000)) for j in range(dimension)]


def sparse(index: int):
    return {
        (index * 7 + k * 251) % 30_000: float(np.float32(k + 1) / np.float32(SPARSE_ENTRIES))
        for k in range(SPARSE_ENTRIES)
    }


def float_rows(count: int):
    return [
        {
            "id": i,
            "title": f"title {i}",
            "price": i / 3,
            "meta": {"k": i},
            "embedding": vector(i, DIMENSION),
            "color": "red",
        }
        for i in range(count)
    ]


def mixed_rows(count: int, half_as_numpy: bool):
    """half_as_numpy: the float16 vector as an np.float16 array (pymilvus sends its bytes as
    float16_vector; the conversion is done here, outside the timing); otherwise as a list of
    floats, which pymilvus 3.0.2 sends as float32 in float_vector and leaves to the server."""
    rows = []
    for i in range(count):
        half = vector(i, DIMENSION)
        rows.append(
            {
                "id": i,
                "half": np.asarray(half, dtype=np.float16) if half_as_numpy else half,
                "sparse": sparse(i),
                "title": None if i % 3 == 0 else f"title {i}",
                "tags": [i + k for k in range(8)],
                "meta": {"k": i, "group": f"g{i % 10}"},
                "color": "red",
            }
        )
    return rows


def best_of(repeat: int, body):
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        body()
        best = min(best, time.perf_counter() - started)
    return best


def measure(name: str, schema: CollectionSchema, rows, repeat: int):
    fields, dynamic = fields_info(schema)

    def prepare():
        return Prepare.row_insert_param("c", rows, "", fields, [], enable_dynamic=dynamic)

    request = prepare()  # warm-up, and a check that it encodes
    size = len(request.SerializeToString())
    prepared = best_of(repeat, prepare)
    with_bytes = best_of(repeat, lambda: prepare().SerializeToString())
    count = len(rows)
    print(
        f"{name} | {size / 1e6:.2f} | {prepared / count * 1e6:.2f} | {with_bytes / count * 1e6:.2f}"
    )
    return with_bytes / count * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    print(
        f"pymilvus {pymilvus.__version__} insert encoding, {options.rows} rows, "
        f"best of {options.repeat}, local only (no server):"
    )
    print("schema | request MB | row_insert_param µs/row | + SerializeToString µs/row")
    floats = measure("float: int64 key, varchar, double, JSON, float[128], dynamic key",
                     float_schema(), float_rows(options.rows), options.repeat)
    numpy_half = measure(
        "mixed, float16 as np.float16 arrays: int64 key, float16[128], sparse (40 entries), "
        "nullable varchar (1/3 None), int64 array[8], JSON, dynamic key",
        mixed_schema(), mixed_rows(options.rows, half_as_numpy=True), options.repeat)
    list_half = measure(
        "mixed, float16 as lists of floats (sent as float32)",
        mixed_schema(), mixed_rows(options.rows, half_as_numpy=False), options.repeat)
    print(f"ratio mixed/float per row: np.float16 {numpy_half / floats:.2f}, lists {list_half / floats:.2f}")


if __name__ == "__main__":
    main()
