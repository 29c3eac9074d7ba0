/// The client side of a transport: opens one HTTP/2 stream per call.
///
/// Generated clients are written against this protocol; the calls themselves
/// (``unary(_:request:metadata:options:responseType:)`` and the streaming ones)
/// are implemented once, on top of ``openStream(_:metadata:deadline:)``, with
/// deadlines and retries.
public protocol RPCChannel: Sendable {
  /// Starts a call: sends the request headers on a new stream.
  ///
  /// - Parameters:
  ///   - descriptor: The method called.
  ///   - metadata: Custom request metadata.
  ///   - deadline: When the call fails with DEADLINE_EXCEEDED and the stream is
  ///     reset; sent as `grpc-timeout`.
  /// - Throws: ``RPCError`` (UNAVAILABLE) when no connection can carry it.
  func openStream(
    _ descriptor: MethodDescriptor,
    metadata: Metadata,
    deadline: ContinuousClock.Instant?
  ) async throws(RPCError) -> any ClientStream

  /// Starts a call whose whole request is `request`: sends the headers, the
  /// message and the end of the request. A transport may do it in one step
  /// (the default opens the stream, then sends).
  func openStream(
    _ descriptor: MethodDescriptor,
    metadata: Metadata,
    deadline: ContinuousClock.Instant?,
    sending request: FramedMessage
  ) async throws(RPCError) -> any ClientStream

  /// The retry policy of calls whose options name none.
  var defaultRetryPolicy: RetryPolicy { get }
}

extension RPCChannel {
  public func openStream(
    _ descriptor: MethodDescriptor,
    metadata: Metadata,
    deadline: ContinuousClock.Instant?,
    sending request: FramedMessage
  ) async throws(RPCError) -> any ClientStream {
    let stream = try await openStream(descriptor, metadata: metadata, deadline: deadline)
    try await stream.send(request, endOfStream: true)
    return stream
  }
}

/// One call's HTTP/2 stream, as the client sees it.
///
/// Operations must be called in protocol order (messages, then the end of the
/// request; headers, then messages, then the status). Cancelling the calling
/// task resets the stream and fails the operation with CANCELLED.
public protocol ClientStream: Sendable {
  /// Sends one request message, suspending while the server's flow-control
  /// window is closed; `endOfStream` also ends the request.
  func send(_ message: FramedMessage, endOfStream: Bool) async throws(RPCError)

  /// Ends the request stream (a half-close).
  func finishSending() async throws(RPCError)

  /// Waits for the response headers.
  ///
  /// - Throws: the call's ``RPCError`` when the server answered with a status
  ///   only (Trailers-Only), or the stream failed first.
  func responseHeaders() async throws(RPCError) -> Metadata

  /// The payload of the next response message, or `nil` when the server ended
  /// the call with OK.
  ///
  /// - Throws: the call's ``RPCError`` when it ended with another status.
  func nextMessage() async throws(RPCError) -> [UInt8]?

  /// The trailing metadata, once the call has ended (empty before).
  var trailers: Metadata { get }

  /// Whether the server sent response headers: after that, the call is
  /// committed and is not retried.
  var receivedResponseHeaders: Bool { get }

  /// Resets the stream with CANCEL; pending operations fail with CANCELLED.
  func cancel()

  /// Waits for the whole response of a call that answers with at most one
  /// message: headers, the message, and the OK status. A transport may wait
  /// once instead of once per part (the default reads them in turn).
  ///
  /// - Throws: the call's ``RPCError`` when it ended with another status.
  func singleResponse() async throws(RPCError) -> SingleResponse
}

/// The response of a call answered with at most one message.
public struct SingleResponse: Sendable {
  public var headers: Metadata
  /// The payload of the message; `nil` when the server sent none.
  public var message: [UInt8]?
  /// Whether the server sent more than one message (a protocol error for a
  /// unary call).
  public var hadMoreMessages: Bool
  public var trailers: Metadata

  public init(headers: Metadata, message: [UInt8]?, hadMoreMessages: Bool, trailers: Metadata) {
    self.headers = headers
    self.message = message
    self.hadMoreMessages = hadMoreMessages
    self.trailers = trailers
  }
}

extension ClientStream {
  public func singleResponse() async throws(RPCError) -> SingleResponse {
    try await singleResponseInTurn()
  }

  /// ``singleResponse()`` read part by part: the headers, then each message.
  public func singleResponseInTurn() async throws(RPCError) -> SingleResponse {
    let headers = try await responseHeaders()
    let message = try await nextMessage()
    let more = message == nil ? false : try await nextMessage() != nil
    return SingleResponse(headers: headers, message: message, hadMoreMessages: more, trailers: trailers)
  }
}

/// A unary call's response with its metadata.
public struct ClientResponse<Message: Sendable>: Sendable {
  /// The response message.
  public var message: Message
  /// Custom metadata of the response headers.
  public var headers: Metadata
  /// Custom metadata of the trailers.
  public var trailers: Metadata
}
