import Synchronization

/// What a handler knows about the call it serves, and how it shapes the
/// response's metadata.
///
/// One context exists per call. Its request side is immutable; response
/// headers and trailers may be set from any thread until the transport sends
/// them (headers: with the first response message; trailers: at the end).
public final class ServerContext: Sendable {
  /// The method called.
  public let descriptor: MethodDescriptor
  /// The custom metadata the client sent (reserved headers are left out).
  public let requestMetadata: Metadata
  /// When the client stops waiting, from its `grpc-timeout`; `nil` for none.
  public var deadline: ContinuousClock.Instant? {
    deadlineSinceOrigin.map { Self.clockOrigin.advanced(by: $0) }
  }
  /// The deadline as an offset from ``clockOrigin``. A `Duration` is two
  /// integers, while an optional `ContinuousClock.Instant` is copied through
  /// the runtime's value witnesses: ~300 instructions per call, for a value
  /// that most handlers never read.
  private let deadlineSinceOrigin: Duration?
  /// The instant deadlines are stored relative to (the first use).
  package static let clockOrigin = ContinuousClock.now
  /// The remote address, e.g. `ipv4:127.0.0.1:53412`.
  public let peer: String
  /// Who is calling, as the server's ``CallAuthenticator`` established it.
  public let caller: CallerIdentity?

  private struct State {
    var responseHeaders = Metadata()
    var trailers = Metadata()
    var cancelled = false
    var cancelHandlers: [@Sendable () -> Void] = []
  }
  private let state = Mutex(State())

  /// A context; created by the transport for each call.
  public convenience init(
    descriptor: MethodDescriptor,
    requestMetadata: Metadata,
    deadline: ContinuousClock.Instant?,
    peer: String,
    caller: CallerIdentity?
  ) {
    self.init(
      descriptor: descriptor, requestMetadata: requestMetadata,
      deadlineSinceOrigin: deadline.map { $0 - Self.clockOrigin }, peer: peer, caller: caller)
  }

  /// A context whose deadline is given as an offset from ``clockOrigin``.
  package init(
    descriptor: MethodDescriptor,
    requestMetadata: Metadata,
    deadlineSinceOrigin: Duration?,
    peer: String,
    caller: CallerIdentity?
  ) {
    self.descriptor = descriptor
    self.requestMetadata = requestMetadata
    self.deadlineSinceOrigin = deadlineSinceOrigin
    self.peer = peer
    self.caller = caller
  }

  /// Custom metadata sent in the response headers.
  public var responseHeaders: Metadata {
    get { state.withLock { $0.responseHeaders } }
    set { state.withLock { $0.responseHeaders = newValue } }
  }

  /// Custom metadata sent in the trailers, with the status.
  public var trailers: Metadata {
    get { state.withLock { $0.trailers } }
    set { state.withLock { $0.trailers = newValue } }
  }

  /// The response headers and trailers set so far, read under one lock (for
  /// the transport, when it sends both at once).
  package var responseMetadata: (headers: Metadata, trailers: Metadata) {
    state.withLock { ($0.responseHeaders, $0.trailers) }
  }

  /// Whether the call was cancelled: the client reset the stream, the deadline
  /// passed, or the connection closed. Nothing the handler sends arrives.
  public var isCancelled: Bool { state.withLock { $0.cancelled } }

  /// Runs `handler` once when the call is cancelled (at once if it already is).
  /// For handlers that complete a ``ReplyPromise`` outside Swift concurrency;
  /// `async` handlers see task cancellation instead.
  public func onCancel(_ handler: @escaping @Sendable () -> Void) {
    let runNow = state.withLock { state -> Bool in
      if state.cancelled { return true }
      state.cancelHandlers.append(handler)
      return false
    }
    if runNow { handler() }
  }

  /// Marks the call cancelled and runs the cancellation handlers. Called by the
  /// transport.
  public func cancel() {
    let handlers = state.withLock { state -> [@Sendable () -> Void] in
      guard !state.cancelled else { return [] }
      state.cancelled = true
      defer { state.cancelHandlers = [] }
      return state.cancelHandlers
    }
    for handler in handlers { handler() }
  }

  /// Throws ``StatusCode/unauthenticated`` when there is no caller, and
  /// ``StatusCode/permissionDenied`` when the caller lacks `role`.
  public func requireRole(_ role: String) throws(RPCError) {
    try requireRole(anyOf: [role])
  }

  /// Throws ``StatusCode/unauthenticated`` when there is no caller, and
  /// ``StatusCode/permissionDenied`` when the caller has none of `roles`.
  public func requireRole(anyOf roles: [String]) throws(RPCError) {
    guard let caller else {
      throw RPCError(code: .unauthenticated, message: "\(descriptor.path) needs an authenticated caller")
    }
    guard roles.contains(where: caller.roles.contains) else {
      let needed = roles.count == 1 ? "the \(roles[0]) role" : "one of the roles \(roles.joined(separator: ", "))"
      throw RPCError(
        code: .permissionDenied, message: "\(descriptor.path) needs \(needed); caller \(caller.userID) lacks it")
    }
  }

  /// The calling user's id; throws ``StatusCode/unauthenticated`` when the call
  /// carries no user.
  public func requireUser() throws(RPCError) -> String {
    guard let caller, !caller.userID.isEmpty else {
      throw RPCError(code: .unauthenticated, message: "\(descriptor.path) needs a calling user")
    }
    return caller.userID
  }
}
