public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
public import RPCCore
import Synchronization

/// A gRPC client over HTTP/2: a small pool of connections to one or more
/// servers, shared by every call.
///
/// Calls are multiplexed as streams over the connections and spread round
/// robin over those that are ready (a call started on one of the client's
/// event loops goes to a connection of that loop). A connection that fails is
/// retried in the background with exponential backoff; one that receives
/// GOAWAY takes no new calls and closes when its calls end. A call refused
/// before any server processed it (REFUSED_STREAM, GOAWAY) is retried on
/// another connection transparently; other failures follow the call's
/// ``RetryPolicy``.
///
/// ```swift
/// let client = RPCClient(configuration: .init(targets: [.init(host: "127.0.0.1", port: 8443)]))
/// defer { client.close() }
/// let booking = Booking.Client(channel: client)
/// let response = try await booking.book(request, options: .init(timeout: .seconds(2)))
/// ```
public final class RPCClient: RPCChannel, Sendable {
  private let configuration: RPCClientConfiguration
  private let connections: [ClientConnection]
  private let group: any EventLoopGroup

  private struct Waiters {
    var next = 0
    var waiting: [Int: CheckedContinuation<Void, Never>] = [:]
    var generation = 0
    var closed = false
  }
  private let waiters = NIOLockedValueBox(Waiters())
  private let roundRobin = Atomic<Int>(0)

  /// A client of the configured targets. It connects on the first call.
  public init(
    configuration: RPCClientConfiguration,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    logger: Logger = Logger(label: "flashsale.rpc.client")
  ) {
    self.configuration = configuration
    self.group = group
    var connections: [ClientConnection] = []
    let box = WeakBox<RPCClient>()
    for target in configuration.targets {
      for _ in 0..<configuration.connectionsPerTarget {
        connections.append(
          ClientConnection(
            target: target, configuration: configuration, group: group, logger: logger,
            onChange: { box.value?.connectionsChanged() }))
      }
    }
    self.connections = connections
    box.value = self
  }

  public var defaultRetryPolicy: RetryPolicy { configuration.defaultRetryPolicy }

