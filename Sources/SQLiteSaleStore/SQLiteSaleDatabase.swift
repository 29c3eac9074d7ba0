import FlashSaleDomain
import SQLiteSupport

/// The sale core's operations as SQL on one connection. Used by
/// ``SQLiteSaleStore`` from its serial queue only; each public method is one
/// transaction.
final class SQLiteSaleDatabase: @unchecked Sendable {  // used on one serial queue at a time
  let connection: SQLiteConnection
  /// Where each idempotency key's and each buyer's bookings are (the file
  /// does not index them; see ``SQLiteClaimIndex``).
  private(set) var claimIndex: SQLiteClaimIndex
  /// What the last batch's ``SQLiteClaimIndex/touch(_:)`` read (kept, so
  /// that the reads are not optimized away).
  private var touched: UInt64 = 0

  init(path: String, maximumFileSize: Int64?) throws {
    connection = try SQLiteConnection(path: path)
    try connection.execute("PRAGMA busy_timeout = 5000")
    let mode = try connection.queryFirst("PRAGMA journal_mode = WAL") { $0.text(0) }
    guard mode == "wal" else {
      throw SQLiteError(code: 1, message: "cannot switch \(path) to WAL mode (it stays in \(mode ?? "?") mode)")
    }
    // NORMAL: a commit writes the WAL without fsyncing it; SQLiteSaleStore's
    // WALSyncer flushes it before any caller is answered, so an acknowledged
    // change survives a power loss as with FULL, and the writer does not sit
    // idle through each flush. (SQLite still syncs the WAL before a
    // checkpoint and the database after one.)
    try connection.execute("PRAGMA synchronous = NORMAL")
    try connection.execute("PRAGMA foreign_keys = ON")
    // The claim path reads index pages all over a sale's bookings (idempotency
    // keys, users): a page cache of 16 MiB instead of SQLite's 2 MiB keeps them
    // in memory instead of reading them back from the OS at every batch. Not
    // more: a B-tree rebalance parks a page under the number of the lock-byte
    // page, and then every commit walks the whole page cache to drop pages
    // past the end of the file (pcache1TruncateUnsafe). With 64 MiB that walk
    // was ~6% of the server's CPU under the claim load; 16 MiB reads no more
    // from the OS (~550 bytes per hold either way at 175 MB) and costs 2-6 us
    // less per hold.
    try connection.execute("PRAGMA cache_size = -16384")
    try SQLiteSaleSchema.migrate(connection)
    claimIndex = try SQLiteClaimIndex.load(connection)
    if let maximumFileSize {
      let pageSize = try connection.pragmaInteger("page_size")
      let current = try connection.pragmaInteger("page_count")
      try connection.execute("PRAGMA max_page_count = \(max(current, maximumFileSize / pageSize))")
    }
  }

  // MARK: Sales

  private static let saleColumns = """
    id, item_id, item_name, description, currency, price_minor, quantity, starts_at, ends_at, per_user_limit,
    hold_duration_ns, created_at, updated_at, paused_at, closed_at
    """

  private static func sale(_ row: SQLiteRow) -> Sale {
    let definition = SaleDefinition(
      itemID: row.text(1), itemName: row.text(2), description: row.text(3),
      price: Money(currency: row.text(4), amountMinor: row.int64(5)), quantity: row.int64(6),
      startsAt: Timestamp(nanosecondsSinceEpoch: row.int64(7)), endsAt: Timestamp(nanosecondsSinceEpoch: row.int64(8)),
      perUserLimit: row.int32(9), holdDuration: .nanoseconds(row.int64(10)))
    return Sale(
      id: SaleID(row.text(0)), definition: definition, createdAt: Timestamp(nanosecondsSinceEpoch: row.int64(11)),
      updatedAt: Timestamp(nanosecondsSinceEpoch: row.int64(12)),
      pausedAt: row.optionalInt64(13).map(Timestamp.init(nanosecondsSinceEpoch:)),
      closedAt: row.optionalInt64(14).map(Timestamp.init(nanosecondsSinceEpoch:)))
  }

