public import ProtoDescriptors
public import RPCCore
public import StandardProtos

/// gRPC server reflection (`grpc.reflection.v1.ServerReflection`): lists the
/// services a server serves and hands out the FileDescriptorProtos that
/// declare them, with their imports, so that tools (grpcurl, our probe,
/// grpcio-reflection) can call them without the .proto files.
public struct ReflectionService: Grpc_Reflection_V1_ServerReflection.ServiceProtocol {
  private let pool: DescriptorPool
  private let serviceNames: [String]

  /// Serves the files of `pool`; `services` are the names listed (the
  /// services this server really serves; the reflection services are added).
  public init(pool: DescriptorPool, services: [String]) {
    self.pool = pool
    var names = services
    for name in [Grpc_Reflection_V1_ServerReflection.serviceName, Grpc_Reflection_V1alpha_ServerReflection.serviceName]
    where !names.contains(name) {
      names.append(name)
    }
    self.serviceNames = names.sorted()
  }

  public func serverReflectionInfo(
    requests: RequestStream<Grpc_Reflection_V1_ServerReflectionRequest>,
    responses: ResponseWriter<Grpc_Reflection_V1_ServerReflectionResponse>, context: ServerContext
  ) async throws {
    for try await request in requests {
      try await responses.write(answer(request))
    }
  }

  /// The answer to one request.
  public func answer(_ request: Grpc_Reflection_V1_ServerReflectionRequest) -> Grpc_Reflection_V1_ServerReflectionResponse {
    var response = Grpc_Reflection_V1_ServerReflectionResponse(validHost: request.host, originalRequest: request)
    func files(_ name: String?, missing: String) -> Grpc_Reflection_V1_ServerReflectionResponse.MessageResponse {
      guard let name, pool.files[name] != nil else {
        return .errorResponse(Grpc_Reflection_V1_ErrorResponse(errorCode: Int32(StatusCode.notFound.rawValue), errorMessage: missing))
      }
      return .fileDescriptorResponse(
        Grpc_Reflection_V1_FileDescriptorResponse(fileDescriptorProto: pool.withDependencies(name).map(\.serialized)))
    }
    switch request.messageRequest {
    case .listServices:
      response.messageResponse = .listServicesResponse(
        Grpc_Reflection_V1_ListServiceResponse(service: serviceNames.map { Grpc_Reflection_V1_ServiceResponse(name: $0) }))
    case .fileByFilename(let name):
      response.messageResponse = files(name, missing: "no file \(name)")
    case .fileContainingSymbol(let symbol):
      let trimmed = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
      response.messageResponse = files(pool.fileOfSymbol[trimmed], missing: "no symbol \(symbol)")
    case .fileContainingExtension(let request):
      response.messageResponse = .errorResponse(
        Grpc_Reflection_V1_ErrorResponse(
          errorCode: Int32(StatusCode.notFound.rawValue),
          errorMessage: "no extension \(request.extensionNumber) of \(request.containingType)"))
    case .allExtensionNumbersOfType(let type):
      response.messageResponse =
        pool.messages[type] == nil
        ? .errorResponse(
          Grpc_Reflection_V1_ErrorResponse(errorCode: Int32(StatusCode.notFound.rawValue), errorMessage: "no type \(type)"))
        : .allExtensionNumbersResponse(Grpc_Reflection_V1_ExtensionNumberResponse(baseTypeName: type))
    case nil:
      response.messageResponse = .errorResponse(
        Grpc_Reflection_V1_ErrorResponse(
          errorCode: Int32(StatusCode.invalidArgument.rawValue), errorMessage: "the request names no message_request"))
    }
    return response
  }
}

/// The same service under its older name, `grpc.reflection.v1alpha`, which
/// many clients (grpcurl, grpcio-reflection) still call. Its messages are the
/// v1 messages under another package: identical on the wire.
public struct ReflectionServiceV1Alpha: Grpc_Reflection_V1alpha_ServerReflection.ServiceProtocol {
  private let service: ReflectionService

  public init(_ service: ReflectionService) {
    self.service = service
  }

  public func serverReflectionInfo(
    requests: RequestStream<Grpc_Reflection_V1alpha_ServerReflectionRequest>,
    responses: ResponseWriter<Grpc_Reflection_V1alpha_ServerReflectionResponse>, context: ServerContext
  ) async throws {
    for try await request in requests {
      var bytes: [UInt8] = []
      request.serialize(into: &bytes)
      let answer = service.answer(try Grpc_Reflection_V1_ServerReflectionRequest(serializedBytes: bytes))
      var encoded: [UInt8] = []
      answer.serialize(into: &encoded)
      try await responses.write(try Grpc_Reflection_V1alpha_ServerReflectionResponse(serializedBytes: encoded))
    }
  }
}