  /// Closes every connection; calls in flight fail with UNAVAILABLE.
  public func close() {
    let pending = waiters.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
      state.closed = true
      defer { state.waiting = [:] }
      return Array(state.waiting.values)
    }
    for connection in connections { connection.shutDown() }
    for waiter in pending { waiter.resume() }
  }

  public func openStream(
    _ descriptor: MethodDescriptor,
    metadata: Metadata,
    deadline: ContinuousClock.Instant?
  ) async throws(RPCError) -> any ClientStream {
    try await openStream(descriptor, metadata: metadata, deadline: deadline, request: nil)
  }

  /// Opens the stream and queues the whole request with its headers, in one
  /// trip to the connection's event loop.
  public func openStream(
    _ descriptor: MethodDescriptor,
    metadata: Metadata,
    deadline: ContinuousClock.Instant?,
    sending request: FramedMessage
  ) async throws(RPCError) -> any ClientStream {
    try await openStream(descriptor, metadata: metadata, deadline: deadline, request: request)
  }

  /// Makes a unary call and hands its whole response to `completion`, called
  /// once (keep it short): on the connection's event loop, or on a task's
  /// thread when the client had to connect first.
  ///
  /// For callers that keep many calls in flight and would otherwise pay for a
  /// task and two thread hops per call (load generators, fan-out): on a
  /// connected client the call starts on the connection's event loop and ends
  /// there. Unlike the `async` calls of ``RPCChannel`` it is not retried: a
  /// call refused before it started fails with UNAVAILABLE.
  public func unary(
    _ descriptor: MethodDescriptor,
    request: FramedMessage,
    metadata: Metadata,
    timeout: Duration?,
    completion: @escaping @Sendable (Result<SingleResponse, RPCError>) -> Void
  ) {
    let deadline = timeout.map { ContinuousClock.now + $0 }
    if let connection = pickReady(),
      connection.startUnary(descriptor, metadata: metadata, deadline: deadline, request: request, completion: completion)
    {
      return
    }
    // Not connected yet: connect (and wait) the usual way.
    Task {
      do throws(RPCError) {
        let stream = try await openStream(descriptor, metadata: metadata, deadline: deadline, request: request)
        completion(.success(try await stream.singleResponse()))
      } catch {
        completion(.failure(error))
      }
    }
  }

  private func openStream(
    _ descriptor: MethodDescriptor,
    metadata: Metadata,
    deadline: ContinuousClock.Instant?,
    request: FramedMessage?
  ) async throws(RPCError) -> any ClientStream {
    var attempts = 0
    while true {
      if waiters.withLockedValue({ $0.closed }) {
        throw RPCError(code: .unavailable, message: "the client is closed")
      }
      if let deadline, ContinuousClock.now >= deadline {
        throw RPCError(code: .deadlineExceeded, message: "deadline exceeded before a connection was ready")
      }
      let generation = waiters.withLockedValue { $0.generation }
      if let connection = pickReady() {
        do {
          return try await connection.openStream(descriptor, metadata: metadata, deadline: deadline, sending: request)
        } catch {
          // The connection started closing under us: try another.
          attempts += 1
          if attempts > connections.count * 2 { throw error }
          continue
        }
      }
      // Nothing ready: start what can start, then wait for a change.
      var connecting = false
      var lastError = "no server address"
      for connection in connections {
        connection.connectIfNeeded()
        switch connection.state {
        case .connecting, .ready: connecting = true
        case .backoff(_, let error): lastError = error
        default: break
        }
      }
      guard connecting else {
        var error = RPCError(
          code: .unavailable,
          message: "cannot reach \(configuration.targets.map(\.description).joined(separator: ", ")): \(lastError)")
        error.transportFailure = .connectFailed
        throw error
      }
      await waitForChange(since: generation, deadline: deadline)
    }
  }

  /// The next ready connection, round robin; for a call started on one of
  /// the client's event loops (a call started from another's completion),
  /// the next ready one on that loop, so that the call starts there and then,
  /// and goes out with the loop's other writes, instead of hopping threads.
  private func pickReady() -> ClientConnection? {
    let start = roundRobin.add(1, ordering: .relaxed).newValue
    var elsewhere: ClientConnection?
    for offset in 0..<connections.count {
      let connection = connections[(start &+ offset) % connections.count]
      guard case .ready(let channel, _) = connection.state else { continue }
      if channel.eventLoop.inEventLoop { return connection }
      if elsewhere == nil { elsewhere = connection }
    }
    return elsewhere
  }

  private func connectionsChanged() {
    let pending = waiters.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
      state.generation += 1
      defer { state.waiting = [:] }
      return Array(state.waiting.values)
    }
    for waiter in pending { waiter.resume() }
  }

  /// Waits until a connection changes state (or the deadline passes).
  private func waitForChange(since generation: Int, deadline: ContinuousClock.Instant?) async {
    let timeout = deadline.map { $0 - ContinuousClock.now } ?? configuration.connectTimeout
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let id = waiters.withLockedValue { state -> Int? in
        guard state.generation == generation, !state.closed else { return nil }
        state.next += 1
        state.waiting[state.next] = continuation
        return state.next
      }
      guard let id else {
        continuation.resume()
        return
      }
      group.next().scheduleTask(in: .nanoseconds(max(0, timeout.nanosecondsValue))) { [weak self] in
        let waiter = self?.waiters.withLockedValue { $0.waiting.removeValue(forKey: id) }
        waiter?.resume()
      }
    }
  }
}

/// A weak reference that can be captured before its target exists.
final class WeakBox<T: AnyObject>: @unchecked Sendable {
  private let lock = NIOLock()
  private weak var _value: T?

  var value: T? {
    get { lock.withLock { _value } }
    set { lock.withLock { _value = newValue } }
  }
}
