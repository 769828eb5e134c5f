import CLibEV
import Foundation
import Logging
import MilvexReactor

/// The program: parses the flags, makes the libev loop, embeds MilvexReactor in it, serves
/// until SIGINT or SIGTERM and drains.
enum ServiceMain {
  /// The largest request body accepted (413 beyond).
  static let maxBodyBytes = 1 << 20
  /// How long a shutdown waits for in-flight requests before it closes their connections.
  static let drainSeconds = 5.0

  /// Runs the service; returns the exit status (0 after a graceful shutdown, 1 when it cannot
  /// start, 2 for bad flags).
  ///
  /// - Important: The calling thread runs the loop: it becomes the loop thread of everything.
  static func run(arguments: [String]) -> Int32 {
    if arguments.contains("--version") {
      print("milvex-search-service, MilvexReactor \(MilvexReactorVersion.string)")
      return 0
    }
    let options: ServiceOptions
    do {
      guard let parsed = try ServiceOptions.parse(arguments) else {
        print(ServiceOptions.usage)
        return 0
      }
      options = parsed
    } catch {
      log("\(error)\n\(ServiceOptions.usage)")
      return 2
    }
    // The library's log lines (connection state changes, retries) go to stderr with ours;
    // stdout carries only the announcements below.
    LoggingSystem.bootstrap(StreamLogHandler.standardError)
    // A client that disconnects while we write must not kill the process; writes use
    // MSG_NOSIGNAL, this covers any other write.
    signal(SIGPIPE, SIG_IGN)

    // The host's loop: this program creates, runs and destroys it; the library only adds its
    // watchers to it.
    guard let hostLoop = ev_loop_new(UInt32(EVFLAG_AUTO)) else {
      log("libev cannot create a loop")
      return 1
    }
    let status = serve(options, on: hostLoop)
    // Only now: every watcher of ours was stopped and freed when `serve` returned.
    ev_loop_destroy(hostLoop)
    return status
  }

  private static func serve(_ options: ServiceOptions, on hostLoop: OpaquePointer) -> Int32 {
    guard let milvus = options.milvus else {
      log("no Milvus configuration")
      return 2
    }
    let milvusLoop = EventLoop(embeddingIn: hostLoop)
    let client: MilvusClient
    do {
      // Every endpoint in one connection: calls go to the ready ones, reads that hit one that
      // died are retried on another (ConnectionConfig.additionalEndpoints, loadBalancing).
      client = try MilvusClient.connect(config: milvus, on: milvusLoop)
    } catch {
      log("cannot start the Milvus connection: \(error)")
      milvusLoop.shutdown()
      return 1
    }
    log(
      "Milvus endpoints: "
        + milvus.endpoints.map(\.description).joined(separator: ", ")
        + " (\(milvus.loadBalancing.rawValue))")
    let service = SearchService(
      client: client, collection: options.collection, dimension: options.dimension,
      loop: hostLoop)
    let server: HTTPServer
    do {
      server = try HTTPServer(
        loop: hostLoop, host: options.listenHost, port: options.listenPort,
        maxBodyBytes: maxBodyBytes, handler: service.handle)
    } catch {
      log("\(error)")
      client.connection.disconnect(reason: "milvex-search-service could not start")
      milvusLoop.shutdown()
      return 1
    }
    let process = ServiceProcess(
      hostLoop: hostLoop, milvusLoop: milvusLoop, client: client, service: service,
      server: server)
    announce("listening on http://\(server.address)")
    service.prepareCollection()
    // Everything from here on runs in callbacks of this one loop, on this thread.
    ev_run(hostLoop, 0)
    return withExtendedLifetime(process) { 0 }
  }
}

/// The running service's parts and its graceful shutdown.
///
/// - Important: Loop thread only.
final class ServiceProcess {
  private let hostLoop: OpaquePointer
  private let milvusLoop: EventLoop
  private let client: MilvusClient
  private let service: SearchService
  private let server: HTTPServer
  private var signalWatchers: [HostSignalWatcher] = []
  private var drainTimer: HostTimer?
  private var shuttingDown = false

  /// Takes over the parts and watches SIGINT and SIGTERM.
  init(
    hostLoop: OpaquePointer, milvusLoop: EventLoop, client: MilvusClient,
    service: SearchService, server: HTTPServer
  ) {
    self.hostLoop = hostLoop
    self.milvusLoop = milvusLoop
    self.client = client
    self.service = service
    self.server = server
    for signal in [SIGINT, SIGTERM] {
      signalWatchers.append(
        HostSignalWatcher(loop: hostLoop, signal: signal) { [unowned self] signal in
          shutDown(after: signal)
        })
    }
  }

  /// The first signal drains: no new connections, idle ones close, requests in flight get
  /// their answers (within ``ServiceMain/drainSeconds``), then the Milvus connection closes
  /// and the loop stops. A second signal closes the remaining connections at once.
  private func shutDown(after signal: Int32) {
    let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
    if shuttingDown {
      log("\(name) again: closing \(server.connectionCount) connection(s) now")
      server.closeAll()
      return
    }
    shuttingDown = true
    log(
      "\(name): stopping; \(server.connectionCount) connection(s) get at most "
        + "\(Int(ServiceMain.drainSeconds)) s to finish")
    service.stop()
    drainTimer = HostTimer(loop: hostLoop, after: ServiceMain.drainSeconds) {
      [unowned self] in
      log("the drain took too long: closing \(server.connectionCount) connection(s)")
      server.closeAll()
    }
    server.drain { [unowned self] in finish() }
  }

  private func finish() {
    drainTimer?.cancel()
    drainTimer = nil
    // No `await`: the disconnect is queued, and the loop's shutdown (on this, the loop thread)
    // runs queued work first, then stops every watcher the library added to the host loop.
    client.connection.disconnect(reason: "milvex-search-service is shutting down")
    milvusLoop.shutdown()
    for watcher in signalWatchers { watcher.stop() }
    ev_break(hostLoop, Int32(EVBREAK_ALL))
    announce("stopped")
  }
}

/// Writes a line to standard output at once (not buffered: a test or supervisor reads it).
func announce(_ line: String) {
  FileHandle.standardOutput.write(Data("milvex-search-service: \(line)\n".utf8))
}
