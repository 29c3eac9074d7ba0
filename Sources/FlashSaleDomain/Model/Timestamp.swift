/// A point in UTC time, in nanoseconds since the Unix epoch.
///
/// Sales start and end at wall-clock times that every instance and the store
/// must agree on, so the domain uses this plain, sortable, storable value
/// rather than a monotonic clock.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
  /// Nanoseconds since 1970-01-01T00:00:00Z.
  public var nanosecondsSinceEpoch: Int64

  public init(nanosecondsSinceEpoch: Int64) {
    self.nanosecondsSinceEpoch = nanosecondsSinceEpoch
  }

  /// The time `seconds` (and `nanoseconds`) after the epoch.
  public init(seconds: Int64, nanoseconds: Int32 = 0) {
    self.nanosecondsSinceEpoch = seconds &* 1_000_000_000 &+ Int64(nanoseconds)
  }

  /// The earliest and latest whole seconds a timestamp holds (nanoseconds
  /// since the epoch in 64 bits: 1677-09-22 to 2262-04-11).
  public static let minimumSeconds: Int64 = Int64.min / 1_000_000_000 + 1
  public static let maximumSeconds: Int64 = Int64.max / 1_000_000_000 - 1

  /// Whole seconds since the epoch (rounded down).
  public var seconds: Int64 {
    nanosecondsSinceEpoch >= 0
      ? nanosecondsSinceEpoch / 1_000_000_000 : (nanosecondsSinceEpoch - 999_999_999) / 1_000_000_000
  }

  /// The nanoseconds past ``seconds``.
  public var nanoseconds: Int32 { Int32(nanosecondsSinceEpoch - seconds * 1_000_000_000) }

  public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
    lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch
  }

  public static func + (lhs: Timestamp, rhs: Duration) -> Timestamp {
    let (s, atto) = rhs.components
    return Timestamp(nanosecondsSinceEpoch: lhs.nanosecondsSinceEpoch &+ s &* 1_000_000_000 &+ atto / 1_000_000_000)
  }

  public static func - (lhs: Timestamp, rhs: Timestamp) -> Duration {
    .nanoseconds(lhs.nanosecondsSinceEpoch &- rhs.nanosecondsSinceEpoch)
  }

  public var description: String { "\(seconds).\(nanoseconds)s" }
}

extension Duration {
  /// The duration in whole nanoseconds (how stores keep hold durations),
  /// saturating at the bounds of `Int64`.
  public var wholeNanoseconds: Int64 {
    let (seconds, attoseconds) = components
    let (scaled, overflowed) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    let (sum, carried) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
    if overflowed || carried { return seconds < 0 ? .min : .max }
    return sum
  }
}

/// Tells the time. Production uses ``SystemClock``; tests inject a clock they move.
public protocol WallClock: Sendable {
  /// The current time.
  func now() -> Timestamp

  /// Bounds of the current time, which may be cheaper to read than
  /// ``now()``: the time is in `earliest...latest`. A caller whose answer is
  /// the same at both ends needs no more; else it reads ``now()``.
  func nowBounds() -> ClosedRange<Timestamp>
}

extension WallClock {
  /// The exact time as both bounds.
  public func nowBounds() -> ClosedRange<Timestamp> {
    let now = now()
    return now...now
  }
}

/// The system's real-time clock.
public struct SystemClock: WallClock {
  public init() {}

  public func now() -> Timestamp {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return Timestamp(seconds: Int64(spec.tv_sec), nanoseconds: Int32(spec.tv_nsec))
  }

  /// The coarse clock, the time of the kernel's last tick (~3 ns to read
  /// here against ~22 ns for ``now()``), and twice its resolution after it.
  public func nowBounds() -> ClosedRange<Timestamp> {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME_COARSE, &spec)
    let earliest = Timestamp(seconds: Int64(spec.tv_sec), nanoseconds: Int32(spec.tv_nsec))
    // In nanoseconds, not a `Duration`: adding one costs 128-bit arithmetic
    // (~180 instructions, on every sold-out Book).
    return earliest...Timestamp(nanosecondsSinceEpoch: earliest.nanosecondsSinceEpoch &+ Self.coarseErrorNanoseconds)
  }

  /// How far the coarse clock may lag, in nanoseconds: two ticks (twice its resolution).
  static let coarseErrorNanoseconds: Int64 = {
    var resolution = timespec()
    clock_getres(CLOCK_REALTIME_COARSE, &resolution)
    return 2 * (Int64(resolution.tv_sec) * 1_000_000_000 + Int64(resolution.tv_nsec))
  }()
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
