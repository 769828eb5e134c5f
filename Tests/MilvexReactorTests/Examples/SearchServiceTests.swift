import Foundation
import XCTest

@testable import MilvexReactor

/// Runs the built `milvex-search-service` (Examples/SearchService) against milvus-lite, as a
/// client would: raw HTTP/1.1 over TCP, so that malformed requests and pipelining can be sent.
final class SearchServiceTests: XCTestCase {
  /// `--version` prints the one version of the library (Version.swift), which the channel also
  /// sends in `user-agent`, and exits 0 without touching the network.
  func testVersionFlagPrintsTheLibraryVersion() throws {
    let process = Process()
    process.executableURL = try SearchServiceProcess.binary()
    process.arguments = ["--version"]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let printed = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0)
    XCTAssertEqual(
      String(decoding: printed, as: UTF8.self),
      "milvex-search-service, MilvexReactor \(MilvexReactorVersion.string)\n")
    XCTAssertTrue(
      GRPCChannelConfiguration(host: "h", port: 1).userAgent.hasSuffix(
        "/\(MilvexReactorVersion.string)"))
  }

  func testServesInsertSearchAndErrorsAndFinishesARequestOnSIGTERM() throws {
    let milvus = try MilvusLite()
    let service = try SearchServiceProcess.start(milvusPort: milvus.port)
    defer { service.kill() }
    try service.waitUntilHealthy(within: .seconds(60))

    // POST /insert, then GET /search: the inserted text is the top hit for its own words.
    let client = try HTTPTestConnection(port: service.port)
    let texts = [
      "the quick brown fox jumps over the fence", "a lazy dog sleeps all day",
      "fresh bread from the village bakery",
    ]
    let inserted = try client.request(
      "POST", "/insert", body: try JSONSerialization.data(withJSONObject: ["texts": texts]))
    XCTAssertEqual(inserted.status, 200, inserted.text)
    let insertJSON = try inserted.jsonObject()
    XCTAssertEqual(insertJSON["inserted"] as? Int, 3, inserted.text)
    XCTAssertEqual((insertJSON["ids"] as? [Any])?.count, 3, inserted.text)

    let found = try client.request("GET", "/search?q=fresh+bread+bakery&limit=2")
    XCTAssertEqual(found.status, 200, found.text)
    let hits = try XCTUnwrap(try found.jsonObject()["hits"] as? [[String: Any]], found.text)
    XCTAssertEqual(hits.count, 2, found.text)
    XCTAssertEqual(hits.first?["text"] as? String, texts[2], found.text)
    XCTAssertNotNil(hits.first?["id"], found.text)
    XCTAssertNotNil(hits.first?["distance"] as? Double, found.text)
    XCTAssertNotNil(try found.jsonObject()["took_ms"] as? Double, found.text)

    // Pipelined on the kept-alive connection: one response per request, in order.
    try client.send(
      "GET /nope HTTP/1.1\r\nHost: test\r\n\r\nGET /health HTTP/1.1\r\nHost: test\r\n\r\n")
    let unknown = try client.readResponse()
    XCTAssertEqual(unknown.status, 404, unknown.text)
    XCTAssertTrue(unknown.text.contains("no endpoint at /nope"), unknown.text)
    let health = try client.readResponse()
    XCTAssertEqual(health.status, 200, health.text)
    XCTAssertEqual(try health.jsonObject()["milvus"] as? String, "connected", health.text)

    // A malformed request: 400 naming what was wrong, then the connection closes.
    let broken = try HTTPTestConnection(port: service.port)
    try broken.send("GET /search?q=x HTTP/1.1\r\nHost: test\r\nContent-Length: nine\r\n\r\n")
    let malformed = try broken.readResponse()
    XCTAssertEqual(malformed.status, 400, malformed.text)
    XCTAssertTrue(malformed.text.contains("malformed HTTP/1.1 request"), malformed.text)
    XCTAssertTrue(malformed.text.contains("HPE_INVALID_CONTENT_LENGTH"), malformed.text)
    XCTAssertEqual(malformed.headers["connection"], "close")
    XCTAssertEqual(try broken.readToEnd(), Data(), "closed after the 400")
    broken.close()

    // A body over the limit: 413 before the body is read, then the connection closes.
    let large = try HTTPTestConnection(port: service.port)
    try large.send("POST /insert HTTP/1.1\r\nHost: test\r\nContent-Length: 2000000\r\n\r\n")
    let tooLarge = try large.readResponse()
    XCTAssertEqual(tooLarge.status, 413, tooLarge.text)
    XCTAssertTrue(tooLarge.text.contains("larger than the limit of 1048576 bytes"), tooLarge.text)
    large.close()

    // A body that is not what /insert takes: 400 naming the field.
    let badBody = try client.request("POST", "/insert", body: Data(#"{"texts":[1]}"#.utf8))
    XCTAssertEqual(badBody.status, 400, badBody.text)
    XCTAssertTrue(badBody.text.contains("'texts[0]' is not a string"), badBody.text)

    // SIGTERM while a request is being received: the listener closes and the idle keep-alive
    // connection is closed, but the request in flight is finished and answered.
    let busy = try HTTPTestConnection(port: service.port)
    let lateBody = Data(#"{"texts":["a text that arrives during the shutdown"]}"#.utf8)
    try busy.send(
      "POST /insert HTTP/1.1\r\nHost: test\r\nContent-Length: \(lateBody.count)\r\n\r\n")
    try busy.send(lateBody.prefix(10))
    // Connected and sent means queued at the server's kernel: the service accepts and reads
    // what is there before it drains, so this request counts as in flight.
    service.signal(SIGTERM)
    try waitUntilRefused(port: service.port, within: .seconds(10))
    XCTAssertEqual(try client.readToEnd(), Data(), "the idle keep-alive connection is closed")
    try busy.send(lateBody.dropFirst(10))
    let late = try busy.readResponse()
    XCTAssertEqual(late.status, 200, late.text)
    XCTAssertEqual(try late.jsonObject()["inserted"] as? Int, 1, late.text)
    XCTAssertEqual(late.headers["connection"], "close")
    XCTAssertEqual(try busy.readToEnd(), Data())
    let status = try service.waitForExit(within: .seconds(15))
    XCTAssertEqual(status, 0, "exit status after SIGTERM")
  }

  /// Connects until the port refuses (the service closed its listener), within `timeout`.
  private func waitUntilRefused(port: Int, within timeout: Duration) throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
      guard (try? HTTPTestConnection(port: port)) != nil else { return }
      usleep(10_000)
    }
    throw PeerError.unexpected("127.0.0.1:\(port) still accepts \(timeout) after SIGTERM")
  }
}

