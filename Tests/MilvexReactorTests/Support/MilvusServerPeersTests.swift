import Foundation
import XCTest

/// The peers the TLS tests use are there: each real Milvus server and the h2 misbehaving
/// server with TLS accept a TCP connection, and every certificate file exists. (The TLS
/// protocol tests are elsewhere; this only proves the peers.)
final class MilvusServerPeersTests: XCTestCase {
  func testEachServerAcceptsTCPConnections() throws {
    let servers = [
      ("plain", try MilvusServers.plain), ("tls", try MilvusServers.tls),
      ("mutualTLS", try MilvusServers.mutualTLS),
    ]
    XCTAssertEqual(Set(servers.map(\.1.port)).count, 3, "three servers: \(servers)")
    for (name, address) in servers {
      XCTAssertTrue(canConnect(to: address), "\(name) server at \(address) refused TCP")
    }
  }

  func testEveryCertificateFileExists() throws {
    let files = [
      try TestCertificates.ca, try TestCertificates.server, try TestCertificates.serverKey,
      try TestCertificates.client, try TestCertificates.clientKey, try TestCertificates.wrongCA,
      try TestCertificates.otherServer, try TestCertificates.otherServerKey,
    ]
    for file in files {
      let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
      XCTAssertGreaterThan(size, 0, "\(file) is missing or empty")
    }
  }

  func testMisbehavingServerStartsWithTLS() throws {
    let mutual = try PeerProcess.misbehavingServer(
      "echo", tls: try .testServer(clientCA: try TestCertificates.ca))
    defer { mutual.stop() }
    let stall = try PeerProcess.misbehavingServer("tls-handshake-stall")
    defer { stall.stop() }
    for peer in [mutual, stall] {
      let address = MilvusServerAddress(host: "127.0.0.1", port: peer.port)
      XCTAssertTrue(canConnect(to: address), "\(peer.name) at \(address) refused TCP")
    }
  }

  /// A blocking connect to an IPv4 address, within the kernel's own timeout (a refused port
  /// on 127.0.0.1 answers at once).
  private func canConnect(to address: MilvusServerAddress) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var socketAddress = sockaddr_in()
    socketAddress.sin_family = sa_family_t(AF_INET)
    socketAddress.sin_port = in_port_t(UInt16(address.port).bigEndian)
    guard inet_pton(AF_INET, address.host, &socketAddress.sin_addr) == 1 else { return false }
    return withUnsafePointer(to: &socketAddress) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
      }
    }
  }
}
