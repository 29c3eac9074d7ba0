import RPCCore

/// The request HEADERS of one stream, parsed header by header as nghttp2
/// delivers them (their bytes are only valid during each callback).
///
/// nghttp2 has already checked the HTTP/2 rules (pseudo-headers present and
/// valid, no connection-specific headers); this checks the gRPC ones.
struct RequestHead {
  var isPost = false
  var route: RouteTable.Entry?
  var contentTypeIsGRPC = false
  /// The `grpc-timeout`, in nanoseconds.
  var timeoutNanos: Int64?
  var metadata = Metadata()
  /// What a request that will be refused sent, for the refusal's message;
  /// `nil` for a well-formed request, so that each call creates and destroys
  /// one reference here, not one per string.
  private var irregular: Irregularities?

  /// Header values that make a request fail.
  private final class Irregularities {
    var unknownPath: String?
    var contentType: String?
    var invalidTimeout: String?
    var unsupportedEncoding: String?
    var malformedBinaryKey: String?
  }

  private mutating func note(_ record: (Irregularities) -> Void) {
    if irregular == nil { irregular = Irregularities() }
    record(irregular!)
  }

  /// Parses one header. Dispatches on the name's length first: most headers
  /// are compared with one or two candidates only.
  mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, routes: RouteTable) {
    switch name.count {
    case 2 where name.equals("te"):
      return
    case 5 where name.equals(":path"):
      route = routes.lookup(value)
      if route == nil { note { $0.unknownPath = value.string } }
      return
    case 7 where name.equals(":method"):
      isPost = value.equals("POST")
      return
    case 7 where name.equals(":scheme"):
      return
    case 10 where name.equals(":authority") || name.equals("user-agent"):
      return
    case 12 where name.equals("content-type"):
      contentTypeIsGRPC =
        value.equals("application/grpc") || value.hasPrefix("application/grpc+") || value.hasPrefix("application/grpc;")
      if !contentTypeIsGRPC { note { $0.contentType = value.string } }
      return
    case 12 where name.equals("grpc-timeout"):
      if let nanoseconds = GRPCTimeout.parseNanoseconds(value) {
        timeoutNanos = nanoseconds
      } else {
        note { $0.invalidTimeout = value.string }
      }
      return
    case 13 where name.equals("grpc-encoding"):
      if !value.equals("identity") { note { $0.unsupportedEncoding = value.string } }
      return
    default:
      break
    }
    if name.hasPrefix("grpc-") || name.first == UInt8(ascii: ":") {
      return  // reserved (grpc-accept-encoding, …) or an unknown pseudo-header: not custom metadata
    }
    if name.hasSuffix("-bin") {
      let key = name.string
      if !metadata.addWire(key: key, value: value.string) { note { $0.malformedBinaryKey = key } }
    } else {
      metadata.add(wireKey: Self.knownKey(name) ?? name.string, text: value.string)
    }
  }

  /// The caller identity headers, sent with every internal call, as the
  /// strings the authenticator compares them with: no new string per call.
  private static func knownKey(_ name: UnsafeRawBufferPointer) -> String? {
    switch name.count {
    case 25 where name.equals("x-flashsale-service-token"): CallerIdentity.serviceTokenHeader
    case 19 where name.equals("x-flashsale-user-id"): CallerIdentity.userIDHeader
    case 17 where name.equals("x-flashsale-roles"): CallerIdentity.rolesHeader
    default: nil
    }
  }

  /// How a request that cannot reach its handler is answered.
  struct Rejection: Error {
    var httpStatus: StaticString = "200"
    var error: RPCError
    var acceptEncoding = false
  }

  /// Checks the gRPC rules once the headers are complete: `nil` when the
  /// request may reach the handler of its ``route``.
  func rejection(routes: RouteTable) -> Rejection? {
    guard isPost else {
      return Rejection(httpStatus: "405", error: RPCError(code: .internal, message: "gRPC requires the POST method"))
    }
    guard contentTypeIsGRPC else {
      // As grpc-go: HTTP 415, so that plain HTTP clients do not take it for success.
      let message = "invalid gRPC request content-type \"\(irregular?.contentType ?? "")\""
      return Rejection(httpStatus: "415", error: RPCError(code: .invalidArgument, message: message))
    }
    guard route != nil else {
      let message = routes.unimplementedMessage(path: irregular?.unknownPath ?? "")
      return Rejection(error: RPCError(code: .unimplemented, message: message))
    }
    guard let irregular else { return nil }
    if let unsupportedEncoding = irregular.unsupportedEncoding {
      let message = "grpc: Decompressor is not installed for grpc-encoding \"\(unsupportedEncoding)\""
      return Rejection(error: RPCError(code: .unimplemented, message: message), acceptEncoding: true)
    }
    if let invalidTimeout = irregular.invalidTimeout {
      return Rejection(error: RPCError(code: .internal, message: "malformed grpc-timeout \"\(invalidTimeout)\""))
    }
    if let malformedBinaryKey = irregular.malformedBinaryKey {
      return Rejection(
        error: RPCError(code: .internal, message: "malformed base64 in binary metadata \"\(malformedBinaryKey)\""))
    }
    return nil
  }
}
