import Dispatch
import Synchronization

/// Runs `body` on the global concurrent executor and blocks the calling thread until it
/// returns, for a synchronous `main`.
///
/// Clients use this instead of an `async` main (or `AsyncParsableCommand`): Swift's async main
/// parks the main thread in `dispatch_main()`, and valgrind 3.19 (Debian 12) crashes on that,
/// which would rule out `callgrind-client.sh`. The calls run on the same executor either way.
///
/// - Returns: What `body` returned.
/// - Throws: What `body` threw.
public func runBlocking<Value: Sendable>(
  _ body: @escaping @Sendable () async throws -> Value
) throws -> Value {
  let outcome = Outcome<Value>()
  let finished = DispatchSemaphore(value: 0)
  Task.detached {
    let result: Result<Value, any Error>
    do { result = .success(try await body()) } catch { result = .failure(error) }
    outcome.result.withLock { $0 = result }
    finished.signal()
  }
  finished.wait()
  return try outcome.result.withLock { $0! }.get()
}

private final class Outcome<Value: Sendable>: Sendable {
  let result = Mutex<Result<Value, any Error>?>(nil)
}
