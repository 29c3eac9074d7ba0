import RPCCore

/// The header names and values of the gRPC protocol over HTTP/2
/// (PROTOCOL-HTTP2.md), as constants and as builders of whole blocks.
enum GRPCHeaders {
  /// The response HEADERS of every successful start: `:status 200` and the
  /// gRPC content type.
  static let responseHeaders = HeaderBlock([
    (.constant(":status"), .constant("200")),
    (.constant("content-type"), .constant("application/grpc")),
  ])

  /// The trailers of a call that succeeded with no custom trailing metadata.
  static let okTrailers = HeaderBlock([(.constant("grpc-status"), .constant("0"))])

  /// The `grpc-status` values as static strings, so that no status needs an
  /// allocation.
  static let statusValues: [StaticString] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
  ]

  /// Trailers (or the status part of a Trailers-Only response) for `code`.
  static func trailers(
    code: StatusCode, message: String, details: [UInt8]?, metadata: Metadata, encoded: RPCError.EncodedStatus? = nil
  ) -> HeaderBlock {
    if code == .ok, message.isEmpty, metadata.isEmpty, details == nil { return okTrailers }
    var block = HeaderBlock(capacity: 3 + metadata.count)
    appendStatus(to: &block, code: code, message: message, details: details, metadata: metadata, encoded: encoded)
    return block
  }

  /// A Trailers-Only response: one HEADERS frame, ending the stream, with the
  /// HTTP status, the content type and the call's status.
  static func trailersOnly(
    code: StatusCode, message: String, details: [UInt8]?, metadata: Metadata, httpStatus: StaticString = "200",
    encoded: RPCError.EncodedStatus? = nil
  ) -> HeaderBlock {
    var block = HeaderBlock(capacity: 6 + metadata.count)
    block.add(":status", httpStatus)
    block.add("content-type", "application/grpc")
    appendStatus(to: &block, code: code, message: message, details: details, metadata: metadata, encoded: encoded)
    return block
  }

  /// `encoded`: the message and details already encoded (``RPCError/encodingStatusOnce()``),
  /// and kept in permanent memory (``RPCError/encodingStatusPermanently()``).
  private static func appendStatus(
    to block: inout HeaderBlock, code: StatusCode, message: String, details: [UInt8]?, metadata: Metadata,
    encoded: RPCError.EncodedStatus?
  ) {
    if (0...16).contains(code.rawValue) {
      block.add("grpc-status", statusValues[code.rawValue])
    } else {
      block.add("grpc-status", value: String(code.rawValue))
    }
    if !message.isEmpty {
      if let permanent = encoded?.permanent {
        block.add("grpc-message", value: permanent.message)
      } else {
        block.add("grpc-message", value: encoded?.message ?? PercentEncoding.encode(message))
      }
    }
    if let details {
      if let permanent = encoded?.permanent?.details {
        block.add("grpc-status-details-bin", value: permanent)
      } else {
        block.add("grpc-status-details-bin", value: encoded?.details ?? Base64.encode(details, padded: false))
      }
    }
    block.add(metadata)
  }

  /// The gRPC status a client reports for a response with a non-200 HTTP
  /// status and no `grpc-status` (doc/http-grpc-status-mapping.md).
  static func statusCode(forHTTPStatus status: Int) -> StatusCode {
    switch status {
    case 400: .internal
    case 401: .unauthenticated
    case 403: .permissionDenied
    case 404: .unimplemented
    case 429, 502, 503, 504: .unavailable
    default: .unknown
    }
  }
}

extension UnsafeRawBufferPointer {
  /// Whether the bytes equal the ASCII of `string`.
  @inline(__always)
  func equals(_ string: StaticString) -> Bool {
    guard count == string.utf8CodeUnitCount else { return false }
    guard let base = baseAddress else { return count == 0 }
    return memcmp(base, string.utf8Start, count) == 0
  }

  /// Whether the bytes start with the ASCII of `prefix`.
  @inline(__always)
  func hasPrefix(_ prefix: StaticString) -> Bool {
    guard count >= prefix.utf8CodeUnitCount, let base = baseAddress else { return prefix.utf8CodeUnitCount == 0 }
    return memcmp(base, prefix.utf8Start, prefix.utf8CodeUnitCount) == 0
  }

  /// Whether the bytes end with the ASCII of `suffix`.
  @inline(__always)
  func hasSuffix(_ suffix: StaticString) -> Bool {
    let n = suffix.utf8CodeUnitCount
    guard count >= n, let base = baseAddress else { return n == 0 }
    return memcmp(base + (count - n), suffix.utf8Start, n) == 0
  }

  /// The bytes as a string (invalid UTF-8 repaired).
  var string: String {
    String(decoding: self, as: UTF8.self)
  }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
