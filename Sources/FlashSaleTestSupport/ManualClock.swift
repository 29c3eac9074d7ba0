public import FlashSaleDomain
import Synchronization

/// A clock tests move by hand.
public final class ManualClock: WallClock {
  private let current: Mutex<Timestamp>
  /// How far ``nowBounds()`` reaches each side of the time (none by default).
  private let slack = Mutex(Duration.zero)

  /// A clock showing `start`.
  public init(_ start: Timestamp = Timestamp(seconds: 1_800_000_000)) {
    current = Mutex(start)
  }

  public func now() -> Timestamp {
    current.withLock { $0 }
  }

  /// The time, widened by the slack set with ``setBoundsSlack(_:)``, as a
  /// coarse clock would give it.
  public func nowBounds() -> ClosedRange<Timestamp> {
    let now = now()
    let slack = slack.withLock { $0 }
    return (now + (.zero - slack))...(now + slack)
  }

  /// Makes ``nowBounds()`` reach `slack` each side of the time.
  public func setBoundsSlack(_ slack: Duration) {
    self.slack.withLock { $0 = slack }
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
