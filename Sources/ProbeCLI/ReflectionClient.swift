import FlashSaleAPI
import ProtoDescriptors
import RPCCore
import StandardProtos

/// Learns a server's services and message types through server reflection
/// (v1, else v1alpha), file by file, imports included.
struct ReflectionClient {
  let channel: any RPCChannel
  let metadata: Metadata
  let timeout: Duration?

  /// Where the descriptors came from.
  enum Source: String {
    case reflection = "server reflection"
    case builtIn = "the compiled-in flashsale descriptors (the server has no reflection)"
  }

  /// The service names the server lists.
  func services() async throws -> [String] {
    let answer = try await ask([Grpc_Reflection_V1_ServerReflectionRequest(messageRequest: .listServices(""))])
    guard case .listServicesResponse(let list) = answer.first?.messageResponse else {
      throw Self.failure(answer.first)
    }
    return list.service.map(\.name)
  }

  /// A pool with the files declaring `symbols`, and everything they import.
  func pool(containing symbols: [String], into pool: inout DescriptorPool) async throws {
    var pending = symbols.map { Grpc_Reflection_V1_ServerReflectionRequest(messageRequest: .fileContainingSymbol($0)) }
    var asked: Set<String> = []
    while !pending.isEmpty {
      let answers = try await ask(pending)
      pending = []
      for answer in answers {
        guard case .fileDescriptorResponse(let files) = answer.messageResponse else { throw Self.failure(answer) }
        for file in files.fileDescriptorProto {
          do {
            try pool.add(serializedFile: file)
            for dependency in try FileDescriptor(serialized: file).dependencies
            where pool.files[dependency] == nil && !asked.contains(dependency) {
              asked.insert(dependency)
              pending.append(Grpc_Reflection_V1_ServerReflectionRequest(messageRequest: .fileByFilename(dependency)))
            }
          } catch {
            throw RPCError(code: .internal, message: "the server sent a malformed FileDescriptorProto: \(error)")
          }
        }
      }
    }
  }

  private static func failure(_ answer: Grpc_Reflection_V1_ServerReflectionResponse?) -> RPCError {
    if case .errorResponse(let error) = answer?.messageResponse {
      return RPCError(code: StatusCode(rawValue: Int(error.errorCode)), message: error.errorMessage)
    }
    return RPCError(code: .internal, message: "unexpected reflection answer")
  }

  /// Sends `requests` on one reflection stream (v1, else v1alpha) and reads one answer each.
  private func ask(
    _ requests: [Grpc_Reflection_V1_ServerReflectionRequest]
  ) async throws(RPCError) -> [Grpc_Reflection_V1_ServerReflectionResponse] {
    do {
      return try await ask(requests, service: Grpc_Reflection_V1_ServerReflection.serviceName)
    } catch let error where error.code == .unimplemented {
      return try await ask(requests, service: Grpc_Reflection_V1alpha_ServerReflection.serviceName)
    }
  }

  private func ask(
    _ requests: [Grpc_Reflection_V1_ServerReflectionRequest], service: String
  ) async throws(RPCError) -> [Grpc_Reflection_V1_ServerReflectionResponse] {
    // v1 and v1alpha messages are the same on the wire.
    let method = MethodDescriptor(service: service, method: "ServerReflectionInfo", kind: .bidirectionalStreaming)
    let call = try await channel.bidirectionalStreaming(
      method, metadata: metadata, options: CallOptions(timeout: timeout), requestType: RawMessage.self,
      responseType: RawMessage.self)
    for request in requests {
      var bytes: [UInt8] = []
      request.serialize(into: &bytes)
      try await call.send(RawMessage(bytes))
    }
    try await call.finish()
    var answers: [Grpc_Reflection_V1_ServerReflectionResponse] = []
    do {
      for try await raw in call.responses {
        answers.append(try Grpc_Reflection_V1_ServerReflectionResponse(serializedBytes: raw.bytes))
      }
    } catch let error as RPCError {
      throw error
    } catch {
      throw RPCError(code: .internal, message: "a malformed reflection answer: \(error)")
    }
    return answers
  }
}
