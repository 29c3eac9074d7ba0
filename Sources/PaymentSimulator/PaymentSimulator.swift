public import FlashSaleDomain
import SQLiteSupport

/// A payment as the simulated provider keeps it.
public struct SimulatedPayment: Hashable, Sendable {
  public enum Status: String, Hashable, Sendable, CaseIterable {
    case authorized, captured, voided, refunded, declined
  }

  public var id: String
  public var status: Status
  public var amount: Money
  public var capturedMinor: Int64
  public var refundedMinor: Int64
  public var reference: String
  public var declineReason: String?
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
}

/// Why the simulated provider refused a call; the service maps each case to
/// its gRPC status.
public enum PaymentSimulatorError: Error, Hashable, Sendable, CustomStringConvertible {
  case invalidArgument(field: String, String)
  case notFound(String)
  /// The payment is not in a state that allows the call (capturing a voided one, …).
  case failedPrecondition(String)
  /// A simulated outage.
  case unavailable(String)

  public var description: String {
    switch self {
    case .invalidArgument(_, let message), .notFound(let message), .failedPrecondition(let message),
      .unavailable(let message):
      message
    }
  }
}

/// How the simulator behaves for cards other than the test cards.
public struct SimulatorBehaviour: Sendable {
  /// Each call waits a random time in this range before it acts.
  public var latency: ClosedRange<Duration>
  /// The share of Authorize calls declined (0…1).
  public var declineRate: Double
  /// The share of calls that fail with UNAVAILABLE before acting (0…1).
  public var errorRate: Double
  /// How long the `tok_timeout` card makes Authorize wait after it acted.
  public var timeoutDelay: Duration

  public init(
    latency: ClosedRange<Duration> = .zero ... .zero, declineRate: Double = 0, errorRate: Double = 0,
    timeoutDelay: Duration = .seconds(30)
  ) {
    self.latency = latency
    self.declineRate = declineRate
    self.errorRate = errorRate
    self.timeoutDelay = timeoutDelay
  }
}

/// A payment provider simulator with its own records (its own SQLite file),
/// for tests and demos of the checkout saga.
///
/// Every mutating call carries an idempotency key: a repeated key answers
/// with the payment as it now stands and acts no second time; the same key
/// for another call or payment is refused. Deterministic test cards (the
/// payment method token):
///
/// | token | behaviour |
/// |---|---|
/// | `tok_approve` | approved (no random declines or errors) |
/// | `tok_decline` | Authorize declined (`card_declined`) |
/// | `tok_timeout` | Authorize authorizes, then answers only after `timeoutDelay` |
/// | `tok_fail_after_capture` | Capture captures, then answers UNAVAILABLE |
/// | `tok_unavailable` | every call UNAVAILABLE, nothing recorded |
///
/// Any other token: approved, declined or failed at the configured rates.
public final class PaymentSimulator: Sendable {
  private let worker: SQLiteWorker<SQLiteConnection>
  private let behaviour: SimulatorBehaviour
  private let clock: any WallClock

  public enum TestCard {
    public static let approve = "tok_approve"
    public static let decline = "tok_decline"
    public static let timeout = "tok_timeout"
    public static let failAfterCapture = "tok_fail_after_capture"
    public static let unavailable = "tok_unavailable"
  }

