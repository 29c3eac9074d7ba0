public import FlashSaleDomain

/// A ``SaleStore`` in memory: the reference the SQL stores are tested against,
/// and the store of domain tests. Every operation is atomic (an actor), but
/// nothing survives the process.
public actor InMemorySaleStore: SaleStore {
  private struct SaleRecord {
    var sale: Sale
    /// Units never taken yet are `nextFresh ..< quantity`; units taken and
    /// given back wait in `returned`, oldest first, with when they came back.
    var nextFresh: Int64 = 0
    var returned: [(unit: Int64, at: ContinuousClock.Instant)] = []
    /// The booking currently taking each taken unit, and its token.
    var holders: [Int64: (booking: BookingID, token: UInt64)] = [:]
    var held: Int64 = 0
    var booked: Int64 = 0
    var nextToken: UInt64 = 0
    var version: UInt64 = 0

    var available: Int64 { sale.definition.quantity - held - booked }

    /// A unit to claim: a returned one whose restock delay has passed, else
    /// a fresh one.
    mutating func takeUnit(restockDelay: Duration?) -> Int64? {
      if let first = returned.first, restockDelay.map({ first.at + $0 <= .now }) ?? true {
        return returned.removeFirst().unit
      }
      guard nextFresh < sale.definition.quantity else { return nil }
      defer { nextFresh += 1 }
      return nextFresh
    }
  }

  private var sales: [SaleID: SaleRecord] = [:]
  private var saleKeys: [String: SaleID] = [:]
  private var bookings: [BookingID: Booking] = [:]
  private var claimKeys: [String: BookingID] = [:]
  private var activeByUser: [SaleID: [UserID: Int32]] = [:]

  /// Whether the sale core may keep its own index of claimed keys (see
  /// ``SaleStore/isSoleWriter``); off by default, as for a shared store.
  public nonisolated let isSoleWriter: Bool
  /// How long a returned unit waits before a claim can take it (see
  /// ``SaleStore/restockDelay``): none by default. With a delay, the store
  /// behaves towards the sale core as a shared SQL store does.
  public nonisolated let restockDelay: Duration?
  /// How many keys ``bookings(idempotencyKeys:)`` was asked for.
  public private(set) var keysRead = 0

  public init(soleWriter: Bool = false, restockDelay: Duration? = nil) {
    self.isSoleWriter = soleWriter
    self.restockDelay = restockDelay
  }

  // MARK: Sales

  public func createSale(_ definition: SaleDefinition, id: SaleID, idempotencyKey: String?, now: Timestamp) throws -> Sale {
    if let key = idempotencyKey, let existing = saleKeys[key], let record = sales[existing] {
      return record.sale
    }
    try definition.validate()
    let sale = Sale(id: id, definition: definition, createdAt: now, updatedAt: now)
    sales[id] = SaleRecord(sale: sale)
    if let key = idempotencyKey { saleKeys[key] = id }
    return sale
  }

  public func sale(_ id: SaleID) -> Sale? {
    sales[id]?.sale
  }

  public func sales(limit: Int, before cursor: SaleCursor?) -> [Sale] {
    let ordered = sales.values.map(\.sale).sorted {
      ($0.createdAt, $0.id.rawValue) > ($1.createdAt, $1.id.rawValue)
    }
    let after = ordered.filter { sale in
      guard let cursor else { return true }
      return (sale.createdAt, sale.id.rawValue) < (cursor.createdAt, cursor.id.rawValue)
    }
    return Array(after.prefix(limit))
  }

  public func setPaused(_ id: SaleID, _ paused: Bool, now: Timestamp) throws -> Sale {
    guard var record = sales[id] else { throw DomainError(.saleNotFound, "no sale \(id)") }
    record.sale.pausedAt = paused ? (record.sale.pausedAt ?? now) : nil
    record.sale.updatedAt = now
    sales[id] = record
    return record.sale
  }

  public func close(_ id: SaleID, now: Timestamp) throws -> Sale {
    guard var record = sales[id] else { throw DomainError(.saleNotFound, "no sale \(id)") }
    record.sale.closedAt = record.sale.closedAt ?? now
    record.sale.updatedAt = now
    sales[id] = record
    return record.sale
  }

  // MARK: Claims

  public func claim(_ requests: [ClaimRequest], now: Timestamp) -> [ClaimOutcome] {
    requests.map { claimOne($0, now: now) }
  }

  private func claimOne(_ request: ClaimRequest, now: Timestamp) -> ClaimOutcome {
    if let existingID = claimKeys[request.idempotencyKey], let existing = bookings[existingID] {
      guard existing.saleID == request.saleID, existing.userID == request.userID else {
        return .refused(
          DomainError(
            .idempotencyKeyReused, "idempotency key \"\(request.idempotencyKey)\" was used for another sale or user",
            field: "idempotency_key"))
      }
      return .replayed(existing, unitsLeft: sales[request.saleID]?.available ?? 0)
    }
    guard var record = sales[request.saleID] else {
      return .refused(DomainError(.saleNotFound, "no sale \(request.saleID)"))
    }
    do {
      try record.sale.checkOpenForBooking(at: now)
    } catch {
      return .refused(error)
    }
    let active = activeByUser[request.saleID]?[request.userID] ?? 0
    guard active < record.sale.definition.perUserLimit else {
      return .refused(
        DomainError(
          .limitReached,
          "user \(request.userID) already holds or bought \(active) of the \(record.sale.definition.perUserLimit) allowed"))
    }
    guard let unit = record.takeUnit(restockDelay: restockDelay) else {
      // Returned units still restocking: a moment's refusal, tried again.
      if !record.returned.isEmpty { return .busy(.soldOutForNow) }
      return .refused(
        record.held > 0
          ? DomainError.soldOutForNow
          : DomainError.soldOut)
    }
    record.nextToken += 1
    let booking = Booking(
      id: request.bookingID, saleID: request.saleID, userID: request.userID, unit: unit, status: .hold,
      createdAt: now, updatedAt: now, holdExpiresAt: now + record.sale.definition.holdDuration,
      idempotencyKey: request.idempotencyKey, fencingToken: record.nextToken)
    record.holders[unit] = (booking.id, booking.fencingToken)
    record.held += 1
    record.version += 1
    sales[request.saleID] = record
    bookings[booking.id] = booking
    claimKeys[request.idempotencyKey] = booking.id
    activeByUser[request.saleID, default: [:]][request.userID, default: 0] += 1
    return .held(booking, unitsLeft: record.available)
  }

  // MARK: Steps on a booking

  public func confirm(_ id: BookingID, token: UInt64, now: Timestamp) throws -> Booking {
    var booking = try fenced(id, token: token)
    switch booking.status {
    case .booked:
      return booking
    case .released:
      throw DomainError(.bookingReleased, "booking \(id) was released")
    case .expired:
      throw DomainError(.holdExpired, "the hold of booking \(id) expired at \(booking.holdExpiresAt)")
    case .hold:
      if now >= booking.holdExpiresAt {
        // The deadline passed: the expiry wins, whoever comes first.
        _ = endHold(&booking, as: .expired, reason: nil, now: now)
        throw DomainError(.holdExpired, "the hold of booking \(id) expired at \(booking.holdExpiresAt)")
      }
      booking.status = .booked
      booking.updatedAt = now
      bookings[id] = booking
      sales[booking.saleID]!.held -= 1
      sales[booking.saleID]!.booked += 1
      sales[booking.saleID]!.version += 1
      return booking
    }
  }

  public func cancel(_ id: BookingID, token: UInt64, now: Timestamp) throws -> Booking {
    var booking = try fenced(id, token: token)
    switch booking.status {
    case .released, .expired:
      return booking
    case .booked:
      throw DomainError(
        .bookingConfirmed, "booking \(id) is confirmed; a booked unit is returned with Release")
    case .hold:
      return endHold(&booking, as: .released, reason: "cancelled", now: now)
    }
  }

  public func release(_ id: BookingID, token: UInt64?, reason: String, now: Timestamp) throws -> Booking {
    var booking: Booking
    if let token {
      booking = try fenced(id, token: token)
    } else {
      guard let found = bookings[id] else { throw DomainError(.bookingNotFound, "no booking \(id)") }
      booking = found
    }
    guard booking.status.takesUnit else { return booking }
    return endHold(&booking, as: .released, reason: reason, now: now)
  }

  public func expireHolds(now: Timestamp, limit: Int) -> [Booking] {
    let due = bookings.values.filter { $0.status == .hold && $0.holdExpiresAt <= now }
      .sorted { $0.holdExpiresAt < $1.holdExpiresAt }.prefix(limit)
    return due.map { booking in
      var booking = booking
      return endHold(&booking, as: .expired, reason: nil, now: now)
    }
  }

  public func nextHoldDeadline() -> Timestamp? {
    bookings.values.filter { $0.status == .hold }.map(\.holdExpiresAt).min()
  }

  public func booking(_ id: BookingID) -> Booking? {
    bookings[id]
  }

  public func idempotencyKeyFingerprints() -> Set<UInt64> {
    Set(claimKeys.keys.map(ClaimedKeys.fingerprint))
  }

  public func idempotencyKeyFingerprints(of saleID: SaleID) -> Set<UInt64> {
    Set(bookings.values.filter { $0.saleID == saleID }.map { ClaimedKeys.fingerprint($0.idempotencyKey) })
  }

  public func bookings(idempotencyKeys: [String]) -> [String: Booking] {
    keysRead += idempotencyKeys.count
    var found: [String: Booking] = [:]
    for key in idempotencyKeys {
      if let booking = claimKeys[key].flatMap({ bookings[$0] }) { found[key] = booking }
    }
    return found
  }

  public func counts(_ saleID: SaleID) throws -> UnitCounts {
    guard let record = sales[saleID] else { throw DomainError(.saleNotFound, "no sale \(saleID)") }
    return UnitCounts(
      quantity: record.sale.definition.quantity, available: record.available, held: record.held, booked: record.booked)
  }

  public func stockLevel(_ saleID: SaleID) throws -> StockLevel {
    StockLevel(counts: try counts(saleID), version: sales[saleID]!.version)
  }

  public func audit(_ saleID: SaleID) throws -> [AuditFinding] {
    guard let record = sales[saleID] else { throw DomainError(.saleNotFound, "no sale \(saleID)") }
    return SaleAuditor.findings(
      quantity: record.sale.definition.quantity, perUserLimit: record.sale.definition.perUserLimit,
      bookings: bookings.values.filter { $0.saleID == saleID })
  }

  // MARK: Test hooks

  /// Stores a booking as is, bypassing every rule: for tests that corrupt
  /// the store on purpose and expect the audit to notice.
  public func insertCorruptBooking(_ booking: Booking) {
    bookings[booking.id] = booking
  }

  // MARK: Helpers

  /// The booking, if `token` is both its token and its unit's current one.
  private func fenced(_ id: BookingID, token: UInt64) throws(DomainError) -> Booking {
    guard let booking = bookings[id] else { throw DomainError(.bookingNotFound, "no booking \(id)") }
    guard token == booking.fencingToken else {
      throw DomainError(.staleFencingToken, "fencing token \(token) is not booking \(id)'s (\(booking.fencingToken))")
    }
    if booking.status.takesUnit, sales[booking.saleID]?.holders[booking.unit]?.token != token {
      throw DomainError(.staleFencingToken, "unit \(booking.unit) was claimed again after token \(token)")
    }
    return booking
  }

  /// Ends a hold or booking, giving its unit back to stock.
  private func endHold(_ booking: inout Booking, as status: BookingStatus, reason: String?, now: Timestamp) -> Booking {
    let wasBooked = booking.status == .booked
    booking.status = status
    booking.updatedAt = now
    booking.releaseReason = reason
    bookings[booking.id] = booking
    var record = sales[booking.saleID]!
    record.holders[booking.unit] = nil
    record.returned.append((booking.unit, .now))
    if wasBooked { record.booked -= 1 } else { record.held -= 1 }
    record.version += 1
    sales[booking.saleID] = record
    activeByUser[booking.saleID]?[booking.userID, default: 1] -= 1
    return booking
  }
}
