import Foundation
import Synchronization
import XCTest

@testable import MilvexReactor

/// The raw-bytes channel against an independent gRPC server: milvus-lite (grpcio).
final class MilvusLiteChannelTests: XCTestCase {
  private static let service = "/milvus.proto.milvus.MilvusService/"
  private var server: MilvusLite!
  private var loop: EventLoop!
  private var channel: GRPCChannel!

  override func setUpWithError() throws {
    server = try MilvusLite()
    loop = try EventLoop(threadName: "milvus-test")
    channel = try GRPCChannel.connect(
      configuration: GRPCChannelConfiguration(host: "127.0.0.1", port: server.port), loop: loop)
  }

  override func tearDown() {
    channel?.close()
    loop?.shutdown()
    server?.stop()
    // XCTest keeps every test case until exit (Docs/reliability.md, AddressSanitizer).
    channel = nil
  }

  func testGetVersionAndCheckHealthAsRawBytes() async throws {
    // An empty request message is 0 bytes.
    let version = try await channel.unary(
      path: Self.service + "GetVersion", request: [], timeout: .seconds(10))
    let versionString = try XCTUnwrap(ProtoScan.string(field: 2, in: version))
    XCTAssertFalse(versionString.isEmpty, "GetVersionResponse.version")

    let health = try await channel.unary(
      path: Self.service + "CheckHealth", request: [], timeout: .seconds(10))
    // CheckHealthResponse.isHealthy = field 2 (bool).
    XCTAssertEqual(ProtoScan.varint(field: 2, in: health), 1, "milvus-lite reports healthy")
  }

  func testThousandConcurrentCallsOnOneChannelAllComplete() throws {
    let total = 1000
    let completions = Locked<[Int]>([Int](repeating: 0, count: total))
    let failures = Locked<[String]>([])
    let allDone = Latch()
    let done = Atomic<Int>(0)
    for index in 0..<total {
      channel.unary(path: Self.service + "GetVersion", request: [], timeout: .seconds(30)) {
        result in
        completions.withLock { $0[index] += 1 }
        if case .failure(let error) = result { failures.withLock { $0.append("\(error)") } }
        if done.add(1, ordering: .relaxed).newValue == total { allDone.open() }
      }
    }
    allDone.waitOrFail("1000 calls", timeout: .seconds(60))
    XCTAssertEqual(
      completions.withLock { $0 }, [Int](repeating: 1, count: total),
      "each call completed exactly once")
    XCTAssertEqual(failures.withLock { $0 }, [])
  }

  func testUnknownMethodIsUnimplemented() async throws {
    do {
      _ = try await channel.unary(
        path: Self.service + "NoSuchMethod", request: [], timeout: .seconds(10))
      XCTFail("an unknown method must fail")
    } catch {
      guard case .grpcStatus(let status) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(status.code, .unimplemented)
      XCTAssertFalse(error.isRetriable)
    }
  }
}

/// Just enough protobuf wire-format reading to check a field without the typed layer.
enum ProtoScan {
  /// The bytes of length-delimited `field` at the top level of `message`.
  static func bytes(field wanted: Int, in message: [UInt8]) -> [UInt8]? {
    var index = 0
    while index < message.count {
      guard let key = varintAt(&index, message) else { return nil }
      let field = Int(key >> 3)
      switch key & 7 {
      case 0: guard varintAt(&index, message) != nil else { return nil }
      case 1: index += 8
      case 5: index += 4
      case 2:
        guard let length = varintAt(&index, message), index + Int(length) <= message.count else {
          return nil
        }
        if field == wanted { return Array(message[index..<index + Int(length)]) }
        index += Int(length)
      default: return nil
      }
    }
    return nil
  }

  static func string(field: Int, in message: [UInt8]) -> String? {
    bytes(field: field, in: message).map { String(decoding: $0, as: UTF8.self) }
  }

  static func varint(field wanted: Int, in message: [UInt8]) -> UInt64? {
    var index = 0
    while index < message.count {
      guard let key = varintAt(&index, message) else { return nil }
      switch key & 7 {
      case 0:
        guard let value = varintAt(&index, message) else { return nil }
        if Int(key >> 3) == wanted { return value }
      case 1: index += 8
      case 5: index += 4
      case 2:
        guard let length = varintAt(&index, message) else { return nil }
        index += Int(length)
      default: return nil
      }
    }
    return nil
  }

  private static func varintAt(_ index: inout Int, _ bytes: [UInt8]) -> UInt64? {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while index < bytes.count, shift < 64 {
      let byte = bytes[index]
      index += 1
      value |= UInt64(byte & 0x7F) << shift
      if byte & 0x80 == 0 { return value }
      shift += 7
    }
    return nil
  }
}
