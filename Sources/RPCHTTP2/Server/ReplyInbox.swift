import NIOCore
import RPCCore
import Synchronization

/// The outcomes of one connection's calls that finished off its event loop
/// (a handler that answered later, on another thread), on their way back to
/// the loop: the outcomes that arrive together cross in one
/// `EventLoop.execute`, not in one each.
///
/// A batch of claims settles a few hundred calls at once; an `execute` per
/// call cost each one a task allocation and a turn of the loop's lock.
final class ReplyInbox: Sendable {
  /// A call's outcome: its message (or none, for a stream that ended without
  /// one), or the error it failed with.
  typealias Outcome = Result<FramedMessage?, any Error>

  private let eventLoop: any EventLoop
  private let waiting = Mutex<[(stream: NIOLoopBound<ServerStream>, outcome: Outcome)]>([])

  init(eventLoop: any EventLoop) {
    self.eventLoop = eventLoop
  }

  /// Delivers `outcome` to the stream's connection on its event loop, with
  /// every other outcome posted before the loop gets to it. Any thread.
  func post(_ stream: NIOLoopBound<ServerStream>, _ outcome: Outcome) {
    let first = waiting.withLock { waiting in
      waiting.append((stream, outcome))
      return waiting.count == 1
    }
    guard first else { return }  // a delivery is already scheduled
    eventLoop.execute {
      let arrived = self.waiting.withLock { waiting in
        defer { waiting = [] }
        return waiting
      }
      for (bound, outcome) in arrived {
        let stream = bound.value
        stream.connection.complete(stream, outcome)
      }
    }
  }
}
