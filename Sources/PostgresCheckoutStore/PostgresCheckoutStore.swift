public import FlashSaleCheckout
public import FlashSaleDomain
public import Logging
import PostgresNIO
import PostgresSupport

/// The ``CheckoutStore`` of several instances sharing one PostgreSQL
/// database: the checkout's tables beside the sale core's (see
/// ``PostgresCheckoutSchema`` for how the outbox stays gapless and in commit
/// order with concurrent writers).
public final class PostgresCheckoutStore: CheckoutStore, Sendable {
  private let database: PostgresPool
  private var client: PostgresClient { database.client }
  private var logger: Logger { database.logger }

  /// Connects to `url` and runs the checkout's migrations this database has not seen.
  public static func connect(
    url: String, maximumConnections: Int = 4, logger: Logger = Logger(label: "flashsale.postgres.checkout")
  ) async throws -> PostgresCheckoutStore {
    let database = try PostgresPool(url: url, maximumConnections: maximumConnections, logger: logger)
    do {
      try await database.migrate(
        lock: 7_242_160_952, versionTable: "checkout_schema", migrations: PostgresCheckoutSchema.migrations)
    } catch {
      database.shutdown()
      throw error
    }
    return PostgresCheckoutStore(database: database)
  }

  private init(database: PostgresPool) {
    self.database = database
  }

  /// Closes the connections.
  public func shutdown() {
    database.shutdown()
  }

  public func create(_ checkout: Checkout) async throws -> (checkout: Checkout, created: Bool) {
    try await database.retryingConflicts {
      if let existing = try await self.checkout(
        where: "user_id = $1 AND idempotency_key = $2", [checkout.userID.rawValue, checkout.idempotencyKey]
      ).first {
        return (existing, false)
      }
      if let existing = try await self.checkout(where: "booking_id = $1", [checkout.bookingID.rawValue]).first {
        throw DomainError(
          .checkoutExists, "booking \(checkout.bookingID) already has checkout \(existing.id) (another idempotency key)")
      }
      let logger = self.logger
      try await database.transaction { connection in
        // A unique violation (a twin request committed first) is retried and then replayed above.
        try await connection.query(
          """
          INSERT INTO checkouts (id, booking_id, fencing_token, sale_id, user_id, currency, amount_minor,
            payment_method_token, idempotency_key, state, payment, payment_id, order_status, order_id, unit,
            failure_reason, revision, created_at, updated_at)
          VALUES (\(checkout.id.rawValue), \(checkout.bookingID.rawValue), \(Int64(bitPattern: checkout.fencingToken)),
            \(checkout.saleID.rawValue), \(checkout.userID.rawValue), \(checkout.amount.currency),
            \(checkout.amount.amountMinor), \(checkout.paymentMethodToken), \(checkout.idempotencyKey),
            \(checkout.state.rawValue), \(checkout.payment.rawValue), \(checkout.paymentID),
            \(checkout.order?.rawValue), \(checkout.orderID), \(checkout.unit.rawValue), \(checkout.failureReason),
            \(checkout.revision), \(checkout.createdAt.nanosecondsSinceEpoch), \(checkout.updatedAt.nanosecondsSinceEpoch))
          """, logger: logger)
        for step in checkout.steps { try await Self.write(step, of: checkout.id, on: connection, logger: logger) }
      }
      return (checkout, true)
    }
  }

  public func checkout(_ id: CheckoutID) async throws -> Checkout? {
    try await checkout(where: "id = $1", [id.rawValue]).first
  }

  public func checkout(bookingID: BookingID) async throws -> Checkout? {
    try await checkout(where: "booking_id = $1", [bookingID.rawValue]).first
  }

  public func unfinished(idleSince: Timestamp, limit: Int) async throws -> [Checkout] {
    var bindings = PostgresBindings()
    bindings.append(idleSince.nanosecondsSinceEpoch)
    bindings.append(Int64(limit))
    return try await checkouts(
      PostgresQuery(
        unsafeSQL: """
          SELECT \(Self.checkoutColumns) FROM checkouts
          WHERE state IN ('running', 'compensating') AND updated_at <= $1 ORDER BY created_at LIMIT $2
          """, binds: bindings))
  }

