#!/usr/bin/env python3
"""Writes, reads and searches rows of every Milvus data type with pymilvus, as typed JSON.

Test peer for the type cross-checks: the Swift tests write rows through MilvexReactor and read
them back here through pymilvus (the reference SDK), write here and read through Swift, and run
the same searches through both. Values travel in a lossless typed JSON encoding (README.md).

    pymilvus_types.py REQUEST.json      (or the request itself as the argument, if it starts with {)

The request is {"uri": ..., "token": ..., "db": ..., "collection": ..., "timeout": 60,
"actions": [...]}; the actions (create, insert, query, search, describe, flush, drop, and
encode, encode_search and encode_query, which need no server: pymilvus's own insert, search
and query requests, serialized as hex) run in order and the output is one line on stdout,
{"results": [one entry per action]}. Status 0 on
success; on any failure, one line naming the action and the error goes to stderr and the
status is 1. Each pymilvus call gives up after "timeout" seconds (default 60; pymilvus keeps
retrying some errors until then), the whole run after "max_seconds" (default 600).
"""

import enum
import json
import logging
import math
import os
import sys
import threading
from collections.abc import Mapping

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient

BYTE_VECTORS = (DataType.BINARY_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR)


class RequestError(Exception):
    """A request this peer cannot carry out (as opposed to an error from pymilvus)."""


def data_type(name):
    try:
        return DataType[name.upper()]
    except (KeyError, AttributeError):
        raise RequestError(f"unknown data type {name!r}; pymilvus knows "
                           f"{', '.join(t.name for t in DataType)}") from None


# ------------------------------------------------------------------ typed JSON -> pymilvus
def tagged(value, tag, field):
    if not isinstance(value, dict) or set(value) != {tag}:
        raise RequestError(f"field {field!r}: expected {{{tag!r}: ...}}, got {value!r}")
    return value[tag]


def to_pymilvus(value, field):
    """A typed-JSON value as pymilvus takes it for `field` (a described field, or None for a
    dynamic key, whose value goes in as it is)."""
    if field is None:
        return value
    name, dtype = field["name"], field["type"]
    if value is None:
        if dtype == DataType.JSON and not (field.get("nullable") or "default_value" in field):
            return "null"  # the JSON value null in a field that cannot be null
        return None
    if dtype == DataType.JSON:
        # pymilvus takes a str as JSON text: serialize everything, so "abc" stays a string.
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    if dtype in BYTE_VECTORS:
        return bytes.fromhex(tagged(value, "hex", name))
    if dtype == DataType.INT8_VECTOR:
        return np.array(tagged(value, "int8", name), dtype=np.int8)
    if dtype == DataType.SPARSE_FLOAT_VECTOR:
        return {int(index): float(number) for index, number in tagged(value, "sparse", name)}
    return value


def query_vector(value, field):
    """A search query for the anns field: its type's typed encoding, or raw text (BM25)."""
    if isinstance(value, str):
        return value
    if field["type"] in BYTE_VECTORS:
        # For bytes pymilvus takes the placeholder type from the schema (binary by default).
        return bytes.fromhex(tagged(value, "hex", field["name"]))
    return to_pymilvus(value, field)


# ------------------------------------------------------------------ pymilvus -> typed JSON
def is_repeated(value):
    """Protobuf repeated fields (RepeatedScalarContainer and the like), which pymilvus passes on."""
    return type(value).__name__.startswith("Repeated") and hasattr(value, "__len__")


