// `make demo`: a tour of the reactor core. A loop thread starts, three producer threads hand
// it work, timers fire in deadline order, and the loop shuts down cleanly.
import Foundation
import MilvexReactor
import Synchronization

nonisolated func runDemo() throws {
  let loop = try EventLoop(threadName: "demo-loop")
  print("started an event loop on its own thread")

  let ran = Mutex(0)
  let producers = 3
  let perProducer = 100_000
  let group = DispatchGroup()
  for producer in 0..<producers {
    group.enter()
    Thread.detachNewThread {
      for _ in 0..<perProducer {
        try? loop.execute { ran.withLock { $0 += 1 } }
      }
      print("producer \(producer) submitted \(perProducer) closures")
      group.leave()
    }
  }
  group.wait()

  let lastTimerFired = Latch()
  try loop.execute {
    print("on the loop thread (\(loop.inLoopThread)): scheduling timers of 30, 10 and 20 ms")
    for milliseconds in [30, 10, 20] {
      _ = try? loop.scheduleTimer(after: .milliseconds(milliseconds)) {
        print("  timer of \(milliseconds) ms fired")
        if milliseconds == 30 { lastTimerFired.open() }
      }
    }
    if let cancelled = try? loop.scheduleTimer(after: .milliseconds(15), { print("never printed") }) {
      cancelled.cancel()
      print("  a timer of 15 ms was cancelled and will not fire")
    }
  }
  lastTimerFired.wait()
  loop.shutdown()
  print("loop shut down; \(ran.withLock { $0 }) of \(producers * perProducer) closures ran")
  do {
    try loop.execute {}
  } catch {
    print("submitting after shutdown fails: \(error)")
  }
}

try runDemo()
