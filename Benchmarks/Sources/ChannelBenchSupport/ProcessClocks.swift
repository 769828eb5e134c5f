#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Nanoseconds on the monotonic clock: cheap enough (vDSO) to read twice per call.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// User and system CPU time of the whole process (every thread), from `getrusage(RUSAGE_SELF)`.
public struct ProcessCPUTime: Sendable {
  public var userSeconds: Double
  public var systemSeconds: Double

  public static func now() -> ProcessCPUTime {
    var usage = rusage()
    #if canImport(Glibc)
      getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
      getrusage(RUSAGE_SELF, &usage)
    #endif
    func seconds(_ time: timeval) -> Double {
      Double(time.tv_sec) + Double(time.tv_usec) / 1e6
    }
    return ProcessCPUTime(
      userSeconds: seconds(usage.ru_utime), systemSeconds: seconds(usage.ru_stime))
  }

  public static func - (later: ProcessCPUTime, earlier: ProcessCPUTime) -> ProcessCPUTime {
    ProcessCPUTime(
      userSeconds: later.userSeconds - earlier.userSeconds,
      systemSeconds: later.systemSeconds - earlier.systemSeconds
    )
  }
}
