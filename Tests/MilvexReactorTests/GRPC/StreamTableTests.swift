import XCTest

@testable import MilvexReactor

/// The dense stream table: odd client stream ids, lookups without hashing, growth when a
/// long-lived stream is lapped.
final class StreamTableTests: XCTestCase {
  private func call(_ id: Int32) -> UnaryCall {
    let call = UnaryCall(
      path: "/s/\(id)", message: [], metadata: GRPCMetadata(), timeout: nil,
      startedAt: .now, maxReceiveMessageSize: 10
    ) { _ in }
    call.streamID = id
    return call
  }

  func testInsertLookUpRemove() {
    var table = StreamTable<UnaryCall>(capacity: 4)
    let (one, three) = (call(1), call(3))
    table.insert(one, id: 1)
    table.insert(three, id: 3)
    XCTAssertEqual(table.count, 2)
    XCTAssertTrue(table[1] === one)
    XCTAssertTrue(table[3] === three)
    XCTAssertNil(table[5], "never opened")
    XCTAssertNil(table[9], "same slot as 1, another stream")
    XCTAssertNil(table[0])
    XCTAssertNil(table[-1])
    XCTAssertTrue(table.remove(1) === one)
    XCTAssertNil(table.remove(1), "removed once")
    XCTAssertNil(table[1])
    XCTAssertEqual(table.count, 1)
    XCTAssertFalse(table.isEmpty)
    table.removeAll()
    XCTAssertTrue(table.isEmpty)
    XCTAssertNil(table[3])
  }

  /// Thousands of short streams reuse the slots; one long-lived stream lapped by newer ones
  /// makes the table grow instead of losing either.
  func testSlotsAreReusedAndALappedStreamMakesItGrow() {
    var table = StreamTable<UnaryCall>(capacity: 4)
    let longLived = call(1)
    table.insert(longLived, id: 1)
    var id: Int32 = 3
    for _ in 0..<10_000 {
      let short = call(id)
      table.insert(short, id: id)
      XCTAssertTrue(table[id] === short)
      XCTAssertTrue(table[1] === longLived, "stream 1 survives stream \(id)")
      XCTAssertTrue(table.remove(id) === short)
      id += 2
    }
    XCTAssertEqual(table.count, 1)
    XCTAssertLessThanOrEqual(table.capacity, 32_768, "grew by doubling only when lapped")
    XCTAssertGreaterThan(table.capacity, 4)
  }

  func testCallsInStreamOrder() {
    var table = StreamTable<UnaryCall>(capacity: 8)
    for id: Int32 in [7, 1, 5, 3] { table.insert(call(id), id: id) }
    XCTAssertEqual(table.elements.map(\.streamID), [1, 3, 5, 7])
  }
}
