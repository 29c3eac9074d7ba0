public import FlashSaleCheckout
public import FlashSaleDomain
import SQLiteSupport

/// The embedded ``CheckoutStore``: the checkout's tables in the sale core's
/// SQLite file (WAL, `synchronous=FULL`), through a connection of its own.
/// Writes wait for the file's write lock like any other writer.
public final class SQLiteCheckoutStore: CheckoutStore, Sendable {
  private let worker: SQLiteWorker<SQLiteConnection>
  /// The file.
  public let path: String

  /// Opens the checkout tables in the file at `path` (creating them when missing).
  public init(path: String) throws {
    self.path = path
    let connection = try SQLiteConnection(path: path)
    try connection.execute("PRAGMA busy_timeout = 10000")
    _ = try connection.queryFirst("PRAGMA journal_mode = WAL") { $0.text(0) }
    try connection.execute("PRAGMA synchronous = FULL")
    try SQLiteCheckoutSchema.migrate(connection)
    self.worker = SQLiteWorker(connection, label: "flashsale.sqlite-checkout-store")
  }

  public func create(_ checkout: Checkout) async throws -> (checkout: Checkout, created: Bool) {
    try await worker.run { connection in
      try connection.transaction {
        if let existing = try Self.checkout(
          connection, where: "user_id = ? AND idempotency_key = ?", .text(checkout.userID.rawValue),
          .text(checkout.idempotencyKey))
        {
          return (existing, false)
        }
        if let existing = try Self.checkout(connection, where: "booking_id = ?", .text(checkout.bookingID.rawValue)) {
          throw DomainError(
            .checkoutExists, "booking \(checkout.bookingID) already has checkout \(existing.id) (another idempotency key)")
        }
        try connection.run(
          """
          INSERT INTO checkouts (id, booking_id, fencing_token, sale_id, user_id, currency, amount_minor,
            payment_method_token, idempotency_key, state, payment, payment_id, order_status, order_id, unit,
            failure_reason, revision, created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          """,
          .text(checkout.id.rawValue), .text(checkout.bookingID.rawValue),
          .integer(Int64(bitPattern: checkout.fencingToken)), .text(checkout.saleID.rawValue),
          .text(checkout.userID.rawValue), .text(checkout.amount.currency), .integer(checkout.amount.amountMinor),
          .text(checkout.paymentMethodToken), .text(checkout.idempotencyKey), .text(checkout.state.rawValue),
          .text(checkout.payment.rawValue), .optionalText(checkout.paymentID), .optionalText(checkout.order?.rawValue),
          .optionalText(checkout.orderID), .text(checkout.unit.rawValue), .optionalText(checkout.failureReason),
          .integer(checkout.revision), .integer(checkout.createdAt.nanosecondsSinceEpoch),
          .integer(checkout.updatedAt.nanosecondsSinceEpoch))
        try Self.writeSteps(connection, checkout)
        return (checkout, true)
      }
    }
  }

  public func checkout(_ id: CheckoutID) async throws -> Checkout? {
    try await worker.run { try Self.checkout($0, where: "id = ?", .text(id.rawValue)) }
  }

  public func checkout(bookingID: BookingID) async throws -> Checkout? {
    try await worker.run { try Self.checkout($0, where: "booking_id = ?", .text(bookingID.rawValue)) }
  }

  public func unfinished(idleSince: Timestamp, limit: Int) async throws -> [Checkout] {
    try await worker.run { connection in
      try Self.checkouts(
        connection, where: "state IN ('running', 'compensating') AND updated_at <= ? ORDER BY created_at LIMIT ?",
        .integer(idleSince.nanosecondsSinceEpoch), .integer(Int64(limit)))
    }
  }

  public func checkouts(saleID: SaleID) async throws -> [Checkout] {
    try await worker.run { connection in
      try Self.checkouts(connection, where: "sale_id = ? ORDER BY created_at", .text(saleID.rawValue))
    }
  }

  @discardableResult
  public func save(_ checkout: Checkout, order: Order?, events: [TransactionEvent]) async throws -> [TransactionEvent] {
    try await worker.run { connection in
      try connection.transaction {
        let changed = try connection.run(
          """
          UPDATE checkouts SET state = ?, payment = ?, payment_id = ?, order_status = ?, order_id = ?, unit = ?,
            failure_reason = ?, revision = revision + 1, updated_at = ?
          WHERE id = ? AND revision = ?
          """,
          .text(checkout.state.rawValue), .text(checkout.payment.rawValue), .optionalText(checkout.paymentID),
          .optionalText(checkout.order?.rawValue), .optionalText(checkout.orderID), .text(checkout.unit.rawValue),
          .optionalText(checkout.failureReason), .integer(checkout.updatedAt.nanosecondsSinceEpoch),
          .text(checkout.id.rawValue), .integer(checkout.revision))
        guard changed == 1 else { throw CheckoutConflict(checkout.id) }
        try Self.writeSteps(connection, checkout)
        if let order { try Self.write(connection, order) }
        return try events.map { try Self.append(connection, $0) }
      }
    }
  }

