import XCTest

@testable import MilvexReactor

private func feed(_ response: inout UnaryResponse, _ headers: [(String, String)], endStream: Bool)
  -> UnaryResponse.Outcome?
{
  for (name, value) in headers {
    Array(name.utf8).withUnsafeBytes { n in
      Array(value.utf8).withUnsafeBytes { v in response.header(name: n, value: v) }
    }
  }
  return response.headersComplete(endStream: endStream)
}

private func data(_ response: inout UnaryResponse, _ bytes: [UInt8]) -> UnaryResponse.Outcome? {
  bytes.withUnsafeBytes { response.data($0) }
}

private let okHeaders = [(":status", "200"), ("content-type", "application/grpc")]

/// The response state machine, driven with header fields and bytes; no I/O.
final class UnaryResponseTests: XCTestCase {
  func testMessageSplitAcrossFramesThenOKTrailers() {
    var response = UnaryResponse(maxMessageSize: 100)
    XCTAssertNil(feed(&response, okHeaders, endStream: false))
    XCTAssertNil(data(&response, [0, 0, 0]))
    XCTAssertNil(data(&response, [0, 3, 1]))
    XCTAssertNil(data(&response, [2, 3]))
    XCTAssertEqual(feed(&response, [("grpc-status", "0")], endStream: true), .success([1, 2, 3]))
    XCTAssertTrue(response.isDone)
  }

  func testTrailersOnlyErrorWithPercentEncodedMessageAndDetails() {
    var response = UnaryResponse(maxMessageSize: 100)
    let outcome = feed(
      &response,
      okHeaders + [
        ("grpc-status", "5"), ("grpc-message", "no such thing: 100%25"),
        ("grpc-status-details-bin", "CAUSA2FiYw"),
      ], endStream: true)
    XCTAssertEqual(
      outcome,
      .failure(
        .grpcStatus(
          GRPCStatus(
            code: .notFound, message: "no such thing: 100%",
            details: [0x08, 0x05, 0x12, 0x03, 0x61, 0x62, 0x63])), resetStream: false))
  }

  func testHTTP503WithoutGRPCStatusIsRetriableUnavailable() throws {
    var response = UnaryResponse(maxMessageSize: 100)
    guard
      case .failure(let error, _)? = feed(
        &response, [(":status", "503"), ("content-type", "text/plain")], endStream: true)
    else { return XCTFail() }
    guard case .grpcStatus(let status) = error else { return XCTFail("\(error)") }
    XCTAssertEqual(status.code, .unavailable)
    XCTAssertTrue(error.isRetriable)
    XCTAssertTrue(status.message.contains("503"))
  }

