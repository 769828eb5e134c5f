import Hummingbird
import MilvexReactor

/// The application's HTTP routes over one shared `MilvusClient`: what a Hummingbird service
/// that uses the library has.
public func makeRouter(client: MilvusClient, collection: String) -> Router<BasicRequestContext> {
  let router = Router()
  router.get("health") { _, _ -> String in
    "\(client.connection.state)"
  }
  router.get("count") { _, _ -> String in
    let statistics = try await client.perform(.collectionStatistics(collection))
    return "\(statistics.rowCount)"
  }
  router.get("version") { _, _ -> String in
    "MilvexReactor \(MilvexReactorVersion.string)"
  }
  return router
}

/// The library's loop type beside SwiftNIO's `EventLoop` protocol, which Hummingbird's
/// modules bring along: the module name tells them apart.
public func makeMilvusLoop() throws -> MilvexReactor.EventLoop {
  try MilvexReactor.EventLoop(threadName: "milvus")
}