  public func order(_ id: String) async throws -> Order? {
    try await worker.run { connection in
      try connection.queryFirst("SELECT \(Self.orderColumns) FROM orders WHERE id = ?", .text(id), row: Self.order)
    }
  }

  public func orders(_ filter: OrderFilter, limit: Int, before cursor: OrderCursor?) async throws -> [Order] {
    try await worker.run { connection in
      let (column, value) =
        switch filter {
        case .user(let user): ("user_id", user.rawValue)
        case .sale(let sale): ("sale_id", sale.rawValue)
        }
      let order = "ORDER BY created_at DESC, id DESC LIMIT ?"
      if let cursor {
        return try connection.query(
          "SELECT \(Self.orderColumns) FROM orders WHERE \(column) = ? AND (created_at, id) < (?, ?) \(order)",
          .text(value), .integer(cursor.createdAt.nanosecondsSinceEpoch), .text(cursor.id), .integer(Int64(limit)),
          row: Self.order)
      }
      return try connection.query(
        "SELECT \(Self.orderColumns) FROM orders WHERE \(column) = ? \(order)", .text(value), .integer(Int64(limit)),
        row: Self.order)
    }
  }

  public func events(from offset: UInt64, limit: Int) async throws -> [TransactionEvent] {
    try await worker.run { connection in
      try connection.query(
        "SELECT \(Self.eventColumns) FROM transaction_events WHERE position >= ? ORDER BY position LIMIT ?",
        .integer(Int64(clamping: offset)), .integer(Int64(limit)), row: Self.event)
    }
  }

  /// Runs raw SQL against the file, bypassing every rule: for tests that
  /// corrupt the store on purpose and expect reconciliation to notice.
  public func executeUncheckedForTesting(_ sql: String) async throws {
    try await worker.run { try $0.execute(sql) }
  }

  // MARK: Rows

  private static let checkoutColumns = """
    id, booking_id, fencing_token, sale_id, user_id, currency, amount_minor, payment_method_token, idempotency_key,
    state, payment, payment_id, order_status, order_id, unit, failure_reason, revision, created_at, updated_at
    """

  private static func checkouts(
    _ connection: SQLiteConnection, where condition: String, _ arguments: SQLiteValue...
  ) throws -> [Checkout] {
    var found = try connection.query(
      "SELECT \(checkoutColumns) FROM checkouts WHERE \(condition)", arguments: arguments, row: checkout)
    for index in found.indices {
      found[index].steps = try steps(connection, found[index].id)
    }
    return found
  }

  private static func checkout(
    _ connection: SQLiteConnection, where condition: String, _ arguments: SQLiteValue...
  ) throws -> Checkout? {
    var found = try connection.queryFirst(
      "SELECT \(checkoutColumns) FROM checkouts WHERE \(condition)", arguments: arguments, row: checkout)
    if let id = found?.id { found?.steps = try steps(connection, id) }
    return found
  }

  private static func checkout(_ row: SQLiteRow) throws -> Checkout {
    func parse<T: RawRepresentable<String>>(_ type: T.Type, _ column: Int32) throws -> T {
      let text = row.text(column)
      guard let value = T(rawValue: text) else { throw StoreFault("checkout row \(row.text(0)): bad \(T.self) \(text)") }
      return value
    }
    return Checkout(
      id: CheckoutID(row.text(0)), bookingID: BookingID(row.text(1)),
      fencingToken: UInt64(bitPattern: row.int64(2)), saleID: SaleID(row.text(3)), userID: UserID(row.text(4)),
      amount: Money(currency: row.text(5), amountMinor: row.int64(6)), paymentMethodToken: row.text(7),
      idempotencyKey: row.text(8), state: try parse(CheckoutState.self, 9), payment: try parse(PaymentState.self, 10),
      paymentID: row.optionalText(11), order: try row.optionalText(12).map { _ in try parse(OrderStatus.self, 12) },
      orderID: row.optionalText(13), unit: try parse(UnitState.self, 14), failureReason: row.optionalText(15),
      revision: row.int64(16), createdAt: Timestamp(nanosecondsSinceEpoch: row.int64(17)),
      updatedAt: Timestamp(nanosecondsSinceEpoch: row.int64(18)))
  }

  private static func steps(_ connection: SQLiteConnection, _ id: CheckoutID) throws -> [CheckoutStep] {
    try connection.query(
      """
      SELECT sequence, name, status, attempt, detail, started_at, finished_at FROM checkout_steps
      WHERE checkout_id = ? ORDER BY sequence
      """, .text(id.rawValue)
    ) { row in
      guard let status = CheckoutStep.Status(rawValue: row.text(2)) else {
        throw StoreFault("checkout \(id) step \(row.int64(0)): bad status \(row.text(2))")
      }
      return CheckoutStep(
        sequence: Int(row.int64(0)), name: row.text(1), status: status, attempt: Int(row.int64(3)),
        detail: row.text(4), startedAt: Timestamp(nanosecondsSinceEpoch: row.int64(5)),
        finishedAt: row.optionalInt64(6).map(Timestamp.init(nanosecondsSinceEpoch:)))
    }
  }