  /// Each violation fails with the status code grpc's `doc/statuscodes.md` gives it, its words
  /// in the message and itself as the typed cause.
  func testProtocolViolationsMapToStatusCodesWithATypedCause() {
    func failure(_ steps: (inout UnaryResponse) -> UnaryResponse.Outcome?) -> GRPCStatus? {
      var response = UnaryResponse(maxMessageSize: 100)
      guard case .failure(.grpcStatus(let status), _)? = steps(&response) else { return nil }
      return status
    }
    let cases:
      [(
        String, GRPCStatusCode, GRPCProtocolViolation, String,
        (inout UnaryResponse) -> UnaryResponse.Outcome?
      )] = [
        (
          "HTML answer", .unknown, .contentType("text/html"), "content-type 'text/html'",
          { feed(&$0, [(":status", "200"), ("content-type", "text/html")], endStream: false) }
        ),
        (
          "compressed", .internalError, .unexpectedCompression(encoding: nil), "compressed",
          { r in
            _ = feed(&r, okHeaders, endStream: false); return data(&r, [1, 0, 0, 0, 1, 9])
          }
        ),
        (
          "compressed with a named encoding", .internalError,
          .unexpectedCompression(encoding: "gzip"), "'gzip'",
          { r in
            _ = feed(&r, okHeaders + [("grpc-encoding", "gzip")], endStream: false);
            return data(&r, [1, 0, 0, 0, 1, 9])
          }
        ),
        (
          "two messages", .unimplemented, .moreThanOneMessage, "more than one message",
          { r in
            _ = feed(&r, okHeaders, endStream: false);
            return data(&r, [0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 1, 9])
          }
        ),
        (
          "truncated", .internalError, .truncatedMessage(announced: 10, received: 2),
          "truncated message",
          { r in
            _ = feed(&r, okHeaders, endStream: false); _ = data(&r, [0, 0, 0, 0, 10, 1, 2])
            return feed(&r, [("grpc-status", "0")], endStream: true)
          }
        ),
        (
          "truncated prefix", .internalError, .truncatedPrefix(received: 3), "3 of 5 bytes",
          { r in
            _ = feed(&r, okHeaders, endStream: false); _ = data(&r, [0, 0, 0])
            return feed(&r, [("grpc-status", "0")], endStream: true)
          }
        ),
        (
          "no grpc-status", .unknown, .invalidStatus(nil), "no grpc-status",
          { r in
            _ = feed(&r, okHeaders, endStream: false); return feed(&r, [], endStream: true)
          }
        ),
        (
          "grpc-status not a number", .unknown, .invalidStatus("ok"), "'ok'",
          { r in
            _ = feed(&r, okHeaders, endStream: false);
            return feed(&r, [("grpc-status", "ok")], endStream: true)
          }
        ),
        (
          "trailers-only OK without a message", .unimplemented, .noMessage, "sent no message",
          { feed(&$0, okHeaders + [("grpc-status", "0")], endStream: true) }
        ),
        (
          "OK without a message", .unimplemented, .noMessage, "sent no message",
          { r in
            _ = feed(&r, okHeaders, endStream: false);
            return feed(&r, [("grpc-status", "0")], endStream: true)
          }
        ),
        (
          "DATA before headers", .internalError,
          .framing("the server sent DATA before response headers"), "DATA before",
          { data(&$0, [0, 0, 0, 0, 0]) }
        ),
      ]
    for (name, code, cause, words, steps) in cases {
      guard let status = failure(steps) else {
        XCTFail("\(name): no status")
        continue
      }
      XCTAssertEqual(status.code, code, name)
      XCTAssertEqual(status.cause, .protocolViolation(cause), name)
      XCTAssertTrue(status.message.contains(words), "\(name): '\(status.message)' lacks '\(words)'")
      XCTAssertFalse(MilvexError.grpcStatus(status).isRetriable, name)
    }
    // A size limit is not a violation: RESOURCE_EXHAUSTED, no protocol cause.
    let tooBig = failure { r in
      _ = feed(&r, okHeaders, endStream: false); return data(&r, [0, 0, 0, 1, 0])
    }
    XCTAssertEqual(tooBig?.code, .resourceExhausted)
    XCTAssertNil(tooBig?.cause)
    XCTAssertTrue(tooBig?.message.contains("exceeds maxReceiveMessageSize (100 bytes)") == true)
  }

  func testOversizedMessageAsksForAStreamResetBeforeBuffering() {
    var response = UnaryResponse(maxMessageSize: 1 << 20)
    _ = feed(&response, okHeaders, endStream: false)
    // 100 MiB announced: rejected at the prefix, before any payload is buffered.
    guard case .failure(let error, let reset)? = data(&response, [0, 0x06, 0x40, 0x00, 0x00]) else {
      return XCTFail()
    }
    XCTAssertTrue(reset)
    guard case .grpcStatus(let status) = error else { return XCTFail() }
    XCTAssertEqual(status.code, .resourceExhausted)
  }

  func testStreamResetMapping() {
    let cases: [(UInt32, GRPCStatusCode)] = [
      (7, .unavailable), (8, .cancelled), (2, .internalError), (0xb, .resourceExhausted),
    ]
    for (code, expected) in cases {
      var response = UnaryResponse(maxMessageSize: 100)
      guard case .failure(.grpcStatus(let status), _)? = response.streamClosed(errorCode: code)
      else { return XCTFail() }
      XCTAssertEqual(status.code, expected, "RST_STREAM \(code)")
    }
  }

