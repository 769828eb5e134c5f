// A host that owns its libev loop, as an event-driven server does: it creates the loop through
// the library's CLibEV product, embeds MilvexReactor in it (`EventLoop(embeddingIn:)`) and
// drives a whole collection's life with the loop-thread callback forms, never a task: create,
// insert, flush, build an index, load (with progress), search, cancel a wait, switch database,
// close. `make build-downstream` runs it against milvus-lite (MILVUS_PORT); it exits 0 only
// when every step gave the expected result on the loop thread, within its watchdog.
import CLibEV
import COpenSSL
import Foundation
import MilvexReactor

if CommandLine.arguments.contains("--version") {
  print("Demo with MilvexReactor \(MilvexReactorVersion.string)")
  exit(0)
}

nonisolated func say(_ text: String) {
  print("downstream demo: \(text)")
  fflush(nil)
}

guard let port = Int(ProcessInfo.processInfo.environment["MILVUS_PORT"] ?? "") else {
  say("set MILVUS_PORT to a Milvus server's port on 127.0.0.1")
  exit(2)
}
say("OpenSSL 0x\(String(OpenSSL_version_num(), radix: 16)) beside the library's own")

/// The steps, all on the host loop's thread. Not Sendable: it never leaves that thread.
final class Steps {
  let hostLoop: OpaquePointer
  let loop: MilvexReactor.EventLoop
  let client: MilvusClient
  let collection = "downstream_demo"
  var failure: String?
  var finished = false

  init(hostLoop: OpaquePointer, port: Int) throws {
    self.hostLoop = hostLoop
    loop = MilvexReactor.EventLoop(embeddingIn: hostLoop)
    client = try MilvusClient.connect(
      config: ConnectionConfig(host: "127.0.0.1", port: port, timeout: .seconds(30)), on: loop)
  }

  var view: MilvusClient.LoopView { client.onLoop }

  /// Runs `body` with the success value, or stops the demo with the failure.
  func then<Value>(
    _ what: String, _ body: @escaping (Value) -> Void
  ) -> (Result<Value, MilvexError>) -> Void {
    { [self] result in
      guard loop.inLoopThread else { return fail("\(what): completion off the loop thread") }
      switch result {
      case .success(let value): body(value)
      case .failure(let error): fail("\(what): \(error)")
      }
    }
  }

  func fail(_ message: String) {
    guard failure == nil else { return }
    failure = message
    say("FAILED: \(message)")
    close()
  }

  func start() {
    view.perform(
      .hasCollection(collection),
      completion: then("hasCollection") { [self] exists in
        guard exists else { return create() }
        view.perform(
          .dropCollection(collection),
          completion: then("dropCollection") { [self] in
            create()
          })
      })
  }

  func create() {
    let schema = CollectionSchema(fields: [.primaryKey("id"), .vector("vec", dimension: 4)])
    view.perform(
      .createCollection(collection, schema: schema),
      completion: then("createCollection") { [self] in
        let rows: [Row] = (0..<200).map {
          ["id": .int(Int64($0)), "vec": .floatVector(vector($0))]
        }
        view.perform(
          .insert(into: collection, rows: rows),
          completion: then("insert") { [self] result in
            say("inserted \(result.ids.count) rows")
            flush()
          })
      })
  }

  func vector(_ index: Int) -> [Float] {
    [Float(index), Float(index % 7), 1, Float(index % 3)]
  }

  func flush() {
    view.flush(
      [collection],
      completion: then("flush") { [self] in
        say("flushed")
        view.createIndex(
          on: collection, IndexSpec(fieldName: "vec", indexType: .flat, metricType: .l2),
          progress: { description in
            say("index: \(description.indexedRows) of \(description.totalRows) rows")
          },
          completion: then("createIndex") { [self] _ in load() })
      })
  }

  func load() {
    var reported: [Int] = []
    view.loadCollection(
      collection, progress: { reported.append($0) },
      completion: then("loadCollection") { [self] in
        say("loaded (progress reported: \(reported))")
        guard reported.last == 100 else { return fail("load progress ended at \(reported)") }
        search()
      })
  }

  func search() {
    view.perform(
      .search(collection, vectors: [vector(42)], limit: 3),
      completion: then("search") { [self] hits in
        guard hits.first?.first?.id == .int(42) else {
          return fail(
            "the nearest hit of row 42's vector is \(String(describing: hits.first?.first))")
        }
        say("search: row 42 is its own nearest neighbour")
        cancelledWait()
      })
  }

  /// A wait cancelled at once completes once, with CANCELLED, and nothing follows.
  func cancelledWait() {
    var completions = 0
    let handle = view.loadCollection(
      collection,
      completion: { [self] result in
        completions += 1
        guard case .failure(.grpcStatus(let status)) = result, status.code == .cancelled else {
          return fail("a cancelled load wait gave \(result)")
        }
      })
    handle.cancel()
    // One more loop turn: a second completion would arrive by then.
    view.perform(
      .listCollections(),
      completion: then("listCollections") { [self] names in
        guard completions == 1 else {
          return fail("the cancelled wait completed \(completions) times")
        }
        guard names.contains(collection) else { return fail("\(collection) is not listed") }
        say("a cancelled wait completed once, with CANCELLED")
        view.useDatabase(
          "default",
          completion: then("useDatabase") { [self] in
            view.perform(
              .dropCollection(collection),
              completion: then("dropCollection") { [self] in
                close()
              })
          })
      })
  }

  /// `LoopView.close()` disconnects before it returns: calls still open fail with
  /// `disconnected`, each completion once.
  func close() {
    view.close()
    finished = true
    say(failure == nil ? "closed: every step passed" : "closed after a failure")
    ev_break(hostLoop, Int32(EVBREAK_ALL))
  }

}

guard let hostLoop = ev_loop_new(UInt32(EVFLAG_AUTO)) else {
  say("libev cannot create a loop")
  exit(1)
}
let steps = try Steps(hostLoop: hostLoop, port: port)
// The host's own watchdog: an ev_timer through the CLibEV shims.
let watchdog = UnsafeMutablePointer<ev_timer>.allocate(capacity: 1)
clibev_timer_init(
  watchdog,
  { loop, _, _ in
    say("FAILED: not done after 120 s")
    ev_break(loop, Int32(EVBREAK_ALL))
  }, 120, 0)
ev_timer_start(hostLoop, watchdog)
steps.start()
ev_run(hostLoop, 0)
ev_timer_stop(hostLoop, watchdog)
let passed = steps.finished && steps.failure == nil
steps.loop.shutdown()
ev_loop_destroy(hostLoop)
exit(passed ? 0 : 1)
