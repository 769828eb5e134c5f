import ChannelBenchSupport
// What the typed Milvus layer costs on top of the channel (Docs/benchmarks.md).
//
// 1. Per call, against the gRPC C++ generic echo server (Benchmarks/cpp-server): the same
//    GetVersion call made raw (`GRPCChannel.unary`, bytes in and out) and typed
//    (`MilvusClient.perform(.serverVersion())`: encode, wait-for-ready, status check, decode,
//    retry bookkeeping), alternately in one process, at concurrency 1 and 16. CPU per call and
//    p50 latency, and their ratios.
// 2. Locally, without a server: encoding inserts (rows and columns) and search requests, and
//    decoding search results, per row or per hit.
//
//   MilvexClientBench --server Benchmarks/.build-cpp/generic_server [--calls N] [--rounds R]
//                     [--server-cpu C]   (the server runs pinned to CPU C with taskset; -1: not pinned)
//                     [--port P]   (use an echo server already listening on 127.0.0.1:P)
//                     [--mode all|raw|typed|codec]   (raw/typed: only those calls at concurrency 1, for
//                                               instruction counts under callgrind;
//                                               codec: only the local encoding and decoding, no server)
import Foundation
import MilvexProtos
@_spi(Benchmarks) import MilvexReactor
import SwiftProtobuf

struct Options {
  var server = "Benchmarks/.build-cpp/generic_server"
  var calls = 20_000
  var rounds = 3
  var serverCPU = 1
  var mode = "all"
  /// An echo server already running (valgrind cannot follow the spawn of one).
  var port: Int?

  init(_ arguments: [String]) throws {
    var iterator = arguments.dropFirst().makeIterator()
    while let argument = iterator.next() {
      guard let value = iterator.next() else { throw BenchError("\(argument) needs a value") }
      switch argument {
      case "--server": server = value
      case "--calls": calls = try Self.positive(argument, value)
      case "--rounds": rounds = try Self.positive(argument, value)
      case "--port": port = try Self.positive(argument, value)
      case "--mode":
        guard ["all", "raw", "typed", "codec"].contains(value) else {
          throw BenchError("--mode must be all, raw, typed or codec, got \(value)")
        }
        mode = value
      case "--server-cpu":
        guard let cpu = Int(value), cpu >= -1 else {
          throw BenchError("--server-cpu must be a CPU number or -1, got \(value)")
        }
        serverCPU = cpu
      default:
        throw BenchError(
          "unknown option \(argument); options: --server PATH --calls N --rounds R --server-cpu C")
      }
    }
  }

  static func positive(_ name: String, _ value: String) throws -> Int {
    guard let number = Int(value), number > 0 else {
      throw BenchError("\(name) must be a positive integer, got \(value)")
    }
    return number
  }
}

struct BenchError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// Process CPU time (user + system), in microseconds.
func cpuMicroseconds() -> Double {
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6
    + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}

struct Measured {
  var cpuPerCall: Double  // µs
  var p50: Double  // µs
}

/// `calls` calls from `concurrency` tasks, each sequential.
func measure(concurrency: Int, calls: Int, _ call: @escaping @Sendable () async throws -> Void)
  async throws -> Measured
{
  let cpuBefore = cpuMicroseconds()
  let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
    for task in 0..<concurrency {
      let share = calls / concurrency + (task < calls % concurrency ? 1 : 0)
      group.addTask {
        var latencies: [Double] = []
        latencies.reserveCapacity(share)
        for _ in 0..<share {
          let started = ContinuousClock.now
          try await call()
          let elapsed = ContinuousClock.now - started
          latencies.append(
            Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6
          )
        }
        return latencies
      }
    }
    var all: [Double] = []
    for try await part in group { all += part }
    return all.sorted()
  }
  let cpu = cpuMicroseconds() - cpuBefore
  return Measured(cpuPerCall: cpu / Double(calls), p50: latencies[latencies.count / 2])
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func startServer(_ path: String, cpu: Int) throws -> (Process, Int) {
  let process = Process()
  if cpu >= 0 {
    process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
    process.arguments = ["-c", "\(cpu)", path, "0"]
  } else {
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = ["0"]
  }
  let output = Pipe()
  process.standardOutput = output
  process.standardInput = Pipe()
  try process.run()
  var line = Data()
  while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty,
    byte != Data([10])
  {
    line.append(byte)
  }
  let text = String(decoding: line, as: UTF8.self)
  guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5)) else {
    process.terminate()
    throw BenchError(
      "\(path) printed '\(text)' instead of 'PORT <n>'; build it with make -C Benchmarks/cpp-server"
    )
  }
  return (process, port)
}

