// The quick-start: connect to Milvus, create a collection, insert some vectors, search them and
// print the hits. `make demo` runs it against an embedded milvus-lite that the Makefile starts
// (MILVUS_PORT tells where) and stops.
import Foundation
import MilvexReactor

if CommandLine.arguments.contains("--version") {
  print("milvex-quickstart, MilvexReactor \(MilvexReactorVersion.string)")
  exit(0)
}

let port = Int(ProcessInfo.processInfo.environment["MILVUS_PORT"] ?? "") ?? 19530

// One event loop on its own thread owns the connection; the client is a Sendable handle.
let loop = try EventLoop(threadName: "quickstart")
let client = try MilvusClient.connect(
  config: ConnectionConfig(host: "127.0.0.1", port: port), on: loop)
print("Milvus \(try await client.perform(.serverVersion())) at 127.0.0.1:\(port)")

// A collection of short texts with 4-dimensional embeddings; `genre` is not in the schema and
// goes to the dynamic field.
let schema = CollectionSchema(
  fields: [
    .primaryKey("id", .int64), .field("title", .varChar(maxLength: 128)),
    .vector("embedding", dimension: 4),
  ],
  enableDynamicField: true)
if try await client.perform(.hasCollection("books")) {
  try await client.perform(.dropCollection("books"))
}
try await client.perform(.createCollection("books", schema: schema, consistencyLevel: .strong))

let books: [Row] = [
  [
    "id": 1, "title": "The Left Hand of Darkness", "embedding": [0.9, 0.1, 0.1, 0.3], "genre": "sf",
  ],
  ["id": 2, "title": "Middlemarch", "embedding": [0.1, 0.9, 0.2, 0.1], "genre": "novel"],
  ["id": 3, "title": "Dune", "embedding": [0.8, 0.2, 0.1, 0.5], "genre": "sf"],
  ["id": 4, "title": "Persuasion", "embedding": [0.2, 0.8, 0.3, 0.1], "genre": "novel"],
  ["id": 5, "title": "Solaris", "embedding": [0.7, 0.1, 0.3, 0.4], "genre": "sf"],
]
let inserted = try await client.perform(.insert(into: "books", rows: books))
print("inserted \(inserted.insertCount) books")

try await client.perform(
  .createIndex(on: "books", IndexSpec(fieldName: "embedding", metricType: .cosine)))
try await client.loadCollection("books")

// Two query vectors, three nearest books each, with their titles and genres.
let queries: [(String, [Float])] = [
  ("space", [0.85, 0.15, 0.1, 0.4]), ("society", [0.15, 0.85, 0.25, 0.1]),
]
let results = try await client.perform(
  .search(
    "books", vectors: queries.map(\.1), limit: 3, outputFields: ["title", "genre"]))
for ((name, _), hits) in zip(queries, results) {
  print("nearest to \"\(name)\":")
  for hit in hits {
    let title = hit.fields["title"]?.stringValue ?? "?"
    let genre = hit.fields["genre"]?.stringValue ?? "?"
    print("  \(hit.id)  \(title) (\(genre))  score \(String(format: "%.4f", hit.distance))")
  }
}

// A filtered query on the dynamic field.
let novels = try await client.perform(
  .query("books", filter: "genre == \"novel\"", outputFields: ["title"]))
print("novels: \(novels.compactMap { $0["title"]?.stringValue }.sorted().joined(separator: ", "))")

try await client.perform(.dropCollection("books"))
await client.close()
loop.shutdown()
