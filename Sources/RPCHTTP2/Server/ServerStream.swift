import NIOCore
import RPCCore

/// One call on the server: its request as it arrives, its handler, and its
/// response until the trailers are out.
///
/// Owned by the connection's nghttp2 session (as the stream's user data) from
/// the first request header until the stream closes; used only on the
/// connection's event loop. Tasks running the handler reach it through
/// `NIOLoopBound` and `EventLoop.execute`.
final class ServerStream: DeadlineQueueMember {
  /// Where the call is in its life.
  enum Phase {
    /// Request headers are arriving.
    case receivingHeaders
    /// Unary and server-streaming calls: waiting for the single request message.
    case receivingRequest
    /// The handler runs (inline, as a task, or behind a promise).
    case handling
    /// The status is decided; the response drains to the peer.
    case finished
  }

  let id: Int32
  let connection: ServerConnectionHandler
  var phase = Phase.receivingHeaders
  /// When the client stops waiting (from its `grpc-timeout`), if it said.
  var deadline: NIODeadline?
  var entry: RouteTable.Entry?
  var context: ServerContext?
  var startNanos: UInt64 = 0
  /// Index in the connection's list of open streams.
  var index = -1

  // MARK: Request side

  var deframer: MessageDeframer
  /// The single request message of a unary or server-streaming call.
  var requestPayload: [UInt8]?
  var requestCount = 0
  /// Whether the peer ended its side of the stream.
  var requestEnded = false
  /// Request messages received and not yet read by a streaming handler.
  var inbound = MessageQueue()
  var inboundBytes = 0
  /// Bytes received but not yet returned to the stream's flow-control window.
  var unconsumedBytes = 0
  var reader: CheckedContinuation<[UInt8]?, any Error>?
  /// Why reading fails from now on (cancellation, a bad message).
  var inboundError: RPCError?

  // MARK: Response side

  var outbound = OutboundQueue()
  var headersSent = false
  /// Trailers to send once `outbound` is drained.
  var pendingTrailers: HeaderBlock?
  /// Whether the data provider returned DEFERRED and needs a resume.
  var dataDeferred = false
  /// Writers waiting for the queue to drain.
  var writers: [CheckedContinuation<Void, any Error>] = []

  var task: Task<Void, Never>?
  /// Its place in the connection's ``DeadlineQueue`` (-1: not queued).
  var deadlineSlot = -1

  init(id: Int32, connection: ServerConnectionHandler, maxMessageLength: Int) {
    self.id = id
    self.connection = connection
    self.deframer = MessageDeframer(maxMessageLength: maxMessageLength)
  }

  /// Queued response bytes above which a writer waits.
  static let outboundHighWater = 256 * 1024
  /// Queued request bytes above which the peer's window stays closed.
  static let inboundHighWater = 256 * 1024
}

/// Received messages waiting for their reader, in order. A plain array with a
/// read index: no allocation until the first message.
struct MessageQueue {
  private var items: [[UInt8]] = []
  private var head = 0

  var isEmpty: Bool { head == items.count }

  mutating func append(_ message: [UInt8]) {
    items.append(message)
  }

  mutating func popFirst() -> [UInt8]? {
    guard head < items.count else { return nil }
    let message = items[head]
    items[head] = []
    head += 1
    if head == items.count {
      items.removeAll(keepingCapacity: true)
      head = 0
    } else if head >= 32, head * 2 >= items.count {
      items.removeFirst(head)
      head = 0
    }
    return message
  }
}

/// The transport side of a streaming handler's ``ResponseWriter``.
struct ServerResponseSink: ResponseSink {
  let stream: NIOLoopBound<ServerStream>
  let eventLoop: any EventLoop

  func write(_ message: FramedMessage) async throws(RPCError) {
    do {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        eventLoop.execute {
          let stream = stream.value
          stream.connection.enqueue(message, on: stream, replaceable: false, writer: continuation)
        }
      }
    } catch {
      throw (error as? RPCError) ?? RPCError(code: .cancelled, message: "the call was cancelled")
    }
  }

  func writeLatest(_ message: FramedMessage) {
    eventLoop.execute {
      let stream = stream.value
      stream.connection.enqueue(message, on: stream, replaceable: true, writer: nil)
    }
  }
}

/// The transport side of a streaming handler's ``RequestStream``.
struct ServerRequestSource: RequestSource {
  let stream: NIOLoopBound<ServerStream>
  let eventLoop: any EventLoop

  func next() async throws(RPCError) -> [UInt8]? {
    do {
      return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8]?, any Error>) in
        eventLoop.execute {
          let stream = stream.value
          stream.connection.read(from: stream, continuation)
        }
      }
    } catch {
      throw (error as? RPCError) ?? RPCError(code: .cancelled, message: "the call was cancelled")
    }
  }
}
