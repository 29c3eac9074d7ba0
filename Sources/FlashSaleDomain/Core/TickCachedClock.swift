#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `ContinuousClock` (which counts a suspend) as a lease check needs it: a
/// moment not before now and at most ``margin`` after it, as a plain count
/// of nanoseconds, read finely once per tick of the kernel's clock and every
/// 64th time (see below), not at every call.
///
/// A fine read of the continuous clock costs ~22 ns here; the kernel's coarse
/// real-time clock, the time of its last tick, ~3 ns. While the coarse time
/// stays the same, no tick has passed since the last fine read (which came
/// after the coarse read that saw that tick), so less than a tick has passed
/// since it: that read plus two ticks (the lag ``SystemClock/nowBounds()``
/// allows the coarse clock too) is still after now. A suspend, or a change of
/// the wall clock, moves the coarse time, so the next read is a fine one.
///
/// That holds while the kernel updates its time at every tick. It can fall
/// behind: in a virtual machine whose time-keeping CPU the host does not run
/// (recent kernels let another CPU take over after 5 stalled ticks), and
/// until the first tick after the machine was paused. So every 64th read is
/// a fine one too, which bounds the error by 64 calls in a rush; a caller
/// must allow for more at a trickle (the sold-out lease keeps a quarter of
/// its time, 50 ms on PostgreSQL, as slack).
///
/// Moments are nanoseconds since a fixed instant of this process, not
/// `ContinuousClock.Instant`s: an instant's layout is not known when this
/// module is compiled, so every copy or test of one (in an optional, say)
/// is a call into the runtime.
///
/// Not thread-safe: keep it under the lock of the state it times.
struct TickCachedClock {
  /// Two ticks of the coarse clock, in nanoseconds.
  static let margin = SystemClock.coarseErrorNanoseconds
  /// The instant the plain counts start from.
  private static let origin = ContinuousClock.now

  /// `instant` as nanoseconds since ``origin``.
  static func nanoseconds(_ instant: ContinuousClock.Instant) -> Int64 {
    let (seconds, attoseconds) = (instant - origin).components
    return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
  }

  /// The coarse time before the last fine read.
  private var tick = timespec()
  /// The last fine read plus ``margin``.
  private var latest = Int64.min
  /// Reads since the last fine one.
  private var reuses = 0
  /// Every how many reads one is fine whatever the coarse time says.
  static let maximumReuses = 64

  /// A moment not before now, and at most ``margin`` after it (while the
  /// kernel keeps its time, see above).
  mutating func notBeforeNow() -> Int64 {
    var coarse = timespec()
    clock_gettime(CLOCK_REALTIME_COARSE, &coarse)
    if coarse.tv_nsec != tick.tv_nsec || coarse.tv_sec != tick.tv_sec || reuses >= Self.maximumReuses {
      tick = coarse
      latest = Self.nanoseconds(.now) &+ Self.margin
      reuses = 0
    }
    reuses &+= 1
    return latest
  }
}