  public func checkouts(saleID: SaleID) async throws -> [Checkout] {
    try await checkout(where: "sale_id = $1 ORDER BY created_at", [saleID.rawValue])
  }

  @discardableResult
  public func save(_ checkout: Checkout, order: Order?, events: [TransactionEvent]) async throws -> [TransactionEvent] {
    let logger = self.logger
    return try await database.retryingConflicts {
      try await database.transaction { connection in
        let updated = try await connection.query(
          """
          UPDATE checkouts SET state = \(checkout.state.rawValue), payment = \(checkout.payment.rawValue),
            payment_id = \(checkout.paymentID), order_status = \(checkout.order?.rawValue), order_id = \(checkout.orderID),
            unit = \(checkout.unit.rawValue), failure_reason = \(checkout.failureReason), revision = revision + 1,
            updated_at = \(checkout.updatedAt.nanosecondsSinceEpoch)
          WHERE id = \(checkout.id.rawValue) AND revision = \(checkout.revision)
          RETURNING id
          """, logger: logger
        ).collect()
        guard updated.count == 1 else { throw CheckoutConflict(checkout.id) }
        // The saga appends or finishes one step per save: the last one.
        if let step = checkout.steps.last {
          try await Self.write(step, of: checkout.id, on: connection, logger: logger)
        }
        if let order { try await Self.write(order, on: connection, logger: logger) }
        guard !events.isEmpty else { return [] }
        // Last, to hold the head row's lock for as short a time as possible
        // (see PostgresCheckoutSchema): positions in commit order, no gaps.
        let rows = try await connection.query(
          """
          UPDATE transaction_event_head SET last_position = last_position + \(Int64(events.count))
          WHERE id = 1 RETURNING last_position
          """, logger: logger
        ).collect()
        guard let last = try rows.first?.decode(Int64.self) else {
          throw StoreFault("transaction_event_head has no row")
        }
        var stored: [TransactionEvent] = []
        for (index, event) in events.enumerated() {
          var event = event
          event.offset = UInt64(last - Int64(events.count) + 1 + Int64(index))
          try await connection.query(
            """
            INSERT INTO transaction_events (position, id, kind, checkout_id, booking_id, sale_id, user_id, order_id,
              payment_id, currency, amount_minor, occurred_at)
            VALUES (\(Int64(event.offset)), \(event.id), \(event.kind.rawValue), \(event.checkoutID.rawValue),
              \(event.bookingID.rawValue), \(event.saleID.rawValue), \(event.userID.rawValue), \(event.orderID),
              \(event.paymentID), \(event.amount.currency), \(event.amount.amountMinor),
              \(event.occurredAt.nanosecondsSinceEpoch))
            """, logger: logger)
          stored.append(event)
        }
        return stored
      }
    }
  }

  public func order(_ id: String) async throws -> Order? {
    try await orders(
      PostgresQuery(unsafeSQL: "SELECT \(Self.orderColumns) FROM orders WHERE id = $1", binds: Self.binds([id]))
    ).first
  }

  public func orders(_ filter: OrderFilter, limit: Int, before cursor: OrderCursor?) async throws -> [Order] {
    let (column, value) =
      switch filter {
      case .user(let user): ("user_id", user.rawValue)
      case .sale(let sale): ("sale_id", sale.rawValue)
      }
    var bindings = PostgresBindings()
    bindings.append(value)
    bindings.append(Int64(limit))
    var condition = "\(column) = $1"
    if let cursor {
      bindings.append(cursor.createdAt.nanosecondsSinceEpoch)
      bindings.append(cursor.id)
      condition += " AND (created_at, id) < ($3, $4)"
    }
    return try await orders(
      PostgresQuery(
        unsafeSQL:
          "SELECT \(Self.orderColumns) FROM orders WHERE \(condition) ORDER BY created_at DESC, id DESC LIMIT $2",
        binds: bindings))
  }

