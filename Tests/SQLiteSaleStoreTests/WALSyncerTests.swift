import FlashSaleDomain
import FlashSaleTestSupport
import SQLiteSaleStore
import SQLiteSupport
import Testing

/// Group commit: every write waits for a flush of the write-ahead log, and
/// writes in flight together share flushes.
@Suite("WAL syncer")
struct WALSyncerTests {
  @Test("concurrent claims each return after a flush, and share flushes")
  func grouping() async throws {
    let clock = ManualClock()
    let store = try SQLiteSaleStore(path: TemporaryDirectory.shared.file("wal-\(UInt64.random(in: 0 ... .max)).db"))
    let sale = try await store.createSale(
      SaleDefinition.testPhones(quantity: 1_000, from: clock.now()),
      id: SaleID("sale_wal"), idempotencyKey: nil, now: clock.now())
    let before = store.walFlushes
    #expect(before >= 1, "creating the sale returned before any flush")
    // 200 claims of one request each: 200 transactions, 200 commits.
    let held = try await withThrowingTaskGroup(of: Int.self) { group in
      for i in 0..<200 {
        group.addTask {
          let outcomes = try await store.claim(
            [ClaimRequest(
              saleID: sale.id, userID: UserID("u\(i)"), idempotencyKey: "k\(i)",
              bookingID: BookingID(IdentifierFactory.make(prefix: "bkg")))],
            now: clock.now())
          if case .held = outcomes[0] { return 1 }
          return 0
        }
      }
      return try await group.reduce(0, +)
    }
    #expect(held == 200)
    let flushes = store.walFlushes - before
    #expect(flushes >= 1)
    #expect(flushes < 200, "every commit had a flush of its own: no group commit")
  }

  @Test("after a failed flush the store refuses every write")
  func noWritesAfterAFailedFlush() async throws {
    let clock = ManualClock()
    let path = TemporaryDirectory.shared.file("lost-\(UInt64.random(in: 0 ... .max)).db")
    let store = try SQLiteSaleStore(path: path)
    let sale = try await store.createSale(
      SaleDefinition.testPhones(quantity: 5, from: clock.now()),
      id: SaleID("sale_lost"), idempotencyKey: nil, now: clock.now())
    // The log vanishes under the store: the next flush cannot happen.
    #expect(unlink(path + "-wal") == 0)
    for attempt in 0..<2 {
      await #expect(throws: SQLiteError.self, "attempt \(attempt)") {
        _ = try await store.claim(
          [ClaimRequest(
            saleID: sale.id, userID: UserID("u\(attempt)"), idempotencyKey: "k\(attempt)",
            bookingID: BookingID(IdentifierFactory.make(prefix: "bkg")))],
          now: clock.now())
      }
    }
    await #expect(throws: SQLiteError.self) { _ = try await store.sale(sale.id) }
  }

  @Test("a Book whose commit cannot be flushed is answered with the error, not the hold it committed")
  func noHoldAcknowledgedWithoutAFlush() async throws {
    let clock = ManualClock()
    let path = TemporaryDirectory.shared.file("unflushed-\(UInt64.random(in: 0 ... .max)).db")
    let store = try SQLiteSaleStore(path: path)
    let core = SaleCore(store: store, clock: clock, availability: AvailabilityTracker(store: store, clock: clock))
    let sale = try await core.createSale(SaleDefinition.testPhones(quantity: 5, from: clock.now()), idempotencyKey: nil)
    // The claim's transaction commits; the flush after it fails.
    let committed = try await store.claimCommitted(
      [ClaimRequest(
        saleID: sale.id, userID: UserID("u0"), idempotencyKey: "k0",
        bookingID: BookingID(IdentifierFactory.make(prefix: "bkg")))],
      now: clock.now())
    guard case .held = committed.outcomes.first else {
      Issue.record("the claim did not commit a hold: \(committed.outcomes)")
      return
    }
    #expect(unlink(path + "-wal") == 0)
    let settle = try #require(committed.settle)
    await #expect(throws: SQLiteError.self) { try await settle() }
    // Through the sale core (its batcher waits for the flush): the error.
    await #expect(throws: SQLiteError.self) {
      _ = try await core.book(saleID: sale.id, userID: UserID("u1"), idempotencyKey: "k1")
    }
  }

  @Test("a ticket is durable once a flush that started after its commit finished")
  func tickets() async throws {
    let path = TemporaryDirectory.shared.file("plain-\(UInt64.random(in: 0 ... .max))")
    try [UInt8](repeating: 1, count: 4096).write(toFile: path)
    let syncer = WALSyncer(walPath: path, label: "test.sync")
    #expect(syncer.lastCommit == 0)
    let first = syncer.noteCommit()
    let second = syncer.noteCommit()
    #expect((first, second) == (1, 2))
    try await syncer.waitUntilDurable(second)
    #expect(syncer.flushes == 1)
    try await syncer.waitUntilDurable(first)  // already durable: no new flush
    #expect(syncer.flushes == 1)
  }

  @Test("a flush that fails fails every waiting and later caller")
  func failureIsFinal() async throws {
    // stat fails with ENOTDIR: the log cannot be flushed.
    let syncer = WALSyncer(walPath: "/dev/null/cannot-exist-wal", label: "test.sync")
    for attempt in 0..<2 {
      await #expect(throws: SQLiteError.self, "attempt \(attempt)") {
        try await syncer.waitUntilDurable(syncer.noteCommit())
      }
    }
    #expect(syncer.flushes == 1)
  }
}

extension Array where Element == UInt8 {
  fileprivate func write(toFile path: String) throws {
    guard let file = fopen(path, "wb") else { throw SQLiteError(code: 14, message: "cannot create \(path)") }
    defer { fclose(file) }
    _ = withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
  }
}

#if canImport(Glibc)
import Glibc
#endif
