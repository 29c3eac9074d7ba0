import Synchronization

/// Wakes the readers of the transaction stream: each ``updates()`` stream
/// yields when ``signal()`` is called (coalesced: a reader that is busy sees
/// one wake-up for many signals).
public final class EventSignal: Sendable {
  private let watchers = Mutex<[Int: AsyncStream<Void>.Continuation]>([:])
  private let nextID = Atomic<Int>(0)

  public init() {}

  /// Wakes every reader.
  public func signal() {
    for continuation in watchers.withLock({ Array($0.values) }) { continuation.yield() }
  }

  /// A stream of wake-ups, ending when the reader stops iterating it.
  public func updates() -> AsyncStream<Void> {
    let id = nextID.add(1, ordering: .relaxed).newValue
    let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    continuation.onTermination = { [weak self] _ in
      _ = self?.watchers.withLock { $0.removeValue(forKey: id) }
    }
    watchers.withLock { $0[id] = continuation }
    return stream
  }
}