  /// A simulator keeping its records in the SQLite file at `path`.
  public init(path: String, behaviour: SimulatorBehaviour = SimulatorBehaviour(), clock: any WallClock = SystemClock()) throws {
    let connection = try SQLiteConnection(path: path)
    try connection.execute("PRAGMA busy_timeout = 5000")
    _ = try connection.queryFirst("PRAGMA journal_mode = WAL") { $0.text(0) }
    try connection.execute("PRAGMA synchronous = FULL")
    try connection.execute(
      """
      CREATE TABLE IF NOT EXISTS payments (
        id TEXT PRIMARY KEY,
        authorize_key TEXT NOT NULL UNIQUE,
        reference TEXT NOT NULL,
        token TEXT NOT NULL,
        status TEXT NOT NULL,
        currency TEXT NOT NULL,
        amount_minor INTEGER NOT NULL,
        captured_minor INTEGER NOT NULL DEFAULT 0,
        refunded_minor INTEGER NOT NULL DEFAULT 0,
        decline_reason TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS operations (
        idempotency_key TEXT PRIMARY KEY,
        payment_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('authorize', 'capture', 'void', 'refund')),
        amount_minor INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS operations_by_payment ON operations (payment_id);
      """)
    self.worker = SQLiteWorker(connection, label: "flashsale.payment-simulator")
    self.behaviour = behaviour
    self.clock = clock
  }

  // MARK: Calls