func perCallComparison(_ options: Options) async throws {
  let server: Process?
  let port: Int
  if let given = options.port {
    (server, port) = (nil, given)
  } else {
    let (started, startedPort) = try startServer(options.server, cpu: options.serverCPU)
    (server, port) = (started, startedPort)
  }
  defer { server?.terminate() }
  let loop = try EventLoop(threadName: "client-bench")
  defer { loop.shutdown() }
  let client = try MilvusClient.connect(
    config: ConnectionConfig(host: "127.0.0.1", port: port), on: loop)
  let (channel, _) = try await client.connection.waitForChannel(timeout: .seconds(10))
  let path = "/milvus.proto.milvus.MilvusService/GetVersion"
  let raw: @Sendable () async throws -> Void = {
    _ = try await channel.unary(path: path, request: [], timeout: .seconds(30))
  }
  let typed: @Sendable () async throws -> Void = { _ = try await client.perform(.serverVersion()) }

  if options.mode != "all" {
    let only = options.mode == "raw" ? raw : typed
    _ = try await measure(concurrency: 1, calls: 200, only)
    let measured = try await measure(concurrency: 1, calls: options.calls, only)
    print(
      String(
        format: "%@ only: %d calls, %.1f µs CPU/call", options.mode, options.calls,
        measured.cpuPerCall))
    await client.close()
    return
  }
  print(
    "per call, GetVersion against generic_server (gRPC C++ echo), \(options.calls) calls × \(options.rounds) rounds, medians:"
  )
  print(
    "concurrency | raw CPU µs/call | typed CPU µs/call | CPU ratio | raw p50 µs | typed p50 µs | p50 ratio"
  )
  for concurrency in [1, 16] {
    _ = try await measure(concurrency: concurrency, calls: options.calls / 10, raw)  // warm-up
    _ = try await measure(concurrency: concurrency, calls: options.calls / 10, typed)
    var raws: [Measured] = []
    var typeds: [Measured] = []
    for _ in 0..<options.rounds {
      raws.append(try await measure(concurrency: concurrency, calls: options.calls, raw))
      typeds.append(try await measure(concurrency: concurrency, calls: options.calls, typed))
    }
    let rawCPU = median(raws.map(\.cpuPerCall)), typedCPU = median(typeds.map(\.cpuPerCall))
    let rawP50 = median(raws.map(\.p50)), typedP50 = median(typeds.map(\.p50))
    print(
      String(
        format: "%11d | %15.1f | %17.1f | %9.2f | %10.1f | %12.1f | %9.2f",
        concurrency, rawCPU, typedCPU, typedCPU / rawCPU, rawP50, typedP50, typedP50 / rawP50))
  }
  await client.close()
}

func time(_ repetitions: Int, _ body: () throws -> Void) rethrows -> Double {
  let started = ContinuousClock.now
  for _ in 0..<repetitions { try body() }
  let elapsed = ContinuousClock.now - started
  return (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12)
    / Double(repetitions)
}

func vector(_ index: Int, _ dimension: Int) -> [Float] {
  (0..<dimension).map { Float(($0 &* 31 &+ index &* 17) % 1000) / 1000 }
}