  public func events(from offset: UInt64, limit: Int) async throws -> [TransactionEvent] {
    var events: [TransactionEvent] = []
    let rows = try await client.query(
      """
      SELECT position, id, kind, checkout_id, booking_id, sale_id, user_id, order_id, payment_id, currency,
        amount_minor, occurred_at
      FROM transaction_events WHERE position >= \(Int64(clamping: offset)) ORDER BY position LIMIT \(Int64(limit))
      """, logger: logger)
    for try await (position, id, kind, checkoutID, bookingID, saleID, userID, orderID, paymentID, currency, amount, at)
      in rows.decode(
        (Int64, String, String, String, String, String, String, String?, String?, String, Int64, Int64).self)
    {
      guard let kind = TransactionEvent.Kind(rawValue: kind) else {
        throw StoreFault("event \(position): bad kind \(kind)")
      }
      events.append(
        TransactionEvent(
          offset: UInt64(position), id: id, kind: kind, checkoutID: CheckoutID(checkoutID),
          bookingID: BookingID(bookingID), saleID: SaleID(saleID), userID: UserID(userID), orderID: orderID,
          paymentID: paymentID, amount: Money(currency: currency, amountMinor: amount),
          occurredAt: Timestamp(nanosecondsSinceEpoch: at)))
    }
    return events
  }

  /// Runs raw SQL, bypassing every rule: for tests that corrupt the store on
  /// purpose and expect reconciliation to notice.
  public func executeUncheckedForTesting(_ sql: String) async throws {
    try await database.executeUncheckedForTesting(sql)
  }

  // MARK: Rows

  private static let checkoutColumns = """
    id, booking_id, fencing_token, sale_id, user_id, currency, amount_minor, payment_method_token, idempotency_key,
    state, payment, payment_id, order_status, order_id, unit, failure_reason, revision, created_at, updated_at
    """

  private static func binds(_ values: [String]) -> PostgresBindings {
    var bindings = PostgresBindings()
    for value in values { bindings.append(value) }
    return bindings
  }

  private func checkout(where condition: String, _ values: [String]) async throws -> [Checkout] {
    try await checkouts(
      PostgresQuery(
        unsafeSQL: "SELECT \(Self.checkoutColumns) FROM checkouts WHERE \(condition)", binds: Self.binds(values)))
  }

  private func checkouts(_ query: PostgresQuery) async throws -> [Checkout] {
    var checkouts: [Checkout] = []
    for try await row in try await client.query(query, logger: logger) {
      checkouts.append(try Self.checkout(row))
    }
    for index in checkouts.indices {
      checkouts[index].steps = try await steps(checkouts[index].id)
    }
    return checkouts
  }

  private static func checkout(_ row: PostgresRow) throws -> Checkout {
    let r = row.makeRandomAccess()
    func parse<T: RawRepresentable<String>>(_ type: T.Type, _ column: String) throws -> T {
      let text = try r[column].decode(String.self)
      guard let value = T(rawValue: text) else { throw StoreFault("checkout row: bad \(column) \(text)") }
      return value
    }
    return Checkout(
      id: CheckoutID(try r["id"].decode(String.self)), bookingID: BookingID(try r["booking_id"].decode(String.self)),
      fencingToken: UInt64(bitPattern: try r["fencing_token"].decode(Int64.self)),
      saleID: SaleID(try r["sale_id"].decode(String.self)), userID: UserID(try r["user_id"].decode(String.self)),
      amount: Money(currency: try r["currency"].decode(String.self), amountMinor: try r["amount_minor"].decode(Int64.self)),
      paymentMethodToken: try r["payment_method_token"].decode(String.self),
      idempotencyKey: try r["idempotency_key"].decode(String.self), state: try parse(CheckoutState.self, "state"),
      payment: try parse(PaymentState.self, "payment"), paymentID: try r["payment_id"].decode(String?.self),
      order: try r["order_status"].decode(String?.self).map { _ in try parse(OrderStatus.self, "order_status") },
      orderID: try r["order_id"].decode(String?.self), unit: try parse(UnitState.self, "unit"),
      failureReason: try r["failure_reason"].decode(String?.self), revision: try r["revision"].decode(Int64.self),
      createdAt: Timestamp(nanosecondsSinceEpoch: try r["created_at"].decode(Int64.self)),
      updatedAt: Timestamp(nanosecondsSinceEpoch: try r["updated_at"].decode(Int64.self)))
  }

