import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RPCCore

/// One connection slot of an ``RPCClient`` to one server address: connects on
/// demand, reconnects with exponential backoff after failures, and stops
/// taking calls after a GOAWAY.
final class ClientConnection: Sendable {
  /// Where the slot is.
  enum State {
    /// Not connected; connects at the next call.
    case idle
    /// A connection attempt is under way.
    case connecting
    /// Connected; calls go to `handler` on `channel`'s event loop. After a
    /// GOAWAY the slot goes back to `idle` at once: the old connection drains
    /// on its own (its calls finish, then it closes) while the next call dials
    /// a new one.
    case ready(channel: any Channel, handler: NIOLoopBound<ClientConnectionHandler>)
    /// The last attempt failed; the next one starts at `retryAt`.
    case backoff(retryAt: NIODeadline, error: String)
    /// The client was closed.
    case shutDown
  }

  let target: RPCClientConfiguration.Target
  private let configuration: RPCClientConfiguration
  private let group: any EventLoopGroup
  private let logger: Logger
  private let onChange: @Sendable () -> Void

  private struct Locked {
    var state = State.idle
    var failures = 0
  }
  private let locked = NIOLockedValueBox(Locked())

  init(
    target: RPCClientConfiguration.Target, configuration: RPCClientConfiguration, group: any EventLoopGroup,
    logger: Logger, onChange: @escaping @Sendable () -> Void
  ) {
    self.target = target
    self.configuration = configuration
    self.group = group
    self.logger = logger
    self.onChange = onChange
  }

  var state: State { locked.withLockedValue { $0.state } }

  /// Starts connecting if the slot is idle, or in backoff that has expired.
  func connectIfNeeded() {
    let start = locked.withLockedValue { locked -> Bool in
      switch locked.state {
      case .idle:
        locked.state = .connecting
        return true
      case .backoff(let retryAt, _) where retryAt <= .now():
        locked.state = .connecting
        return true
      default:
        return false
      }
    }
    if start { connect() }
  }

