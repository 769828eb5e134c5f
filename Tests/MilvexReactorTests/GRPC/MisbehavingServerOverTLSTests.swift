import Foundation
import MilvexReactor
import XCTest

/// Every case of ``MisbehavingServerTests`` again with the scripted h2 server behind TLS
/// (Python `ssl`, ALPN h2, the test CA's certificate for localhost): GOAWAY mid-call,
/// RST_STREAM, unanswered PINGs, truncated and oversized messages… behave the same over TLS.
/// And what only TLS can get wrong: a handshake that never completes or ends half way, ALPN
/// that is not h2, garbage after the handshake, a certificate from another CA.
final class MisbehavingServerOverTLSTests: MisbehavingServerTests, @unchecked Sendable {
  override var peerTLS: PeerTLS? { get throws { try .testServer() } }

  override var channelTLS: TLSConfiguration? {
    get throws {
      TLSConfiguration(trustRoots: .file(try TestCertificates.ca), serverName: "localhost")
    }
  }

  /// The call failed with `failure` as its cause.
  private func expectTLSFailure(
    _ result: Result<[UInt8], MilvexError>, file: StaticString = #filePath, line: UInt = #line,
    _ matches: (TLSFailure) -> Bool
  ) {
    guard case .failure(.grpcStatus(let status)) = result, case .tls(let failure)? = status.cause
    else { return XCTFail("expected a TLS failure, got \(result)", file: file, line: line) }
    XCTAssertTrue(matches(failure), "unexpected \(failure)", file: file, line: line)
  }

  func testAHandshakeThatStallsEndsAtTheConnectTimeoutNamingTheHandshake() async throws {
    let start = ContinuousClock.now
    let result = await Self.call(
      try channel("tls-handshake-stall") { $0.connectTimeout = .milliseconds(500) })
    expectTLSFailure(result) { $0 == .handshakeTimedOut(after: .milliseconds(500)) }
    XCTAssertTrue("\(result)".contains("TLS handshake timed out after"), "\(result)")
    XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
  }

  func testAHandshakeClosedHalfWay() async throws {
    let result = await Self.call(try channel("tls-close-mid-handshake"))
    expectTLSFailure(result) { $0 == .closedDuringHandshake }
  }

  /// A server that speaks only HTTP/1.1 cannot select h2 (a server selects only what the client
  /// offered, and this client offers h2 alone), and one without ALPN selects nothing.
  func testALPNOtherThanH2IsRefused() async throws {
    for alpn in [PeerTLS.ALPN.http11, .none] {
      let peer = try server("echo", tls: try .testServer(alpn: alpn))
      var configuration = GRPCChannelConfiguration(host: "127.0.0.1", port: peer.port)
      configuration.tls = try channelTLS
      let channel = try GRPCChannel.connect(configuration: configuration, loop: loop)
      let result = await Self.call(channel)
      expectTLSFailure(result) { $0 == .alpnNotNegotiated(selected: nil) }
      XCTAssertTrue("\(result)".contains("did not negotiate HTTP/2"), "\(result)")
    }
  }

  func testGarbageAfterTheHandshake() async throws {
    let start = ContinuousClock.now
    let result = await Self.call(try channel("tls-garbage-after-handshake"))
    guard case .failure(let error) = result else { return XCTFail("\(result)") }
    XCTAssertTrue(
      "\(error)".contains("HTTP/2") || "\(error)".contains("TLS"), "a clear error: \(error)")
    XCTAssertLessThan(ContinuousClock.now - start, .seconds(4), "no hang")
  }

  func testACertificateFromAnotherCA() async throws {
    let peer = try server("echo", tls: try .otherServer())
    var configuration = GRPCChannelConfiguration(host: "127.0.0.1", port: peer.port)
    configuration.tls = try channelTLS
    let result = await Self.call(try GRPCChannel.connect(configuration: configuration, loop: loop))
    expectTLSFailure(result) {
      if case .certificateNotTrusted = $0 { return true }
      return false
    }
  }
}
