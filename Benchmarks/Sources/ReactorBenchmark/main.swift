import ChannelBenchSupport
// Reactor core figures: closures per second through the submission queue (1 and 4 producer
// threads) and timer schedule+cancel pairs per second. Run: `make bench-reactor`.
import Foundation
import MilvexReactor
import Synchronization

nonisolated func cpuSeconds() -> Double {
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
    + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// Closures per second from `producers` threads, counted from the first submission until
/// the loop ran the last closure.
nonisolated func measureSubmissions(producers: Int, perProducer: Int) throws -> (
  rate: Double, cpuPerClosure: Double
) {
  let loop = try EventLoop(threadName: "bench-loop")
  defer { loop.shutdown() }
  let total = producers * perProducer
  let ran = Atomic<Int>(0)
  let allRan = Gate()
  let go = Gate()
  let group = DispatchGroup()
  for _ in 0..<producers {
    group.enter()
    Thread.detachNewThread {
      go.wait()
      for _ in 0..<perProducer {
        try! loop.execute {
          if ran.add(1, ordering: .relaxed).newValue == total { allRan.open() }
        }
      }
      group.leave()
    }
  }
  let cpuStart = cpuSeconds()
  let start = ContinuousClock.now
  go.open()
  allRan.wait()
  let elapsed = ContinuousClock.now - start
  let cpu = cpuSeconds() - cpuStart
  group.wait()
  let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
  return (Double(total) / seconds, cpu / Double(total))
}

/// Timer schedule+cancel pairs per second, on the loop thread.
nonisolated func measureTimerPairs(count: Int) throws -> Double {
  let loop = try EventLoop(threadName: "bench-loop")
  defer { loop.shutdown() }
  let result = Mutex<Double>(0)
  let done = Gate()
  try loop.execute {
    let start = ContinuousClock.now
    for index in 0..<count {
      let timer = try! loop.scheduleTimer(after: .milliseconds(100 + index % 1000)) {}
      timer.cancel()
    }
    let elapsed = ContinuousClock.now - start
    let seconds =
      Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    result.withLock { $0 = Double(count) / seconds }
    done.open()
  }
  done.wait()
  return result.withLock { $0 }
}

let cores = ProcessInfo.processInfo.activeProcessorCount
print("MilvexReactor reactor benchmark — \(cores) cores, \(Date())")
for producers in [1, 4, 8] {
  var rates: [Double] = []
  var cpu: [Double] = []
  for _ in 0..<5 {
    let (rate, cpuPer) = try measureSubmissions(
      producers: producers, perProducer: 4_000_000 / producers)
    rates.append(rate)
    cpu.append(cpuPer)
  }
  rates.sort()
  cpu.sort()
  print(
    String(
      format:
        "submission queue, %d producer(s): median %.2f M closures/s (min %.2f, max %.2f), %.0f ns CPU per closure",
      producers, rates[2] / 1e6, rates[0] / 1e6, rates[4] / 1e6, cpu[2] * 1e9))
}
var pairs: [Double] = []
for _ in 0..<5 { pairs.append(try measureTimerPairs(count: 1_000_000)) }
pairs.sort()
print(
  String(
    format: "timers: median %.2f M schedule+cancel pairs/s (min %.2f, max %.2f)", pairs[2] / 1e6,
    pairs[0] / 1e6, pairs[4] / 1e6))