  public func authorize(
    idempotencyKey: String, paymentMethodToken token: String, amount: Money, reference: String
  ) async throws(PaymentSimulatorError) -> SimulatedPayment {
    try Self.require(idempotencyKey, field: "idempotency_key")
    try Self.require(token, field: "payment_method_token")
    guard amount.amountMinor > 0 else {
      throw .invalidArgument(field: "amount", "amount: must be positive")
    }
    guard amount.currency.count == 3, amount.currency.allSatisfy(\.isUppercase) else {
      throw .invalidArgument(field: "amount.currency", "amount.currency: must be an ISO 4217 code")
    }
    try await simulateConditions(token: token)
    let declined: String? =
      token == TestCard.decline ? "card_declined"
      : (Self.isTestCard(token) || Double.random(in: 0..<1) >= behaviour.declineRate) ? nil : "insufficient_funds"
    let now = clock.now()
    let payment = try await database { connection in
      if let replay = try Self.replay(connection, key: idempotencyKey, kind: "authorize", paymentID: nil) {
        return replay
      }
      let id = IdentifierFactory.make(prefix: "pay")
      try connection.run(
        """
        INSERT INTO payments (id, authorize_key, reference, token, status, currency, amount_minor, decline_reason,
          created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        .text(id), .text(idempotencyKey), .text(reference), .text(token),
        .text(declined == nil ? "authorized" : "declined"), .text(amount.currency), .integer(amount.amountMinor),
        .optionalText(declined), .integer(now.nanosecondsSinceEpoch), .integer(now.nanosecondsSinceEpoch))
      try Self.record(connection, key: idempotencyKey, paymentID: id, kind: "authorize", amount: amount.amountMinor, now: now)
      return try Self.payment(connection, id: id)!
    }
    if token == TestCard.timeout {
      // Acted, but the answer comes too late for any sensible deadline.
      try? await Task.sleep(for: behaviour.timeoutDelay)
    }
    return payment
  }

  public func capture(paymentID: String, idempotencyKey: String) async throws(PaymentSimulatorError) -> SimulatedPayment {
    try await change(paymentID: paymentID, key: idempotencyKey, kind: "capture") { connection, payment, now in
      guard payment.status == .authorized else {
        throw PaymentSimulatorError.failedPrecondition("payment \(payment.id) is \(payment.status), not authorized")
      }
      try connection.run(
        "UPDATE payments SET status = 'captured', captured_minor = amount_minor, updated_at = ? WHERE id = ?",
        .integer(now.nanosecondsSinceEpoch), .text(payment.id))
      return payment.amount.amountMinor
    }
  }

  public func void(paymentID: String, idempotencyKey: String) async throws(PaymentSimulatorError) -> SimulatedPayment {
    try await change(paymentID: paymentID, key: idempotencyKey, kind: "void") { connection, payment, now in
      guard payment.status == .authorized else {
        throw PaymentSimulatorError.failedPrecondition("payment \(payment.id) is \(payment.status), not authorized")
      }
      try connection.run(
        "UPDATE payments SET status = 'voided', updated_at = ? WHERE id = ?", .integer(now.nanosecondsSinceEpoch),
        .text(payment.id))
      return 0
    }
  }

  public func refund(paymentID: String, idempotencyKey: String) async throws(PaymentSimulatorError) -> SimulatedPayment {
    try await change(paymentID: paymentID, key: idempotencyKey, kind: "refund") { connection, payment, now in
      guard payment.status == .captured else {
        throw PaymentSimulatorError.failedPrecondition("payment \(payment.id) is \(payment.status), not captured")
      }
      try connection.run(
        "UPDATE payments SET status = 'refunded', refunded_minor = captured_minor, updated_at = ? WHERE id = ?",
        .integer(now.nanosecondsSinceEpoch), .text(payment.id))
      return payment.capturedMinor
    }
  }

  /// The payment with `id`.
  public func payment(id: String) async throws(PaymentSimulatorError) -> SimulatedPayment {
    try Self.require(id, field: "payment_id")
    guard let payment = try await database({ try Self.payment($0, id: id) }) else {
      throw .notFound("no payment \(id)")
    }
    return payment
  }

  /// The payment the Authorize with `key` created.
  public func payment(authorizeKey key: String) async throws(PaymentSimulatorError) -> SimulatedPayment {
    try Self.require(key, field: "authorize_idempotency_key")
    let found = try await database { connection in
      try connection.queryFirst("SELECT id FROM payments WHERE authorize_key = ?", .text(key)) { $0.text(0) }
        .flatMap { try Self.payment(connection, id: $0) }
    }
    guard let found else { throw .notFound("no payment authorized with idempotency key \(key)") }
    return found
  }

  /// Every payment whose reference is one of `references`, with how many
  /// captures each had: the provider's report, for reconciliation.
  public func report(references: [String]) async throws(PaymentSimulatorError) -> [(SimulatedPayment, captures: Int)] {
    try await database { connection in
      try references.flatMap { reference in
        try connection.query("SELECT id FROM payments WHERE reference = ?", .text(reference)) { $0.text(0) }
          .compactMap { id -> (SimulatedPayment, captures: Int)? in
            guard let payment = try Self.payment(connection, id: id) else { return nil }
            let captures =
              try connection.queryFirst(
                "SELECT count(*) FROM operations WHERE payment_id = ? AND kind = 'capture'", .text(id)
              ) { Int($0.int64(0)) } ?? 0
            return (payment, captures)
          }
      }
    }
  }

  // MARK: Helpers

  /// A capture, void or refund: replayed for a known key, else checked and applied.
  private func change(
    paymentID: String, key: String, kind: String,
    _ apply: @escaping @Sendable (SQLiteConnection, SimulatedPayment, Timestamp) throws -> Int64
  ) async throws(PaymentSimulatorError) -> SimulatedPayment {
    try Self.require(paymentID, field: "payment_id")
    try Self.require(key, field: "idempotency_key")
    guard let token = try await database({ connection in
      try connection.queryFirst("SELECT token FROM payments WHERE id = ?", .text(paymentID)) { $0.text(0) }
    }) else { throw .notFound("no payment \(paymentID)") }
    try await simulateConditions(token: token)
    let now = clock.now()
    let payment = try await database { connection in
      if let replay = try Self.replay(connection, key: key, kind: kind, paymentID: paymentID) { return replay }
      guard let payment = try Self.payment(connection, id: paymentID) else {
        throw PaymentSimulatorError.notFound("no payment \(paymentID)")
      }
      let amount = try apply(connection, payment, now)
      try Self.record(connection, key: key, paymentID: paymentID, kind: kind, amount: amount, now: now)
      return try Self.payment(connection, id: paymentID)!
    }
    if kind == "capture", token == TestCard.failAfterCapture {
      throw .unavailable("simulated failure after the capture was made")
    }
    return payment
  }

  /// Latency, and the simulated outages that happen before a call acts.
  private func simulateConditions(token: String) async throws(PaymentSimulatorError) {
    if behaviour.latency.upperBound > .zero {
      let low = behaviour.latency.lowerBound.components
      let high = behaviour.latency.upperBound.components
      let lowNanos = low.seconds * 1_000_000_000 + low.attoseconds / 1_000_000_000
      let highNanos = high.seconds * 1_000_000_000 + high.attoseconds / 1_000_000_000
      try? await Task.sleep(for: .nanoseconds(Int64.random(in: lowNanos...max(lowNanos, highNanos))))
    }
    if token == TestCard.unavailable {
      throw .unavailable("simulated outage for \(TestCard.unavailable)")
    }
    if !Self.isTestCard(token), behaviour.errorRate > 0, Double.random(in: 0..<1) < behaviour.errorRate {
      throw .unavailable("simulated provider error")
    }
  }

  private static func isTestCard(_ token: String) -> Bool {
    [TestCard.approve, TestCard.decline, TestCard.timeout, TestCard.failAfterCapture, TestCard.unavailable]
      .contains(token)
  }

  /// Runs `body` in a transaction on the records; storage errors become UNAVAILABLE.
  private func database<T: Sendable>(
    _ body: @escaping @Sendable (SQLiteConnection) throws -> T
  ) async throws(PaymentSimulatorError) -> T {
    do {
      return try await worker.run { connection in try connection.transaction { try body(connection) } }
    } catch let error as PaymentSimulatorError {
      throw error
    } catch {
      throw .unavailable("the simulator's records failed: \(error)")
    }
  }

  private static func require(_ value: String, field: String) throws(PaymentSimulatorError) {
    if value.isEmpty { throw .invalidArgument(field: field, "\(field): must not be empty") }
    if value.utf8.count > 256 { throw .invalidArgument(field: field, "\(field): longer than 256 bytes") }
  }

  /// The payment a known idempotency key acted on, as it now stands.
  private static func replay(
    _ connection: SQLiteConnection, key: String, kind: String, paymentID: String?
  ) throws -> SimulatedPayment? {
    guard
      let (seenKind, seenPayment) = try connection.queryFirst(
        "SELECT kind, payment_id FROM operations WHERE idempotency_key = ?", .text(key), row: { ($0.text(0), $0.text(1)) })
    else { return nil }
    guard seenKind == kind, paymentID == nil || paymentID == seenPayment else {
      throw PaymentSimulatorError.invalidArgument(
        field: "idempotency_key", "idempotency_key: \(key) was used for a \(seenKind) of payment \(seenPayment)")
    }
    return try payment(connection, id: seenPayment)
  }

  private static func record(
    _ connection: SQLiteConnection, key: String, paymentID: String, kind: String, amount: Int64, now: Timestamp
  ) throws {
    try connection.run(
      "INSERT INTO operations (idempotency_key, payment_id, kind, amount_minor, created_at) VALUES (?, ?, ?, ?, ?)",
      .text(key), .text(paymentID), .text(kind), .integer(amount), .integer(now.nanosecondsSinceEpoch))
  }

  private static func payment(_ connection: SQLiteConnection, id: String) throws -> SimulatedPayment? {
    try connection.queryFirst(
      """
      SELECT id, status, currency, amount_minor, captured_minor, refunded_minor, reference, decline_reason,
        created_at, updated_at
      FROM payments WHERE id = ?
      """, .text(id)
    ) { row in
      guard let status = SimulatedPayment.Status(rawValue: row.text(1)) else {
        throw StoreFault("simulator payment \(row.text(0)) has an unknown status \(row.text(1))")
      }
      return SimulatedPayment(
        id: row.text(0), status: status,
        amount: Money(currency: row.text(2), amountMinor: row.int64(3)), capturedMinor: row.int64(4),
        refundedMinor: row.int64(5), reference: row.text(6), declineReason: row.optionalText(7),
        createdAt: Timestamp(nanosecondsSinceEpoch: row.int64(8)),
        updatedAt: Timestamp(nanosecondsSinceEpoch: row.int64(9)))
    }
  }
}
