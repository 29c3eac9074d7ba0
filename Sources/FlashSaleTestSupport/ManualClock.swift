public import FlashSaleDomain
import Synchronization

/// A clock tests move by hand.
public final class ManualClock: WallClock {
  private let current: Mutex<Timestamp>

  /// A clock showing `start`.
  public init(_ start: Timestamp = Timestamp(seconds: 1_800_000_000)) {
    current = Mutex(start)
  }

  public func now() -> Timestamp {
    current.withLock { $0 }
  }

  /// Moves the clock forward.
  public func advance(by duration: Duration) {
    current.withLock { $0 = $0 + duration }
  }

  /// Sets the clock.
  public func set(_ time: Timestamp) {
    current.withLock { $0 = time }
  }
}
