import MilvexReactor
import MilvexTesting
import XCTest

/// The MilvexTesting product links beside the library.
final class MilvexTestingSmokeTests: XCTestCase {
  func testTheProductLinksBesideTheLibrary() {
    XCTAssertFalse(MilvexReactorVersion.string.isEmpty)
  }
}
