import Synchronization

/// The responses of a server-streaming call, read as an `AsyncSequence`.
///
/// The sequence ends when the server ends the call with OK and throws its
/// ``RPCError`` otherwise. Reading is what opens the flow-control window.
/// Dropping the stream before its end cancels the call.
public struct ClientResponseStream<Message: RPCMessage>: AsyncSequence, Sendable {
  public typealias Element = Message

  private let handle: StreamHandle
  /// Custom metadata of the response headers.
  public let headers: Metadata

  init(stream: any ClientStream, headers: Metadata) {
    self.handle = StreamHandle(stream)
    self.headers = headers
  }

  /// Custom metadata of the trailers; complete once the sequence has ended.
  public var trailers: Metadata { handle.stream.trailers }

  /// Cancels the call.
  public func cancel() { handle.stream.cancel() }

  public func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(handle: handle)
  }

  /// Reads and decodes one message at a time.
  public struct AsyncIterator: AsyncIteratorProtocol {
    fileprivate let handle: StreamHandle

    public mutating func next() async throws -> Message? {
      try await handle.next(Message.self)
    }
  }
}

/// Writes the request messages of a client-streaming call.
public struct ClientRequestWriter<Message: RPCMessage>: Sendable {
  private let stream: any ClientStream

  init(stream: any ClientStream) {
    self.stream = stream
  }

  /// Sends `message`, waiting while the server's flow-control window is closed.
  public func write(_ message: Message) async throws(RPCError) {
    try await stream.send(FramedMessage(message), endOfStream: false)
  }
}

/// A bidirectional-streaming call in progress.
///
/// Send with ``send(_:)``, end the requests with ``finish()``, read the
/// responses from ``responses``. Dropping the call before the responses end
/// cancels it.
public struct ClientBidirectionalCall<Request: RPCMessage, Response: RPCMessage>: Sendable {
  private let handle: StreamHandle

  init(stream: any ClientStream) {
    self.handle = StreamHandle(stream)
  }

  /// Sends one request message.
  public func send(_ message: Request) async throws(RPCError) {
    try await handle.stream.send(FramedMessage(message), endOfStream: false)
  }

  /// Ends the request stream.
  public func finish() async throws(RPCError) {
    try await handle.stream.finishSending()
  }

  /// Custom metadata of the response headers (waits for them).
  public func headers() async throws(RPCError) -> Metadata {
    try await handle.stream.responseHeaders()
  }

  /// Custom metadata of the trailers; complete once the responses have ended.
  public var trailers: Metadata { handle.stream.trailers }

  /// Cancels the call.
  public func cancel() { handle.stream.cancel() }

  /// The response messages.
  public var responses: Responses { Responses(handle: handle) }

  /// The response messages as an `AsyncSequence`.
  public struct Responses: AsyncSequence, Sendable {
    public typealias Element = Response
    fileprivate let handle: StreamHandle

    public func makeAsyncIterator() -> AsyncIterator {
      AsyncIterator(handle: handle)
    }

    /// Reads and decodes one message at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
      fileprivate let handle: StreamHandle

      public mutating func next() async throws -> Response? {
        try await handle.next(Response.self)
      }
    }
  }
}

/// Owns a stream for the call types above: decodes messages, and cancels the
/// stream when the last copy of the call is dropped before the end.
final class StreamHandle: Sendable {
  let stream: any ClientStream
  private let ended = AtomicFlag()

  init(_ stream: any ClientStream) {
    self.stream = stream
  }

  func next<Message: RPCMessage>(_ type: Message.Type) async throws(RPCError) -> Message? {
    let payload: [UInt8]?
    do {
      payload = try await stream.nextMessage()
    } catch {
      ended.set()
      throw error
    }
    guard let payload else {
      ended.set()
      return nil
    }
    do {
      return try Message(serializedBytes: payload)
    } catch {
      ended.set()
      stream.cancel()
      throw RPCError(code: .internal, message: "failed to decode the response message \(Message.self): \(error)")
    }
  }

  deinit {
    if !ended.isSet { stream.cancel() }
  }
}

/// A flag set once, readable from any thread.
final class AtomicFlag: Sendable {
  private let value = Atomic<Bool>(false)

  var isSet: Bool { value.load(ordering: .acquiring) }

  func set() { value.store(true, ordering: .releasing) }
}
