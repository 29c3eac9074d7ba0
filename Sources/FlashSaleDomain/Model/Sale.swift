/// What an admin asks for when creating a sale.
public struct SaleDefinition: Hashable, Sendable {
  public var itemID: String
  public var itemName: String
  public var description: String
  /// Price of one unit.
  public var price: Money
  /// Units on sale.
  public var quantity: Int64
  public var startsAt: Timestamp
  public var endsAt: Timestamp
  /// Units one account may hold or buy (1 by default).
  public var perUserLimit: Int32
  /// How long a hold lasts (5 minutes by default).
  public var holdDuration: Duration

  public init(
    itemID: String, itemName: String, description: String = "", price: Money, quantity: Int64,
    startsAt: Timestamp, endsAt: Timestamp, perUserLimit: Int32 = 1, holdDuration: Duration = .seconds(300)
  ) {
    self.itemID = itemID
    self.itemName = itemName
    self.description = description
    self.price = price
    self.quantity = quantity
    self.startsAt = startsAt
    self.endsAt = endsAt
    self.perUserLimit = perUserLimit
    self.holdDuration = holdDuration
  }

  /// The largest quantity one sale accepts.
  public static let maximumQuantity: Int64 = 50_000_000

  /// Checks the definition, naming the first field that is wrong.
  ///
  /// - Throws: ``DomainError`` with reason ``DomainError/Reason/invalidArgument``.
  public func validate() throws(DomainError) {
    func invalid(_ field: String, _ message: String) -> DomainError {
      DomainError(.invalidArgument, "\(field): \(message)", field: field)
    }
    if itemID.isEmpty { throw invalid("item_id", "must not be empty") }
    if itemName.isEmpty { throw invalid("item_name", "must not be empty") }
    if !Money.knownCurrencies.contains(price.currency) {
      throw invalid("price.currency", "unknown currency \"\(price.currency)\" (ISO 4217 code, upper case)")
    }
    if price.amountMinor < 0 { throw invalid("price.amount_minor", "must not be negative, got \(price.amountMinor)") }
    if quantity < 1 { throw invalid("quantity", "must be at least 1, got \(quantity)") }
    if quantity > Self.maximumQuantity {
      throw invalid("quantity", "must be at most \(Self.maximumQuantity), got \(quantity)")
    }
    if endsAt <= startsAt { throw invalid("ends_at", "must be after starts_at") }
    if perUserLimit < 1 { throw invalid("per_user_limit", "must be at least 1, got \(perUserLimit)") }
    if holdDuration < .seconds(1) || holdDuration > .seconds(24 * 3600) {
      throw invalid("hold_duration", "must be between 1 second and 24 hours")
    }
  }
}

/// A sale as the store keeps it.
public struct Sale: Hashable, Sendable {
  public var id: SaleID
  public var definition: SaleDefinition
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  /// Set while an admin has paused the sale.
  public var pausedAt: Timestamp?
  /// Set when an admin closed the sale before its end.
  public var closedAt: Timestamp?

  public init(
    id: SaleID, definition: SaleDefinition, createdAt: Timestamp, updatedAt: Timestamp,
    pausedAt: Timestamp? = nil, closedAt: Timestamp? = nil
  ) {
    self.id = id
    self.definition = definition
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.pausedAt = pausedAt
    self.closedAt = closedAt
  }

  /// Where a sale is in its life.
  public enum State: Hashable, Sendable {
    case scheduled, active, paused, ended
  }

  /// The state at `now`.
  public func state(at now: Timestamp) -> State {
    schedule.state(at: now)
  }

  /// What the sale's state at any moment depends on: plain values, which
  /// a hot path can copy without touching the sale's strings.
  public struct Schedule: Hashable, Sendable {
    public var startsAt: Timestamp
    public var endsAt: Timestamp
    public var isPaused: Bool
    public var isClosed: Bool

    public init(startsAt: Timestamp, endsAt: Timestamp, isPaused: Bool, isClosed: Bool) {
      self.startsAt = startsAt
      self.endsAt = endsAt
      self.isPaused = isPaused
      self.isClosed = isClosed
    }

    /// The state at `now`.
    public func state(at now: Timestamp) -> State {
      if isClosed || now >= endsAt { return .ended }
      if now < startsAt { return .scheduled }
      if isPaused { return .paused }
      return .active
    }

    /// Throws the refusal for booking sale `id` at `now`, if booking is not open.
    public func checkOpenForBooking(_ id: SaleID, at now: Timestamp) throws(DomainError) {
      switch state(at: now) {
      case .active: return
      case .scheduled: throw DomainError(.saleNotStarted, "sale \(id) has not started")
      case .paused: throw DomainError(.salePaused, "sale \(id) is paused")
      case .ended: throw DomainError(.saleEnded, "sale \(id) has ended")
      }
    }
  }

  /// The sale's schedule as it stands.
  public var schedule: Schedule {
    Schedule(
      startsAt: definition.startsAt, endsAt: definition.endsAt, isPaused: pausedAt != nil, isClosed: closedAt != nil)
  }

  /// Throws the refusal for booking at `now`, if booking is not open.
  public func checkOpenForBooking(at now: Timestamp) throws(DomainError) {
    try schedule.checkOpenForBooking(id, at: now)
  }
}
