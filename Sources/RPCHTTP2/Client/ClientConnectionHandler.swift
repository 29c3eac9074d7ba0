import Logging
import NIOCore
import RPCCore

/// The client side of one HTTP/2 connection: owns its nghttp2 session, opens a
/// stream per call, and routes frames to the calls' ``HTTP2ClientStream``s.
///
/// Everything here runs on the channel's event loop; streams call in through
/// `EventLoop.execute`.
final class ClientConnectionHandler: ChannelDuplexHandler, HTTP2SessionDelegate {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  /// What the connection reports to its owner.
  enum Event {
    /// The peer sent GOAWAY: no new calls on this connection.
    case goAway
    /// The connection closed.
    case closed
  }

  private let authority: String
  private let configuration: RPCClientConfiguration
  private let logger: Logger
  private let onEvent: @Sendable (Event) -> Void

  private var session: HTTP2Session? {
    didSet { unretained = UnretainedSession(session) }
  }
  /// `session`, for the calls of every stream, without reference counts.
  private var unretained = UnretainedSession(nil)
  private var context: ChannelHandlerContext?
  /// Whether the channel is connected (kept here: every call asks).
  private var channelIsActive = false
  private var streams: [HTTP2ClientStream] = []
  private var goAwayReceived = false
  private var closing = false
  private var io = ConnectionIO()
  private var keepaliveTimer: Scheduled<Void>?
  /// The deadlines of the calls in flight, under one timer.
  private var deadlines = DeadlineQueue<HTTP2ClientStream>()
  private var pingTimeout: Scheduled<Void>?
  private var lastReadNanos: UInt64 = 0

  init(
    authority: String, configuration: RPCClientConfiguration, logger: Logger,
    onEvent: @escaping @Sendable (Event) -> Void
  ) {
    self.authority = authority
    self.configuration = configuration
    self.logger = logger
    self.onEvent = onEvent
  }

  /// Whether new calls may start here.
  var acceptsStreams: Bool {
    guard channelIsActive, !goAwayReceived else { return false }
    return unretained.with { $0.canOpenStream } ?? false
  }

