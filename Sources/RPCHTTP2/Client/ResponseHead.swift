import RPCCore

/// A response HEADERS or trailers block, parsed header by header as nghttp2
/// delivers it, and the call status it stands for.
struct ResponseHead {
  var httpStatus: Int?
  var contentTypeIsGRPC = false
  var grpcStatus: StatusCode?
  var grpcMessage: String?
  var statusDetails: [UInt8]?
  var metadata = Metadata()

  mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
    guard let first = name.first else { return }
    if first == UInt8(ascii: ":") {
      if name.equals(":status") { httpStatus = Int(value.string) }
      return
    }
    if name.equals("content-type") {
      contentTypeIsGRPC =
        value.equals("application/grpc") || value.hasPrefix("application/grpc+") || value.hasPrefix("application/grpc;")
    } else if name.equals("grpc-status") {
      grpcStatus = Int(value.string).map { StatusCode(rawValue: $0) }
    } else if name.equals("grpc-message") {
      grpcMessage = PercentEncoding.decode(value.string)
    } else if name.equals("grpc-status-details-bin") {
      statusDetails = Base64.decode(value.string)
    } else if name.equals("grpc-retry-pushback-ms") {
      metadata.add("grpc-retry-pushback-ms", value.string)
    } else if name.hasPrefix("grpc-") {
      return  // reserved: grpc-encoding, grpc-accept-encoding, …
    } else {
      metadata.addWire(key: name.string, value: value.string)
    }
  }

  /// For the first HEADERS of a response: why it is not a gRPC response, if it
  /// is not one (doc/http-grpc-status-mapping.md).
  func responseError() -> RPCError? {
    let status = httpStatus ?? 0
    if status != 200 {
      if let grpcStatus, grpcStatus != .ok {
        return RPCError(code: grpcStatus, message: grpcMessage ?? "", metadata: metadata, statusDetails: statusDetails)
      }
      return RPCError(
        code: GRPCHeaders.statusCode(forHTTPStatus: status), message: "unexpected HTTP status code \(status)")
    }
    if !contentTypeIsGRPC {
      return RPCError(code: .unknown, message: "the response is not gRPC (content-type is not application/grpc)")
    }
    return nil
  }

  /// For trailers (or a Trailers-Only response): the call's outcome.
  func status() -> Result<Void, RPCError> {
    guard let grpcStatus else {
      return .failure(RPCError(code: .internal, message: "the server ended the call without a grpc-status"))
    }
    if grpcStatus == .ok { return .success(()) }
    return .failure(RPCError(code: grpcStatus, message: grpcMessage ?? "", metadata: metadata, statusDetails: statusDetails))
  }
}