  func testCompletesOnlyOnce() {
    var response = UnaryResponse(maxMessageSize: 100)
    _ = feed(&response, okHeaders + [("grpc-status", "3")], endStream: true)
    XCTAssertNil(response.streamClosed(errorCode: 0))
    XCTAssertNil(feed(&response, okHeaders, endStream: true))
  }
}

final class GRPCWireFormatTests: XCTestCase {
  func testTimeoutHeaderNeverShortensTheDeadline() {
    XCTAssertEqual(GRPCWireFormat.timeoutHeader(.milliseconds(1500)), "1500000u")
    XCTAssertEqual(GRPCWireFormat.timeoutHeader(.seconds(30)), "30000000u")
    XCTAssertEqual(GRPCWireFormat.timeoutHeader(.nanoseconds(1)), "1n")
    XCTAssertEqual(GRPCWireFormat.timeoutHeader(.seconds(3600 * 24 * 365)), "31536000S")
    XCTAssertEqual(GRPCWireFormat.timeoutHeader(.seconds(3600 * 24 * 365 * 10)), "5256000M")
  }

  func testBase64RoundTripPaddedAndUnpadded() {
    for length in 0..<10 {
      let bytes = (0..<length).map { UInt8($0 * 37 & 0xFF) }
      let encoded = GRPCWireFormat.base64Encode(bytes)
      XCTAssertEqual(GRPCWireFormat.base64Decode(Array(encoded.utf8)), bytes)
      XCTAssertEqual(
        GRPCWireFormat.base64Decode(Array(encoded.utf8).filter { $0 != UInt8(ascii: "=") }), bytes)
    }
    XCTAssertEqual(GRPCWireFormat.base64Encode(Array("root:Milvus".utf8)), "cm9vdDpNaWx2dXM=")
    XCTAssertNil(GRPCWireFormat.base64Decode(Array("a b".utf8)))
  }

  func testPercentDecodingKeepsInvalidEscapes() {
    XCTAssertEqual(GRPCWireFormat.percentDecode(Array("a%20b%zz%".utf8)), "a b%zz%")
  }
}

final class KeepaliveTests: XCTestCase {
  private let start = ContinuousClock.now

  func testPingAfterQuietTimeThenDeadWithoutAck() {
    var keepalive = Keepalive(
      time: .seconds(10), timeout: .seconds(2), permitWithoutCalls: false, now: start)
    XCTAssertEqual(
      keepalive.timerFired(at: start + .seconds(10), openCalls: 1),
      .sendPing(thenCheckAfter: .seconds(2)))
    XCTAssertEqual(
      keepalive.timerFired(at: start + .seconds(11), openCalls: 1), .checkAgain(after: .seconds(1)))
    XCTAssertEqual(keepalive.timerFired(at: start + .seconds(12), openCalls: 1), .connectionDead)
  }

  func testReadsPostponeThePing() {
    var keepalive = Keepalive(
      time: .seconds(10), timeout: .seconds(2), permitWithoutCalls: true, now: start)
    keepalive.readObserved(at: start + .seconds(7))
    XCTAssertEqual(
      keepalive.timerFired(at: start + .seconds(10), openCalls: 0), .checkAgain(after: .seconds(7)))
    XCTAssertEqual(
      keepalive.timerFired(at: start + .seconds(17), openCalls: 0),
      .sendPing(thenCheckAfter: .seconds(2)))
    XCTAssertEqual(
      keepalive.pingAcknowledged(at: start + .seconds(18)), .checkAgain(after: .seconds(10)))
    XCTAssertFalse(keepalive.isAwaitingAck)
  }

  func testNoPingWithoutCallsUnlessPermitted() {
    var keepalive = Keepalive(
      time: .seconds(10), timeout: .seconds(2), permitWithoutCalls: false, now: start)
    XCTAssertEqual(
      keepalive.timerFired(at: start + .seconds(10), openCalls: 0), .checkAgain(after: .seconds(10))
    )
    XCTAssertFalse(keepalive.isAwaitingAck)
  }
}
