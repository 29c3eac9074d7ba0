public import FlashSaleDomain
import SQLiteSupport

/// The embedded ``SaleStore``: one SQLite file in WAL mode with
/// `synchronous=FULL`, so that every commit has reached the disk before an
/// operation returns.
///
/// One connection does all the work on a serial queue (SQLite has one writer
/// at a time); callers suspend meanwhile. Claims arrive in batches, one
/// transaction and one fsync each.
public final class SQLiteSaleStore: SaleStore, Sendable {
  /// The writer: every write and most reads.
  private let writer: SQLiteWorker<SQLiteSaleDatabase>
  /// A second connection, read only: point reads that must not wait behind
  /// a commit (WAL lets it read the last commit meanwhile).
  private let reader: SQLiteWorker<SQLiteSaleDatabase>
  /// The file.
  public let path: String

  /// Opens (creating when missing) the store at `path` and runs its migrations.
  ///
  /// - Parameter maximumFileSize: when set, the file may not grow past about
  ///   this many bytes: writes that would need more fail with `SQLITE_FULL`
  ///   and change nothing, as on a full volume.
  public init(path: String, maximumFileSize: Int64? = nil) throws {
    self.path = path
    self.writer = SQLiteWorker(
      try SQLiteSaleDatabase(path: path, maximumFileSize: maximumFileSize), label: "flashsale.sqlite-store")
    self.reader = SQLiteWorker(try SQLiteSaleDatabase(readerOf: path), label: "flashsale.sqlite-store.reader")
  }

  /// Runs `body` on the writer's queue.
  private func run<T: Sendable>(_ body: @escaping @Sendable (SQLiteSaleDatabase) throws -> T) async throws -> T {
    try await writer.run(body)
  }

  public func createSale(
    _ definition: SaleDefinition, id: SaleID, idempotencyKey: String?, now: Timestamp
  ) async throws -> Sale {
    try await run { try $0.createSale(definition, id: id, idempotencyKey: idempotencyKey, now: now) }
  }

  public func sale(_ id: SaleID) async throws -> Sale? {
    try await run { try $0.sale(id) }
  }

  public func sales(limit: Int, before cursor: SaleCursor?) async throws -> [Sale] {
    try await run { try $0.sales(limit: limit, before: cursor) }
  }

  public func setPaused(_ id: SaleID, _ paused: Bool, now: Timestamp) async throws -> Sale {
    try await run { try $0.setPaused(id, paused, now: now) }
  }

  public func close(_ id: SaleID, now: Timestamp) async throws -> Sale {
    try await run { try $0.close(id, now: now) }
  }

  public func claim(_ requests: [ClaimRequest], now: Timestamp) async throws -> [ClaimOutcome] {
    try await run { try $0.claim(requests, now: now) }
  }

  public func confirm(_ id: BookingID, token: UInt64, now: Timestamp) async throws -> Booking {
    try await run { try $0.confirm(id, token: token, now: now) }
  }

  public func cancel(_ id: BookingID, token: UInt64, now: Timestamp) async throws -> Booking {
    try await run { try $0.cancel(id, token: token, now: now) }
  }

  public func release(_ id: BookingID, token: UInt64?, reason: String, now: Timestamp) async throws -> Booking {
    try await run { try $0.release(id, token: token, reason: reason, now: now) }
  }

  public func expireHolds(now: Timestamp, limit: Int) async throws -> [Booking] {
    try await run { try $0.expireHolds(now: now, limit: limit) }
  }

  public func nextHoldDeadline() async throws -> Timestamp? {
    try await run { try $0.nextHoldDeadline() }
  }

  public func booking(_ id: BookingID) async throws -> Booking? {
    try await run { try $0.booking(id) }
  }

  public func bookings(idempotencyKeys: [String]) async throws -> [String: Booking] {
    try await reader.run { reader in
      var found: [String: Booking] = [:]
      for key in idempotencyKeys {
        if let booking = try reader.booking(idempotencyKey: key) { found[key] = booking }
      }
      return found
    }
  }

  public func counts(_ saleID: SaleID) async throws -> UnitCounts {
    try await run { try $0.counts(saleID) }
  }

  public func stockLevel(_ saleID: SaleID) async throws -> StockLevel {
    try await run { try $0.stockLevel(saleID) }
  }

  public func audit(_ saleID: SaleID) async throws -> [AuditFinding] {
    try await run { try $0.audit(saleID) }
  }

  /// Runs raw SQL against the file, bypassing every rule: for tests that
  /// corrupt the store on purpose and expect the audit to notice.
  public func executeUncheckedForTesting(_ sql: String) async throws {
    try await run { try $0.connection.execute(sql) }
  }
}
