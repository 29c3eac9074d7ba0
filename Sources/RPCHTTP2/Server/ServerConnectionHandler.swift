import Logging
import NIOCore
import RPCCore

/// Serves gRPC calls on one HTTP/2 connection: owns the connection's nghttp2
/// session, turns its events into calls, runs handlers, and writes responses.
///
/// Everything here runs on the channel's event loop. Unary handlers run inline
/// when they answer at once; other handlers run as tasks, or answer later
/// from any thread, and their outcomes hop back through a ``ReplyInbox``.
/// Output is written once per read batch (at `channelReadComplete`) or once
/// per batch of completions from other threads.
final class ServerConnectionHandler: ChannelDuplexHandler, HTTP2SessionDelegate {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private let routes: RouteTable
  private let configuration: RPCServerConfiguration
  private let metrics: ServerMetrics
  private let logger: Logger
  private let onClose: @Sendable (ObjectIdentifier) -> Void

  private var session: HTTP2Session? {
    didSet { unretained = UnretainedSession(session) }
  }
  /// `session`, for the calls of every stream, without reference counts.
  private var unretained = UnretainedSession(nil)
  private var context: ChannelHandlerContext?
  private var peer = "unknown"

  /// Streams with a handler or a response in progress.
  private var openStreams: [ServerStream] = []
  private var metricsBatch = MetricsBatch()
  /// The stream whose request headers are arriving (saves a lookup and a
  /// retain per header; the session owns the stream meanwhile).
  private var headerStream: Unmanaged<ServerStream>?
  private var headerStreamID: Int32 = 0
  /// The request headers of `headerStream` as they arrive. One per connection:
  /// HTTP/2 delivers a header block in one piece, never interleaved.
  private var requestHead = RequestHead()

  private var io = ConnectionIO()
  /// Outcomes of calls answered off the event loop, on their way back to it.
  private var replies: ReplyInbox?

  // Keepalive, and the time of the read being processed: calls started by
  // one read share one clock reading.
  private var lastReadNanos: UInt64 = 0
  private var keepaliveTimer: Scheduled<Void>?
  /// The deadlines of calls that did not finish inline, under one timer.
  private var deadlines = DeadlineQueue<ServerStream>()
  /// Trailers-Only blocks of errors whose status is encoded permanently (a
  /// sold-out refusal, sent again and again), built once per connection and
  /// found by the address of their encoded message.
  private var permanentTrailers: [(message: UnsafeRawPointer?, code: StatusCode, block: HeaderBlock)] = []
  private var pingTimeout: Scheduled<Void>?
  private var lastClientPingNanos: UInt64 = 0
  private var pingStrikes = 0

  // Graceful shutdown.
  private enum Shutdown { case running, notified, draining }
  private var shutdown = Shutdown.running
  /// Close as soon as what is queued is written, calls or not (after a GOAWAY
  /// for a misbehaving peer).
  private var closeAfterFlush = false
  /// The close is under way (after the queued writes).
  private var closing = false

  init(
    routes: RouteTable,
    configuration: RPCServerConfiguration,
    metrics: ServerMetrics,
    logger: Logger,
    onClose: @escaping @Sendable (ObjectIdentifier) -> Void
  ) {
    self.routes = routes
    self.configuration = configuration
    self.metrics = metrics
    self.logger = logger
    self.onClose = onClose
  }