/// The service binary running as a child process; it prints `listening on http://HOST:PORT`.
private final class SearchServiceProcess: @unchecked Sendable {
  // @unchecked Sendable: used from the test thread; Process is thread-safe, Latch is a lock.
  let process = Process()
  let port: Int
  private let exited = Latch()

  /// `milvex-search-service` as the examples' own package builds it (`make build-examples`,
  /// which `make test` runs), or `$MILVEX_SEARCH_SERVICE`.
  static func binary() throws -> URL {
    var candidates = [
      PeerProcess.repositoryRoot.appendingPathComponent(
        "Examples/.build/debug/milvex-search-service")
    ]
    if let given = ProcessInfo.processInfo.environment["MILVEX_SEARCH_SERVICE"] {
      candidates.insert(URL(fileURLWithPath: given), at: 0)
    }
    guard
      let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) })
    else {
      throw PeerError.unexpected(
        "no milvex-search-service in \(candidates.map(\.path)): build it with "
          + "`make build-examples` (the examples are a package of their own, Examples/)")
    }
    return found
  }

  static func start(milvusPort: Int) throws -> SearchServiceProcess {
    try SearchServiceProcess(
      binary: try binary(),
      arguments: [
        "--listen", "127.0.0.1:0", "--milvus", "milvus://127.0.0.1:\(milvusPort)",
        "--collection", "service_test", "--dimension", "64",
      ])
  }

  private init(binary: URL, arguments: [String]) throws {
    process.executableURL = binary
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.standardError
    let exited = self.exited
    process.terminationHandler = { _ in exited.open() }
    try process.run()
    // The first line says where it listens; read on another thread so a silent service cannot
    // hang the test.
    let line = Locked<String?>(nil)
    let read = Latch()
    let handle = output.fileHandleForReading
    Thread.detachNewThread {
      var bytes: [UInt8] = []
      while let byte = handle.readData(ofLength: 1).first, byte != 10 { bytes.append(byte) }
      line.withLock { $0 = String(decoding: bytes, as: UTF8.self) }
      read.open()
      // Keep draining stdout so the service never blocks on a full pipe.
      while !handle.readData(ofLength: 4096).isEmpty {}
    }
    guard read.wait(timeout: .seconds(30)), let text = line.withLock({ $0 }),
      let range = text.range(of: "listening on http://127.0.0.1:"),
      let port = Int(text[range.upperBound...])
    else {
      process.terminate()
      throw PeerError.unexpected("the service did not say where it listens")
    }
    self.port = port
  }

  /// Polls `GET /health` until it answers 200 (connected, collection loaded).
  func waitUntilHealthy(within timeout: Duration) throws {
    let deadline = ContinuousClock.now + timeout
    var last = "no answer"
    while ContinuousClock.now < deadline {
      if let response = try? HTTPTestConnection(port: port).request("GET", "/health") {
        if response.status == 200 { return }
        last = response.text
      }
      usleep(50_000)
    }
    throw PeerError.unexpected("the service was not healthy within \(timeout): \(last)")
  }

  func signal(_ signal: Int32) {
    Foundation.kill(process.processIdentifier, signal)
  }

  /// The exit status, once the process has exited within `timeout`.
  func waitForExit(within timeout: Duration) throws -> Int32 {
    guard exited.wait(timeout: timeout) else {
      throw PeerError.unexpected("the service did not exit within \(timeout)")
    }
    XCTAssertEqual(process.terminationReason, .exit, "ended by a signal, not by exiting")
    return process.terminationStatus
  }

  func kill() {
    if process.isRunning {
      Foundation.kill(process.processIdentifier, SIGKILL)
      _ = exited.wait(timeout: .seconds(5))
    }
  }
}