func localCodec() throws {
  let dimension = 128
  let schema = CollectionSchema(
    fields: [
      .primaryKey("id"), .field("title", .varChar(maxLength: 64)), .field("price", .double),
      .field("meta", .json), .vector("embedding", dimension: dimension),
    ],
    enableDynamicField: true)
  let count = 10_000
  let rows: [Row] = (0..<count).map { index in
    [
      "id": .int(Int64(index)), "title": .string("title \(index)"),
      "price": .double(Double(index) / 3),
      "meta": ["k": .int(Int64(index))], "embedding": .floatVector(vector(index, dimension)),
      "color": "red",
    ]
  }
  let columns: [String: FieldColumn] = [
    "id": .int((0..<count).map(Int64.init)), "title": .string((0..<count).map { "title \($0)" }),
    "price": .double((0..<count).map { Double($0) / 3 }),
    "meta": .values((0..<count).map { ["k": .int(Int64($0))] }),
    "embedding": .floatVectors((0..<count).map { vector($0, dimension) }),
    "color": .string(Array(repeating: "red", count: count)),
  ]
  var bytes = 0
  let rowsTime = try time(5) {
    bytes = try MilvusCall.insert(into: "c", .rows(rows)).encodedRequest(schema: schema).count
  }
  let columnsTime = try time(5) {
    _ = try MilvusCall.insert(into: "c", .columns(columns)).encodedRequest(schema: schema)
  }
  print("local encoding (no server), release build:")
  print(
    String(
      format:
        "insert of %d rows × %d-dim + 4 scalar fields (%.1f MB): rows %.2f µs/row, columns %.2f µs/row",
      count, dimension, Double(bytes) / 1e6, rowsTime / Double(count), columnsTime / Double(count)))

  let searchSchema = CollectionSchema(fields: [
    .primaryKey("id"), .field("title", .varChar(maxLength: 64)),
    .vector("embedding", dimension: 768),
  ])
  let queries = (0..<10).map { vector($0, 768) }
  let searchTime = try time(2_000) {
    _ = try MilvusCall.search("c", vectors: queries, limit: 100, outputFields: ["title"])
      .encodedRequest(schema: searchSchema)
  }
  print(String(format: "search request, 10 query vectors × 768-dim: %.1f µs", searchTime))

  // 10 queries × 100 hits with one varchar output field, as Milvus sends them.
  var response = Milvus_Proto_Milvus_SearchResults()
  var results = Milvus_Proto_Schema_SearchResultData()
  results.numQueries = 10
  results.topK = 100
  results.topks = Array(repeating: 100, count: 10)
  results.ids.intID.data = (0..<1_000).map(Int64.init)
  results.scores = (0..<1_000).map { Float($0) / 1000 }
  var title = Milvus_Proto_Schema_FieldData()
  title.fieldName = "title"
  title.type = .varChar
  title.scalars.stringData.data = (0..<1_000).map { "title \($0)" }
  results.fieldsData = [title]
  response.results = results
  let responseBytes: [UInt8] = try response.serializedBytes()
  let call = MilvusCall.search("c", vectors: queries, limit: 100, outputFields: ["title"])
  let decodeTime = try time(500) { _ = try call.decodedResponse(responseBytes) }
  print(
    String(
      format: "search results, 10 × 100 hits with one varchar field: %.1f µs (%.3f µs/hit)",
      decodeTime, decodeTime / 1000))
  try mixedTypesCodec(floatSchema: schema, floatRows: rows, floatColumns: columns)
}

nonisolated func main() async throws {
  let options = try Options(CommandLine.arguments)
  print(
    "MilvexClientBench \(Date()) on \(ProcessInfo.processInfo.hostName), \(ProcessInfo.processInfo.activeProcessorCount) CPUs"
  )
  if options.mode == "all" || options.mode == "codec" { try localCodec() }
  if options.mode != "codec" { try await perCallComparison(options) }
}

// A synchronous main (see ChannelBenchSupport.runBlocking): valgrind cannot run an async one.
try runBlocking { try await main() }
