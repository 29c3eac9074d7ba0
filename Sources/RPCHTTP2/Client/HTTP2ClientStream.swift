import NIOConcurrencyHelpers
import NIOCore
import RPCCore

/// One client call's HTTP/2 stream.
///
/// Two halves: what the event loop owns (the nghttp2 stream, the request
/// queue, the deframer), touched only on `eventLoop`; and what callers read
/// (response headers, messages, the status), behind a lock, so that reading a
/// message that has already arrived costs no thread hop.
final class HTTP2ClientStream: ClientStream, DeadlineQueueMember, @unchecked Sendable {
  let eventLoop: any EventLoop
  let descriptor: MethodDescriptor
  /// The connection; used on `eventLoop` only.
  let connection: ClientConnectionHandler

  // MARK: Event-loop state (only on `eventLoop`)

  var id: Int32 = -1
  var outbound = OutboundQueue()
  var requestEnded = false
  var dataDeferred = false
  var sendWaiters: [CheckedContinuation<Void, any Error>] = []
  var deframer: MessageDeframer
  var head = ResponseHead()
  var receivedHeadersBlock = false
  var unconsumedBytes = 0
  /// The call's timeout (for the message when it passes) and its place in
  /// the connection's ``DeadlineQueue`` (-1: not queued).
  var timeout: Duration?
  var deadlineSlot = -1
  /// Whether the call's outcome is known (nothing more is delivered).
  var ended = false
  /// For a call started with a completion (``RPCClient/unary(_:request:metadata:timeout:completion:)``):
  /// called once on the event loop with the whole response when the call ends.
  var onEnd: (@Sendable (Result<SingleResponse, RPCError>) -> Void)?
  var index = -1

  // MARK: Caller state (behind the lock)

  private struct Inbound {
    var headers: Metadata?
    var messages = MessageQueue()
    var messageBytes = 0
    var end: Result<Void, RPCError>?
    var trailers = Metadata()
    var headersWaiter: CheckedContinuation<Metadata, any Error>?
    var messageWaiter: CheckedContinuation<[UInt8]?, any Error>?
    /// A ``singleResponse()`` waiting for the end of the call: resumed with
    /// `true` then, or with `false` when the buffered response reaches the
    /// high-water mark first (it then reads message by message, so that the
    /// server's window reopens).
    var endWaiter: CheckedContinuation<Bool, any Error>?
    /// A call with a completion received more than one message (dropped).
    var extraMessages = false
  }
  private let inbound = NIOLockedValueBox(Inbound())

  /// Buffered response bytes above which the server's window stays closed.
  static let inboundHighWater = 256 * 1024
  /// Queued request bytes above which `send` waits.
  static let outboundHighWater = 256 * 1024

  init(eventLoop: any EventLoop, descriptor: MethodDescriptor, connection: ClientConnectionHandler, maxMessageLength: Int) {
    self.eventLoop = eventLoop
    self.descriptor = descriptor
    self.connection = connection
    self.deframer = MessageDeframer(maxMessageLength: maxMessageLength)
  }

  // MARK: - ClientStream

  func send(_ message: FramedMessage, endOfStream: Bool) async throws(RPCError) {
    try await onLoop { continuation in
      self.connection.enqueue(message.bytes, endOfStream: endOfStream, on: self, continuation)
    }
  }

  func finishSending() async throws(RPCError) {
    try await onLoop { continuation in
      self.connection.enqueue([], endOfStream: true, on: self, continuation)
    }
  }

