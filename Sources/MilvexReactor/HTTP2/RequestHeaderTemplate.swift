import CMilvexNGHTTP2

/// The header fields every request on one connection sends, laid out once as `nghttp2_nv`
/// entries over memory that never moves, so that a request's field list is put together on the
/// stack, without allocating and without copying a byte (issue 11: copying a header block per
/// call cost two allocations and about 1,500 instructions).
///
/// A request's fields, in order (pseudo-header fields first, RFC 9113 §8.3):
/// `:method :scheme :authority` (`pseudo`), `:path` (per call), `content-type te user-agent`
/// (`fixed`), `grpc-timeout` (per call, never indexed by HPACK: it changes with every call),
/// then the connection's default metadata (`defaults`), or the call's own metadata merged with
/// them when it has any.
///
/// - Important: Loop-confined (its owner's). Immutable after `init`.
final class RequestHeaderTemplate {
  private let bytes: UnsafeMutableRawBufferPointer
  private let fields: UnsafeMutableBufferPointer<nghttp2_nv>
  private let pseudoCount: Int
  private let fixedCount: Int

  init(pseudo: HeaderBlock, fixed: HeaderBlock, defaults: HeaderBlock) {
    let blocks = [pseudo, fixed, defaults]
    bytes = .allocate(byteCount: max(1, blocks.reduce(0) { $0 + $1.byteCount }), alignment: 1)
    fields = .allocate(capacity: max(1, blocks.reduce(0) { $0 + $1.count }))
    pseudoCount = pseudo.count
    fixedCount = fixed.count
    var byteOffset = 0
    var fieldIndex = 0
    for block in blocks {
      block.forEachField { name, value in
        let base = bytes.baseAddress! + byteOffset
        UnsafeMutableRawBufferPointer(start: base, count: name.count).copyMemory(from: name)
        UnsafeMutableRawBufferPointer(start: base + name.count, count: value.count)
          .copyMemory(from: value)
        let start = base.assumingMemoryBound(to: UInt8.self)
        fields[fieldIndex] = nghttp2_nv(
          name: start, value: start + name.count, namelen: name.count, valuelen: value.count,
          flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
        byteOffset += name.count + value.count
        fieldIndex += 1
      }
    }
  }

  deinit {
    bytes.deallocate()
    fields.deallocate()
  }

  private var defaultsCount: Int { fields.count - pseudoCount - fixedCount }

  /// Runs `body` with one request's fields (see the type's documentation).
  ///
  /// - Parameters:
  ///   - path: The `:path` value.
  ///   - timeout: The `grpc-timeout` value, if the call has a deadline.
  ///   - metadata: The call's metadata merged with the defaults, used instead of the template's
  ///     defaults; nil when the call has none of its own.
  func withRequestFields<R>(
    path: String, timeout: GRPCWireFormat.TimeoutValue?, metadata: HeaderBlock?,
    _ body: (UnsafePointer<nghttp2_nv>, Int) -> R
  ) -> R {
    if let result = path.utf8.withContiguousStorageIfAvailable({ pathBytes in
      withRequestFields(
        path: UnsafeRawBufferPointer(pathBytes), timeout: timeout, metadata: metadata, body)
    }) {
      return result
    }
    return Array(path.utf8).withUnsafeBytes { pathBytes in
      withRequestFields(path: pathBytes, timeout: timeout, metadata: metadata, body)
    }
  }

  private func withRequestFields<R>(
    path: UnsafeRawBufferPointer, timeout: GRPCWireFormat.TimeoutValue?, metadata: HeaderBlock?,
    _ body: (UnsafePointer<nghttp2_nv>, Int) -> R
  ) -> R {
    guard let metadata else {
      return withTimeout(timeout) { timeoutBytes in
        assemble(path: path, timeout: timeoutBytes, extra: nil, body)
      }
    }
    return metadata.withNameValuePairs { extra, extraCount in
      withTimeout(timeout) { timeoutBytes in
        assemble(
          path: path, timeout: timeoutBytes,
          extra: UnsafeBufferPointer(start: extra, count: extraCount), body)
      }
    }
  }

  private func withTimeout<R>(
    _ timeout: GRPCWireFormat.TimeoutValue?, _ body: (UnsafeRawBufferPointer?) -> R
  ) -> R {
    guard let timeout else { return body(nil) }
    return timeout.withBytes { body($0) }
  }

  /// The fields on the stack: template, path, timeout, then `extra` or the defaults.
  private func assemble<R>(
    path: UnsafeRawBufferPointer, timeout: UnsafeRawBufferPointer?,
    extra: UnsafeBufferPointer<nghttp2_nv>?, _ body: (UnsafePointer<nghttp2_nv>, Int) -> R
  ) -> R {
    let tail = extra.map { $0.count } ?? defaultsCount
    let capacity = pseudoCount + fixedCount + 2 + tail
    return withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: capacity) { list in
      let out = list.baseAddress!
      let template = fields.baseAddress!
      var count = 0
      out.update(from: template, count: pseudoCount)
      count += pseudoCount
      out[count] = Self.field(Self.pathName, path, flags: NGHTTP2_NV_FLAG_NONE)
      count += 1
      (out + count).update(from: template + pseudoCount, count: fixedCount)
      count += fixedCount
      if let timeout {
        out[count] = Self.field(Self.timeoutName, timeout, flags: NGHTTP2_NV_FLAG_NO_INDEX)
        count += 1
      }
      if let extra {
        (out + count).update(from: extra.baseAddress!, count: extra.count)
      } else {
        (out + count).update(from: template + pseudoCount + fixedCount, count: defaultsCount)
      }
      count += tail
      return body(out, count)
    }
  }

  private static let pathName: StaticString = ":path"
  private static let timeoutName: StaticString = "grpc-timeout"

  /// A field whose bytes nghttp2 copies before `nghttp2_submit_request` returns.
  private static func field(
    _ name: StaticString, _ value: UnsafeRawBufferPointer, flags: nghttp2_nv_flag
  ) -> nghttp2_nv {
    // nghttp2_nv's pointers are not const, but nghttp2 copies the fields (no NO_COPY flags)
    // and never writes through them.
    let empty = UnsafeMutablePointer(mutating: name.utf8Start)
    return nghttp2_nv(
      name: UnsafeMutablePointer(mutating: name.utf8Start),
      value: value.baseAddress.map {
        UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: UInt8.self))
      } ?? empty,
      namelen: name.utf8CodeUnitCount, valuelen: value.count, flags: UInt8(flags.rawValue))
  }
}
