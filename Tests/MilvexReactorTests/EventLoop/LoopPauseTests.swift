import Foundation
import XCTest

@testable import MilvexReactor

/// The async pause the client polls with: a loop timer, ended early by task cancellation or
/// loop shutdown, resuming its task exactly once.
final class LoopPauseTests: XCTestCase {
  func testPausesForTheDelay() async throws {
    let loop = try EventLoop(threadName: "pause")
    defer { loop.shutdown() }
    let started = ContinuousClock.now
    await LoopPause.pause(for: .milliseconds(80), on: loop)
    XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, .milliseconds(80))
  }

  func testCancellationEndsItEarly() async throws {
    let loop = try EventLoop(threadName: "pause")
    defer { loop.shutdown() }
    let started = ContinuousClock.now
    let task = Task { await LoopPause.pause(for: .seconds(30), on: loop) }
    // The pause has started once a closure submitted after it has run.
    try await Task.detached { _ = try await loop.submit {} }.value
    task.cancel()
    await task.value
    XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
  }

  func testLoopShutdownEndsIt() async throws {
    let loop = try EventLoop(threadName: "pause")
    let started = ContinuousClock.now
    let task = Task { await LoopPause.pause(for: .seconds(30), on: loop) }
    try await Task.detached { _ = try await loop.submit {} }.value
    await Task.detached { loop.shutdown() }.value
    await task.value
    XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
    // On a loop that has shut down it returns at once.
    await LoopPause.pause(for: .seconds(30), on: loop)
  }
}
