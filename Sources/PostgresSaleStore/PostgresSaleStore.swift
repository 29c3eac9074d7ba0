public import FlashSaleDomain
import PostgresSupport
public import Logging
import PostgresNIO

/// The ``SaleStore`` of several service instances on several machines: one
/// PostgreSQL database (see ``PostgresSaleSchema`` for how claims avoid a hot
/// row). Every operation is one transaction; PostgreSQL's commit is durable
/// with its default `synchronous_commit = on`.
public final class PostgresSaleStore: SaleStore, Sendable {
  private let database: PostgresPool
  private var client: PostgresClient { database.client }
  private var logger: Logger { database.logger }
  /// Batches of claims take different shards (SKIP LOCKED), so several
  /// commit at once, each on its own connection.
  public let concurrentClaimBatches: Int

  /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`),
  /// with at most `maximumConnections`, and runs the migrations this database
  /// has not seen (one instance at a time, under an advisory lock).
  ///
  /// `concurrentClaimBatches`: claim batches in their transactions at once.
  /// Two let one batch run while the previous one waits for its commit to
  /// reach the disk; more make batches smaller and their transactions contend
  /// for the same index pages. Measured with `make claim-bench` on a 2-core
  /// machine shared by the database, the server and the load: 1 → 4.0k holds/s,
  /// 2 → 6.8k, 4 → 5.6k. A database on a bigger machine may want more.
  public static func connect(
    url: String, maximumConnections: Int = 8, concurrentClaimBatches: Int = 2,
    logger: Logger = Logger(label: "flashsale.postgres")
  ) async throws -> PostgresSaleStore {
    let database = try PostgresPool(url: url, maximumConnections: maximumConnections, logger: logger)
    do {
      try await database.migrate(
        lock: 7_242_160_951, versionTable: "flashsale_schema", migrations: PostgresSaleSchema.migrations,
        always: PostgresSaleSchema.functions)
    } catch {
      database.shutdown()
      throw error
    }
    return PostgresSaleStore(
      database: database, concurrentClaimBatches: max(1, min(concurrentClaimBatches, maximumConnections - 1)))
  }

  private init(database: PostgresPool, concurrentClaimBatches: Int) {
    self.database = database
    self.concurrentClaimBatches = concurrentClaimBatches
  }

  /// A returned unit is claimable this long after a claim first saw it
  /// (``PostgresSaleSchema/restockDelayNanoseconds``).
  public var restockDelay: Duration? { .nanoseconds(PostgresSaleSchema.restockDelayNanoseconds) }

  public func idempotencyKeyFingerprints(of saleID: SaleID) async throws -> Set<UInt64> {
    // Through the two partial indexes by sale: the holding and booked, the ended.
    let rows = try await client.query(
      """
      SELECT idempotency_key FROM bookings WHERE sale_id = \(saleID.rawValue) AND status IN ('hold', 'booked')
      UNION ALL
      SELECT idempotency_key FROM bookings WHERE sale_id = \(saleID.rawValue) AND status IN ('released', 'expired')
      """, logger: logger)
    var fingerprints = Set<UInt64>()
    for try await key in rows.decode(String.self) {
      fingerprints.insert(ClaimedKeys.fingerprint(key))
    }
    return fingerprints
  }

  /// Closes the connections.
  public func shutdown() {
    database.shutdown()
  }

  // MARK: Sales

  private static let saleColumns = """
    id, item_id, item_name, description, currency, price_minor, quantity, starts_at, ends_at, per_user_limit,
    hold_duration_ns, created_at, updated_at, paused_at, closed_at
    """

  private static func sale(_ row: PostgresRow) throws -> Sale {
    let r = row.makeRandomAccess()
    let definition = SaleDefinition(
      itemID: try r["item_id"].decode(String.self), itemName: try r["item_name"].decode(String.self),
      description: try r["description"].decode(String.self),
      price: Money(currency: try r["currency"].decode(String.self), amountMinor: try r["price_minor"].decode(Int64.self)),
      quantity: try r["quantity"].decode(Int64.self),
      startsAt: Timestamp(nanosecondsSinceEpoch: try r["starts_at"].decode(Int64.self)),
      endsAt: Timestamp(nanosecondsSinceEpoch: try r["ends_at"].decode(Int64.self)),
      perUserLimit: try r["per_user_limit"].decode(Int32.self),
      holdDuration: .nanoseconds(try r["hold_duration_ns"].decode(Int64.self)))
    return Sale(
      id: SaleID(try r["id"].decode(String.self)), definition: definition,
      createdAt: Timestamp(nanosecondsSinceEpoch: try r["created_at"].decode(Int64.self)),
      updatedAt: Timestamp(nanosecondsSinceEpoch: try r["updated_at"].decode(Int64.self)),
      pausedAt: try r["paused_at"].decode(Int64?.self).map(Timestamp.init(nanosecondsSinceEpoch:)),
      closedAt: try r["closed_at"].decode(Int64?.self).map(Timestamp.init(nanosecondsSinceEpoch:)))
  }

  private func sales(_ query: PostgresQuery) async throws -> [Sale] {
    var sales: [Sale] = []
    for try await row in try await client.query(query, logger: logger) {
      sales.append(try Self.sale(row))
    }
    return sales
  }

  /// Shards per sale: enough that instances rarely meet on one, few enough
  /// that summing them is cheap.
  static func shardCount(quantity: Int64) -> Int64 { min(64, quantity) }

  public func createSale(
    _ definition: SaleDefinition, id: SaleID, idempotencyKey: String?, now: Timestamp
  ) async throws -> Sale {
    try definition.validate()
    let shards = Self.shardCount(quantity: definition.quantity)
    let shardSize = (definition.quantity + shards - 1) / shards
    let holdNanoseconds = definition.holdDuration.wholeNanoseconds
    let logger = self.logger
    let createdID: String = try await database.transaction { connection in
      let inserted = try await connection.query(
        """
        INSERT INTO sales (id, item_id, item_name, description, currency, price_minor, quantity, starts_at, ends_at,
          per_user_limit, hold_duration_ns, created_at, updated_at, idempotency_key, shard_size)
        VALUES (\(id.rawValue), \(definition.itemID), \(definition.itemName), \(definition.description),
          \(definition.price.currency), \(definition.price.amountMinor), \(definition.quantity),
          \(definition.startsAt.nanosecondsSinceEpoch), \(definition.endsAt.nanosecondsSinceEpoch),
          \(Int32(definition.perUserLimit)), \(holdNanoseconds), \(now.nanosecondsSinceEpoch),
          \(now.nanosecondsSinceEpoch), \(idempotencyKey), \(shardSize))
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id
        """, logger: logger
      ).collect()
      if inserted.isEmpty, let idempotencyKey {
        let existing = try await connection.query(
          "SELECT id FROM sales WHERE idempotency_key = \(idempotencyKey)", logger: logger
        ).collect()
        return try existing[0].makeRandomAccess()["id"].decode(String.self)
      }
      try await connection.query(
        """
        INSERT INTO sale_shards (sale_id, shard, next_fresh, end_unit)
        SELECT \(id.rawValue), g, g * \(shardSize), least((g + 1) * \(shardSize), \(definition.quantity))
        FROM generate_series(0, \(shards) - 1) AS g
        WHERE g * \(shardSize) < \(definition.quantity)
        """, logger: logger)
      return id.rawValue
    }
    guard let sale = try await sale(SaleID(createdID)) else {
      throw DomainError(.saleNotFound, "sale \(createdID) vanished after it was created")
    }
    return sale
  }

  public func sale(_ id: SaleID) async throws -> Sale? {
    try await sales("SELECT \(unescaped: Self.saleColumns) FROM sales WHERE id = \(id.rawValue)").first
  }

  public func sales(limit: Int, before cursor: SaleCursor?) async throws -> [Sale] {
    if let cursor {
      return try await sales(
        """
        SELECT \(unescaped: Self.saleColumns) FROM sales
        WHERE (created_at, id) < (\(cursor.createdAt.nanosecondsSinceEpoch), \(cursor.id.rawValue))
        ORDER BY created_at DESC, id DESC LIMIT \(limit)
        """)
    }
    return try await sales(
      "SELECT \(unescaped: Self.saleColumns) FROM sales ORDER BY created_at DESC, id DESC LIMIT \(limit)")
  }

  public func setPaused(_ id: SaleID, _ paused: Bool, now: Timestamp) async throws -> Sale {
    let changed =
      paused
      ? try await sales(
        """
        UPDATE sales SET paused_at = coalesce(paused_at, \(now.nanosecondsSinceEpoch)),
          updated_at = \(now.nanosecondsSinceEpoch)
        WHERE id = \(id.rawValue) RETURNING \(unescaped: Self.saleColumns)
        """)
      : try await sales(
        """
        UPDATE sales SET paused_at = NULL, updated_at = \(now.nanosecondsSinceEpoch)
        WHERE id = \(id.rawValue) RETURNING \(unescaped: Self.saleColumns)
        """)
    guard let sale = changed.first else { throw DomainError(.saleNotFound, "no sale \(id)") }
    return sale
  }

  public func close(_ id: SaleID, now: Timestamp) async throws -> Sale {
    let changed = try await sales(
      """
      UPDATE sales SET closed_at = coalesce(closed_at, \(now.nanosecondsSinceEpoch)),
        updated_at = \(now.nanosecondsSinceEpoch)
      WHERE id = \(id.rawValue) RETURNING \(unescaped: Self.saleColumns)
      """)
    guard let sale = changed.first else { throw DomainError(.saleNotFound, "no sale \(id)") }
    return sale
  }

  // MARK: Claims and steps

  /// The length of `flashsale_booking_text`'s array.
  private static let bookingFieldCount = 11

  /// A booking from `flashsale_booking_text`'s array.
  private static func booking(_ fields: [String]) throws -> Booking {
    guard fields.count == bookingFieldCount, let unit = Int64(fields[3]), let status = BookingStatus(rawValue: fields[4]),
      let created = Int64(fields[5]), let updated = Int64(fields[6]), let expires = Int64(fields[7]),
      let token = UInt64(fields[9])
    else {
      throw StoreFault("the store returned a malformed booking: \(fields)")
    }
    return Booking(
      id: BookingID(fields[0]), saleID: SaleID(fields[1]), userID: UserID(fields[2]), unit: unit, status: status,
      createdAt: Timestamp(nanosecondsSinceEpoch: created), updatedAt: Timestamp(nanosecondsSinceEpoch: updated),
      holdExpiresAt: Timestamp(nanosecondsSinceEpoch: expires), idempotencyKey: fields[8], fencingToken: token,
      releaseReason: fields[10].isEmpty ? nil : fields[10])
  }

  private static func refusal(_ reason: String, _ detail: String?) -> DomainError {
    let reason = DomainError.Reason(rawValue: reason)
    // The sold-out refusals in the same words as every store's (the claim
    // function's texts are older and longer).
    if reason == .soldOut { return .soldOut }
    if reason == .soldOutForNow { return .soldOutForNow }
    return DomainError(
      reason, detail ?? reason.rawValue,
      field: reason == .idempotencyKeyReused ? "idempotency_key" : nil)
  }


  public func claim(_ requests: [ClaimRequest], now: Timestamp) async throws -> [ClaimOutcome] {
    if requests.isEmpty { return [] }
    // A key repeated within the batch (a retry that caught up with its first
    // attempt) goes to the database once; the repeats take that outcome.
    var firstWithKey: [String: Int] = [:]
    var unique: [ClaimRequest] = []
    var slots: [(slot: Int, first: Bool)] = []
    for request in requests {
      if let slot = firstWithKey[request.idempotencyKey] {
        slots.append((slot, false))
      } else {
        firstWithKey[request.idempotencyKey] = unique.count
        slots.append((unique.count, true))
        unique.append(request)
      }
    }
    // Claims that found free units only in rows other transactions held, or
    // only units still waiting for their restock, come back `.busy`: the sale
    // core runs them again.
    let outcomes = try await database.retryingConflicts { try await claimOnce(unique, now: now) }
    var results = zip(requests, slots).map { request, slot in
      slot.first ? outcomes[slot.slot] : Self.repeated(outcomes[slot.slot], of: unique[slot.slot], for: request)
    }
    // Repeats whose first made no booking and came from another sale or user
    // are claims of their own: they run after the batch.
    let own = results.indices.filter { results[$0] == nil }
    if !own.isEmpty {
      let again = try await claim(own.map { requests[$0] }, now: now)
      for (index, outcome) in zip(own, again) { results[index] = outcome }
    }
    return results.map { $0! }
  }

  /// The outcome of a repeat of `first` in the same batch, from the first's;
  /// `nil` when it must be claimed on its own.
  private static func repeated(_ outcome: ClaimOutcome, of first: ClaimRequest, for request: ClaimRequest)
    -> ClaimOutcome?
  {
    let sameCaller = request.saleID == first.saleID && request.userID == first.userID
    switch outcome {
    case .held(let booking, let left), .replayed(let booking, let left):
      guard sameCaller else {
        return .refused(
          DomainError(
            .idempotencyKeyReused, "idempotency key \"\(request.idempotencyKey)\" was used for another sale or user",
            field: "idempotency_key"))
      }
      return .replayed(booking, unitsLeft: left)
    case .refused, .busy:
      return sameCaller ? outcome : nil
    }
  }

  private func claimOnce(_ requests: [ClaimRequest], now: Timestamp) async throws -> [ClaimOutcome] {
    // In no transaction block: the procedure commits before it answers, so
    // nothing is acknowledged before it is durable.
    let rows = try await client.query(
      """
      CALL flashsale_claim_holds_committed(
        \(requests.map(\.saleID.rawValue)), \(requests.map(\.userID.rawValue)), \(requests.map(\.idempotencyKey)),
        \(requests.map(\.bookingID.rawValue)), \(now.nanosecondsSinceEpoch),
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
      """, logger: logger)
    var outcomes = [ClaimOutcome?](repeating: nil, count: requests.count)
    for try await (heldIndices, heldLeft, units, tokens, untils, indices, kinds, refusals, details, left, bookings)
      in rows.decode(
        ([Int32], [Int64], [Int64], [Int64], [Int64], [Int32], [String], [String], [String], [Int64], [String]).self)
    {
      let fieldsPerBooking = Self.bookingFieldCount
      guard (heldIndices + indices).allSatisfy({ requests.indices.contains(Int($0)) }),
        [heldLeft.count, units.count, tokens.count, untils.count].allSatisfy({ $0 == heldIndices.count }),
        [kinds.count, refusals.count, details.count, left.count].allSatisfy({ $0 == indices.count }),
        bookings.count == indices.count * fieldsPerBooking
      else {
        throw StoreFault("the store answered claims \(heldIndices) and \(indices) of \(requests.count) unevenly")
      }
      for (n, index) in heldIndices.enumerated() {
        let request = requests[Int(index)]
        let hold = Booking(
          id: request.bookingID, saleID: request.saleID, userID: request.userID, unit: units[n], status: .hold,
          createdAt: now, updatedAt: now, holdExpiresAt: Timestamp(nanosecondsSinceEpoch: untils[n]),
          idempotencyKey: request.idempotencyKey, fencingToken: UInt64(bitPattern: tokens[n]))
        outcomes[Int(index)] = .held(hold, unitsLeft: heldLeft[n])
      }
      for (n, index) in indices.enumerated() {
        if kinds[n] == "replayed" {
          let fields = Array(bookings[n * fieldsPerBooking..<(n + 1) * fieldsPerBooking])
          outcomes[Int(index)] = .replayed(try Self.booking(fields), unitsLeft: left[n])
        } else {
          let error = Self.refusal(refusals[n].isEmpty ? "UNKNOWN" : refusals[n], details[n].isEmpty ? nil : details[n])
          outcomes[Int(index)] = kinds[n] == "busy" ? .busy(error) : .refused(error)
        }
      }
    }
    return try outcomes.map { outcome in
      guard let outcome else { throw StoreFault("the store answered fewer claims than it was asked") }
      return outcome
    }
  }

  private func step(_ operation: String, _ id: BookingID, token: UInt64?, reason: String?, now: Timestamp)
    async throws -> Booking
  {
    try await database.retryingConflicts { try await stepOnce(operation, id, token: token, reason: reason, now: now) }
  }

  private func stepOnce(_ operation: String, _ id: BookingID, token: UInt64?, reason: String?, now: Timestamp)
    async throws -> Booking
  {
    let logger = self.logger
    let result: Result<Booking, DomainError> = try await database.transaction { connection in
      try await Self.stepRow(operation, id, token: token, reason: reason, now: now, on: connection, logger: logger)
    }
    return try result.get()
  }

  /// One step; a refusal is returned, not thrown, so that what the step did
  /// (a late confirm expires the hold) commits.
  private static func stepRow(
    _ operation: String, _ id: BookingID, token: UInt64?, reason: String?, now: Timestamp,
    on connection: PostgresConnection, logger: Logger
  ) async throws -> Result<Booking, DomainError> {
    let rows = try await connection.query(
      """
      SELECT refusal, detail, booking FROM flashsale_booking_step(
        \(operation), \(id.rawValue), \(token.map { Int64(bitPattern: $0) }), \(reason), \(now.nanosecondsSinceEpoch))
      """, logger: logger)
    for try await (refusal, detail, booking) in rows.decode((String?, String?, [String]?).self) {
      if let refusal { return .failure(Self.refusal(refusal, detail)) }
      return .success(try Self.booking(booking ?? []))
    }
    return .failure(DomainError(.bookingNotFound, "no booking \(id)"))
  }

  public func confirm(_ id: BookingID, token: UInt64, now: Timestamp) async throws -> Booking {
    try await step("confirm", id, token: token, reason: nil, now: now)
  }

  public func cancel(_ id: BookingID, token: UInt64, now: Timestamp) async throws -> Booking {
    try await step("cancel", id, token: token, reason: nil, now: now)
  }

  public func release(_ id: BookingID, token: UInt64?, reason: String, now: Timestamp) async throws -> Booking {
    try await step("release", id, token: token, reason: reason, now: now)
  }

  public func expireHolds(now: Timestamp, limit: Int) async throws -> [Booking] {
    try await database.retryingConflicts { try await expireHoldsOnce(now: now, limit: limit) }
  }

  private func expireHoldsOnce(now: Timestamp, limit: Int) async throws -> [Booking] {
    // In no transaction block: the procedure commits before it answers, in
    // one round trip where a BEGIN and a COMMIT of their own took three.
    let rows = try await client.query(
      "CALL flashsale_expire_holds_committed(\(now.nanosecondsSinceEpoch), \(Int32(clamping: limit)), NULL)",
      logger: logger)
    var expired: [Booking] = []
    let fieldsPerBooking = Self.bookingFieldCount
    for try await fields in rows.decode([String].self) {
      guard fields.count % fieldsPerBooking == 0 else {
        throw StoreFault("the store answered an expiry with \(fields.count) fields, not \(fieldsPerBooking) per booking")
      }
      for start in stride(from: 0, to: fields.count, by: fieldsPerBooking) {
        expired.append(try Self.booking(Array(fields[start..<start + fieldsPerBooking])))
      }
    }
    return expired
  }

  public func nextHoldDeadline() async throws -> Timestamp? {
    let rows = try await client.query("SELECT min(hold_expires_at) FROM bookings WHERE status = 'hold'", logger: logger)
    for try await value in rows.decode(Int64?.self) {
      return value.map(Timestamp.init(nanosecondsSinceEpoch:))
    }
    return nil
  }

  public func booking(_ id: BookingID) async throws -> Booking? {
    let rows = try await client.query(
      "SELECT flashsale_booking_text(b) FROM bookings b WHERE b.id = \(id.rawValue)", logger: logger)
    for try await fields in rows.decode([String].self) {
      return try Self.booking(fields)
    }
    return nil
  }

  public func bookings(idempotencyKeys: [String]) async throws -> [String: Booking] {
    let rows = try await client.query(
      "SELECT flashsale_booking_text(b) FROM bookings b WHERE b.idempotency_key = ANY(\(idempotencyKeys))",
      logger: logger)
    var found: [String: Booking] = [:]
    for try await fields in rows.decode([String].self) {
      let booking = try Self.booking(fields)
      found[booking.idempotencyKey] = booking
    }
    return found
  }

  // MARK: Counts and audit

  public func counts(_ saleID: SaleID) async throws -> UnitCounts {
    try await stockLevel(saleID).counts
  }

  public func stockLevel(_ saleID: SaleID) async throws -> StockLevel {
    guard let (_, level) = try await salesWithStock([saleID]).first else {
      throw DomainError(.saleNotFound, "no sale \(saleID)")
    }
    return level
  }

  public func salesWithStock(_ ids: [SaleID]) async throws -> [(sale: Sale, level: StockLevel)] {
    if ids.isEmpty { return [] }
    let names = ids.map(\.rawValue)
    // One statement: one snapshot of the rows and their counters.
    let rows = try await client.query(
      """
      SELECT \(unescaped: Self.saleColumns), coalesce(h.held, 0) AS held, coalesce(h.booked, 0) AS booked,
        coalesce(h.version, 0) AS stock_version
      FROM sales s LEFT JOIN (
        SELECT sale_id, sum(held)::bigint AS held, sum(booked)::bigint AS booked, sum(version)::bigint AS version
        FROM sale_shards WHERE sale_id = ANY(\(names)) GROUP BY sale_id
      ) h ON h.sale_id = s.id
      WHERE s.id = ANY(\(names))
      """, logger: logger)
    var found: [(sale: Sale, level: StockLevel)] = []
    for try await row in rows {
      let sale = try Self.sale(row)
      let r = row.makeRandomAccess()
      let (held, booked) = (try r["held"].decode(Int64.self), try r["booked"].decode(Int64.self))
      let quantity = sale.definition.quantity
      found.append(
        (
          sale,
          StockLevel(
            counts: UnitCounts(quantity: quantity, available: quantity - held - booked, held: held, booked: booked),
            version: UInt64(try r["stock_version"].decode(Int64.self)))
        ))
    }
    return found
  }

  public func audit(_ saleID: SaleID) async throws -> [AuditFinding] {
    let logger = self.logger
    // One snapshot for rows and counters.
    return try await database.transaction { connection in
      try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
      var sale: Sale?
      for try await row in try await connection.query(
        "SELECT \(unescaped: Self.saleColumns) FROM sales WHERE id = \(saleID.rawValue)", logger: logger)
      {
        sale = try Self.sale(row)
      }
      guard let sale else { throw DomainError(.saleNotFound, "no sale \(saleID)") }
      var taken: [Booking] = []
      for try await fields in try await connection.query(
        """
        SELECT flashsale_booking_text(b) FROM bookings b
        WHERE b.sale_id = \(saleID.rawValue) AND b.status IN ('hold', 'booked')
        """, logger: logger
      ).decode([String].self) {
        taken.append(try Self.booking(fields))
      }
      var held: Int64 = 0
      var booked: Int64 = 0
      var free: Int64 = 0
      for try await (h, b, f) in try await connection.query(
        """
        SELECT coalesce(sum(held), 0)::bigint, coalesce(sum(booked), 0)::bigint,
          coalesce(sum(end_unit - next_fresh), 0)::bigint
        FROM sale_shards WHERE sale_id = \(saleID.rawValue)
        """, logger: logger
      ).decode((Int64, Int64, Int64).self) {
        (held, booked, free) = (h, b, f)
      }
      var returned: [Int64] = []
      for try await unit in try await connection.query(
        "SELECT unit FROM returned_units WHERE sale_id = \(saleID.rawValue) ORDER BY unit", logger: logger
      ).decode(Int64.self) {
        returned.append(unit)
      }
      // The per-user counters enforce the limit: each must match the rows,
      // also for a user with bookings and no counter.
      var counterMismatches: [(String, Int32, Int32)] = []
      for try await row in try await connection.query(
        """
        SELECT coalesce(h.user_id, b.user_id), coalesce(h.active, 0), coalesce(b.taken, 0)::int
        FROM (SELECT user_id, active FROM user_holdings WHERE sale_id = \(saleID.rawValue)) h
        FULL OUTER JOIN (
          SELECT user_id, count(*) AS taken FROM bookings
          WHERE sale_id = \(saleID.rawValue) AND status IN ('hold', 'booked') GROUP BY user_id) b
        ON h.user_id = b.user_id
        WHERE coalesce(h.active, 0) <> coalesce(b.taken, 0)
        ORDER BY 1
        """, logger: logger
      ).decode((String, Int32, Int32).self) {
        counterMismatches.append(row)
      }

      // Keys are kept to one booking by the claim function's locks, not by a
      // unique index: a key of this sale's that made two bookings, in any sale.
      var keysUsedTwice: [(String, Int64, String)] = []
      for try await row in try await connection.query(
        """
        SELECT idempotency_key, count(*), string_agg(id, ', ' ORDER BY id) FROM bookings
        WHERE idempotency_key IN (SELECT idempotency_key FROM bookings WHERE sale_id = \(saleID.rawValue))
        GROUP BY idempotency_key HAVING count(*) > 1 ORDER BY idempotency_key
        """, logger: logger
      ).decode((String, Int64, String).self) {
        keysUsedTwice.append(row)
      }

      let quantity = sale.definition.quantity
      var findings = SaleAuditor.findings(
        quantity: quantity, perUserLimit: sale.definition.perUserLimit, bookings: taken,
        storedCounts: UnitCounts(quantity: quantity, available: quantity - held - booked, held: held, booked: booked))
      let takenUnits = Set(taken.map(\.unit))
      for unit in returned where takenUnits.contains(unit) {
        findings.append(AuditFinding("unit \(unit) is in returned_units but taken by a booking"))
      }
      if free + Int64(returned.count) != quantity - Int64(taken.count) {
        findings.append(
          AuditFinding(
            "\(free + Int64(returned.count)) units are free (\(free) never issued + \(returned.count) returned) but \(quantity - Int64(taken.count)) are not taken: a unit is stranded or counted twice"
          ))
      }
      for (key, count, ids) in keysUsedTwice {
        findings.append(AuditFinding.keyReused(key, bookings: count, ids: ids))
      }
      for (user, counted, taken) in counterMismatches {
        findings.append(AuditFinding("user \(user): user_holdings counts \(counted) units, the bookings take \(taken)"))
      }
      return findings
    }
  }

  /// Runs raw SQL, bypassing every rule: for tests that corrupt the store on
  /// purpose and expect the audit to notice.
  public func executeUncheckedForTesting(_ sql: String) async throws {
    try await database.executeUncheckedForTesting(sql)
  }
}
