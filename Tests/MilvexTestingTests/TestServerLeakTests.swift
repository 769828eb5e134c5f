import Foundation
import MilvexReactor
import XCTest

@testable import MilvexTesting

#if canImport(Glibc)
  import Glibc
#endif

/// A server a test leaves running is stopped, with its name in the words.
final class TestServerLeakTests: XCTestCase {
  func testStopAllStopsTheServersLeftRunningAndNamesThem() throws {
    let leaky = try MilvusTestServer(name: "leaky server")
    let stopped = try MilvusTestServer(name: "stopped server")
    try leaky.start()
    try stopped.start()
    stopped.stop()
    let port = leaky.port
    XCTAssertEqual(MilvusTestServer.stopAll(), ["leaky server"])
    XCTAssertFalse(leaky.isRunning)
    XCTAssertEqual(Self.connect(port: port), ECONNREFUSED)
    XCTAssertEqual(MilvusTestServer.stopAll(), [])
  }

  func testTheLastReferenceGoingStopsAServer() throws {
    var port = 0
    do {
      let forgotten = try MilvusTestServer(name: "forgotten")
      try forgotten.start()
      port = forgotten.port
      XCTAssertEqual(Self.connect(port: port), 0)
    }
    XCTAssertEqual(Self.connect(port: port), ECONNREFUSED)
    XCTAssertEqual(MilvusTestServer.stopAll(), [])
  }

  func testAFinishedTestsServersAreStoppedWithAMessageNamingThem() throws {
    // What XCTest's observer does when a test finishes, driven here by hand with a
    // stand-in test identity: a server started during that test is stopped and named.
    let standIn = NSObject()
    let id = ObjectIdentifier(standIn)
    TestServerLeakGuard.testCaseWillStart(id: id, name: "-[Example testLeaks]")
    let leaky = try MilvusTestServer(name: "left behind")
    try leaky.start()
    let messages = TestServerLeakGuard.testCaseDidFinish(id: id, name: "-[Example testLeaks]")
    XCTAssertEqual(messages.count, 1)
    XCTAssertTrue(messages.first?.contains("'left behind'") == true, "\(messages)")
    XCTAssertTrue(messages.first?.contains("-[Example testLeaks]") == true, "\(messages)")
    XCTAssertFalse(leaky.isRunning)
    // Put the real test back as the current one.
    TestServerLeakGuard.testCaseWillStart(id: ObjectIdentifier(self), name: name)
  }

  func testMisuseIsAnErrorNamingTheServer() throws {
    let server = try MilvusTestServer(name: "twice")
    try server.start()
    defer { server.stop() }
    XCTAssertThrowsError(try server.start()) { error in
      XCTAssertTrue("\(error)".contains("twice"), "\(error)")
      XCTAssertTrue("\(error)".contains("already running"), "\(error)")
    }
    let outOfRange = try MilvusTestServer(name: "bad port")
    for port in [-1, 65_536, Int.max] {
      XCTAssertThrowsError(try outOfRange.start(on: port)) { error in
        XCTAssertTrue("\(error)".contains("bad port"), "\(error)")
        XCTAssertTrue("\(error)".contains("port \(port) is not in 0...65535"), "\(error)")
      }
    }
    XCTAssertFalse(outOfRange.isRunning)
    let other = try MilvusTestServer(name: "same port")
    XCTAssertThrowsError(try other.start(on: server.port)) { error in
      XCTAssertTrue("\(error)".contains("same port"), "\(error)")
      XCTAssertTrue("\(error)".contains("\(server.port)"), "\(error)")
    }
    let idle = try MilvusTestServer(name: "idle")
    XCTAssertThrowsError(try idle.restart()) { error in
      XCTAssertTrue("\(error)".contains("not running"), "\(error)")
    }
  }

  /// 0 when a TCP connection to 127.0.0.1:`port` succeeds, else the errno.
  static func connect(port: Int) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let result = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    return result == 0 ? 0 : errno
  }
}