  // MARK: - Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    do {
      session = try HTTP2Session(
        role: .client,
        settings: HTTP2Session.Settings(
          maxConcurrentStreams: 100, initialWindowSize: 1 << 20, maxHeaderListSize: 64 * 1024,
          connectionWindowSize: 8 << 20),
        delegate: self)
    } catch {
      logger.error("cannot create an HTTP/2 session", metadata: ["error": "\(error)"])
      context.close(promise: nil)
    }
    lastReadNanos = ServerConnectionHandler.nowNanos()
    channelIsActive = context.channel.isActive
    scheduleKeepalive()
  }

  func channelActive(context: ChannelHandlerContext) {
    channelIsActive = true
    flush()
    context.fireChannelActive()
  }

  func channelInactive(context: ChannelHandlerContext) {
    channelIsActive = false
    tearDown()
    context.fireChannelInactive()
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    tearDown()
    self.context = nil
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard let session else { return }
    lastReadNanos = ServerConnectionHandler.nowNanos()
    if let error = io.receive(unwrapInboundIn(data), into: session) {
      logger.debug("closing connection after a protocol error", metadata: ["error": "\(error)"])
      flush()  // nghttp2's GOAWAY
      ConnectionIO.closeAfterPendingWrites(context)
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    io.readComplete()
    flush()
    context.fireChannelReadComplete()
  }

  func read(context: ChannelHandlerContext) {
    io.read(context)
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable {
      flush()
      io.writable(context)
    }
    context.fireChannelWritabilityChanged()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    logger.debug("connection error", metadata: ["error": "\(error)"])
    context.close(promise: nil)
  }

  // MARK: - Output

  private func flush() {
    guard let session, let context else { return }
    guard ConnectionIO.write(session, to: context) else {
      context.close(promise: nil)
      return
    }
    closeIfDrained()
  }

  private func scheduleFlush() {
    guard let context, io.needsScheduledFlush() else { return }
    context.eventLoop.assumeIsolated().execute {
      self.io.flushRan()
      self.flush()
    }
  }

  /// After a GOAWAY, the connection closes when its last call ends and
  /// nghttp2 has nothing left to send.
  private func closeIfDrained() {
    guard goAwayReceived, streams.isEmpty, !closing, let context, context.channel.isActive else { return }
    if let session, session.wantsWrite { return }
    closing = true
    ConnectionIO.closeAfterPendingWrites(context)
  }

  // MARK: - Calls (called on the event loop)

  /// Sends the request headers of `stream`.
  func start(_ stream: HTTP2ClientStream, metadata: Metadata, deadline: ContinuousClock.Instant?) throws(RPCError) {
    guard acceptsStreams else {
      var error = RPCError(code: .unavailable, message: "the connection to \(authority) is closing")
      error.transportFailure = .refusedBeforeProcessing
      throw error
    }
    var headers = HeaderBlock()
    headers.add(":method", "POST")
    headers.add(":scheme", "http")
    headers.add(":path", value: stream.descriptor.path)
    headers.add(":authority", value: authority)
    headers.add("content-type", "application/grpc")
    headers.add("te", "trailers")
    headers.add("user-agent", "flashsale-rpc/1.0")
    var timeout: Duration?
    if let deadline {
      timeout = deadline - ContinuousClock.now
      headers.add("grpc-timeout", value: GRPCTimeout.encode(timeout!))
    }
    headers.add(configuration.defaultMetadata)
    headers.add(metadata)
    let pointer = Unmanaged.passRetained(stream).toOpaque()
    do {
      guard let id = try unretained.with({ try $0.submitRequest(headers: headers, streamUserData: pointer) }) else {
        throw RPCError(code: .unavailable, message: "the connection is closed")
      }
      stream.id = id
    } catch {
      Unmanaged<HTTP2ClientStream>.fromOpaque(pointer).release()
      var rpcError = RPCError(code: .unavailable, message: "cannot start a stream to \(authority): \(error)")
      rpcError.transportFailure = .refusedBeforeProcessing
      throw rpcError
    }
    stream.index = streams.count
    streams.append(stream)
    if let timeout, let context {
      stream.timeout = timeout
      deadlines.insert(
        stream, deadline: .now() + .nanoseconds(max(0, timeout.nanosecondsValue)), on: context.eventLoop,
        expire: expireDeadlines)
    }
    scheduleFlush()
  }

  /// Queues request bytes; `continuation` resumes once the queue has room.
  func enqueue(
    _ bytes: [UInt8], endOfStream: Bool, on stream: HTTP2ClientStream,
    _ continuation: CheckedContinuation<Void, any Error>
  ) {
    guard !stream.ended, !stream.requestEnded, let session else {
      // The call is over (its status is read from the response side), or the
      // request already ended: nothing more is sent.
      continuation.resume()
      return
    }
    stream.outbound.append(bytes)
    if endOfStream { stream.requestEnded = true }
    if stream.dataDeferred {
      stream.dataDeferred = false
      session.resumeData(stream: stream.id)
    }
    if stream.outbound.byteCount > HTTP2ClientStream.outboundHighWater {
      stream.sendWaiters.append(continuation)
    } else {
      continuation.resume()
    }
    scheduleFlush()
  }

  /// Queues a call's whole request (one message and the end of the request)
  /// right after its headers; nothing waits on it.
  func enqueueWhole(_ bytes: [UInt8], on stream: HTTP2ClientStream) {
    guard !stream.ended, !stream.requestEnded else { return }
    unretained.with { session in
      stream.outbound.append(bytes)
      stream.requestEnded = true
      if stream.dataDeferred {
        stream.dataDeferred = false
        session.resumeData(stream: stream.id)
      }
    }
    scheduleFlush()
  }

  /// The deadline timer fired: cancels every call that is past its deadline.
  private func expireDeadlines() {
    for stream in deadlines.popExpired(now: context?.eventLoop.now ?? .now()) where !stream.ended {
      cancel(stream, RPCError(code: .deadlineExceeded, message: "deadline exceeded after \(stream.timeout ?? .zero)"))
    }
    if let context { deadlines.rearm(on: context.eventLoop, expire: expireDeadlines) }
  }

  /// `stream` ended: its deadline no longer matters.
  func streamEnded(_ stream: HTTP2ClientStream) {
    deadlines.remove(stream)
  }

  /// Resets the stream (CANCEL) and ends the call with `error`.
  func cancel(_ stream: HTTP2ClientStream, _ error: RPCError) {
    guard !stream.ended else { return }
    stream.deliverEnd(.failure(error), trailers: [:])
    if stream.id > 0 { session?.resetStream(stream.id, errorCode: .cancel) }
    scheduleFlush()
  }

  /// The caller drained its buffered messages: give the window back.
  func reopenWindow(for stream: HTTP2ClientStream) {
    guard stream.unconsumedBytes > 0, stream.id > 0 else { return }
    session?.consumeStream(stream.id, bytes: stream.unconsumedBytes)
    stream.unconsumedBytes = 0
    scheduleFlush()
  }

  // MARK: - HTTP2SessionDelegate

  /// Runs `body` with the stream `id` and the session, if the stream is open.
  @inline(__always)
  private func withStream(_ id: Int32, _ body: (HTTP2ClientStream, HTTP2Session) -> Void) {
    unretained.withStream(id, as: HTTP2ClientStream.self, body)
  }

  func sessionBeginHeaders(stream id: Int32, kind: HeadersKind) {
    withStream(id) { stream, _ in
      // A stream's head starts empty: cleared for the trailers, or for the
      // response after an informational (1xx) one, not for every response.
      if kind == .trailers || stream.head.httpStatus != nil { stream.head = ResponseHead() }
    }
  }

  func sessionHeader(stream id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
    withStream(id) { stream, _ in stream.head.add(name: name, value: value) }
    return true
  }

  func sessionHeadersComplete(stream id: Int32, kind: HeadersKind, endStream: Bool) {
    withStream(id) { stream, session in headersComplete(stream, endStream: endStream, session) }
  }

  private func headersComplete(_ stream: HTTP2ClientStream, endStream: Bool, _ session: HTTP2Session) {
    guard !stream.ended else { return }
    let id = stream.id
    let head = stream.head
    if let status = head.httpStatus, (100..<200).contains(status) { return }  // informational
    if !stream.receivedHeadersBlock {
      stream.receivedHeadersBlock = true
      if let error = head.responseError(), head.httpStatus != 200 || !endStream {
        stream.deliverEnd(.failure(error), trailers: head.metadata)
        if !endStream { session.resetStream(id, errorCode: .cancel) }
        return
      }
      if endStream {
        stream.deliverEnd(head.status(), trailers: head.metadata)  // Trailers-Only
      } else {
        stream.deliverHeaders(head.metadata)
      }
      return
    }
    // Trailers.
    do {
      try stream.deframer.finish()
      stream.deliverEnd(head.status(), trailers: head.metadata)
    } catch {
      stream.deliverEnd(.failure(RPCError(code: .internal, message: error.description)), trailers: head.metadata)
    }
  }

  func sessionData(stream id: Int32, bytes: UnsafeRawBufferPointer) {
    unretained.with { session in
      guard let pointer = session.streamUserData(id) else {
        session.consume(stream: id, bytes: bytes.count)
        return
      }
      Unmanaged<HTTP2ClientStream>.fromOpaque(pointer)._withUnsafeGuaranteedRef { received(bytes, on: $0, session) }
    }
  }

  private func received(_ bytes: UnsafeRawBufferPointer, on stream: HTTP2ClientStream, _ session: HTTP2Session) {
    let id = stream.id
    guard !stream.ended else {
      session.consume(stream: id, bytes: bytes.count)
      return
    }
    var buffered: Int?
    do {
      try stream.deframer.process(bytes) { payload in
        buffered = stream.deliverMessage(Array(payload))
      }
    } catch {
      session.consume(stream: id, bytes: bytes.count)
      cancel(stream, RPCError(code: error.statusCode, message: error.description))
      return
    }
    // The connection window comes back at once; the stream's reopens only
    // while the caller keeps up with what was delivered.
    session.consumeConnection(bytes: bytes.count)
    stream.unconsumedBytes += bytes.count
    if (buffered ?? stream.bufferedBytes) < HTTP2ClientStream.inboundHighWater {
      session.consumeStream(id, bytes: stream.unconsumedBytes)
      stream.unconsumedBytes = 0
    }
  }

  func sessionEndStream(stream id: Int32) {
    withStream(id) { stream, _ in
      guard !stream.ended else { return }
      stream.deliverEnd(
        .failure(RPCError(code: .internal, message: "the server ended the stream without trailers")), trailers: [:])
    }
  }

  func sessionStreamClosed(stream id: Int32, errorCode: UInt32) {
    unretained.with { session in
      guard let pointer = session.streamUserData(id) else { return }
      session.setStreamUserData(id, nil)
      closed(Unmanaged<HTTP2ClientStream>.fromOpaque(pointer), errorCode: errorCode)
    }
  }

  private func closed(_ retained: Unmanaged<HTTP2ClientStream>, errorCode: UInt32) {
    // Balances the passRetained of start(_:metadata:deadline:).
    let stream = retained.takeRetainedValue()
    if !stream.ended {
      var error: RPCError
      switch errorCode {
      case HTTP2ErrorCode.refusedStream.rawValue where !stream.receivedHeadersBlock:
        // RST_STREAM REFUSED_STREAM, or a GOAWAY that did not cover this stream:
        // the server did not process it.
        error = RPCError(code: .unavailable, message: "the server refused the stream before processing it")
        error.transportFailure = .refusedBeforeProcessing
      case HTTP2ErrorCode.cancel.rawValue:
        error = RPCError(code: .cancelled, message: "the server cancelled the stream")
      default:
        error = RPCError(code: .internal, message: "the stream was reset (HTTP/2 error \(errorCode))")
      }
      stream.deliverEnd(.failure(error), trailers: [:])
    }
    removeStream(stream)
  }

  private func removeStream(_ stream: HTTP2ClientStream) {
    guard stream.index >= 0 else { return }
    let last = streams.removeLast()
    if last !== stream {
      streams[stream.index] = last
      last.index = stream.index
    }
    stream.index = -1
    if goAwayReceived { scheduleFlush() }
  }

  func sessionSentEndStream(stream id: Int32) {}

  func sessionReadData(stream id: Int32, source: UnsafeMutableRawPointer?, maxLength: Int) -> OutboundData {
    guard let source else { return .resetStream }
    // The source is the stream object, retained as the stream's user data until it closes.
    return Unmanaged<HTTP2ClientStream>.fromOpaque(source)._withUnsafeGuaranteedRef { stream in
      readData(stream, maxLength: maxLength)
    }
  }

  private func readData(_ stream: HTTP2ClientStream, maxLength: Int) -> OutboundData {
    let count = min(maxLength, stream.outbound.byteCount)
    if stream.requestEnded, count == stream.outbound.byteCount {
      return .endStream(count: count)
    }
    if count == 0 {
      stream.dataDeferred = true
      return .deferred
    }
    return .data(count: count, endOfData: false)
  }

  func sessionWriteData(stream id: Int32, source: UnsafeMutableRawPointer?, length: Int, into output: FrameOutput) {
    guard let source else { return }
    Unmanaged<HTTP2ClientStream>.fromOpaque(source)._withUnsafeGuaranteedRef { write(length, of: $0, into: output) }
  }

  private func write(_ length: Int, of stream: HTTP2ClientStream, into output: FrameOutput) {
    stream.outbound.write(length, into: output)
    if !stream.sendWaiters.isEmpty, stream.outbound.byteCount <= HTTP2ClientStream.outboundHighWater / 2 {
      let waiters = stream.sendWaiters
      stream.sendWaiters = []
      for waiter in waiters { waiter.resume() }
    }
  }

  func sessionPing(ack: Bool, payload: UInt64) {
    if ack {
      pingTimeout?.cancel()
      pingTimeout = nil
    }
  }

  func sessionGoAway(lastStreamID: Int32, errorCode: UInt32) {
    goAwayReceived = true
    onEvent(.goAway)
    scheduleFlush()
  }


  // MARK: - Keepalive

  private func scheduleKeepalive() {
    guard let time = configuration.keepaliveTime, let context else { return }
    keepaliveTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(time.nanosecondsValue)) {
      guard let context = self.context else { return }
      let idle = ServerConnectionHandler.nowNanos() &- self.lastReadNanos
      if !self.streams.isEmpty, self.pingTimeout == nil, idle >= UInt64(time.nanosecondsValue) {
        self.session?.ping(0x636c_6965_6e74_2121)  // "client!!"
        self.flush()
        self.pingTimeout = context.eventLoop.assumeIsolated().scheduleTask(
          in: .nanoseconds(self.configuration.keepaliveTimeout.nanosecondsValue)
        ) {
          self.context?.close(promise: nil)
        }
      }
      self.scheduleKeepalive()
    }
  }

  // MARK: - Teardown

  private func tearDown() {
    keepaliveTimer?.cancel()
    keepaliveTimer = nil
    pingTimeout?.cancel()
    pingTimeout = nil
    deadlines.removeAll()
    guard let session else { return }
    for stream in streams {
      // nghttp2 creates its stream object only when it sends the HEADERS: a
      // request still queued inside nghttp2 has no user data yet, and reached
      // no server, so it can be retried anywhere.
      let sent = session.streamUserData(stream.id) != nil
      if !stream.ended {
        var error = RPCError(code: .unavailable, message: "the connection to \(authority) was lost")
        error.transportFailure = sent ? .connectionLost : .refusedBeforeProcessing
        stream.deliverEnd(.failure(error), trailers: [:])
      }
      if sent { session.setStreamUserData(stream.id, nil) }
      // Every listed stream holds the one retain taken in start(_:metadata:deadline:).
      Unmanaged.passUnretained(stream).release()
      stream.index = -1
    }
    streams = []
    session.close()
    self.session = nil
    onEvent(.closed)
  }
}
