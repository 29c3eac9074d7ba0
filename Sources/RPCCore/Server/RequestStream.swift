/// Where a streaming handler's request messages come from: the transport.
public protocol RequestSource: Sendable {
  /// The payload of the next request message, or `nil` once the client has
  /// finished sending.
  ///
  /// - Throws: ``RPCError`` when the call was cancelled or the stream broke.
  func next() async throws(RPCError) -> [UInt8]?
}

/// The request messages of a client-streaming or bidirectional call, decoded as
/// they are read. Reading is what opens the flow-control window: a handler that
/// reads slowly slows the client down instead of making the server buffer.
public struct RequestStream<Message: RPCMessage>: AsyncSequence, Sendable {
  public typealias Element = Message

  private let source: any RequestSource

  /// A stream reading from `source`.
  public init(source: any RequestSource) {
    self.source = source
  }

  public func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(source: source)
  }

  /// Reads and decodes one message at a time.
  public struct AsyncIterator: AsyncIteratorProtocol {
    fileprivate let source: any RequestSource

    public mutating func next() async throws -> Message? {
      guard let payload = try await source.next() else { return nil }
      do {
        return try Message(serializedBytes: payload)
      } catch {
        throw RPCError(
          code: .internal, message: "failed to decode the request message \(Message.self): \(error)")
      }
    }
  }
}
