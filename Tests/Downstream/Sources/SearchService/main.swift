// A Hummingbird application with the library: built by `make build-downstream`, not run (the
// Hummingbird example service of the repository is run by its own tests).
import App
import Hummingbird
import MilvexReactor

if CommandLine.arguments.contains("--version") {
  print("SearchService with MilvexReactor \(MilvexReactorVersion.string)")
} else {
  let loop = try makeMilvusLoop()
  let client = try MilvusClient.connect(
    config: ConnectionConfig(uri: "milvus://127.0.0.1:19530"), on: loop)
  let app = Application(
    router: makeRouter(client: client, collection: "docs"),
    configuration: .init(address: .hostname("127.0.0.1", port: 8080)))
  try await app.runService()
  await client.close()
  loop.shutdown()
}