  func createSale(_ definition: SaleDefinition, id: SaleID, idempotencyKey: String?, now: Timestamp) throws -> Sale {
    try connection.transaction {
      if let key = idempotencyKey,
        let existing = try connection.queryFirst(
          "SELECT \(Self.saleColumns) FROM sales WHERE idempotency_key = ?", .text(key), row: Self.sale)
      {
        return existing
      }
      try definition.validate()
      try connection.run(
        """
        INSERT INTO sales (id, item_id, item_name, description, currency, price_minor, quantity, starts_at, ends_at,
          per_user_limit, hold_duration_ns, created_at, updated_at, idempotency_key)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        .text(id.rawValue), .text(definition.itemID), .text(definition.itemName), .text(definition.description),
        .text(definition.price.currency), .integer(definition.price.amountMinor), .integer(definition.quantity),
        .integer(definition.startsAt.nanosecondsSinceEpoch), .integer(definition.endsAt.nanosecondsSinceEpoch),
        .integer(Int64(definition.perUserLimit)), .integer(definition.holdDuration.wholeNanoseconds),
        .integer(now.nanosecondsSinceEpoch), .integer(now.nanosecondsSinceEpoch), .optionalText(idempotencyKey))
      return Sale(id: id, definition: definition, createdAt: now, updatedAt: now)
    }
  }

  func sale(_ id: SaleID) throws -> Sale? {
    try connection.queryFirst("SELECT \(Self.saleColumns) FROM sales WHERE id = ?", .text(id.rawValue), row: Self.sale)
  }

  func sales(limit: Int, before cursor: SaleCursor?) throws -> [Sale] {
    if let cursor {
      return try connection.query(
        "SELECT \(Self.saleColumns) FROM sales WHERE (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?",
        .integer(cursor.createdAt.nanosecondsSinceEpoch), .text(cursor.id.rawValue), .integer(Int64(limit)),
        row: Self.sale)
    }
    return try connection.query(
      "SELECT \(Self.saleColumns) FROM sales ORDER BY created_at DESC, id DESC LIMIT ?", .integer(Int64(limit)),
      row: Self.sale)
  }

  func setPaused(_ id: SaleID, _ paused: Bool, now: Timestamp) throws -> Sale {
    try connection.transaction {
      let changed =
        paused
        ? try connection.run(
          "UPDATE sales SET paused_at = coalesce(paused_at, ?), updated_at = ? WHERE id = ?",
          .integer(now.nanosecondsSinceEpoch), .integer(now.nanosecondsSinceEpoch), .text(id.rawValue))
        : try connection.run(
          "UPDATE sales SET paused_at = NULL, updated_at = ? WHERE id = ?", .integer(now.nanosecondsSinceEpoch),
          .text(id.rawValue))
      try requireSale(id, changed: changed)
      return try sale(id)!
    }
  }

  func close(_ id: SaleID, now: Timestamp) throws -> Sale {
    try connection.transaction {
      try requireSale(
        id,
        changed: connection.run(
          "UPDATE sales SET closed_at = coalesce(closed_at, ?), updated_at = ? WHERE id = ?",
          .integer(now.nanosecondsSinceEpoch), .integer(now.nanosecondsSinceEpoch), .text(id.rawValue)))
      return try sale(id)!
    }
  }

  private func requireSale(_ id: SaleID, changed: Int) throws(DomainError) {
    if changed == 0 { throw DomainError(.saleNotFound, "no sale \(id)") }
  }

  // MARK: Claims

  /// What a batch of claims needs of one sale, read once per batch and
  /// written back once at its end: plain values, copied for every claim
  /// without touching a string.
  private struct SaleTally {
    var schedule: Sale.Schedule
    var quantity: Int64
    var perUserLimit: Int32
    var holdDuration: Duration
    var nextFreshUnit: Int64
    var nextToken: UInt64
    var held: Int64
    var booked: Int64
    var version: UInt64
    var available: Int64 { quantity - held - booked }
  }

  private func tally(_ id: SaleID) throws -> SaleTally? {
    try connection.queryFirst(Self.tallyByID, .text(id.rawValue)) { row in
      SaleTally(
        schedule: Sale.Schedule(
          startsAt: Timestamp(nanosecondsSinceEpoch: row.int64(1)),
          endsAt: Timestamp(nanosecondsSinceEpoch: row.int64(2)), isPaused: row.optionalInt64(3) != nil,
          isClosed: row.optionalInt64(4) != nil),
        quantity: row.int64(0), perUserLimit: row.int32(5), holdDuration: .nanoseconds(row.int64(6)),
        nextFreshUnit: row.int64(7), nextToken: UInt64(row.int64(8)), held: row.int64(9), booked: row.int64(10),
        version: UInt64(row.int64(11)))
    }
  }

  func claim(_ requests: [ClaimRequest], now: Timestamp) throws -> [ClaimOutcome] {
    do {
      let outcomes = try claimInTransaction(requests, now: now)
      claimIndex.commit()
      return outcomes
    } catch {
      claimIndex.rollBack()
      throw error
    }
  }

  private func claimInTransaction(_ requests: [ClaimRequest], now: Timestamp) throws -> [ClaimOutcome] {
    try connection.transaction {
      var tallies: [SaleID: SaleTally] = [:]
      var outcomes: [ClaimOutcome] = []
      outcomes.reserveCapacity(requests.count)
      let fingerprints = requests.map(SQLiteClaimIndex.fingerprints(of:))
      // The index's slots for the whole batch first, their cache misses
      // overlapping: a table of millions of keys is read at random.
      touched = claimIndex.touch(fingerprints)
      for (request, fingerprints) in zip(requests, fingerprints) {
        outcomes.append(try claimOne(request, fingerprints, now: now, tallies: &tallies))
      }
      for (id, tally) in tallies {
        try connection.run(
          "UPDATE sales SET next_fresh_unit = ?, next_token = ?, held = ?, stock_version = ? WHERE id = ?",
          .integer(tally.nextFreshUnit), .integer(Int64(tally.nextToken)), .integer(tally.held),
          .integer(Int64(tally.version)), .text(id.rawValue))
      }
      return outcomes
    }
  }

  private func claimOne(
    _ request: ClaimRequest, _ fingerprints: SQLiteClaimIndex.Fingerprints, now: Timestamp,
    tallies: inout [SaleID: SaleTally]
  ) throws -> ClaimOutcome {
    try claimInFirstSlot(request, fingerprints, now: now, tallies: &tallies)
      ?? claimCarefully(request, fingerprints, now: now, tallies: &tallies)
  }

  /// The rush's way: a key never seen, a user without a booking in the
  /// sale, an open sale with a unit to give: one INSERT. Nil for everything
  /// else: the careful way finds out what the claim is.
  private func claimInFirstSlot(
    _ request: ClaimRequest, _ fingerprints: SQLiteClaimIndex.Fingerprints, now: Timestamp,
    tallies: inout [SaleID: SaleTally]
  ) throws -> ClaimOutcome? {
    guard !claimIndex.mayHaveBooking(fingerprints),
      var tally = try tally(request.saleID, cachedIn: &tallies), tally.schedule.state(at: now) == .active,
      let unit = try pickUnit(tally, of: request.saleID)
    else { return nil }
    let booking = hold(request, unit: unit.number, tally: tally, now: now)
    try insert(booking, fingerprints)
    try take(unit, of: request.saleID, in: &tally)
    tallies[request.saleID] = tally
    return .held(booking, unitsLeft: tally.available)
  }

  /// A claim the rush's way could not place: a key used before, a user with
  /// a hold or booking already, a sale not open or without a unit to give.
  private func claimCarefully(
    _ request: ClaimRequest, _ fingerprints: SQLiteClaimIndex.Fingerprints, now: Timestamp,
    tallies: inout [SaleID: SaleTally]
  ) throws -> ClaimOutcome {
    if let existing = try firstBooking(in: claimIndex.rows(key: fingerprints), where: {
      $0.idempotencyKey == request.idempotencyKey
    }) {
      guard existing.saleID == request.saleID, existing.userID == request.userID else {
        return .refused(
          DomainError(
            .idempotencyKeyReused, "idempotency key \"\(request.idempotencyKey)\" was used for another sale or user",
            field: "idempotency_key"))
      }
      return .replayed(existing, unitsLeft: try tally(request.saleID, cachedIn: &tallies)?.available ?? 0)
    }
    guard var tally = try tally(request.saleID, cachedIn: &tallies) else {
      return .refused(DomainError(.saleNotFound, "no sale \(request.saleID)"))
    }
    do {
      try tally.schedule.checkOpenForBooking(request.saleID, at: now)
    } catch {
      return .refused(error)
    }
    // The user's holds and bookings in the sale: the limit counts them all.
    let taken = try claimIndex.rows(buyer: fingerprints).compactMap(booking(row:)).filter {
      $0.saleID == request.saleID && $0.userID == request.userID && $0.status.takesUnit
    }
    let limit = Int(tally.perUserLimit)
    guard taken.count < limit else {
      return .refused(
        DomainError(
          .limitReached, "user \(request.userID) already holds or bought \(taken.count) of the \(limit) allowed"))
    }
    guard let unit = try pickUnit(tally, of: request.saleID) else {
      return .refused(tally.held > 0 ? DomainError.soldOutForNow : DomainError.soldOut)
    }
    let booking = hold(request, unit: unit.number, tally: tally, now: now)
    try insert(booking, fingerprints)
    try take(unit, of: request.saleID, in: &tally)
    tallies[request.saleID] = tally
    return .held(booking, unitsLeft: tally.available)
  }

  private func tally(_ id: SaleID, cachedIn tallies: inout [SaleID: SaleTally]) throws -> SaleTally? {
    if let tally = tallies[id] { return tally }
    let tally = try tally(id)
    tallies[id] = tally
    return tally
  }

  /// A unit to give: one given back, else the next fresh one.
  private struct PickedUnit {
    var number: Int64
    var returned: Bool
  }

  /// The unit the next claim of the sale takes, if it has one left; nothing
  /// is changed until ``take(_:in:)``.
  private func pickUnit(_ tally: SaleTally, of saleID: SaleID) throws -> PickedUnit? {
    // Units given back wait in returned_units; by the invariant there are
    // (taken so far) - held - booked of them, so the lookup is skipped when
    // that is zero (the common case in a rush: nothing has come back yet) and
    // fresh units remain.
    let quantity = tally.quantity
    let mayHaveReturned = tally.nextFreshUnit - tally.held - tally.booked > 0 || tally.nextFreshUnit >= quantity
    if mayHaveReturned, let returned = try connection.queryFirst(
      "SELECT unit FROM returned_units WHERE sale_id = ? LIMIT 1", .text(saleID.rawValue), row: { $0.int64(0) })
    {
      return PickedUnit(number: returned, returned: true)
    }
    return tally.nextFreshUnit < quantity ? PickedUnit(number: tally.nextFreshUnit, returned: false) : nil
  }

  /// Counts `unit` as held, once its booking is written.
  private func take(_ unit: PickedUnit, of saleID: SaleID, in tally: inout SaleTally) throws {
    if unit.returned {
      try connection.run(
        "DELETE FROM returned_units WHERE sale_id = ? AND unit = ?", .text(saleID.rawValue),
        .integer(unit.number))
    } else {
      tally.nextFreshUnit += 1
    }
    tally.nextToken += 1
    tally.held += 1
    tally.version += 1
  }

  /// The hold a claim gets on `unit`, with the sale's next fencing token.
  private func hold(_ request: ClaimRequest, unit: Int64, tally: SaleTally, now: Timestamp) -> Booking {
    Booking(
      id: request.bookingID, saleID: request.saleID, userID: request.userID, unit: unit, status: .hold,
      createdAt: now, updatedAt: now, holdExpiresAt: now + tally.holdDuration,
      idempotencyKey: request.idempotencyKey, fencingToken: tally.nextToken + 1)
  }

  /// Writes a new hold, and notes its key and buyer in the claim index.
  private func insert(_ booking: Booking, _ fingerprints: SQLiteClaimIndex.Fingerprints) throws(SQLiteError) {
    try connection.run(
      Self.insertHold, .text(booking.id.rawValue), .text(booking.saleID.rawValue), .text(booking.userID.rawValue),
      .integer(booking.unit), .integer(booking.createdAt.nanosecondsSinceEpoch),
      .integer(booking.updatedAt.nanosecondsSinceEpoch), .integer(booking.holdExpiresAt.nanosecondsSinceEpoch),
      .text(booking.idempotencyKey), .integer(Int64(booking.fencingToken)))
    claimIndex.add(row: connection.lastInsertedRowID, fingerprints)
  }

  private static let insertHold = """
    INSERT INTO bookings (id, sale_id, user_id, unit, status, created_at, updated_at, hold_expires_at,
      idempotency_key, fencing_token)
    VALUES (?, ?, ?, ?, 'hold', ?, ?, ?, ?, ?)
    """

  // MARK: Steps on a booking

  private static let bookingColumns = """
    id, sale_id, user_id, unit, status, created_at, updated_at, hold_expires_at, idempotency_key, fencing_token,
    release_reason
    """

  private static func booking(_ row: SQLiteRow) -> Booking {
    Booking(
      id: BookingID(row.text(0)), saleID: SaleID(row.text(1)), userID: UserID(row.text(2)), unit: row.int64(3),
      status: BookingStatus(rawValue: row.text(4)) ?? .released,
      createdAt: Timestamp(nanosecondsSinceEpoch: row.int64(5)),
      updatedAt: Timestamp(nanosecondsSinceEpoch: row.int64(6)),
      holdExpiresAt: Timestamp(nanosecondsSinceEpoch: row.int64(7)), idempotencyKey: row.text(8),
      fencingToken: UInt64(row.int64(9)), releaseReason: row.optionalText(10))
  }

  // The statements of the per-claim path, built once (not per call: the
  // connection caches prepared statements by their text).
  private static let bookingByRowID = "SELECT \(bookingColumns) FROM bookings WHERE rowid = ?"
  private static let bookingByID = "SELECT \(bookingColumns) FROM bookings WHERE id = ?"
  private static let tallyByID = """
    SELECT quantity, starts_at, ends_at, paused_at, closed_at, per_user_limit, hold_duration_ns, next_fresh_unit,
      next_token, held, booked, stock_version FROM sales WHERE id = ?
    """

  /// The booking made with `idempotencyKey`, found through the claim index.
  func booking(idempotencyKey: String) throws -> Booking? {
    try firstBooking(in: claimIndex.rows(key: idempotencyKey)) { $0.idempotencyKey == idempotencyKey }
  }

  /// The first of the claim index's candidate rows whose booking `matches`.
  private func firstBooking(in rows: [Int64], where matches: (Booking) -> Bool) throws -> Booking? {
    for row in rows {
      if let booking = try booking(row: row), matches(booking) { return booking }
    }
    return nil
  }

  private func booking(row: Int64) throws -> Booking? {
    try connection.queryFirst(Self.bookingByRowID, .integer(row), row: Self.booking)
  }

  func booking(_ id: BookingID) throws -> Booking? {
    try connection.queryFirst(Self.bookingByID, .text(id.rawValue), row: Self.booking)
  }

  /// The booking, if `token` is its token. While a booking takes a unit it is
  /// that unit's only taker (a unique index says so), so its token is the
  /// unit's current one.
  private func fenced(_ id: BookingID, token: UInt64) throws -> Booking {
    guard let booking = try booking(id) else { throw DomainError(.bookingNotFound, "no booking \(id)") }
    guard token == booking.fencingToken else {
      throw DomainError(.staleFencingToken, "fencing token \(token) is not booking \(id)'s (\(booking.fencingToken))")
    }
    return booking
  }

  func confirm(_ id: BookingID, token: UInt64, now: Timestamp) throws -> Booking {
    // The expiry a late confirm causes must commit even though the call fails.
    let result: Result<Booking, DomainError> = try connection.transaction {
      var booking = try fenced(id, token: token)
      switch booking.status {
      case .booked:
        return .success(booking)
      case .released:
        return .failure(DomainError(.bookingReleased, "booking \(id) was released"))
      case .expired:
        return .failure(DomainError(.holdExpired, "the hold of booking \(id) expired at \(booking.holdExpiresAt)"))
      case .hold:
        if now >= booking.holdExpiresAt {
          // The deadline passed: the expiry wins, whoever comes first.
          try endHold(&booking, as: .expired, reason: nil, now: now)
          return .failure(DomainError(.holdExpired, "the hold of booking \(id) expired at \(booking.holdExpiresAt)"))
        }
        booking.status = .booked
        booking.updatedAt = now
        try connection.run(
          "UPDATE bookings SET status = 'booked', updated_at = ? WHERE id = ?", .integer(now.nanosecondsSinceEpoch),
          .text(id.rawValue))
        try connection.run(
          "UPDATE sales SET held = held - 1, booked = booked + 1, stock_version = stock_version + 1 WHERE id = ?", .text(booking.saleID.rawValue))
        return .success(booking)
      }
    }
    return try result.get()
  }

  func cancel(_ id: BookingID, token: UInt64, now: Timestamp) throws -> Booking {
    try connection.transaction {
      var booking = try fenced(id, token: token)
      switch booking.status {
      case .released, .expired:
        return booking
      case .booked:
        throw DomainError(.bookingConfirmed, "booking \(id) is confirmed; a booked unit is returned with Release")
      case .hold:
        try endHold(&booking, as: .released, reason: "cancelled", now: now)
        return booking
      }
    }
  }

  func release(_ id: BookingID, token: UInt64?, reason: String, now: Timestamp) throws -> Booking {
    try connection.transaction {
      var booking: Booking
      if let token {
        booking = try fenced(id, token: token)
      } else {
        guard let found = try self.booking(id) else { throw DomainError(.bookingNotFound, "no booking \(id)") }
        booking = found
      }
      guard booking.status.takesUnit else { return booking }
      try endHold(&booking, as: .released, reason: reason, now: now)
      return booking
    }
  }

  func expireHolds(now: Timestamp, limit: Int) throws -> [Booking] {
    try connection.transaction {
      var due = try connection.query(
        """
        SELECT \(Self.bookingColumns) FROM bookings WHERE status = 'hold' AND hold_expires_at <= ?
        ORDER BY hold_expires_at LIMIT ?
        """,
        .integer(now.nanosecondsSinceEpoch), .integer(Int64(limit)), row: Self.booking)
      for index in due.indices {
        try endHold(&due[index], as: .expired, reason: nil, now: now)
      }
      return due
    }
  }

  func nextHoldDeadline() throws -> Timestamp? {
    try connection.queryFirst("SELECT min(hold_expires_at) FROM bookings WHERE status = 'hold'") {
      $0.optionalInt64(0).map(Timestamp.init(nanosecondsSinceEpoch:))
    } ?? nil
  }

  /// Ends a hold or booking and gives its unit back to stock.
  private func endHold(_ booking: inout Booking, as status: BookingStatus, reason: String?, now: Timestamp) throws {
    let counter = booking.status == .booked ? "booked" : "held"
    booking.status = status
    booking.updatedAt = now
    booking.releaseReason = reason
    try connection.run(
      "UPDATE bookings SET status = ?, updated_at = ?, release_reason = ? WHERE id = ?", .text(status.rawValue),
      .integer(now.nanosecondsSinceEpoch), .optionalText(reason), .text(booking.id.rawValue))
    try connection.run(
      "INSERT INTO returned_units (sale_id, unit) VALUES (?, ?)", .text(booking.saleID.rawValue),
      .integer(booking.unit))
    try connection.run("UPDATE sales SET \(counter) = \(counter) - 1, stock_version = stock_version + 1 WHERE id = ?", .text(booking.saleID.rawValue))
  }

  // MARK: Counts and audit

  func counts(_ saleID: SaleID) throws -> UnitCounts {
    guard let tally = try tally(saleID) else { throw DomainError(.saleNotFound, "no sale \(saleID)") }
    return UnitCounts(
      quantity: tally.quantity, available: tally.available, held: tally.held, booked: tally.booked)
  }

  func stockLevel(_ saleID: SaleID) throws -> StockLevel {
    guard let tally = try tally(saleID) else { throw DomainError(.saleNotFound, "no sale \(saleID)") }
    return StockLevel(
      counts: UnitCounts(
        quantity: tally.quantity, available: tally.available, held: tally.held, booked: tally.booked),
      version: tally.version)
  }

  func audit(_ saleID: SaleID) throws -> [AuditFinding] {
    // One read transaction, so that rows and counters are one snapshot.
    try connection.execute("BEGIN")
    defer { try? connection.execute("COMMIT") }
    guard let tally = try tally(saleID) else { throw DomainError(.saleNotFound, "no sale \(saleID)") }
    let taken = try connection.query(
      "SELECT \(Self.bookingColumns) FROM bookings WHERE sale_id = ? AND status IN ('hold', 'booked')",
      .text(saleID.rawValue), row: Self.booking)
    let quantity = tally.quantity
    var findings = SaleAuditor.findings(
      quantity: quantity, perUserLimit: tally.perUserLimit, bookings: taken,
      storedCounts: UnitCounts(quantity: quantity, available: tally.available, held: tally.held, booked: tally.booked))
    // Keys are not unique in the file (the writer's claim index keeps them
    // so): a key of this sale's that made two bookings, in any sale.
    let reused = try connection.query(
      """
      SELECT idempotency_key, count(*), group_concat(id, ', ') FROM bookings
      WHERE idempotency_key IN (SELECT idempotency_key FROM bookings WHERE sale_id = ?)
      GROUP BY idempotency_key HAVING count(*) > 1 ORDER BY idempotency_key
      """, .text(saleID.rawValue)
    ) { AuditFinding.keyReused($0.text(0), bookings: $0.int64(1), ids: $0.text(2)) }
    findings.append(contentsOf: reused)
    // The free lists must not hand out a unit that is taken, or one never issued.
    let takenUnits = Set(taken.map(\.unit))
    let returned = try connection.query(
      "SELECT unit FROM returned_units WHERE sale_id = ? ORDER BY unit", .text(saleID.rawValue)
    ) { $0.int64(0) }
    for unit in returned where takenUnits.contains(unit) || unit >= tally.nextFreshUnit {
      findings.append(
        AuditFinding(
          takenUnits.contains(unit)
            ? "unit \(unit) is in returned_units but taken by a booking"
            : "unit \(unit) is in returned_units but was never issued (next fresh unit \(tally.nextFreshUnit))"))
    }
    for booking in taken where booking.unit >= tally.nextFreshUnit {
      findings.append(
        AuditFinding(
          "booking \(booking.id) takes unit \(booking.unit), which was never issued (next fresh unit \(tally.nextFreshUnit))"
        ))
    }
    let free = tally.quantity - tally.nextFreshUnit + Int64(returned.count)
    if free != quantity - Int64(taken.count) {
      findings.append(
        AuditFinding(
          "\(free) units are free (\(quantity - tally.nextFreshUnit) never issued + \(returned.count) returned) but \(quantity - Int64(taken.count)) are not taken: a unit is stranded or counted twice"
        ))
    }
    return findings
  }
}
