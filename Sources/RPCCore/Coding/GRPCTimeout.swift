/// The `grpc-timeout` header: at most eight ASCII digits and a unit
/// (`H`ours, `M`inutes, `S`econds, `m`illiseconds, `u`microseconds, `n`anoseconds).
public enum GRPCTimeout {
  /// The duration `value` stands for, or `nil` when it is not a valid timeout.
  public static func parse(_ value: String) -> Duration? {
    parse(Array(value.utf8))
  }

  /// The duration the header bytes stand for, or `nil` when invalid.
  public static func parse(_ bytes: [UInt8]) -> Duration? {
    bytes.withUnsafeBytes { parse($0) }
  }

  /// The duration the header bytes stand for, or `nil` when invalid.
  public static func parse(_ bytes: UnsafeRawBufferPointer) -> Duration? {
    parseNanoseconds(bytes).map { .nanoseconds($0) }
  }

  /// The timeout in nanoseconds (saturating at `Int64.max`, ~292 years), or
  /// `nil` when invalid. The server's form: it runs for every request that
  /// carries a deadline, and a `Duration`'s conversion back to nanoseconds
  /// is a 128-bit division (~400 instructions per call).
  public static func parseNanoseconds(_ bytes: UnsafeRawBufferPointer) -> Int64? {
    let count = bytes.count
    guard count >= 2, count <= 9 else { return nil }
    var amount: Int64 = 0
    for i in 0..<(count - 1) {
      let c = bytes[i]
      guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
      amount = amount * 10 + Int64(c &- UInt8(ascii: "0"))
    }
    let scale: Int64
    switch bytes[count - 1] {
    case UInt8(ascii: "H"): scale = 3_600_000_000_000
    case UInt8(ascii: "M"): scale = 60_000_000_000
    case UInt8(ascii: "S"): scale = 1_000_000_000
    case UInt8(ascii: "m"): scale = 1_000_000
    case UInt8(ascii: "u"): scale = 1_000
    case UInt8(ascii: "n"): scale = 1
    default: return nil
    }
    let (nanoseconds, overflow) = amount.multipliedReportingOverflow(by: scale)
    return overflow ? .max : nanoseconds
  }

  /// The header value for `duration`: the finest unit whose amount fits in
  /// eight digits, rounded up so that the peer never sees a shorter timeout.
  /// Negative durations are sent as `0n` (already expired).
  public static func encode(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0, !(seconds == 0 && attoseconds <= 0) else { return "0n" }
    // Nanoseconds, saturating: more than 2^63 ns is ~292 years.
    let nanos: Int64 =
      seconds > Int64.max / 1_000_000_000
      ? Int64.max : seconds * 1_000_000_000 + (attoseconds + 999_999_999) / 1_000_000_000
    let maxAmount: Int64 = 99_999_999
    let units: [(Int64, Character)] = [
      (1, "n"), (1_000, "u"), (1_000_000, "m"), (1_000_000_000, "S"), (60_000_000_000, "M"),
      (3_600_000_000_000, "H"),
    ]
    for (scale, unit) in units {
      let amount = nanos / scale + (nanos % scale == 0 ? 0 : 1)
      if amount <= maxAmount { return "\(amount)\(unit)" }
    }
    return "\(maxAmount)H"
  }
}