def plain(value):
    """JSON-safe copies of values with no declared type (dynamic keys, JSON, arrays)."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return {"hex": bytes(value).hex()}
    if isinstance(value, (list, tuple)) or is_repeated(value):
        return [plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def raw_bytes(value):
    """The bytes of a binary/float16/bfloat16/int8 vector as pymilvus returns it: bytes, a list
    holding one bytes (query), or numpy values."""
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], (bytes, bytearray)):
        value = value[0]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], np.generic):
        value = np.array(value, dtype=value[0].dtype)
    if isinstance(value, np.ndarray):
        return value.tobytes()
    raise TypeError(f"unexpected {type(value).__name__} for a byte vector: {value!r:.200}")


def float32_repr(number):
    number = float(number)
    if not math.isfinite(number):
        raise ValueError(f"{number} has no JSON form")
    return float(np.float32(number))  # json.dumps prints repr: the exact float32 value


def from_pymilvus(value, dtype):
    if value is None:
        return None
    if dtype == DataType.FLOAT_VECTOR:
        return [float32_repr(x) for x in np.asarray(value, dtype=np.float32).tolist()]
    if dtype in BYTE_VECTORS:
        return {"hex": raw_bytes(value).hex()}
    if dtype == DataType.INT8_VECTOR:
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], (int, np.integer)):
            return {"int8": [int(x) for x in value]}
        return {"int8": np.frombuffer(raw_bytes(value), dtype=np.int8).tolist()}
    if dtype == DataType.SPARSE_FLOAT_VECTOR:
        pairs = value.items() if isinstance(value, dict) else value
        return {"sparse": sorted([int(index), float32_repr(number)] for index, number in pairs)}
    if dtype == DataType.FLOAT:
        return float32_repr(value)
    return plain(value)


def typed_hits(hits, fields):
    return {"hits": [[{"id": plain(hit["id"]), "distance": float(hit["distance"]),
                       "entity": typed_row(hit.get("entity") or {}, fields)}
                      for hit in query] for query in hits]}


def typed_row(row, fields):
    out = {}
    for key, value in row.items():
        field = fields.get(key)
        out[key] = from_pymilvus(value, field["type"]) if field else plain(value)
    return out


def json_safe(value):
    """describe_collection's answer as JSON: enums by name, protobuf values unwrapped."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)) or is_repeated(value):
        return [json_safe(item) for item in value]
    if isinstance(value, enum.Enum):  # DataType, FunctionType, ...
        return value.name
    if hasattr(value, "DESCRIPTOR") and hasattr(value, "WhichOneof"):  # e.g. default_value
        oneofs = value.DESCRIPTOR.oneofs_by_name
        if "data" in oneofs:
            which = value.WhichOneof("data")
            return None if which is None else json_safe(getattr(value, which))
        from google.protobuf.json_format import MessageToDict
        return MessageToDict(value)
    return plain(value)


# ------------------------------------------------------------------ actions
# Keys of a query or search action passed to pymilvus as they are (keyword arguments).
QUERY_OPTIONS = ("limit", "offset", "consistency_level", "partition_names", "filter_params",
                 "ignore_growing")
SEARCH_OPTIONS = ("consistency_level", "partition_names", "filter_params", "offset",
                  "ignore_growing", "group_by_field", "group_size", "strict_group_size")
HYBRID_OPTIONS = ("consistency_level", "partition_names", "offset", "ignore_growing",
                  "group_by_field", "group_size", "strict_group_size")


