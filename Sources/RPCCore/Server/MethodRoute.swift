/// A service: the routes of its methods. Generated service protocols refine it
/// and provide ``routes`` from their handler functions.
public protocol RPCService: Sendable {
  /// One route per method of the service.
  var routes: [MethodRoute] { get }
}

/// Binds a method to its handler, with the messages' types erased so that the
/// transport deals only in bytes.
public struct MethodRoute: Sendable {
  /// The method served.
  public let descriptor: MethodDescriptor
  /// The handler, taking and producing encoded messages.
  @usableFromInline package let handler: Handler

  @usableFromInline package init(descriptor: MethodDescriptor, handler: Handler) {
    self.descriptor = descriptor
    self.handler = handler
  }

  /// A handler in terms of encoded messages.
  @usableFromInline package enum Handler: Sendable {
    /// Decodes the request and answers; runs on the event loop.
    case unary(@Sendable (UnsafeRawBufferPointer, ServerContext) -> Reply<FramedMessage>)
    /// Decodes the request on the event loop; the body runs as a task.
    case serverStreaming(
      @Sendable (UnsafeRawBufferPointer, ServerContext) -> Result<
        @Sendable (any ResponseSink) async throws -> Void, RPCError
      >)
    /// Runs as a task reading the request stream.
    case clientStreaming(@Sendable (any RequestSource, ServerContext) async throws -> FramedMessage)
    /// Runs as a task reading the request stream and writing responses.
    case bidirectionalStreaming(@Sendable (any RequestSource, any ResponseSink, ServerContext) async throws -> Void)
  }

  /// A unary method.
  @inlinable
  public static func unary<Request: RPCMessage, Response: RPCMessage>(
    _ descriptor: MethodDescriptor,
    _ requestType: Request.Type,
    handler: @escaping @Sendable (Request, ServerContext) -> Reply<Response>
  ) -> MethodRoute {
    MethodRoute(
      descriptor: descriptor,
      handler: .unary { bytes, context in
        let request: Request
        do {
          request = try Request(serializedBytes: bytes)
        } catch {
          return .failure(decodingError(Request.self, error))
        }
        // No `map` for the common, immediate answer: no closure to allocate.
        // The handler's reply is switched on as it is returned, not bound
        // first: a bound reply was copied whole (a large response inline)
        // before its payload was taken out.
        switch handler(request, context).storage {
        case .done(.success(let response)): return .ok(FramedMessage(response))
        case .done(.failure(let error)): return .failure(error)
        case .failed(let error): return .failure(error)
        case let pending: return Reply(storage: pending).map { FramedMessage($0) }
        }
      })
  }

  /// A server-streaming method.
  @inlinable
  public static func serverStreaming<Request: RPCMessage, Response: RPCMessage>(
    _ descriptor: MethodDescriptor,
    _ requestType: Request.Type,
    _ responseType: Response.Type,
    handler: @escaping @Sendable (Request, ResponseWriter<Response>, ServerContext) async throws -> Void
  ) -> MethodRoute {
    MethodRoute(
      descriptor: descriptor,
      handler: .serverStreaming { bytes, context in
        let request: Request
        do {
          request = try Request(serializedBytes: bytes)
        } catch {
          return .failure(decodingError(Request.self, error))
        }
        return .success({ sink in try await handler(request, ResponseWriter(sink: sink), context) })
      })
  }

  /// A client-streaming method.
  @inlinable
  public static func clientStreaming<Request: RPCMessage, Response: RPCMessage>(
    _ descriptor: MethodDescriptor,
    _ requestType: Request.Type,
    handler: @escaping @Sendable (RequestStream<Request>, ServerContext) async throws -> Response
  ) -> MethodRoute {
    MethodRoute(
      descriptor: descriptor,
      handler: .clientStreaming { source, context in
        FramedMessage(try await handler(RequestStream(source: source), context))
      })
  }

  /// A bidirectional-streaming method.
  @inlinable
  public static func bidirectionalStreaming<Request: RPCMessage, Response: RPCMessage>(
    _ descriptor: MethodDescriptor,
    _ requestType: Request.Type,
    _ responseType: Response.Type,
    handler: @escaping @Sendable (RequestStream<Request>, ResponseWriter<Response>, ServerContext) async throws -> Void
  ) -> MethodRoute {
    MethodRoute(
      descriptor: descriptor,
      handler: .bidirectionalStreaming { source, sink, context in
        try await handler(RequestStream(source: source), ResponseWriter(sink: sink), context)
      })
  }

  @usableFromInline
  static func decodingError(_ type: Any.Type, _ error: any Error) -> RPCError {
    RPCError(code: .internal, message: "failed to decode the request message \(type): \(error)")
  }
}
