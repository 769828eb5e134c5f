/// A script of HTTP/2 events for one gRPC response, read from fuzzer bytes and played into
/// `UnaryResponse` (``FuzzEntryPoints/grpcResponse(_:)``).
struct ResponseScript {
  enum Event {
    case header(name: [UInt8], value: [UInt8])
    case headersComplete(endStream: Bool)
    case data([UInt8])
    case streamClosed(errorCode: UInt32)
  }

  private let maxMessageSize: Int
  private let events: [Event]

  private static let names = [
    ":status", "content-type", "grpc-status", "grpc-message", "grpc-status-details-bin",
    "grpc-encoding", "grpc-accept-encoding", "content-length", "te", "x-other",
  ]
  private static let values = [
    "200", "0", "1", "2", "5", "13", "14", "16", "17", "-1", "99999999999999999999", "", "503",
    "404", "application/grpc", "application/grpc+proto", "application/grpc;charset=utf-8",
    "text/html", "application/json", "gzip", "identity", "no%20such%zzthing%", "CAUSA2FiYw",
    "CAUSA2FiYw==", "!!!", "=", "a b",
  ]

  init(_ input: inout FuzzInput) {
    // Small limits reach the size check; 64 KiB stands for the (64 MiB) default.
    maxMessageSize = input.pick([0, 1, 5, 16, 100, 4096, 1 << 16])
    var events: [Event] = []
    while !input.isExhausted, events.count < 64 {
      switch input.choice(7) {
      case 0:
        let name =
          input.choice(4) == 0 ? input.lengthPrefixedBytes() : Array(input.pick(Self.names).utf8)
        let value =
          input.choice(4) == 0 ? input.lengthPrefixedBytes() : Array(input.pick(Self.values).utf8)
        events.append(.header(name: name, value: value))
      case 1:
        events.append(.headersComplete(endStream: input.bool()))
      case 2:
        events.append(.data(input.lengthPrefixedBytes()))
      case 3:
        events.append(.data(Self.framedMessage(&input)))
      case 4:
        let codes: [UInt32] = [0, 1, 2, 7, 8, 11]
        let selector = input.choice(codes.count + 1)
        events.append(
          .streamClosed(errorCode: selector < codes.count ? codes[selector] : input.uint32()))
      case 5:
        // A typical response header block, so the fuzzer reaches the message states at once.
        events.append(.header(name: Array(":status".utf8), value: Array("200".utf8)))
        events.append(
          .header(name: Array("content-type".utf8), value: Array("application/grpc".utf8)))
        events.append(.headersComplete(endStream: false))
      default:
        events.append(
          .header(name: Array("grpc-status".utf8), value: Array(input.pick(["0", "13"]).utf8)))
        events.append(.headersComplete(endStream: true))
      }
    }
    self.events = events
  }

  /// A length-prefixed message: flag, announced length (mostly the true one) and payload.
  private static func framedMessage(_ input: inout FuzzInput) -> [UInt8] {
    let payload = input.lengthPrefixedBytes()
    let flag: UInt8 = input.choice(8) == 0 ? 1 : 0
    let delta = input.choice(4) == 0 ? Int(input.byte()) - 128 : 0
    let announced = UInt32(truncatingIfNeeded: max(0, payload.count + delta))
    return [
      flag, UInt8(announced >> 24), UInt8(announced >> 16 & 0xFF), UInt8(announced >> 8 & 0xFF),
      UInt8(announced & 0xFF),
    ] + payload
  }

  /// Plays the script as read, with consecutive DATA chunks merged, and with every DATA group
  /// split at each byte position (or at most 64 positions) and byte by byte: all must end
  /// with the same outcome after the same event.
  func check() {
    let groups = Self.dataGroups(events)
    let expected = play(groups.map(\.events))
    precondition(
      play(groups.map { $0.merged.map { [$0] } ?? $0.events }) == expected,
      "merging DATA chunks changed the outcome")
    for (index, group) in groups.enumerated() {
      guard let bytes = group.mergedBytes else { continue }
      let step = max(1, bytes.count / 64)
      for position in stride(from: 0, through: bytes.count, by: step) {
        var split = groups.map { $0.merged.map { [$0] } ?? $0.events }
        split[index] = [.data(Array(bytes[..<position])), .data(Array(bytes[position...]))]
        precondition(
          play(split) == expected, "splitting DATA at byte \(position) changed the outcome")
      }
      var single = groups.map { $0.merged.map { [$0] } ?? $0.events }
      single[index] = bytes.isEmpty ? [.data([])] : bytes.map { .data([$0]) }
      precondition(play(single) == expected, "DATA byte by byte changed the outcome")
    }
  }

  /// The outcome and the index of the group whose event produced it, after checking that
  /// the machine produces at most one outcome and is done exactly when it has.
  private func play(_ groups: [[Event]]) -> Played? {
    var response = UnaryResponse(maxMessageSize: maxMessageSize)
    var result: Played?
    for (index, group) in groups.enumerated() {
      for event in group {
        let outcome = Self.apply(event, to: &response)
        if let outcome {
          precondition(
            result == nil, "a second outcome: \(outcome) after \(String(describing: result))")
          if case .success(let message) = outcome {
            precondition(message.count <= maxMessageSize, "a message beyond maxMessageSize")
          }
          result = Played(group: index, outcome: outcome)
        }
        precondition(response.isDone == (result != nil), "isDone disagrees with the outcomes given")
      }
    }
    return result
  }

  private struct Played: Equatable {
    let group: Int
    let outcome: UnaryResponse.Outcome
  }

  private static func apply(_ event: Event, to response: inout UnaryResponse) -> UnaryResponse
    .Outcome?
  {
    switch event {
    case .header(let name, let value):
      name.withUnsafeBytes { name in
        value.withUnsafeBytes { response.header(name: name, value: $0) }
      }
      return nil
    case .headersComplete(let endStream):
      return response.headersComplete(endStream: endStream)
    case .data(let bytes):
      return bytes.withUnsafeBytes { response.data($0) }
    case .streamClosed(let errorCode):
      return response.streamClosed(errorCode: errorCode)
    }
  }

  /// The events in groups: each run of DATA events is one group (with its bytes merged),
  /// each other event a group of its own.
  private static func dataGroups(_ events: [Event]) -> [Group] {
    var groups: [Group] = []
    for event in events {
      if case .data = event, let last = groups.last, last.mergedBytes != nil {
        groups[groups.count - 1].events.append(event)
      } else {
        groups.append(Group(events: [event]))
      }
    }
    return groups
  }

  private struct Group {
    var events: [Event]

    /// All the DATA bytes of the group, or nil for a group of another event.
    var mergedBytes: [UInt8]? {
      var bytes: [UInt8] = []
      for event in events {
        guard case .data(let chunk) = event else { return nil }
        bytes += chunk
      }
      return bytes
    }

    var merged: Event? { mergedBytes.map { .data($0) } }
  }
}
