import MilvexReactor

/// The service's command-line configuration.
struct ServiceOptions {
  /// The IPv4 address to listen on.
  var listenHost = "127.0.0.1"
  /// The TCP port to listen on; 0 picks a free one (printed at start).
  var listenPort = 8080
  /// The Milvus connection: every `--milvus` endpoint, in the order given (at least one once
  /// parsed), spread by `--balance`, each probed with CheckHealth every 5 s when there are
  /// several (or `--every-address` may make several of one name). Nil only before parsing.
  var milvus: ConnectionConfig?
  /// The collection searched and written.
  var collection = "search_service"
  /// The dimension of the text embeddings (and of the collection's vector field).
  var dimension = 256

  /// The usage text printed for `--help` and after a bad flag.
  static let usage = """
    usage: milvex-search-service [--listen HOST:PORT] [--milvus URI]... [--balance POLICY]
                                 [--every-address SECONDS] [--collection NAME] [--dimension N]
           milvex-search-service --version

      --listen HOST:PORT   IPv4 address and port to serve HTTP on (default 127.0.0.1:8080;
                           port 0 picks a free one, printed at start)
      --milvus URI         a Milvus endpoint, such as milvus://127.0.0.1:19530/default
                           (repeatable: several proxies of one deployment, differing only
                           in host and port; default milvus://127.0.0.1:19530)
      --balance POLICY     round_robin (default) or pick_first over the --milvus endpoints
      --every-address SECONDS
                           make every address of a --milvus host name an endpoint of its
                           own, resolving the name again every SECONDS (1...86400) and after
                           an endpoint fails (a Kubernetes headless service, for example)
      --collection NAME    the collection to search and write (default search_service)
      --dimension N        the embedding dimension, 2...32768 (default 256)
      --version            print the MilvexReactor version and exit
    """

  /// Parses the arguments after the program name.
  ///
  /// - Returns: the options, or nil for `--help`.
  /// - Throws: ``OptionError`` naming the flag and what is wrong with it.
  static func parse(_ arguments: [String]) throws(OptionError) -> ServiceOptions? {
    var options = ServiceOptions()
    var remaining = arguments[...]
    func value(for flag: String) throws(OptionError) -> String {
      guard let value = remaining.popFirst() else {
        throw OptionError(flag: flag, message: "needs a value")
      }
      return value
    }
    var uris: [String] = []
    var balance = LoadBalancingPolicy.roundRobin
    var refresh: Int?
    while let flag = remaining.popFirst() {
      switch flag {
      case "--help", "-h":
        return nil
      case "--listen":
        (options.listenHost, options.listenPort) = try parseListen(try value(for: flag))
      case "--milvus":
        uris.append(try value(for: flag))
      case "--balance":
        let text = try value(for: flag)
        guard let policy = LoadBalancingPolicy(rawValue: text) else {
          throw OptionError(flag: flag, message: "'\(text)' is not round_robin or pick_first")
        }
        balance = policy
      case "--every-address":
        let text = try value(for: flag)
        guard let seconds = Int(text), (1...86_400).contains(seconds) else {
          throw OptionError(
            flag: flag, message: "'\(text)' is not a number of seconds in 1...86400")
        }
        refresh = seconds
      case "--collection":
        options.collection = try value(for: flag)
        guard isValidCollectionName(options.collection) else {
          throw OptionError(
            flag: flag,
            message: "'\(options.collection)' is not a collection name (a letter or _, then "
              + "letters, digits or _, at most 255 characters)")
        }
      case "--dimension":
        let text = try value(for: flag)
        guard let dimension = Int(text), (2...32_768).contains(dimension) else {
          throw OptionError(flag: flag, message: "'\(text)' is not a number in 2...32768")
        }
        options.dimension = dimension
      default:
        throw OptionError(flag: flag, message: "is not a flag of this program")
      }
    }
    var milvus = try milvusConfig(uris.isEmpty ? ["milvus://127.0.0.1:19530"] : uris)
    milvus.loadBalancing = balance
    if let refresh { milvus.addressResolution = .everyAddress(refreshInterval: .seconds(refresh)) }
    if milvus.endpoints.count > 1 || refresh != nil { milvus.healthCheckInterval = .seconds(5) }
    options.milvus = milvus
    return options
  }

  private static func milvusConfig(_ uris: [String]) throws(OptionError) -> ConnectionConfig {
    do {
      return try ConnectionConfig(uris: uris)
    } catch {
      // The URIs themselves are not repeated: they may carry a password.
      throw OptionError(flag: "--milvus", message: "is not a usable set of Milvus URIs: \(error)")
    }
  }

  private static func parseListen(_ text: String) throws(OptionError) -> (String, Int) {
    guard let colon = text.lastIndex(of: ":"),
      let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port)
    else {
      throw OptionError(
        flag: "--listen", message: "'\(text)' is not HOST:PORT with a port in 0...65535")
    }
    let host = String(text[..<colon])
    guard isIPv4Address(host) else {
      throw OptionError(
        flag: "--listen", message: "'\(host)' is not an IPv4 address such as 127.0.0.1")
    }
    return (host, port)
  }

  private static func isIPv4Address(_ text: String) -> Bool {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    return parts.count == 4
      && parts.allSatisfy { part in
        part.count <= 3 && part.allSatisfy(\.isASCII) && UInt8(part) != nil
      }
  }

  private static func isValidCollectionName(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 255 else {
      return false
    }
    func isLetter(_ scalar: Unicode.Scalar) -> Bool {
      ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_"
    }
    return isLetter(first)
      && name.unicodeScalars.allSatisfy { isLetter($0) || ("0"..."9").contains($0) }
  }
}

/// A command-line flag that could not be used.
struct OptionError: Error, CustomStringConvertible {
  /// The flag, as given.
  var flag: String
  /// What is wrong with it.
  var message: String

  var description: String { "\(flag) \(message)" }
}