class Session:
    def __init__(self, request):
        self.collection = request["collection"]
        self.timeout = float(request.get("timeout", 60))
        self.client = MilvusClient(uri=request["uri"], token=request.get("token", ""),
                                   db_name=request.get("db", ""), timeout=self.timeout)
        self.fields_cache = None

    def fields(self):
        """name -> described field (types as pymilvus DataType), fetched once per collection."""
        if self.fields_cache is None:
            described = self.client.describe_collection(self.collection, timeout=self.timeout)
            self.fields_cache = {field["name"]: field for field in described["fields"]}
        return self.fields_cache

    def create(self, action):
        spec = action["schema"]
        schema = MilvusClient.create_schema(auto_id=spec.get("auto_id", False),
                                            enable_dynamic_field=spec.get("enable_dynamic_field", False))
        for field in spec["fields"]:
            options = {key: value for key, value in field.items() if key not in ("name", "type")}
            if "element_type" in options:
                options["element_type"] = data_type(options["element_type"])
            schema.add_field(field["name"], data_type(field["type"]), **options)
        for function in spec.get("functions", []):
            try:
                kind = FunctionType[function["type"].upper()]
            except KeyError:
                raise RequestError(f"unknown function type {function['type']!r}") from None
            schema.add_function(Function(
                name=function["name"], function_type=kind,
                input_field_names=function["input_field_names"],
                output_field_names=function["output_field_names"],
                params=function.get("params") or {}))
        if self.client.has_collection(self.collection, timeout=self.timeout):
            self.client.drop_collection(self.collection, timeout=self.timeout)
        options = {key: action[key] for key in ("num_partitions", "consistency_level", "num_shards")
                   if key in action}
        self.client.create_collection(self.collection, schema=schema, timeout=self.timeout, **options)
        self.fields_cache = None
        if action.get("index"):
            index_params = self.client.prepare_index_params()
            for index in action["index"]:
                index_params.add_index(
                    field_name=index["field"], index_type=index.get("index_type", ""),
                    index_name=index.get("index_name", ""), metric_type=index.get("metric_type"),
                    params=index.get("params") or {})
            self.client.create_index(self.collection, index_params, timeout=self.timeout)
        if action.get("load", False):
            self.client.load_collection(self.collection, timeout=self.timeout)
        return {"ok": True}

    def insert(self, action):
        fields = self.fields()
        rows = [{key: to_pymilvus(value, fields.get(key)) for key, value in row.items()}
                for row in action["rows"]]
        result = self.client.insert(self.collection, rows, timeout=self.timeout)
        return {"insert_count": result["insert_count"], "ids": plain(list(result["ids"]))}

    def query(self, action):
        fields = self.fields()
        if "ids" in action:  # get by primary keys
            options = {key: action[key] for key in ("consistency_level", "partition_names")
                       if key in action}
            rows = self.client.get(self.collection, ids=action["ids"],
                                   output_fields=action.get("output_fields", ["*"]),
                                   timeout=self.timeout, **options)
        else:
            options = {key: action[key] for key in QUERY_OPTIONS if key in action}
            rows = self.client.query(self.collection, filter=action.get("filter", ""),
                                     output_fields=action.get("output_fields", ["*"]),
                                     timeout=self.timeout, **options)
        primary = next(name for name, field in fields.items() if field.get("is_primary"))
        rows = sorted((dict(row) for row in rows), key=lambda row: row[primary])
        return {"rows": [typed_row(row, fields) for row in rows]}

    def search(self, action):
        fields = self.fields()
        if "searches" in action:
            return self.hybrid_search(action, fields)
        anns = action["anns_field"]
        if anns not in fields:
            raise RequestError(f"anns_field {anns!r} is not a field of {self.collection!r}")
        options = {key: action[key] for key in SEARCH_OPTIONS if key in action}
        if "ids" in action:  # search by primary keys
            options["ids"] = action["ids"]
        else:
            options["data"] = [query_vector(query, fields[anns]) for query in action["data"]]
        hits = self.client.search(
            self.collection, anns_field=anns, limit=action.get("limit", 10),
            filter=action.get("filter", ""), output_fields=action.get("output_fields", []),
            search_params=action.get("search_params") or {}, timeout=self.timeout, **options)
        return typed_hits(hits, fields)

    def hybrid_search(self, action, fields):
        """`searches` (each: anns_field, data, limit, filter, filter_params, search_params)
        fused by `ranker` ({"rrf": k} or {"weighted": [weights]})."""
        from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker
        requests = []
        for search in action["searches"]:
            anns = search["anns_field"]
            requests.append(AnnSearchRequest(
                [query_vector(query, fields[anns]) for query in search["data"]], anns,
                search.get("search_params") or {}, search.get("limit", 10),
                expr=search.get("filter") or None, expr_params=search.get("filter_params")))
        ranker = action.get("ranker", {"rrf": 60})
        if "rrf" in ranker:
            rerank = RRFRanker(ranker["rrf"])
        else:
            rerank = WeightedRanker(*ranker["weighted"])
        options = {key: action[key] for key in HYBRID_OPTIONS if key in action}
        hits = self.client.hybrid_search(
            self.collection, requests, rerank, limit=action.get("limit", 10),
            output_fields=action.get("output_fields", []), timeout=self.timeout, **options)
        return typed_hits(hits, fields)

    def describe(self, action):
        return json_safe(self.client.describe_collection(self.collection, timeout=self.timeout))

    def flush(self, action):
        self.client.flush(self.collection, timeout=self.timeout)
        return {"ok": True}

    def drop(self, action):
        self.client.drop_collection(self.collection, timeout=self.timeout)
        self.fields_cache = None
        return {"ok": True}


def encode(action):
    """pymilvus's own insert encoding of `rows`, without a server: the serialized InsertRequest
    as hex, for byte-for-byte comparison of the column data. `fields` describe the collection
    as {"name", "type", "dim"/"max_length"/"element_type"/"max_capacity", "is_primary",
    "nullable", "default_value"}."""
    from pymilvus.client.prepare import Prepare
    fields = []
    for spec in action["fields"]:
        params = {key: spec[key] for key in ("dim", "max_length", "max_capacity") if key in spec}
        field = {"name": spec["name"], "type": data_type(spec["type"]), "params": params,
                 "is_primary": spec.get("is_primary", False), "auto_id": False,
                 "nullable": spec.get("nullable", False)}
        if "element_type" in spec:
            field["element_type"] = data_type(spec["element_type"])
        if "default_value" in spec:
            field["default_value"] = spec["default_value"]
        fields.append(field)
    by_name = {field["name"]: field for field in fields}
    rows = [{key: to_pymilvus(value, by_name.get(key)) for key, value in row.items()}
            for row in action["rows"]]
    request = Prepare.row_insert_param(action.get("collection", "c"), rows, "", fields)
    return {"request_hex": request.SerializeToString().hex()}


