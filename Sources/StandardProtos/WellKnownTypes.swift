extension Google_Protobuf_Timestamp {
  /// The time `seconds` (and `nanos`) after the Unix epoch.
  public init(secondsSinceEpoch: Double) {
    let whole = secondsSinceEpoch.rounded(.down)
    self.init(seconds: Int64(whole), nanos: Int32(((secondsSinceEpoch - whole) * 1e9).rounded()))
  }

  /// Seconds since the Unix epoch, with a fraction.
  public var secondsSinceEpoch: Double { Double(seconds) + Double(nanos) / 1e9 }
}

extension Google_Protobuf_Duration {
  /// The protobuf form of `duration`.
  public init(_ duration: Swift.Duration) {
    let (seconds, attoseconds) = duration.components
    self.init(seconds: seconds, nanos: Int32(attoseconds / 1_000_000_000))
  }

  /// The duration as a Swift `Duration`.
  public var duration: Swift.Duration {
    .seconds(seconds) + .nanoseconds(Int64(nanos))
  }
}