  private func connect() {
    let authority = target.description
    let configuration = self.configuration
    let logger = self.logger
    let bootstrap = ClientBootstrap(group: group)
      .channelOption(.socketOption(.tcp_nodelay), value: 1)
      .connectTimeout(.nanoseconds(configuration.connectTimeout.nanosecondsValue))
      .channelInitializer { [weak self] channel in
        let handler = ClientConnectionHandler(
          authority: authority, configuration: configuration, logger: logger,
          onEvent: { [weak self] event in self?.handle(event, channel: ObjectIdentifier(channel)) })
        do {
          try channel.pipeline.syncOperations.addHandler(handler)
          return channel.eventLoop.makeSucceededVoidFuture()
        } catch {
          return channel.eventLoop.makeFailedFuture(error)
        }
      }
    bootstrap.connect(host: target.host, port: target.port).whenComplete { [weak self] result in
      guard let self else { return }
      switch result {
      case .success(let channel):
        // On the channel's loop, so that a close event of the handler cannot
        // slip between the check and the state change.
        channel.eventLoop.execute {
          guard channel.isActive,
            let handler = try? channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self)
          else {
            self.failed("the connection closed at once")
            self.onChange()
            return
          }
          let bound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
          let keep = self.locked.withLockedValue { locked -> Bool in
            guard case .connecting = locked.state else { return false }
            locked.state = .ready(channel: channel, handler: bound)
            locked.failures = 0
            return true
          }
          if !keep { channel.close(promise: nil) }
          self.logger.debug("connected", metadata: ["target": "\(self.target)"])
          self.onChange()
        }
      case .failure(let error):
        self.failed("\(error)")
        self.onChange()
      }
    }
  }

  private func failed(_ error: String) {
    let delay = locked.withLockedValue { locked -> Duration? in
      if case .shutDown = locked.state { return nil }
      locked.failures += 1
      let delay = configuration.backoff.delay(afterFailures: locked.failures)
      locked.state = .backoff(retryAt: .now() + .nanoseconds(delay.nanosecondsValue), error: error)
      return delay
    }
    guard let delay else { return }
    logger.debug("connection failed", metadata: ["target": "\(target)", "error": "\(error)", "retry_in": "\(delay)"])
    // Keep trying in the background, so that the slot is ready again soon
    // after the server comes back.
    group.next().scheduleTask(in: .nanoseconds(delay.nanosecondsValue)) { [weak self] in
      self?.connectIfNeeded()
    }
  }

  /// A connection event from the handler.
  private func handle(_ event: ClientConnectionHandler.Event, channel: ObjectIdentifier) {
    locked.withLockedValue { locked in
      // Events of a connection the slot already left (a draining one) change nothing.
      guard case .ready(let current, _) = locked.state, ObjectIdentifier(current) == channel else { return }
      locked.state = .idle
    }
    onChange()
  }

  /// Starts a call on this connection.
  ///
  /// - Throws: UNAVAILABLE (refused before processing) when the connection
  ///   cannot take it; the caller tries another.
  func openStream(
    _ descriptor: MethodDescriptor, metadata: Metadata, deadline: ContinuousClock.Instant?,
    sending request: FramedMessage? = nil
  ) async throws(RPCError) -> HTTP2ClientStream {
    guard case .ready(let channel, let handler) = state else {
      var error = RPCError(code: .unavailable, message: "no connection to \(target)")
      error.transportFailure = .refusedBeforeProcessing
      throw error
    }
    let maxLength = configuration.maxReceiveMessageLength
    let result: Result<HTTP2ClientStream, RPCError> = await withCheckedContinuation { continuation in
      channel.eventLoop.execute {
        let handler = handler.value
        let stream = HTTP2ClientStream(
          eventLoop: channel.eventLoop, descriptor: descriptor, connection: handler, maxMessageLength: maxLength)
        do throws(RPCError) {
          try handler.start(stream, metadata: metadata, deadline: deadline)
          // The whole request goes with the headers, in the same flush.
          if let request { handler.enqueueWhole(request.bytes, on: stream) }
          continuation.resume(returning: .success(stream))
        } catch {
          continuation.resume(returning: .failure(error))
        }
      }
    }
    return try result.get()
  }

  /// Starts a unary call whose `completion` gets the whole response, on the
  /// connection's event loop: no task, no continuation. Returns `false`
  /// (without calling `completion`) when the slot is not connected.
  ///
  /// Called on that event loop (a call started from the completion of the
  /// one before), it starts at once, without a hop; `completion` still never
  /// runs before this returns.
  func startUnary(
    _ descriptor: MethodDescriptor, metadata: Metadata, deadline: ContinuousClock.Instant?, request: FramedMessage,
    completion: @escaping @Sendable (Result<SingleResponse, RPCError>) -> Void
  ) -> Bool {
    guard case .ready(let channel, let handler) = state else { return false }
    let maxLength = configuration.maxReceiveMessageLength
    let eventLoop = channel.eventLoop
    @Sendable func start(inline: Bool) {
      let handler = handler.value
      let stream = HTTP2ClientStream(
        eventLoop: eventLoop, descriptor: descriptor, connection: handler, maxMessageLength: maxLength)
      stream.onEnd = completion
      do throws(RPCError) {
        try handler.start(stream, metadata: metadata, deadline: deadline)
        handler.enqueueWhole(request.bytes, on: stream)
      } catch {
        stream.onEnd = nil
        // Told later when started inline: a caller that starts its next call
        // from the completion must not recurse through a failing connection.
        if inline { eventLoop.execute { completion(.failure(error)) } } else { completion(.failure(error)) }
      }
    }
    if eventLoop.inEventLoop {
      start(inline: true)
    } else {
      eventLoop.execute { start(inline: false) }
    }
    return true
  }

  /// Closes the connection for good.
  func shutDown() {
    let channel = locked.withLockedValue { locked -> (any Channel)? in
      defer { locked.state = .shutDown }
      if case .ready(let channel, _) = locked.state { return channel }
      return nil
    }
    channel?.close(promise: nil)
  }
}
