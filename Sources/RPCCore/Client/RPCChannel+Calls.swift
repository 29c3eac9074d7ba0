extension RPCChannel {
  /// Makes a unary call.
  ///
  /// - Returns: the response message with its header and trailer metadata.
  /// - Throws: ``RPCError`` with the call's status when it fails.
  public func unary<Request: RPCMessage, Response: RPCMessage>(
    _ descriptor: MethodDescriptor,
    request: Request,
    metadata: Metadata = [:],
    options: CallOptions = .defaults,
    responseType: Response.Type = Response.self
  ) async throws(RPCError) -> ClientResponse<Response> {
    let framed = FramedMessage(request)
    return try await withRetries(descriptor, metadata: metadata, options: options, sending: framed) {
      stream throws(RPCError) in
      let response = try await stream.singleResponse()
      guard let payload = response.message else {
        throw RPCError(code: .internal, message: "\(descriptor.path): the server sent no response message")
      }
      guard !response.hadMoreMessages else {
        throw RPCError(code: .internal, message: "\(descriptor.path): the server sent more than one response message")
      }
      let message: Response
      do {
        message = try Response(serializedBytes: payload)
      } catch {
        throw RPCError(code: .internal, message: "failed to decode the response message \(Response.self): \(error)")
      }
      return ClientResponse(message: message, headers: response.headers, trailers: response.trailers)
    }
  }

  /// Makes a server-streaming call. The call is retried (per the policy) until
  /// the server sends response headers; after that, the returned stream yields
  /// the messages as they arrive.
  public func serverStreaming<Request: RPCMessage, Response: RPCMessage>(
    _ descriptor: MethodDescriptor,
    request: Request,
    metadata: Metadata = [:],
    options: CallOptions = .defaults,
    responseType: Response.Type = Response.self
  ) async throws(RPCError) -> ClientResponseStream<Response> {
    let framed = FramedMessage(request)
    return try await withRetries(descriptor, metadata: metadata, options: options) { stream throws(RPCError) in
      try await stream.send(framed, endOfStream: true)
      let headers = try await stream.responseHeaders()
      return ClientResponseStream(stream: stream, headers: headers)
    }
  }

  /// Makes a client-streaming call: `requests` writes the request messages;
  /// the request stream ends when it returns.
  public func clientStreaming<Request: RPCMessage, Response: RPCMessage>(
    _ descriptor: MethodDescriptor,
    metadata: Metadata = [:],
    options: CallOptions = .defaults,
    responseType: Response.Type = Response.self,
    requests: @Sendable (ClientRequestWriter<Request>) async throws -> Void
  ) async throws(RPCError) -> ClientResponse<Response> {
    let deadline = options.timeout.map { ContinuousClock.now.advanced(by: $0) }
    let stream = try await openStream(descriptor, metadata: metadata, deadline: deadline)
    let handle = ClientCallHandle(stream)
    do {
      try await requests(ClientRequestWriter(stream: stream))
    } catch {
      stream.cancel()
      throw RPCError(wrapping: error)
    }
    try await stream.finishSending()
    let headers = try await stream.responseHeaders()
    let message: Response = try await Self.singleResponse(stream, descriptor)
    handle.finished()
    return ClientResponse(message: message, headers: headers, trailers: stream.trailers)
  }

  /// Makes a bidirectional-streaming call: send and receive in any order.
  public func bidirectionalStreaming<Request: RPCMessage, Response: RPCMessage>(
    _ descriptor: MethodDescriptor,
    metadata: Metadata = [:],
    options: CallOptions = .defaults,
    requestType: Request.Type = Request.self,
    responseType: Response.Type = Response.self
  ) async throws(RPCError) -> ClientBidirectionalCall<Request, Response> {
    let deadline = options.timeout.map { ContinuousClock.now.advanced(by: $0) }
    let stream = try await openStream(descriptor, metadata: metadata, deadline: deadline)
    return ClientBidirectionalCall(stream: stream)
  }

  private static func singleResponse<Response: RPCMessage>(
    _ stream: any ClientStream, _ descriptor: MethodDescriptor
  ) async throws(RPCError) -> Response {
    guard let payload = try await stream.nextMessage() else {
      throw RPCError(code: .internal, message: "\(descriptor.path): the server sent no response message")
    }
    let message: Response
    do {
      message = try Response(serializedBytes: payload)
    } catch {
      stream.cancel()
      throw RPCError(code: .internal, message: "failed to decode the response message \(Response.self): \(error)")
    }
    guard try await stream.nextMessage() == nil else {
      stream.cancel()
      throw RPCError(code: .internal, message: "\(descriptor.path): the server sent more than one response message")
    }
    return message
  }

  /// Runs `attempt` on a new stream until it succeeds, or fails in a way the
  /// retry policy does not retry.
  private func withRetries<Result>(
    _ descriptor: MethodDescriptor,
    metadata: Metadata,
    options: CallOptions,
    sending request: FramedMessage? = nil,
    _ attempt: (any ClientStream) async throws(RPCError) -> Result
  ) async throws(RPCError) -> Result {
    let policy = options.retryPolicy ?? defaultRetryPolicy
    let deadline = options.timeout.map { ContinuousClock.now.advanced(by: $0) }
    var attempts = 0
    var transparentRetries = 0
    while true {
      attempts += 1
      var committed = false
      do throws(RPCError) {
        let stream =
          if let request {
            try await openStream(descriptor, metadata: metadata, deadline: deadline, sending: request)
          } else {
            try await openStream(descriptor, metadata: metadata, deadline: deadline)
          }
        let handle = ClientCallHandle(stream)
        do throws(RPCError) {
          let result = try await attempt(stream)
          handle.finished()
          return result
        } catch {
          committed = stream.receivedResponseHeaders
          throw error
        }
      } catch {
        if Task.isCancelled { throw RPCError(code: .cancelled, message: "the call was cancelled") }
        // Refused before any processing: cannot have had an effect.
        if error.transportFailure == .refusedBeforeProcessing, transparentRetries < 5 {
          transparentRetries += 1
          attempts -= 1
          continue
        }
        guard !committed, attempts < policy.maxAttempts, policy.retryableCodes.contains(error.code) else {
          throw error
        }
        var delay = Duration.nanoseconds(
          Int64.random(in: 0...max(0, policy.backoffBound(beforeAttempt: attempts + 1).nanosecondsValue)))
        if let pushback = error.metadata["grpc-retry-pushback-ms"] {
          guard let ms = Int64(pushback), ms >= 0 else { throw error }
          delay = .milliseconds(ms)
        }
        if let deadline, ContinuousClock.now.advanced(by: delay) >= deadline { throw error }
        do {
          try await Task.sleep(for: delay)
        } catch {
          throw RPCError(code: .cancelled, message: "the call was cancelled")
        }
      }
    }
  }
}

extension Duration {
  /// The duration in whole nanoseconds, saturating.
  package var nanosecondsValue: Int64 {
    let (s, atto) = components
    if s > Int64.max / 1_000_000_000 { return .max }
    return s * 1_000_000_000 + atto / 1_000_000_000
  }
}

/// Resets a call's stream if it is dropped before it finished, so that no
/// stream outlives its caller's interest.
final class ClientCallHandle: Sendable {
  private let stream: any ClientStream
  private let done = AtomicFlag()

  init(_ stream: any ClientStream) {
    self.stream = stream
  }

  func finished() {
    done.set()
  }

  deinit {
    if !done.isSet { stream.cancel() }
  }
}
