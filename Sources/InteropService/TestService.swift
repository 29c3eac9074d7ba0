public import InteropAPI
public import RPCCore

/// The gRPC interop `grpc.testing.TestService` (doc/interop-test-descriptions.md
/// in the grpc repository), served by our runtime so that independent clients
/// (grpcio) can run the interop test cases against it.
public struct TestService: Grpc_Testing_TestService.ServiceProtocol {
  public init() {}

  static let echoInitialKey = "x-grpc-test-echo-initial"
  static let echoTrailingKey = "x-grpc-test-echo-trailing-bin"

  public func emptyCall(_ request: Grpc_Testing_Empty, context: ServerContext) -> Reply<Grpc_Testing_Empty> {
    .ok(Grpc_Testing_Empty())
  }

  public func unaryCall(_ request: Grpc_Testing_SimpleRequest, context: ServerContext)
    -> Reply<Grpc_Testing_SimpleResponse>
  {
    Self.echoMetadata(context)
    if let status = request.responseStatus, status.code != 0 {
      return .failure(RPCError(code: StatusCode(rawValue: Int(status.code)), message: status.message))
    }
    return .ok(Grpc_Testing_SimpleResponse(payload: Self.payload(size: request.responseSize)))
  }

  public func streamingOutputCall(
    _ request: Grpc_Testing_StreamingOutputCallRequest,
    responses: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>,
    context: ServerContext
  ) async throws {
    for parameters in request.responseParameters {
      if parameters.intervalUs > 0 { try await Task.sleep(for: .microseconds(parameters.intervalUs)) }
      try await responses.write(Grpc_Testing_StreamingOutputCallResponse(payload: Self.payload(size: parameters.size)))
    }
    if let status = request.responseStatus, status.code != 0 {
      throw RPCError(code: StatusCode(rawValue: Int(status.code)), message: status.message)
    }
  }

  public func streamingInputCall(
    requests: RequestStream<Grpc_Testing_StreamingInputCallRequest>,
    context: ServerContext
  ) async throws -> Grpc_Testing_StreamingInputCallResponse {
    var total = 0
    for try await request in requests {
      total += request.payload?.body.count ?? 0
    }
    return Grpc_Testing_StreamingInputCallResponse(aggregatedPayloadSize: Int32(total))
  }

  public func fullDuplexCall(
    requests: RequestStream<Grpc_Testing_StreamingOutputCallRequest>,
    responses: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>,
    context: ServerContext
  ) async throws {
    Self.echoMetadata(context)
    for try await request in requests {
      if let status = request.responseStatus, status.code != 0 {
        throw RPCError(code: StatusCode(rawValue: Int(status.code)), message: status.message)
      }
      for parameters in request.responseParameters {
        if parameters.intervalUs > 0 { try await Task.sleep(for: .microseconds(parameters.intervalUs)) }
        try await responses.write(Grpc_Testing_StreamingOutputCallResponse(payload: Self.payload(size: parameters.size)))
      }
    }
  }

  public func halfDuplexCall(
    requests: RequestStream<Grpc_Testing_StreamingOutputCallRequest>,
    responses: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>,
    context: ServerContext
  ) async throws {
    var buffered: [Grpc_Testing_StreamingOutputCallRequest] = []
    for try await request in requests { buffered.append(request) }
    for request in buffered {
      for parameters in request.responseParameters {
        try await responses.write(Grpc_Testing_StreamingOutputCallResponse(payload: Self.payload(size: parameters.size)))
      }
    }
  }

  public func unimplementedMethod(_ request: Grpc_Testing_Empty, context: ServerContext) -> Reply<Grpc_Testing_Empty> {
    .failure(RPCError.unimplemented(context.descriptor))
  }

  /// A COMPRESSABLE payload of `size` zero bytes.
  static func payload(size: Int32) -> Grpc_Testing_Payload {
    Grpc_Testing_Payload(type: .compressable, body: [UInt8](repeating: 0, count: Int(max(0, size))))
  }

  /// Echoes the interop test's metadata: the initial value as a response
  /// header, the binary trailing value as a trailer.
  static func echoMetadata(_ context: ServerContext) {
    if let initial = context.requestMetadata[echoInitialKey] {
      context.responseHeaders = [echoInitialKey: .string(initial)]
    }
    if let trailing = context.requestMetadata.binary(echoTrailingKey) {
      var trailers = Metadata()
      trailers.add(echoTrailingKey, .binary(trailing))
      context.trailers = trailers
    }
  }
}
