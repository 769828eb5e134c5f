// milvex-search-service: an HTTP/1.1 JSON search service on a libev loop that the program
// owns and runs itself, with MilvexReactor embedded in it (`EventLoop(embeddingIn:)`).
// Examples/SearchService/README.md shows how to run it against milvus-lite.
import Foundation

exit(ServiceMain.run(arguments: Array(CommandLine.arguments.dropFirst())))