def encode_search(action):
    """pymilvus's own SearchRequest for a search, without a server (as MilvusClient.search
    builds it: the same consistency handling and keyword arguments), as hex. `data` holds
    float vectors, or `ids` primary keys; the other keys are those of `search`."""
    from pymilvus.client import ts_utils
    from pymilvus.client.prepare import Prepare
    kwargs = {key: action[key] for key in SEARCH_OPTIONS if key in action}
    if "filter_params" in kwargs:
        kwargs["expr_params"] = kwargs.pop("filter_params")
    use_default = ts_utils.construct_guarantee_ts(action.get("collection", "c"), kwargs)
    request = Prepare.search_requests_with_expr(
        collection_name=action.get("collection", "c"), anns_field=action.get("anns_field", ""),
        param=action.get("search_params") or {}, limit=action.get("limit", 10),
        data=action.get("data"), ids=action.get("ids"), expr=action.get("filter", ""),
        partition_names=kwargs.pop("partition_names", None),
        output_fields=action.get("output_fields"), use_default_consistency=use_default, **kwargs)
    return {"request_hex": request.SerializeToString().hex()}


def encode_query(action):
    """pymilvus's own QueryRequest for a query, without a server, as hex; the keys are those of
    `query` (not `ids`)."""
    from pymilvus.client import ts_utils
    from pymilvus.client.prepare import Prepare
    kwargs = {key: action[key] for key in QUERY_OPTIONS if key in action}
    if "filter_params" in kwargs:
        kwargs["expr_params"] = kwargs.pop("filter_params")
    use_default = ts_utils.construct_guarantee_ts(action.get("collection", "c"), kwargs)
    request = Prepare.query_request(
        action.get("collection", "c"), action.get("filter", ""),
        action.get("output_fields", []), kwargs.pop("partition_names", []),
        use_default_consistency=use_default, **kwargs)
    return {"request_hex": request.SerializeToString().hex()}


LOCAL_ACTIONS = {"encode": encode, "encode_search": encode_search, "encode_query": encode_query}


def read_request(argv):
    if len(argv) != 2:
        raise RequestError("usage: pymilvus_types.py REQUEST.json | '{...}'")
    text = argv[1]
    if not text.lstrip().startswith("{"):
        with open(text, encoding="utf-8") as f:
            text = f.read()
    request = json.loads(text)
    for key in ("uri", "collection", "actions"):
        if key not in request:
            raise RequestError(f"the request has no {key!r}")
    return request


def fail(message):
    sys.stderr.write(f"pymilvus_types.py: {message}\n")
    sys.stderr.flush()
    os._exit(1)  # pymilvus's gRPC threads must not keep us alive


def main():
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # the one line from fail() suffices
    where = "request"
    try:
        request = read_request(sys.argv)
        seconds = float(request.get("max_seconds", 600))
        # A timer thread, not SIGALRM: it fires even while the main thread waits inside gRPC.
        watchdog = threading.Timer(seconds, lambda: fail(f"{where}: not done after {seconds:g} s"))
        watchdog.daemon = True
        watchdog.start()
        session = None
        results = []
        for number, action in enumerate(request["actions"], 1):
            op = action.get("op")
            where = f"action {number} ({op})"
            if op in LOCAL_ACTIONS:  # local: no server needed
                results.append(LOCAL_ACTIONS[op](action))
                continue
            if op not in ("create", "insert", "query", "search", "describe", "flush", "drop"):
                raise RequestError(f"unknown op {op!r}")
            if session is None:
                where = f"connecting to {request['uri']}"
                session = Session(request)
                where = f"action {number} ({op})"
            results.append(getattr(session, op)(action))
        where = "output"
        output = json.dumps({"results": results}, ensure_ascii=False, allow_nan=False)
    except Exception as error:  # pymilvus raises many kinds; each is reported the same way
        detail = " ".join(str(error).split())
        fail(f"{where}: {type(error).__name__}: {detail}")
    sys.stdout.write(output + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
