/// What a buyer can be told about a sale's stock at one moment.
public struct AvailabilitySnapshot: Hashable, Sendable {
  /// What a buyer can do now.
  public enum State: Hashable, Sendable {
    case notStarted
    /// Units can be booked.
    case available
    /// No unit is free, but some are on holds that may still expire.
    case soldOutForNow
    /// Every unit is booked.
    case soldOut
    case paused
    case ended
  }

  public var saleID: SaleID
  public var counts: UnitCounts
  public var state: State
  /// The version of the stock the counts are from; grows with every change.
  public var version: UInt64
  /// When the store last confirmed the counts.
  public var asOf: Timestamp
  /// How old the counts may be when read, while the tracker keeps up.
  public var maxStaleness: Duration

  public init(
    saleID: SaleID, counts: UnitCounts, state: State, version: UInt64, asOf: Timestamp, maxStaleness: Duration
  ) {
    self.saleID = saleID
    self.counts = counts
    self.state = state
    self.version = version
    self.asOf = asOf
    self.maxStaleness = maxStaleness
  }

  /// The state of `sale` with `counts` at `now`.
  public static func state(of sale: Sale, counts: UnitCounts, at now: Timestamp) -> State {
    state(of: sale.schedule, counts: counts, at: now)
  }

  /// The state of a sale on `schedule` with `counts` at `now`.
  public static func state(of schedule: Sale.Schedule, counts: UnitCounts, at now: Timestamp) -> State {
    switch schedule.state(at: now) {
    case .scheduled: return .notStarted
    case .paused: return .paused
    case .ended: return .ended
    case .active:
      if counts.available > 0 { return .available }
      return counts.held > 0 ? .soldOutForNow : .soldOut
    }
  }
}