  private func steps(_ id: CheckoutID) async throws -> [CheckoutStep] {
    var steps: [CheckoutStep] = []
    let rows = try await client.query(
      """
      SELECT sequence, name, status, attempt, detail, started_at, finished_at FROM checkout_steps
      WHERE checkout_id = \(id.rawValue) ORDER BY sequence
      """, logger: logger)
    for try await (sequence, name, status, attempt, detail, startedAt, finishedAt) in rows.decode(
      (Int32, String, String, Int32, String, Int64, Int64?).self)
    {
      guard let status = CheckoutStep.Status(rawValue: status) else {
        throw StoreFault("checkout \(id) step \(sequence): bad status \(status)")
      }
      steps.append(
        CheckoutStep(
          sequence: Int(sequence), name: name, status: status, attempt: Int(attempt), detail: detail,
          startedAt: Timestamp(nanosecondsSinceEpoch: startedAt),
          finishedAt: finishedAt.map(Timestamp.init(nanosecondsSinceEpoch:))))
    }
    return steps
  }

  private static func write(
    _ step: CheckoutStep, of id: CheckoutID, on connection: PostgresConnection, logger: Logger
  ) async throws {
    try await connection.query(
      """
      INSERT INTO checkout_steps (checkout_id, sequence, name, status, attempt, detail, started_at, finished_at)
      VALUES (\(id.rawValue), \(Int32(step.sequence)), \(step.name), \(step.status.rawValue), \(Int32(step.attempt)),
        \(step.detail), \(step.startedAt.nanosecondsSinceEpoch), \(step.finishedAt?.nanosecondsSinceEpoch))
      ON CONFLICT (checkout_id, sequence) DO UPDATE SET status = excluded.status, detail = excluded.detail,
        finished_at = excluded.finished_at
      """, logger: logger)
  }

  private static let orderColumns =
    "id, checkout_id, booking_id, sale_id, user_id, status, currency, amount_minor, payment_id, created_at, updated_at"

  private func orders(_ query: PostgresQuery) async throws -> [Order] {
    var orders: [Order] = []
    for try await (id, checkoutID, bookingID, saleID, userID, status, currency, amount, paymentID, createdAt, updatedAt)
      in try await client.query(query, logger: logger).decode(
        (String, String, String, String, String, String, String, Int64, String?, Int64, Int64).self)
    {
      guard let status = OrderStatus(rawValue: status) else { throw StoreFault("order \(id): bad status \(status)") }
      orders.append(
        Order(
          id: id, checkoutID: CheckoutID(checkoutID), bookingID: BookingID(bookingID), saleID: SaleID(saleID),
          userID: UserID(userID), status: status, amount: Money(currency: currency, amountMinor: amount),
          paymentID: paymentID, createdAt: Timestamp(nanosecondsSinceEpoch: createdAt),
          updatedAt: Timestamp(nanosecondsSinceEpoch: updatedAt)))
    }
    return orders
  }

  private static func write(_ order: Order, on connection: PostgresConnection, logger: Logger) async throws {
    try await connection.query(
      """
      INSERT INTO orders (id, checkout_id, booking_id, sale_id, user_id, status, currency, amount_minor, payment_id,
        created_at, updated_at)
      VALUES (\(order.id), \(order.checkoutID.rawValue), \(order.bookingID.rawValue), \(order.saleID.rawValue),
        \(order.userID.rawValue), \(order.status.rawValue), \(order.amount.currency), \(order.amount.amountMinor),
        \(order.paymentID), \(order.createdAt.nanosecondsSinceEpoch), \(order.updatedAt.nanosecondsSinceEpoch))
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, payment_id = excluded.payment_id,
        updated_at = excluded.updated_at
      """, logger: logger)
  }
}
