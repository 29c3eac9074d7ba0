import NIOCore

/// The socket side of an HTTP/2 connection, shared by the client and server
/// handlers: bytes read go to nghttp2; what nghttp2 produces is written once per
/// read batch (or once per batch of work from other threads); reading stops
/// while the peer does not read what we write.
struct ConnectionIO {
  /// Whether a `channelRead` batch is in progress (its end flushes).
  private(set) var inReadBatch = false
  private var flushScheduled = false
  private var readPending = false

  /// Feeds bytes read from the socket to `session`.
  ///
  /// - Returns: the error when the peer broke the protocol; the connection
  ///   must then write what is queued (nghttp2's GOAWAY) and close.
  mutating func receive(_ buffer: ByteBuffer, into session: HTTP2Session) -> HTTP2SessionError? {
    inReadBatch = true
    do {
      try buffer.withUnsafeReadableBytes { bytes throws(HTTP2SessionError) in try session.receive(bytes) }
      return nil
    } catch {
      return error
    }
  }

  /// The read batch ended.
  mutating func readComplete() {
    inReadBatch = false
  }

  /// Writes every frame `session` can send now, in one write.
  ///
  /// - Returns: `false` when nghttp2 failed (the caller closes the connection).
  static func write(_ session: HTTP2Session, to context: ChannelHandlerContext) -> Bool {
    guard context.channel.isActive, context.channel.isWritable, session.wantsWrite else { return true }
    var buffer = context.channel.allocator.buffer(capacity: 4096)
    do {
      try session.send(into: &buffer)
    } catch {
      return false
    }
    if buffer.readableBytes > 0 { context.writeAndFlush(NIOAny(buffer), promise: nil) }
    return true
  }

  /// Closes the channel once everything written so far has reached the
  /// socket: an empty write queued behind them completes after they do. (A
  /// plain close would drop writes still queued, such as the last trailers
  /// or a GOAWAY.)
  static func closeAfterPendingWrites(_ context: ChannelHandlerContext) {
    let channel = context.channel
    context.writeAndFlush(NIOAny(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
      channel.close(promise: nil)
    }
  }

  /// Whether a flush must be scheduled now: not inside a read batch (whose end
  /// flushes) and not already scheduled. Call ``flushRan()`` when it runs.
  mutating func needsScheduledFlush() -> Bool {
    guard !inReadBatch, !flushScheduled else { return false }
    flushScheduled = true
    return true
  }

  /// A scheduled flush ran.
  mutating func flushRan() {
    flushScheduled = false
  }

  /// Socket back-pressure: forwards the read request unless the channel is
  /// not writable, in which case reading resumes in ``writable(_:)``.
  mutating func read(_ context: ChannelHandlerContext) {
    if context.channel.isWritable {
      context.read()
    } else {
      readPending = true
    }
  }

  /// The channel became writable again: resumes a held read.
  mutating func writable(_ context: ChannelHandlerContext) {
    if readPending {
      readPending = false
      context.read()
    }
  }
}