  func responseHeaders() async throws(RPCError) -> Metadata {
    do {
      return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Metadata, any Error>) in
          let result = inbound.withLockedValue { state -> Result<Metadata, RPCError>? in
            if let headers = state.headers { return .success(headers) }
            if let end = state.end { return end.map { Metadata() } }
            state.headersWaiter = continuation
            return nil
          }
          if let result { continuation.resume(with: result) }
        }
      } onCancel: {
        self.cancel()
      }
    } catch {
      throw Self.rpcError(error)
    }
  }

  func nextMessage() async throws(RPCError) -> [UInt8]? {
    do {
      return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8]?, any Error>) in
          let (result, reopen) = inbound.withLockedValue { state -> (Result<[UInt8]?, RPCError>?, Bool) in
            if let message = state.messages.popFirst() {
              let before = state.messageBytes
              state.messageBytes -= message.count
              let reopen =
                before >= Self.inboundHighWater && state.messageBytes < Self.inboundHighWater
              return (.success(message), reopen)
            }
            if let end = state.end { return (end.map { nil }, false) }
            state.messageWaiter = continuation
            return (nil, false)
          }
          if reopen {
            eventLoop.execute { self.connection.reopenWindow(for: self) }
          }
          if let result { continuation.resume(with: result) }
        }
      } onCancel: {
        self.cancel()
      }
    } catch {
      throw Self.rpcError(error)
    }
  }

  /// Waits once for the whole response (rather than once for the headers and
  /// once per message), then takes it from the buffer.
  func singleResponse() async throws(RPCError) -> SingleResponse {
    let ended: Bool
    do {
      ended = try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
          let ready = inbound.withLockedValue { state -> Bool? in
            if state.end != nil { return true }
            if state.messageBytes >= Self.inboundHighWater { return false }
            state.endWaiter = continuation
            return nil
          }
          if let ready { continuation.resume(returning: ready) }
        }
      } onCancel: {
        self.cancel()
      }
    } catch {
      throw Self.rpcError(error)
    }
    guard ended else {
      // A large response: read it in turn, reopening the window as it goes.
      return try await singleResponseInTurn()
    }
    return try takeSingleResponse().get()
  }

  /// The whole response of an ended call, taken from the buffer.
  private func takeSingleResponse() -> Result<SingleResponse, RPCError> {
    let (end, headers, first, more, trailers) = inbound.withLockedValue { state in
      let first = state.messages.popFirst()
      let more = !state.messages.isEmpty || state.extraMessages
      state.messages = MessageQueue()
      state.messageBytes = 0
      return (state.end!, state.headers, first, more, state.trailers)
    }
    return end.map {
      SingleResponse(headers: headers ?? Metadata(), message: first, hadMoreMessages: more, trailers: trailers)
    }
  }

  var trailers: Metadata { inbound.withLockedValue { $0.trailers } }

  /// Response bytes received and not yet read by the caller.
  var bufferedBytes: Int { onEnd != nil ? 0 : inbound.withLockedValue { $0.messageBytes } }

  var receivedResponseHeaders: Bool { inbound.withLockedValue { $0.headers != nil } }

  func cancel() {
    eventLoop.execute {
      self.connection.cancel(self, RPCError(code: .cancelled, message: "the call was cancelled"))
    }
  }

  // MARK: - Delivery (on the event loop)

  func deliverHeaders(_ metadata: Metadata) {
    let waiter = inbound.withLockedValue { state -> CheckedContinuation<Metadata, any Error>? in
      state.headers = metadata
      defer { state.headersWaiter = nil }
      return state.headersWaiter
    }
    waiter?.resume(returning: metadata)
  }

  /// Hands a response message to the caller; returns the bytes now buffered
  /// (0 for a call with a completion: it keeps the first message only, the
  /// unary answer, and notes that more came, so the window stays open and
  /// memory bounded).
  func deliverMessage(_ payload: [UInt8]) -> Int {
    if onEnd != nil {
      inbound.withLockedValue { state in
        if state.messages.isEmpty {
          state.messages.append(payload)
        } else {
          state.extraMessages = true
        }
      }
      return 0
    }
    let (waiter, endWaiter, buffered) = inbound.withLockedValue {
      state -> (CheckedContinuation<[UInt8]?, any Error>?, CheckedContinuation<Bool, any Error>?, Int) in
      if let waiter = state.messageWaiter {
        state.messageWaiter = nil
        return (waiter, nil, state.messageBytes)
      }
      state.messages.append(payload)
      state.messageBytes += payload.count
      var endWaiter: CheckedContinuation<Bool, any Error>?
      if state.messageBytes >= Self.inboundHighWater {
        endWaiter = state.endWaiter
        state.endWaiter = nil
      }
      return (nil, endWaiter, state.messageBytes)
    }
    waiter?.resume(returning: payload)
    endWaiter?.resume(returning: false)
    return buffered
  }

  /// Records the call's outcome and wakes every waiter.
  func deliverEnd(_ result: Result<Void, RPCError>, trailers: Metadata) {
    guard !ended else { return }
    ended = true
    connection.streamEnded(self)
    let (headersWaiter, messageWaiter, endWaiter) = inbound.withLockedValue { state in
      state.end = result
      state.trailers = trailers
      let waiters = (state.headersWaiter, state.messages.isEmpty ? state.messageWaiter : nil, state.endWaiter)
      state.headersWaiter = nil
      state.endWaiter = nil
      if state.messages.isEmpty { state.messageWaiter = nil }
      return waiters
    }
    endWaiter?.resume(returning: true)
    if let onEnd {
      self.onEnd = nil
      onEnd(takeSingleResponse())
    }
    switch result {
    case .success:
      // A Trailers-Only success: no response headers, no messages.
      headersWaiter?.resume(returning: Metadata())
      messageWaiter?.resume(returning: nil)
    case .failure(let error):
      headersWaiter?.resume(throwing: error)
      messageWaiter?.resume(throwing: error)
    }
    let waiters = sendWaiters
    sendWaiters = []
    for waiter in waiters { waiter.resume() }
  }

  // MARK: - Helpers

  private func onLoop(
    _ body: @escaping @Sendable (CheckedContinuation<Void, any Error>) -> Void
  ) async throws(RPCError) {
    do {
      try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
          eventLoop.execute { body(continuation) }
        }
      } onCancel: {
        self.cancel()
      }
    } catch {
      throw Self.rpcError(error)
    }
  }

  private static func rpcError(_ error: any Error) -> RPCError {
    (error as? RPCError) ?? RPCError(code: .cancelled, message: "the call was cancelled")
  }
}
