public import FlashSaleDomain
import SQLiteSupport

/// The embedded ``SaleStore``: one SQLite file in WAL mode, where every
/// change has reached the disk before the operation that made it returns.
///
/// One connection does all the work on a serial queue (SQLite has one writer
/// at a time); callers suspend meanwhile. Claims arrive in batches, one
/// transaction each. Commits are flushed by a ``WALSyncer`` beside the
/// writer (one `fdatasync` covers every commit before it), so the writer runs
/// the next batch while the disk flushes the last; an operation returns only
/// once its commit, and every commit the writer made before it, is durable.
public final class SQLiteSaleStore: SaleStore, Sendable {
  /// The writer: every write and every read (idempotency keys are found
  /// through its claim index, which no other connection has).
  private let writer: SQLiteWorker<SQLiteSaleDatabase>
  /// Flushes the writer's commits; see ``WALSyncer``.
  private let syncer: WALSyncer
  /// The file.
  public let path: String

  /// The lock of a store opened `exclusive`.
  private let lock: ExclusiveFileLock?

  /// Opens (creating when missing) the store at `path` and runs its migrations.
  ///
  /// - Parameters:
  ///   - maximumFileSize: when set, the file may not grow past about
  ///     this many bytes: writes that would need more fail with `SQLITE_FULL`
  ///     and change nothing, as on a full volume.
  ///   - exclusive: take `PATH.lock` so that no other process serves the file
  ///     meanwhile; the store is then the sole writer (``isSoleWriter``) and
  ///     the sale core may trust what it remembers of its own writes. Tools
  ///     that only read or repair (audit, reconcile) open it without.
  public init(path: String, maximumFileSize: Int64? = nil, exclusive: Bool = false) throws {
    let database = try SQLiteSaleDatabase(path: path, maximumFileSize: maximumFileSize)
    // The lock and the log are named after the file SQLite opened (a symbolic
    // link resolved), so that two paths to one file share them.
    let file = database.connection.databaseFile
    self.lock = exclusive ? try ExclusiveFileLock(path: file + ".lock", holder: "a flashsale process serving \(file)") : nil
    self.path = path
    self.syncer = WALSyncer(walPath: database.connection.walFile, label: "flashsale.sqlite-store.sync")
    self.writer = SQLiteWorker(database, label: "flashsale.sqlite-store")
  }

  /// Runs `body` (a transaction, or a read) on the writer's queue and returns
  /// once its commit, and every commit it could have seen, is on disk.
  private func run<T: Sendable>(_ body: @escaping @Sendable (SQLiteSaleDatabase) throws -> T) async throws -> T {
    let (result, ticket) = try await write(body)
    try await syncer.waitUntilDurable(ticket)
    return try result.get()
  }

  /// Runs `body` on the writer's queue; returns what it returned and the
  /// syncer's ticket of its commit (or of the last commit before it, when it
  /// wrote nothing), which must be durable before the result is told.
  private func write<T: Sendable>(
    _ body: @escaping @Sendable (SQLiteSaleDatabase) throws -> T
  ) async throws -> (Result<T, any Error>, UInt64) {
    try await writer.run { [syncer] database -> (Result<T, any Error>, UInt64) in
      // After a failed flush nothing more is written: the disk may have lost
      // what it was given, and no caller could be told about a new change.
      if let failure = syncer.failure { return (.failure(failure), 0) }
      let changesBefore = database.connection.totalChanges
      let result = Result<T, any Error> { try body(database) }
      // Whether the body committed a change, whatever it returned: a late
      // confirm commits the hold's expiry and then reports HOLD_EXPIRED. A
      // body that wrote nothing waits for the commits before it.
      let wrote = database.connection.totalChanges != changesBefore
      return (result, wrote ? syncer.noteCommit() : syncer.lastCommit)
    }
  }

  public var isSoleWriter: Bool { lock != nil }

  public func idempotencyKeyFingerprints() async throws -> Set<UInt64> {
    try await writer.run { $0.claimIndex.keyFingerprints }
  }

  /// How many times the write-ahead log was flushed (for tests and the benchmark).
  public var walFlushes: Int { syncer.flushes }

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

  /// The batch's outcomes once its transaction committed; the next batch
  /// runs on the writer while this one's flush is awaited.
  public func claimCommitted(_ requests: [ClaimRequest], now: Timestamp) async throws -> CommittedClaims {
    let (result, ticket) = try await write { try $0.claim(requests, now: now) }
    return CommittedClaims(outcomes: try result.get()) { [syncer] in try await syncer.waitUntilDurable(ticket) }
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
    // Answered once every commit before the read is durable, as every read.
    try await run { database in
      var found: [String: Booking] = [:]
      for key in idempotencyKeys {
        if let booking = try database.booking(idempotencyKey: key) { found[key] = booking }
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
