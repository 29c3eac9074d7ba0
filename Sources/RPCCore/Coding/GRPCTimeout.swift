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

  /// The duration the header bytes stand for, or `nil` when invalid. (Not
  /// generic: it runs for every request that carries a deadline.)
  public static func parse(_ bytes: UnsafeRawBufferPointer) -> Duration? {
    let count = bytes.count
    guard count >= 2, count <= 9 else { return nil }
    var amount: Int64 = 0
    for i in 0..<(count - 1) {
      let c = bytes[i]
      guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
      amount = amount * 10 + Int64(c &- UInt8(ascii: "0"))
    }
    let unit = bytes[count - 1]
    switch unit {
    case UInt8(ascii: "H"): return .seconds(amount * 3600)
    case UInt8(ascii: "M"): return .seconds(amount * 60)
    case UInt8(ascii: "S"): return .seconds(amount)
    case UInt8(ascii: "m"): return .milliseconds(amount)
    case UInt8(ascii: "u"): return .microseconds(amount)
    case UInt8(ascii: "n"): return .nanoseconds(amount)
    default: return nil
    }
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
