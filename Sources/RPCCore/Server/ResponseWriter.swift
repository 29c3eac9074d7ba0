/// Where a streaming handler's response messages go: the transport.
public protocol ResponseSink: Sendable {
  /// Queues `message`, suspending while the queue is above its limit: the
  /// client's flow-control window and the socket decide the pace.
  ///
  /// - Throws: ``RPCError`` (``StatusCode/cancelled``) when the call is over.
  func write(_ message: FramedMessage) async throws(RPCError)

  /// Queues `message` in place of the previous ``writeLatest(_:)`` message if
  /// that one is still unsent; never suspends. Memory stays bounded however
  /// slowly the client reads, and the client always gets the newest value.
  func writeLatest(_ message: FramedMessage)
}

/// Sends the response messages of a server-streaming or bidirectional call.
public struct ResponseWriter<Message: RPCMessage>: Sendable {
  private let sink: any ResponseSink

  /// A writer sending to `sink`.
  public init(sink: any ResponseSink) {
    self.sink = sink
  }

  /// Sends `message`, waiting while the client is not reading.
  ///
  /// - Throws: ``RPCError`` when the call was cancelled or ended.
  public func write(_ message: Message) async throws(RPCError) {
    try await sink.write(FramedMessage(message))
  }

  /// Sends `message`, replacing a previous `writeLatest` message the client
  /// has not received yet. For values where only the newest matters (a count
  /// of units left): a slow client gets the newest value, never a backlog.
  public func writeLatest(_ message: Message) {
    sink.writeLatest(FramedMessage(message))
  }
}