  /// Writes the step log (it only grows; a finished step is never changed again).
  private static func writeSteps(_ connection: SQLiteConnection, _ checkout: Checkout) throws {
    for step in checkout.steps {
      try connection.run(
        """
        INSERT INTO checkout_steps (checkout_id, sequence, name, status, attempt, detail, started_at, finished_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (checkout_id, sequence) DO UPDATE SET status = excluded.status, detail = excluded.detail,
          finished_at = excluded.finished_at
        """,
        .text(checkout.id.rawValue), .integer(Int64(step.sequence)), .text(step.name), .text(step.status.rawValue),
        .integer(Int64(step.attempt)), .text(step.detail), .integer(step.startedAt.nanosecondsSinceEpoch),
        .optionalInteger(step.finishedAt?.nanosecondsSinceEpoch))
    }
  }

  private static let orderColumns =
    "id, checkout_id, booking_id, sale_id, user_id, status, currency, amount_minor, payment_id, created_at, updated_at"

  private static func order(_ row: SQLiteRow) throws -> Order {
    guard let status = OrderStatus(rawValue: row.text(5)) else {
      throw StoreFault("order \(row.text(0)): bad status \(row.text(5))")
    }
    return Order(
      id: row.text(0), checkoutID: CheckoutID(row.text(1)), bookingID: BookingID(row.text(2)),
      saleID: SaleID(row.text(3)), userID: UserID(row.text(4)), status: status,
      amount: Money(currency: row.text(6), amountMinor: row.int64(7)), paymentID: row.optionalText(8),
      createdAt: Timestamp(nanosecondsSinceEpoch: row.int64(9)),
      updatedAt: Timestamp(nanosecondsSinceEpoch: row.int64(10)))
  }

  private static func write(_ connection: SQLiteConnection, _ order: Order) throws {
    try connection.run(
      """
      INSERT INTO orders (id, checkout_id, booking_id, sale_id, user_id, status, currency, amount_minor, payment_id,
        created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, payment_id = excluded.payment_id,
        updated_at = excluded.updated_at
      """,
      .text(order.id), .text(order.checkoutID.rawValue), .text(order.bookingID.rawValue), .text(order.saleID.rawValue),
      .text(order.userID.rawValue), .text(order.status.rawValue), .text(order.amount.currency),
      .integer(order.amount.amountMinor), .optionalText(order.paymentID), .integer(order.createdAt.nanosecondsSinceEpoch),
      .integer(order.updatedAt.nanosecondsSinceEpoch))
  }

  private static let eventColumns = """
    position, id, kind, checkout_id, booking_id, sale_id, user_id, order_id, payment_id, currency, amount_minor,
    occurred_at
    """

  private static func event(_ row: SQLiteRow) throws -> TransactionEvent {
    guard let kind = TransactionEvent.Kind(rawValue: row.text(2)) else {
      throw StoreFault("event \(row.int64(0)): bad kind \(row.text(2))")
    }
    return TransactionEvent(
      offset: UInt64(row.int64(0)), id: row.text(1), kind: kind, checkoutID: CheckoutID(row.text(3)),
      bookingID: BookingID(row.text(4)), saleID: SaleID(row.text(5)), userID: UserID(row.text(6)),
      orderID: row.optionalText(7), paymentID: row.optionalText(8),
      amount: Money(currency: row.text(9), amountMinor: row.int64(10)),
      occurredAt: Timestamp(nanosecondsSinceEpoch: row.int64(11)))
  }

  /// Appends one event at the next position (inside the caller's transaction).
  private static func append(_ connection: SQLiteConnection, _ event: TransactionEvent) throws -> TransactionEvent {
    let position =
      try connection.queryFirst("SELECT coalesce(max(position), 0) + 1 FROM transaction_events") { $0.int64(0) } ?? 1
    try connection.run(
      """
      INSERT INTO transaction_events (position, id, kind, checkout_id, booking_id, sale_id, user_id, order_id,
        payment_id, currency, amount_minor, occurred_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      """,
      .integer(position), .text(event.id), .text(event.kind.rawValue), .text(event.checkoutID.rawValue),
      .text(event.bookingID.rawValue), .text(event.saleID.rawValue), .text(event.userID.rawValue),
      .optionalText(event.orderID), .optionalText(event.paymentID), .text(event.amount.currency),
      .integer(event.amount.amountMinor), .integer(event.occurredAt.nanosecondsSinceEpoch))
    var stored = event
    stored.offset = UInt64(position)
    return stored
  }
}
