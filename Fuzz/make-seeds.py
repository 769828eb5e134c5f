#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz corpora (Fuzz/Corpus/<Target>/seed-*).

Run with the project's virtualenv (`make deps`), whose pymilvus provides Milvus's protobuf
classes, so that the Milvus answers are serialized exactly as a server serializes them:

    .venv/bin/python Fuzz/make-seeds.py

The byte layouts follow the entry points in Sources/MilvexReactor/Fuzzing/: a URI is plain
text; the gRPC scripts use ResponseScript's opcodes; the Milvus answers start with the mode
byte of MilvusResultFuzzing.run (0 search, 1 query, 2 describe, 3-5 the same built from a
recipe).
"""
import pathlib
import struct

from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

CORPUS = pathlib.Path(__file__).resolve().parent / "Corpus"


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (folder / f"seed-{name}").write_bytes(data)


# --- FuzzConfig: every documented URI form, and typed option/initializer recipes ------------

URIS = {
    "minimal": "milvus://localhost",
    "full": "milvus://root:Milvus@db.example:19531/books?timeout=5000&connectTimeout=2000",
    "https-default-port": "https://in01-abc.api.gcp-us-west1.zillizcloud.com",
    "https-token": "https://cloud.example:443?token=db_admin%3Ap%40ss",
    "milvuss": "milvuss://root:pw@[2001:db8::7]:443/books",
    "grpc-ipv4": "grpc://127.0.0.1:19530",
    "http-ipv6": "http://[::1]:19530/default",
    "snake-case": "milvus://h?reconnect_base_delay=300&reconnect_max_delay=8000&keepalive_time=20000"
    "&keepalive_timeout=3000&reconnect_multiplier=1.5&reconnect_jitter=0.2",
    "camel-case": "milvus://h?reconnectBaseDelay=300&reconnectMaxDelay=8000&keepaliveTime=20000"
    "&keepaliveTimeout=3000&reconnectMultiplier=3&reconnectJitter=0&allowTestingTimings=true",
    "percent-userinfo": "milvus://us%40er:p%3Aw%2F%3F%23@db.example/my%20db",
    "raw-at-in-password": "milvus://root:p@ss/w:rd@db.example:19530",
    "secret-marker-password": "milvus://root:*@host",
    "secret-with-question": "milvus://root:pa?ss*@host",
    "secret-tail-in-query": "https://%ZZ?token*=",
    "secret-in-query-value": "milvus://root:pw?timeout=*@host",
    "token-marker": "milvus://host?token=*",
    "huge-timeout": "milvus://host?timeout=9223372036854775807",
    "negative-timeout": "milvus://host?timeout=-9223372036854775808",
    "nan-multiplier": "milvus://host?reconnectMultiplier=nan&reconnectJitter=inf",
    "float-timeout": "milvus://host?timeout=1e300",
    "bad-port": "milvus://host:99999999999999999999",
    "fragment": "milvus://host#top",
    "no-scheme": "localhost:19530",
}

for name, uri in URIS.items():
    write("FuzzConfig", f"uri-{name}", uri)

# Mode 1 (options): count, then (key selector, value kind, value bytes) triples.
write("FuzzConfig", "options-durations", bytes([1, 4, 1, 10, 8, 0, 24, 3, 8, 4, 25, 5, 1, 10, 2, 8]))
write("FuzzConfig", "options-strings", bytes([1, 5, 0, 1, 14, 2, 1, 12, 5, 1, 17, 12, 1, 4, 7, 1]))
write("FuzzConfig", "options-doubles", bytes([1, 3, 12, 5, 15, 14, 5, 17, 6, 6, 0xff, 0xc0, 0, 0]))
write("FuzzConfig", "options-secrets", bytes([1, 3, 4, 0, 3, 0x41, 0x42, 0x43, 5, 11, 4, 2, 0xff]))
# Mode 2 (typed initializer and backoff).
write("FuzzConfig", "typed-defaults", bytes([2] + [1] * 40))
write("FuzzConfig", "typed-extremes", bytes([2, 1, 0, 0, 24] + [0] * 8 + [0, 25, 3, 16, 0, 17, 9] * 6))

# --- FuzzGRPCResponse: scripts of header fields, DATA and closes ----------------------------

NAMES = [":status", "content-type", "grpc-status", "grpc-message", "grpc-status-details-bin",
         "grpc-encoding", "grpc-accept-encoding", "content-length", "te", "x-other"]
VALUES = ["200", "0", "1", "2", "5", "13", "14", "16", "17", "-1", "99999999999999999999", "",
          "503", "404", "application/grpc", "application/grpc+proto",
          "application/grpc;charset=utf-8", "text/html", "application/json", "gzip", "identity",
          "no%20such%zzthing%", "CAUSA2FiYw", "CAUSA2FiYw==", "!!!", "=", "a b"]
SIZES = [0, 1, 5, 16, 100, 4096, 1 << 16]


def header(name, value):
    """Opcode 0 with a raw name and value (choice 0 of 4 picks raw bytes)."""
    if name in NAMES and value in VALUES:
        return bytes([0, 1, NAMES.index(name), 1, VALUES.index(value)])
    raw_name, raw_value = name.encode(), value.encode()
    return bytes([0, 0, len(raw_name)]) + raw_name + bytes([0, len(raw_value)]) + raw_value


def headers_complete(end_stream):
    return bytes([1, 1 if end_stream else 0])


def data(chunk):
    out = b""
    for start in range(0, max(len(chunk), 1), 255):
        piece = chunk[start:start + 255]
        out += bytes([2, len(piece)]) + piece
    return out


def close(code_index):
    return bytes([4, code_index])


def framed(message):
    return struct.pack(">BI", 0, len(message)) + message


def script(size, *parts):
    return bytes([SIZES.index(size)]) + b"".join(parts)


version = milvus_pb2.GetVersionResponse(status=common_pb2.Status(), version="v2.4.15").SerializeToString()
ok_headers = header(":status", "200") + header("content-type", "application/grpc") + headers_complete(False)
ok_trailers = header("grpc-status", "0") + headers_complete(True)
message = framed(version)

write("FuzzGRPCResponse", "ok-one-chunk", script(4096, ok_headers, data(message), ok_trailers))
write("FuzzGRPCResponse", "ok-split-prefix", script(
    4096, ok_headers, data(message[:3]), data(message[3:7]), data(message[7:]), ok_trailers))
write("FuzzGRPCResponse", "ok-with-encoding-headers", script(
    4096, header(":status", "200"), header("content-type", "application/grpc+proto"),
    header("grpc-encoding", "identity"), header("grpc-accept-encoding", "gzip"),
    headers_complete(False), data(message), header("grpc-status", "0"),
    header("grpc-message", ""), headers_complete(True)))
write("FuzzGRPCResponse", "ok-empty-message", script(16, ok_headers, data(framed(b"")), ok_trailers))
write("FuzzGRPCResponse", "trailers-only-error", script(
    100, header(":status", "200"), header("content-type", "application/grpc"),
    header("grpc-status", "5"), header("grpc-message", "no%20such%zzthing%"),
    header("grpc-status-details-bin", "CAUSA2FiYw"), headers_complete(True)))
write("FuzzGRPCResponse", "unimplemented", script(
    100, header(":status", "200"), header("content-type", "application/grpc"),
    header("grpc-status", "12"), header("grpc-message", "unknown method Foo"), headers_complete(True)))
write("FuzzGRPCResponse", "http-503", script(
    100, header(":status", "503"), header("content-type", "text/html"), headers_complete(True)))
write("FuzzGRPCResponse", "html-200", script(
    100, header(":status", "200"), header("content-type", "text/html"), headers_complete(False),
    data(b"<html>hello</html>")))
write("FuzzGRPCResponse", "two-messages", script(4096, ok_headers, data(message + message), ok_trailers))
write("FuzzGRPCResponse", "compressed", script(
    4096, ok_headers, data(b"\x01" + message[1:]), ok_trailers))
write("FuzzGRPCResponse", "too-large", script(5, ok_headers, data(message), ok_trailers))
write("FuzzGRPCResponse", "truncated-then-reset", script(4096, ok_headers, data(message[:9]), close(5)))
write("FuzzGRPCResponse", "refused", script(100, close(3)))
write("FuzzGRPCResponse", "data-before-headers", script(100, data(message)))
write("FuzzGRPCResponse", "trailers-without-status", script(
    4096, ok_headers, data(message), header("grpc-message", "x"), headers_complete(True)))
write("FuzzGRPCResponse", "second-headers-block", script(
    4096, ok_headers, data(message), header("x-other", "a b"), headers_complete(False)))

# --- FuzzMilvusResults: answers as a Milvus server serializes them ---------------------------

DT = schema_pb2.DataType


def scalar_field(name, dtype, **data):
    return schema_pb2.FieldData(type=dtype, field_name=name, scalars=schema_pb2.ScalarField(**data))


def vector_field(name, dim, floats):
    return schema_pb2.FieldData(
        type=DT.FloatVector, field_name=name,
        vectors=schema_pb2.VectorField(dim=dim, float_vector=schema_pb2.FloatArray(data=floats)))


ok = common_pb2.Status(code=0)
titles = scalar_field("title", DT.VarChar, string_data=schema_pb2.StringArray(data=["a", "b", "c", "d"]))
meta = schema_pb2.FieldData(
    type=DT.JSON, field_name="$meta", is_dynamic=True,
    scalars=schema_pb2.ScalarField(json_data=schema_pb2.JSONArray(
        data=[b'{"color":"red"}', b'{}', b'{"n":[1,2,{"x":null}]}', b'{"big":9223372036854775808}'])))

search_int = milvus_pb2.SearchResults(status=ok, results=schema_pb2.SearchResultData(
    num_queries=2, top_k=2, topks=[2, 2], scores=[0.1, 0.2, 0.3, 0.4],
    ids=schema_pb2.IDs(int_id=schema_pb2.LongArray(data=[1, 2, 3, 4])),
    fields_data=[titles, meta], output_fields=["title"]))
write("FuzzMilvusResults", "search-int-ids-two-queries", b"\x00" + search_int.SerializeToString())

search_str = milvus_pb2.SearchResults(status=ok, results=schema_pb2.SearchResultData(
    num_queries=3, top_k=2, topks=[2, 0, 1], scores=[0.5, 0.25, 1.0],
    ids=schema_pb2.IDs(str_id=schema_pb2.StringArray(data=["x", "y", "z"])),
    fields_data=[vector_field("v", 2, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])]))
write("FuzzMilvusResults", "search-string-ids-vectors", b"\x00" + search_str.SerializeToString())

search_empty = milvus_pb2.SearchResults(status=ok, results=schema_pb2.SearchResultData(
    num_queries=1, top_k=10, topks=[0]))
write("FuzzMilvusResults", "search-no-hits", b"\x00" + search_empty.SerializeToString())

search_error = milvus_pb2.SearchResults(status=common_pb2.Status(
    code=100, error_code=common_pb2.ErrorCode.CollectionNotExists, reason="collection not found[collection=c]"))
write("FuzzMilvusResults", "search-error-status", b"\x00" + search_error.SerializeToString())

query = milvus_pb2.QueryResults(status=ok, fields_data=[
    scalar_field("id", DT.Int64, long_data=schema_pb2.LongArray(data=[1, 2, 3, 4])),
    titles,
    scalar_field("flag", DT.Bool, bool_data=schema_pb2.BoolArray(data=[True, False, True, False])),
    scalar_field("small", DT.Int8, int_data=schema_pb2.IntArray(data=[-128, 0, 1, 127])),
    scalar_field("score", DT.Float, float_data=schema_pb2.FloatArray(data=[0.5, 1.5, -2, 3])),
    scalar_field("weight", DT.Double, double_data=schema_pb2.DoubleArray(data=[0.5, 1e300, -2, 3])),
    schema_pb2.FieldData(
        type=DT.Array, field_name="tags", valid_data=[True, True, False, True],
        scalars=schema_pb2.ScalarField(array_data=schema_pb2.ArrayArray(
            element_type=DT.Int64,
            data=[schema_pb2.ScalarField(long_data=schema_pb2.LongArray(data=[1, 2])),
                  schema_pb2.ScalarField(long_data=schema_pb2.LongArray(data=[])),
                  schema_pb2.ScalarField(long_data=schema_pb2.LongArray(data=[3])),
                  schema_pb2.ScalarField(long_data=schema_pb2.LongArray(data=[4, 5, 6]))]))),
    vector_field("v", 2, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]),
    meta,
], output_fields=["id", "title"], collection_name="c", primary_field_name="id")
write("FuzzMilvusResults", "query-every-type", b"\x01" + query.SerializeToString())

count = milvus_pb2.QueryResults(status=ok, fields_data=[
    scalar_field("count(*)", DT.Int64, long_data=schema_pb2.LongArray(data=[42]))])
write("FuzzMilvusResults", "query-count", b"\x01" + count.SerializeToString())


def field_schema(name, dtype, params=(), **extra):
    return schema_pb2.FieldSchema(
        name=name, data_type=dtype,
        type_params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in params], **extra)


describe = milvus_pb2.DescribeCollectionResponse(
    status=ok, collection_name="books", collectionID=451, shards_num=1, db_name="default",
    consistency_level=common_pb2.ConsistencyLevel.Bounded, aliases=["novels"],
    created_timestamp=449_000_000_000, update_timestamp=449_000_000_001,
    properties=[common_pb2.KeyValuePair(key="collection.ttl.seconds", value="0")],
    schema=schema_pb2.CollectionSchema(
        name="books", enable_dynamic_field=True, fields=[
            field_schema("id", DT.Int64, is_primary_key=True, autoID=True),
            field_schema("title", DT.VarChar, [("max_length", "256")]),
            field_schema("v", DT.FloatVector, [("dim", "4")]),
            field_schema("tags", DT.Array, [("max_capacity", "16"), ("max_length", "32")],
                         element_type=DT.VarChar),
            field_schema("meta", DT.JSON),
            field_schema("$meta", DT.JSON, is_dynamic=True),
        ]))
write("FuzzMilvusResults", "describe-every-type", b"\x02" + describe.SerializeToString())

describe_bad = milvus_pb2.DescribeCollectionResponse(
    status=ok, collection_name="c", schema=schema_pb2.CollectionSchema(fields=[
        field_schema("id", DT.VarChar, is_primary_key=True),
        field_schema("v", DT.FloatVector, [("dim", "-4")]),
        field_schema("s", DT.SparseFloatVector),
    ]))
write("FuzzMilvusResults", "describe-bad-dimension", b"\x02" + describe_bad.SerializeToString())

# Modes 3-5: recipes for well-formed messages (FuzzInput bytes).
write("FuzzMilvusResults", "recipe-search", bytes([3, 1, 4, 0, 0, 0, 0, 2, 3, 1, 4, 2, 7, 5, 1] * 3))
write("FuzzMilvusResults", "recipe-query", bytes([4, 1, 5, 3, 2, 0, 6, 3, 2, 0, 1, 5, 3, 4, 1] * 3))
write("FuzzMilvusResults", "recipe-describe", bytes([5, 1, 1, 3, 0, 5, 0, 1, 0, 0, 1, 0, 1, 1, 12, 2, 1]))
