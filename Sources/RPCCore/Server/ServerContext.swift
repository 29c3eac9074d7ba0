import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
    deadlineUptimeNanoseconds.map { uptime in
      Self.clockOrigin.instant.advanced(by: .nanoseconds(Int64(bitPattern: uptime &- Self.clockOrigin.uptime)))
    }
  }
  /// The deadline on the monotonic clock (`CLOCK_MONOTONIC` nanoseconds, the
  /// clock of NIO's `NIODeadline`), as the transport enforces it: the
  /// `Instant` is made only when a handler asks. (An optional `Instant` is
  /// copied through the runtime's value witnesses, ~300 instructions per
  /// call, and most handlers never read it.)
  private let deadlineUptimeNanoseconds: UInt64?
  /// One moment on both clocks, to convert between them.
  private static let clockOrigin = (instant: ContinuousClock.now, uptime: uptimeNanoseconds())

  /// `CLOCK_MONOTONIC` now, in nanoseconds.
  private static func uptimeNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
  }
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
    let uptime = deadline.map { deadline in
      let (offset, overflow) = Int64(bitPattern: Self.clockOrigin.uptime)
        .addingReportingOverflow((deadline - Self.clockOrigin.instant).nanosecondsValue)
      return overflow ? UInt64(Int64.max) : UInt64(bitPattern: max(0, offset))
    }
    self.init(
      descriptor: descriptor, requestMetadata: requestMetadata, deadlineUptimeNanoseconds: uptime, peer: peer,
      caller: caller)
  }

  /// A context whose deadline is given on the monotonic clock, as NIO's
  /// `NIODeadline.uptimeNanoseconds`.
  package init(
    descriptor: MethodDescriptor,
    requestMetadata: Metadata,
    deadlineUptimeNanoseconds: UInt64?,
    peer: String,
    caller: CallerIdentity?
  ) {
    self.descriptor = descriptor
    self.requestMetadata = requestMetadata
    self.deadlineUptimeNanoseconds = deadlineUptimeNanoseconds
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