/// A blocking HTTP/1.1 client connection with a 15 s receive timeout (so no read hangs).
private final class HTTPTestConnection {
  struct Response {
    var status: Int
    /// Header names in lower case.
    var headers: [String: String]
    var body: Data
    var text: String { String(decoding: body, as: UTF8.self) }

    func jsonObject() throws -> [String: Any] {
      guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
        throw PeerError.unexpected("not a JSON object: \(text)")
      }
      return object
    }
  }

  private var fd: Int32
  private var buffer: [UInt8] = []

  init(port: Int) throws {
    fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var timeout = timeval(tv_sec: 15, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard connected == 0 else {
      let reason = String(cString: strerror(errno))
      Glibc.close(fd)
      throw PeerError.unexpected("connect to 127.0.0.1:\(port): \(reason)")
    }
  }

  deinit { close() }

  func close() {
    if fd >= 0 { Glibc.close(fd) }
    fd = -1
  }

  func send(_ text: String) throws { try send(Data(text.utf8)) }

  func send(_ data: Data) throws {
    var sent = 0
    while sent < data.count {
      let count = data.withUnsafeBytes {
        Glibc.send(fd, $0.baseAddress! + sent, data.count - sent, Int32(MSG_NOSIGNAL))
      }
      guard count > 0 else {
        throw PeerError.unexpected("send: \(String(cString: strerror(errno)))")
      }
      sent += count
    }
  }

  func request(_ method: String, _ target: String, body: Data = Data()) throws -> Response {
    var head = "\(method) \(target) HTTP/1.1\r\nHost: test\r\n"
    if !body.isEmpty {
      head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
    }
    try send(Data((head + "\r\n").utf8) + body)
    return try readResponse()
  }

  func readResponse() throws -> Response {
    let separator: [UInt8] = Array("\r\n\r\n".utf8)
    var headEnd: Int? = nil
    while headEnd == nil {
      headEnd = buffer.indices.first { buffer[$0...].starts(with: separator) }
      if headEnd == nil, try !fill() {
        throw PeerError.unexpected("the connection closed before a response")
      }
    }
    let head = String(decoding: buffer[..<headEnd!], as: UTF8.self)
    var lines = head.components(separatedBy: "\r\n")
    let statusLine = lines.removeFirst().split(separator: " ")
    guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
      throw PeerError.unexpected("not an HTTP response: \(head)")
    }
    var headers: [String: String] = [:]
    for line in lines {
      guard let colon = line.firstIndex(of: ":") else { continue }
      headers[line[..<colon].lowercased()] = line[line.index(after: colon)...]
        .trimmingCharacters(in: .whitespaces)
    }
    let length = Int(headers["content-length"] ?? "0") ?? 0
    let bodyStart = headEnd! + separator.count
    while buffer.count < bodyStart + length {
      guard try fill() else { throw PeerError.unexpected("the connection closed mid-response") }
    }
    let body = Data(buffer[bodyStart..<(bodyStart + length)])
    buffer.removeFirst(bodyStart + length)
    return Response(status: status, headers: headers, body: body)
  }

  /// Everything until the server closes the connection.
  func readToEnd() throws -> Data {
    while try fill() {}
    defer { buffer = [] }
    return Data(buffer)
  }

  /// Reads more; false at the end of the stream.
  @discardableResult
  private func fill() throws -> Bool {
    var chunk = [UInt8](repeating: 0, count: 65_536)
    let count = recv(fd, &chunk, chunk.count, 0)
    if count < 0 {
      throw PeerError.unexpected("recv: \(String(cString: strerror(errno)))")
    }
    buffer.append(contentsOf: chunk[..<count])
    return count > 0
  }
}