  // MARK: - Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    peer = context.channel.remoteAddress.map(Self.describe) ?? "unknown"
    metrics.connections.increment()
    do {
      session = try HTTP2Session(
        role: .server,
        settings: HTTP2Session.Settings(
          maxConcurrentStreams: configuration.maxConcurrentStreams,
          initialWindowSize: configuration.initialStreamWindowSize,
          maxHeaderListSize: 64 * 1024,
          connectionWindowSize: configuration.connectionWindowSize),
        delegate: self)
    } catch {
      logger.error("cannot create an HTTP/2 session", metadata: ["error": "\(error)"])
      context.close(promise: nil)
      return
    }
    replies = ReplyInbox(eventLoop: context.eventLoop)
    lastReadNanos = Self.nowNanos()
    startKeepalive(context: context)
    if context.channel.isActive { flush() }
  }

  func channelActive(context: ChannelHandlerContext) {
    flush()
    context.fireChannelActive()
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    tearDown(reason: RPCError(code: .unavailable, message: "the connection closed"))
    session?.close()
    session = nil
    self.context = nil
  }

  func channelInactive(context: ChannelHandlerContext) {
    tearDown(reason: RPCError(code: .unavailable, message: "the connection closed"))
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard let session else { return }
    lastReadNanos = Self.nowNanos()
    if let error = io.receive(unwrapInboundIn(data), into: session) {
      logger.debug("closing connection after a protocol error", metadata: ["peer": "\(peer)", "error": "\(error)"])
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
    logger.debug("connection error", metadata: ["peer": "\(peer)", "error": "\(error)"])
    context.close(promise: nil)
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if event is GracefulShutdownEvent {
      beginGracefulShutdown()
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }

  // MARK: - Output

  /// Writes what nghttp2 has to send, now.
  private func flush() {
    // Calls finished so far are published before their responses leave, so a
    // client that has its answer also sees it counted; streams that close
    // during the send are published right after it.
    metricsBatch.flush(routes: routes, server: metrics)
    defer { metricsBatch.flush(routes: routes, server: metrics) }
    guard let session, let context else { return }
    guard ConnectionIO.write(session, to: context) else {
      logger.debug("nghttp2 send failed; closing", metadata: ["peer": "\(peer)"])
      context.close(promise: nil)
      return
    }
    closeIfDone()
  }

  /// Flushes once after the current batch of work on the event loop: many
  /// completions from handler tasks share one write.
  private func scheduleFlush() {
    guard let context, io.needsScheduledFlush() else { return }
    context.eventLoop.assumeIsolated().execute {
      self.io.flushRan()
      self.flush()
    }
  }

  // MARK: - HTTP2SessionDelegate: requests

  func sessionBeginHeaders(stream id: Int32, kind: HeadersKind) {
    guard kind == .request else { return }
    unretained.with { session in beginRequest(id, session) }
  }

  private func beginRequest(_ id: Int32, _ session: HTTP2Session) {
    let stream = ServerStream(id: id, connection: self, maxMessageLength: configuration.maxReceiveMessageLength)
    let retained = Unmanaged.passRetained(stream)
    session.setStreamUserData(id, retained.toOpaque())
    headerStream = retained
    headerStreamID = id
    requestHead = RequestHead()
    stream.index = openStreams.count
    openStreams.append(stream)
    metricsBatch.streamOpened()
    pingStrikes = 0
  }

  func sessionHeader(stream id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
    guard id == headerStreamID, let headerStream else { return true }  // trailers of a request: ignored
    let receiving = headerStream._withUnsafeGuaranteedRef { $0.phase == .receivingHeaders }
    if receiving { requestHead.add(name: name, value: value, routes: routes) }
    return true
  }

  func sessionHeadersComplete(stream id: Int32, kind: HeadersKind, endStream: Bool) {
    headerStream = nil
    headerStreamID = 0
    withStream(id) { stream, _ in
      if kind == .request {
        start(stream)
      }
      if endStream { requestEnded(stream) }
    }
  }

  func sessionData(stream id: Int32, bytes: UnsafeRawBufferPointer) {
    unretained.with { session in
      guard let pointer = session.streamUserData(id) else {
        session.consume(stream: id, bytes: bytes.count)
        return
      }
      Unmanaged<ServerStream>.fromOpaque(pointer)._withUnsafeGuaranteedRef {
        received(bytes, on: $0, session)
      }
    }
  }

  private func received(_ bytes: UnsafeRawBufferPointer, on stream: ServerStream, _ session: HTTP2Session) {
    let id = stream.id
    guard stream.phase == .receivingRequest || stream.phase == .handling, stream.inboundError == nil else {
      // Data nobody will read (the call already failed): give the window back.
      session.consume(stream: id, bytes: bytes.count)
      return
    }
    let kind = stream.entry!.route.descriptor.kind
    var failure: MessageDeframer.Error?
    do {
      try stream.deframer.process(bytes) { payload in
        stream.requestCount += 1
        if kind.isSingleRequest {
          if stream.requestCount == 1 { stream.requestPayload = Array(payload) }
        } else {
          stream.inbound.append(Array(payload))
          stream.inboundBytes += payload.count
        }
      }
    } catch {
      failure = error
    }
    // The connection window comes back at once; the stream's waits while its
    // reader is behind (a slow reader slows its own client, not the others).
    session.consumeConnection(bytes: bytes.count)
    stream.unconsumedBytes += bytes.count
    if kind.isSingleRequest || stream.inboundBytes < ServerStream.inboundHighWater {
      session.consumeStream(id, bytes: stream.unconsumedBytes)
      stream.unconsumedBytes = 0
    }
    if let failure {
      fail(stream, RPCError(code: failure.statusCode, message: failure.description), resetStream: true)
      return
    }
    if kind.isSingleRequest, stream.requestCount > 1 {
      let message = "\(stream.entry!.route.descriptor.path) is \(kind.rawValue): the request has more than one message"
      fail(stream, RPCError(code: .internal, message: message), resetStream: true)
      return
    }
    if !kind.isSingleRequest { wakeReader(stream) }
  }

  func sessionEndStream(stream id: Int32) {
    withStream(id) { stream, _ in requestEnded(stream) }
  }

  func sessionStreamClosed(stream id: Int32, errorCode: UInt32) {
    unretained.with { session in
      guard let pointer = session.streamUserData(id) else { return }
      session.setStreamUserData(id, nil)
      closed(Unmanaged<ServerStream>.fromOpaque(pointer), errorCode: errorCode)
    }
  }

  private func closed(_ retained: Unmanaged<ServerStream>, errorCode: UInt32) {
    // Balances the passRetained of sessionBeginHeaders.
    let stream = retained.takeRetainedValue()
    if stream.id == headerStreamID {  // closed inside its header block: drop the unretained reference
      headerStream = nil
      headerStreamID = 0
    }
    if stream.phase != .finished {
      // The peer reset the stream, or the connection is going away.
      let reason =
        errorCode == HTTP2ErrorCode.cancel.rawValue || errorCode == HTTP2ErrorCode.noError.rawValue
        ? RPCError(code: .cancelled, message: "the client cancelled the call")
        : RPCError(code: .cancelled, message: "the stream was reset (HTTP/2 error \(errorCode))")
      abandon(stream, reason)
    }
    remove(stream)
  }

  /// Runs `body` with the stream `id` and the session, if the stream is open.
  @inline(__always)
  private func withStream(_ id: Int32, _ body: (ServerStream, HTTP2Session) -> Void) {
    unretained.withStream(id, as: ServerStream.self, body)
  }

  private func remove(_ stream: ServerStream) {
    guard stream.index >= 0 else { return }
    let last = openStreams.removeLast()
    if last !== stream {
      openStreams[stream.index] = last
      last.index = stream.index
    }
    stream.index = -1
    metricsBatch.streamClosed()
    if shutdown == .draining { scheduleFlush() }
  }

  // MARK: - Starting calls

  /// The request headers are complete: validate, authenticate, and start the
  /// handler of a streaming call or wait for the request of a unary one.
  private func start(_ stream: ServerStream) {
    var head = RequestHead()
    swap(&head, &requestHead)  // moved, not copied
    if let rejection = head.rejection(routes: routes) {
      if rejection.error.code == .unimplemented { metrics.unknownMethods.increment() }
      reject(stream, rejection)
      return
    }
    let entry = head.route!  // a request that is not rejected has a route
    stream.entry = entry
    stream.startNanos = lastReadNanos
    if let timeout = head.timeoutNanos {
      // The deadline runs from the request headers, as the client's does.
      stream.deadline = .uptimeNanoseconds(stream.startNanos &+ UInt64(timeout))  // never negative
    }
    metricsBatch.started(method: entry.index, methods: routes.count)
    let descriptor = entry.route.descriptor

    let caller: CallerIdentity?
    do {
      caller = try configuration.authenticator?.authenticate(descriptor, metadata: head.metadata)
    } catch {
      stream.phase = .handling
      fail(stream, error, resetStream: false)
      return
    }
    stream.context = ServerContext(
      descriptor: descriptor, requestMetadata: head.metadata,
      deadlineUptimeNanoseconds: stream.deadline?.uptimeNanoseconds, peer: peer, caller: caller)

    switch entry.route.handler {
    case .unary, .serverStreaming:
      stream.phase = .receivingRequest
    case .clientStreaming(let handler):
      stream.phase = .handling
      startDeadline(stream)
      let source = ServerRequestSource(stream: loopBound(stream), eventLoop: context!.eventLoop)
      let context = stream.context!
      runTask(stream) { finish in
        do {
          finish(.success(try await handler(source, context)))
        } catch {
          finish(.failure(error))
        }
      }
    case .bidirectionalStreaming(let handler):
      stream.phase = .handling
      startDeadline(stream)
      let bound = loopBound(stream)
      let source = ServerRequestSource(stream: bound, eventLoop: context!.eventLoop)
      let sink = ServerResponseSink(stream: bound, eventLoop: context!.eventLoop)
      let context = stream.context!
      runTask(stream) { finish in
        do {
          try await handler(source, sink, context)
          finish(.success(nil))
        } catch {
          finish(.failure(error))
        }
      }
    }
  }

  /// The peer ended its side of the stream.
  private func requestEnded(_ stream: ServerStream) {
    guard !stream.requestEnded else { return }
    stream.requestEnded = true
    if stream.phase == .finished || stream.phase == .receivingHeaders { return }
    do {
      try stream.deframer.finish()
    } catch {
      fail(stream, RPCError(code: .internal, message: error.description), resetStream: false)
      return
    }
    guard let entry = stream.entry else { return }
    if entry.route.descriptor.kind.isSingleRequest, let deadline = stream.deadline,
      deadline.uptimeNanoseconds <= lastReadNanos
    {
      // The request took longer to arrive than the client is willing to wait.
      // (Streaming calls run their timer from the start. The clock is the
      // one read when the bytes ending the request arrived.)
      fail(stream, RPCError(code: .deadlineExceeded, message: "deadline exceeded"), resetStream: false)
      return
    }
    switch entry.route.handler {
    case .unary(let handler):
      guard let payload = stream.requestPayload else {
        fail(stream, noRequestMessage(entry.route.descriptor), resetStream: false)
        return
      }
      stream.phase = .handling
      stream.requestPayload = nil
      let reply = payload.withUnsafeBytes { handler($0, stream.context!) }
      answer(stream, with: reply)
    case .serverStreaming(let makeBody):
      guard let payload = stream.requestPayload else {
        fail(stream, noRequestMessage(entry.route.descriptor), resetStream: false)
        return
      }
      stream.phase = .handling
      stream.requestPayload = nil
      switch payload.withUnsafeBytes({ makeBody($0, stream.context!) }) {
      case .failure(let error):
        fail(stream, error, resetStream: false)
      case .success(let body):
        startDeadline(stream)
        let sink = ServerResponseSink(stream: loopBound(stream), eventLoop: context!.eventLoop)
        runTask(stream) { finish in
          do {
            try await body(sink)
            finish(.success(nil))
          } catch {
            finish(.failure(error))
          }
        }
      }
    case .clientStreaming, .bidirectionalStreaming:
      wakeReader(stream)
    }
  }

  private func noRequestMessage(_ descriptor: MethodDescriptor) -> RPCError {
    RPCError(code: .internal, message: "\(descriptor.path) is \(descriptor.kind.rawValue): the request has no message")
  }

  /// Acts on a unary handler's reply.
  private func answer(_ stream: ServerStream, with reply: Reply<FramedMessage>) {
    switch reply.storage {
    case .done(.success(let message)):
      respond(stream, message: message)
    case .done(.failure(let error)):
      fail(stream, error, resetStream: false)
    case .failed(let error):
      fail(stream, error, resetStream: false)
    case .later(let body):
      startDeadline(stream)
      runTask(stream) { finish in
        do {
          finish(.success(try await body()))
        } catch {
          finish(.failure(error))
        }
      }
    case .promise(let register):
      startDeadline(stream)
      let bound = loopBound(stream)
      let replies = replies!
      register(ReplyPromise { result in replies.post(bound, result.map { Optional($0) }) })
    }
  }

  /// Runs `body` as a task; `finish` brings its outcome back to the event loop.
  private func runTask(
    _ stream: ServerStream,
    _ body: @escaping @Sendable (_ finish: @Sendable (Result<FramedMessage?, any Error>) -> Void) async -> Void
  ) {
    let bound = loopBound(stream)
    let replies = replies!
    stream.task = Task {
      await body { result in replies.post(bound, result) }
    }
  }

  private func loopBound(_ stream: ServerStream) -> NIOLoopBound<ServerStream> {
    NIOLoopBound(stream, eventLoop: context!.eventLoop)
  }

  /// Queues the deadline of a call that did not finish inline. (Calls
  /// answered at once never touch the deadline queue.)
  private func startDeadline(_ stream: ServerStream) {
    guard let deadline = stream.deadline, let context else { return }
    deadlines.insert(stream, deadline: deadline, on: context.eventLoop, expire: expireDeadlines)
  }

  /// The deadline timer fired: ends every call that is past its deadline.
  private func expireDeadlines() {
    for stream in deadlines.popExpired(now: context?.eventLoop.now ?? .now()) where stream.phase != .finished {
      abandon(stream, RPCError(code: .deadlineExceeded, message: "deadline exceeded"))
      finishWithStatus(stream, RPCError(code: .deadlineExceeded, message: "deadline exceeded"))
    }
    if let context { deadlines.rearm(on: context.eventLoop, expire: expireDeadlines) }
    scheduleFlush()
  }

  // MARK: - Completing calls

  /// A handler finished: `message` for unary and client-streaming calls, `nil`
  /// for streaming responses, or an error.
  func complete(_ stream: ServerStream, _ result: Result<FramedMessage?, any Error>) {
    stream.task = nil
    guard stream.phase == .handling else { return }  // already cancelled, timed out, or answered
    switch result {
    case .success(let message?):
      respond(stream, message: message)
    case .success(nil):
      finishWithStatus(stream, nil)
    case .failure(let error):
      fail(stream, error, resetStream: false)
    }
    scheduleFlush()
  }

  /// Answers with one message and an OK status.
  private func respond(_ stream: ServerStream, message: FramedMessage) {
    unretained.with { respond(stream, message: message, on: $0) }
  }

  private func respond(_ stream: ServerStream, message: FramedMessage, on session: HTTP2Session) {
    stream.outbound.append(message.bytes)
    let custom = stream.context?.responseMetadata ?? (headers: Metadata(), trailers: Metadata())
    stream.pendingTrailers = trailers(custom: custom.trailers, error: nil)
    markFinished(stream, code: .ok)
    if stream.headersSent {
      resume(stream)
      return
    }
    stream.headersSent = true
    do {
      try session.submitResponse(
        stream: stream.id, headers: responseHeaders(custom.headers), hasBody: true,
        source: Unmanaged.passUnretained(stream).toOpaque())
    } catch {
      session.resetStream(stream.id, errorCode: .internalError)
    }
  }

  /// Ends a call with OK (`error == nil`) or an error, after the messages queued.
  private func finishWithStatus(_ stream: ServerStream, _ error: RPCError?) {
    unretained.with { finishWithStatus(stream, error, on: $0) }
  }

  private func finishWithStatus(_ stream: ServerStream, _ error: RPCError?, on session: HTTP2Session) {
    let code = error?.code ?? .ok
    markFinished(stream, code: code)
    if stream.headersSent {
      stream.pendingTrailers = trailers(custom: stream.context?.trailers ?? Metadata(), error: error)
      resume(stream)
      return
    }
    // Trailers-Only: nothing was sent, so one HEADERS frame carries everything.
    stream.headersSent = true
    let custom = stream.context?.responseMetadata ?? (headers: Metadata(), trailers: Metadata())
    let block: HeaderBlock
    if let error, custom.headers.isEmpty, custom.trailers.isEmpty, error.metadata.isEmpty,
      let permanent = error.encodedStatus?.permanent
    {
      block = permanentTrailersOnly(error, message: permanent.message.bytes.baseAddress)
    } else {
      var built = GRPCHeaders.trailersOnly(
        code: code, message: error?.message ?? "", details: error?.statusDetails,
        metadata: mergedTrailers(custom.trailers, error), encoded: error?.encodedStatus)
      if !custom.headers.isEmpty { built.add(custom.headers) }
      block = built
    }
    do {
      try session.submitResponse(stream: stream.id, headers: block, hasBody: false)
    } catch {
      session.resetStream(stream.id, errorCode: .internalError)
    }
  }

  /// Ends a call with an error: an ``RPCError`` as is, anything else as INTERNAL.
  /// With `malformedRequest`, what the client sends from now on is discarded
  /// (and once the status is out, `sessionSentEndStream` asks it to stop).
  private func fail(_ stream: ServerStream, _ error: any Error, resetStream malformedRequest: Bool) {
    fail(stream, RPCError(wrapping: error), resetStream: malformedRequest)
  }

  private func fail(_ stream: ServerStream, _ rpcError: RPCError, resetStream malformedRequest: Bool) {
    if stream.phase != .finished, stream.task != nil || !stream.writers.isEmpty || stream.reader != nil {
      abandon(stream, rpcError)
    }
    if malformedRequest { stream.inboundError = rpcError }
    finishWithStatus(stream, rpcError)
  }

  /// Answers a request that never reached a handler.
  private func reject(_ stream: ServerStream, _ rejection: RequestHead.Rejection) {
    unretained.with { reject(stream, rejection, on: $0) }
  }

  private func reject(_ stream: ServerStream, _ rejection: RequestHead.Rejection, on session: HTTP2Session) {
    markFinished(stream, code: rejection.error.code)
    stream.headersSent = true
    var block = GRPCHeaders.trailersOnly(
      code: rejection.error.code, message: rejection.error.message, details: nil, metadata: [:],
      httpStatus: rejection.httpStatus)
    if rejection.acceptEncoding { block.add("grpc-accept-encoding", "identity") }
    do {
      try session.submitResponse(stream: stream.id, headers: block, hasBody: false)
    } catch {
      session.resetStream(stream.id, errorCode: .internalError)
    }
  }

  /// Cancels whatever still runs for the call: the handler task, its context,
  /// and any writer or reader waiting on the stream.
  private func abandon(_ stream: ServerStream, _ reason: RPCError) {
    stream.context?.cancel()
    stream.task?.cancel()
    stream.task = nil
    deadlines.remove(stream)
    stream.inboundError = stream.inboundError ?? reason
    if let reader = stream.reader {
      stream.reader = nil
      reader.resume(throwing: reason)
    }
    let writers = stream.writers
    stream.writers = []
    for writer in writers { writer.resume(throwing: reason) }
    if stream.phase != .finished {
      markFinished(stream, code: reason.code)
      stream.outbound.removeAll()
    }
  }

  private func markFinished(_ stream: ServerStream, code: StatusCode) {
    guard stream.phase != .finished else { return }
    stream.phase = .finished
    deadlines.remove(stream)
    if let method = stream.entry?.index {
      metricsBatch.ended(method: method, code: code, startNanos: stream.startNanos, methods: routes.count)
    }
  }

  /// The response HEADERS: the gRPC ones and the handler's `custom` ones.
  private func responseHeaders(_ custom: Metadata) -> HeaderBlock {
    guard !custom.isEmpty else { return GRPCHeaders.responseHeaders }
    var block = GRPCHeaders.responseHeaders
    block.add(custom)
    return block
  }

  /// The trailers: the status of `error` (OK for `nil`) and the handler's `custom` ones.
  private func trailers(custom: Metadata, error: RPCError?) -> HeaderBlock {
    guard let error else {
      return GRPCHeaders.trailers(code: .ok, message: "", details: nil, metadata: custom)
    }
    return GRPCHeaders.trailers(
      code: error.code, message: error.message, details: error.statusDetails, metadata: mergedTrailers(custom, error),
      encoded: error.encodedStatus)
  }

  /// The Trailers-Only block of `error`, whose status is encoded permanently
  /// and which carries no metadata: built at its first sending on this
  /// connection (for the few such errors a server has), then reused.
  private func permanentTrailersOnly(_ error: RPCError, message: UnsafeRawPointer?) -> HeaderBlock {
    for entry in permanentTrailers where entry.message == message && entry.code == error.code {
      return entry.block
    }
    let block = GRPCHeaders.trailersOnly(
      code: error.code, message: error.message, details: error.statusDetails, metadata: Metadata(),
      encoded: error.encodedStatus)
    if permanentTrailers.count < 16 { permanentTrailers.append((message, error.code, block)) }
    return block
  }

  private func mergedTrailers(_ custom: Metadata, _ error: RPCError?) -> Metadata {
    guard let error, !error.metadata.isEmpty else { return custom }
    var merged = custom
    merged.add(contentsOf: error.metadata)
    return merged
  }

  // MARK: - Streaming messages

  /// Queues a response message of a streaming handler.
  func enqueue(
    _ message: FramedMessage, on stream: ServerStream, replaceable: Bool,
    writer: CheckedContinuation<Void, any Error>?
  ) {
    guard stream.phase == .handling, let session else {
      writer?.resume(throwing: stream.inboundError ?? RPCError(code: .cancelled, message: "the call is over"))
      return
    }
    stream.outbound.append(message.bytes, replaceable: replaceable)
    if !stream.headersSent {
      stream.headersSent = true
      do {
        try session.submitResponse(
          stream: stream.id, headers: responseHeaders(stream.context?.responseHeaders ?? Metadata()),
          hasBody: true,
          source: Unmanaged.passUnretained(stream).toOpaque())
      } catch {
        writer?.resume(throwing: RPCError(code: .internal, message: "cannot send the response headers"))
        return
      }
    } else {
      resume(stream)
    }
    if let writer {
      if stream.outbound.byteCount > ServerStream.outboundHighWater {
        stream.writers.append(writer)
      } else {
        writer.resume()
      }
    }
    scheduleFlush()
  }

  private func resume(_ stream: ServerStream) {
    if stream.dataDeferred {
      stream.dataDeferred = false
      unretained.with { $0.resumeData(stream: stream.id) }
    }
  }

  /// A streaming handler asks for the next request message.
  func read(from stream: ServerStream, _ continuation: CheckedContinuation<[UInt8]?, any Error>) {
    if let error = stream.inboundError {
      continuation.resume(throwing: error)
      return
    }
    guard stream.reader == nil else {
      continuation.resume(throwing: RPCError(code: .internal, message: "the request stream is read concurrently"))
      return
    }
    stream.reader = continuation
    wakeReader(stream)
  }

  /// Hands the next request message to a waiting reader, and reopens the
  /// peer's window when the backlog has shrunk.
  private func wakeReader(_ stream: ServerStream) {
    guard let reader = stream.reader else { return }
    if let error = stream.inboundError {
      stream.reader = nil
      reader.resume(throwing: error)
    } else if let message = stream.inbound.popFirst() {
      stream.reader = nil
      stream.inboundBytes -= message.count
      if stream.unconsumedBytes > 0, stream.inboundBytes < ServerStream.inboundHighWater {
        unretained.with { $0.consumeStream(stream.id, bytes: stream.unconsumedBytes) }
        stream.unconsumedBytes = 0
        scheduleFlush()
      }
      reader.resume(returning: message)
    } else if stream.requestEnded {
      stream.reader = nil
      reader.resume(returning: nil)
    }
  }

  // MARK: - HTTP2SessionDelegate: response data

  func sessionReadData(stream id: Int32, source: UnsafeMutableRawPointer?, maxLength: Int) -> OutboundData {
    guard let source else { return .resetStream }
    // The source is the stream's own pointer, retained by the session until the stream closes.
    return unretained.with { session in
      Unmanaged<ServerStream>.fromOpaque(source)._withUnsafeGuaranteedRef { stream in
        readData(stream, session: session, maxLength: maxLength)
      }
    } ?? .resetStream
  }

  private func readData(_ stream: ServerStream, session: HTTP2Session, maxLength: Int) -> OutboundData {
    let id = stream.id
    let count = min(maxLength, stream.outbound.byteCount)
    if count == stream.outbound.byteCount, let trailers = stream.pendingTrailers {
      stream.pendingTrailers = nil
      do {
        try session.submitTrailers(stream: id, headers: trailers)
      } catch {
        return .resetStream
      }
      return .data(count: count, endOfData: true)
    }
    if count == 0 {
      stream.dataDeferred = true
      return .deferred
    }
    return .data(count: count, endOfData: false)
  }

  func sessionWriteData(stream id: Int32, source: UnsafeMutableRawPointer?, length: Int, into output: FrameOutput) {
    guard let source else { return }
    Unmanaged<ServerStream>.fromOpaque(source)._withUnsafeGuaranteedRef { write(length, of: $0, into: output) }
  }

  private func write(_ length: Int, of stream: ServerStream, into output: FrameOutput) {
    stream.outbound.write(length, into: output)
    // Clients probe the bandwidth with a PING after DATA they receive (grpc
    // core's BDP pings): as grpc-go and grpc core do, sending data forgives
    // the strikes, so a long stream is not taken for a ping flood.
    pingStrikes = 0
    if !stream.writers.isEmpty, stream.outbound.byteCount <= ServerStream.outboundHighWater / 2 {
      let writers = stream.writers
      stream.writers = []
      for writer in writers { writer.resume() }
    }
  }

  // MARK: - Keepalive

  func sessionPing(ack: Bool, payload: UInt64) {
    if ack {
      if payload == Self.shutdownPingPayload {
        finishGracefulShutdown()
      } else {
        pingTimeout?.cancel()
        pingTimeout = nil
      }
      return
    }
    // A client PING (nghttp2 answers it). Enforce the minimum interval.
    let now = Self.nowNanos()
    let tooSoon =
      lastClientPingNanos != 0
      && now &- lastClientPingNanos < UInt64(configuration.keepalive.minPingInterval.nanosecondsValue)
    let idle = openStreams.isEmpty && !configuration.keepalive.permitWithoutCalls
    lastClientPingNanos = now
    if tooSoon || idle {
      pingStrikes += 1
      if pingStrikes > configuration.keepalive.maxPingStrikes {
        logger.info("client pings too often; closing", metadata: ["peer": "\(peer)"])
        session?.goAway(errorCode: .enhanceYourCalm, debugData: "too_many_pings")
        shutdown = .draining
        closeAfterFlush = true
        scheduleFlush()
      }
    }
  }

  private func startKeepalive(context: ChannelHandlerContext) {
    let amount = TimeAmount.nanoseconds(configuration.keepalive.time.nanosecondsValue)
    keepaliveTimer = context.eventLoop.assumeIsolated().scheduleTask(in: amount) {
      guard let context = self.context else { return }
      self.keepaliveTick()
      self.startKeepalive(context: context)
    }
  }

  private func keepaliveTick() {
    guard let context, pingTimeout == nil else { return }
    let idleNanos = Self.nowNanos() &- lastReadNanos
    guard idleNanos >= UInt64(configuration.keepalive.time.nanosecondsValue) else { return }
    session?.ping(0x6b65_6570_616c_6976)  // "keepaliv"
    flush()
    pingTimeout = context.eventLoop.assumeIsolated().scheduleTask(
      in: .nanoseconds(configuration.keepalive.timeout.nanosecondsValue)
    ) {
      self.logger.info("no PING ack within the keepalive timeout; closing", metadata: ["peer": "\(self.peer)"])
      self.context?.close(promise: nil)
    }
  }

  func sessionGoAway(lastStreamID: Int32, errorCode: UInt32) {}

  /// The response is complete. If the client is still sending, ask it to stop
  /// without error (RFC 9113 section 8.1): nothing it sends will be read.
  func sessionSentEndStream(stream id: Int32) {
    withStream(id) { stream, session in
      guard !stream.requestEnded, session.isRemoteOpen(id) else { return }
      session.resetStream(id, errorCode: .noError)
    }
  }


  // MARK: - Graceful shutdown

  /// Stops taking new calls: a GOAWAY notice now, the final GOAWAY (with the
  /// last stream id) after a round trip, then the connection closes once its
  /// calls have finished.
  private func beginGracefulShutdown() {
    guard shutdown == .running, let session, let context else { return }
    shutdown = .notified
    session.shutdownNotice()
    session.ping(Self.shutdownPingPayload)
    flush()
    // Without an ack (a peer that is gone or broken), finish anyway.
    context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) {
      self.finishGracefulShutdown()
      self.flush()
    }
  }

  /// The PING sent with the shutdown notice was answered: every stream the
  /// client opened before it saw the notice has arrived (frames keep their
  /// order on a connection), so the final GOAWAY can name the last one, and
  /// no stream is lost between the two.
  private func finishGracefulShutdown() {
    guard shutdown == .notified else { return }
    shutdown = .draining
    session?.goAway(errorCode: .noError)
    scheduleFlush()  // may run inside an nghttp2 callback: no send from here
  }

  /// The payload of the PING that follows the shutdown notice ("goaway!!").
  private static let shutdownPingPayload: UInt64 = 0x676f_6177_6179_2121

  /// Closes the connection once a drain is complete and nghttp2 has nothing
  /// left to send. Called only after `session.send`, never from inside an
  /// nghttp2 callback.
  private func closeIfDone() {
    guard closeAfterFlush || (shutdown == .draining && openStreams.isEmpty) else { return }
    guard let context, context.channel.isActive, !closing else { return }
    // Not writable yet: flush runs again when it is.
    if unretained.with({ $0.wantsWrite }) == true { return }
    closing = true
    ConnectionIO.closeAfterPendingWrites(context)
  }

  /// Fails every call still open (the connection is gone).
  private func tearDown(reason: RPCError) {
    keepaliveTimer?.cancel()
    keepaliveTimer = nil
    pingTimeout?.cancel()
    pingTimeout = nil
    deadlines.removeAll()
    let streams = openStreams
    for stream in streams {
      abandon(stream, reason)
      if let session, let pointer = session.streamUserData(stream.id) {
        session.setStreamUserData(stream.id, nil)
        Unmanaged<ServerStream>.fromOpaque(pointer).release()
      }
      remove(stream)
    }
    metricsBatch.flush(routes: routes, server: metrics)
    if session != nil {
      metrics.connections.decrement()
      onClose(ObjectIdentifier(self))
    }
    session?.close()
    session = nil
  }

  // MARK: - Helpers

  private static func describe(_ address: SocketAddress) -> String {
    switch address {
    case .v4(let a): "ipv4:\(address.ipAddress ?? a.host):\(address.port ?? 0)"
    case .v6: "ipv6:[\(address.ipAddress ?? "")]:\(address.port ?? 0)"
    case .unixDomainSocket: "unix:\(address.pathname ?? "")"
    }
  }

  @inline(__always)
  static func nowNanos() -> UInt64 {
    NIODeadline.now().uptimeNanoseconds
  }
}

/// Sent down a connection's pipeline to start its graceful shutdown.
struct GracefulShutdownEvent: Sendable {}
