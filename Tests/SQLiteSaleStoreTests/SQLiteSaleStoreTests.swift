import FlashSaleDomain
import FlashSaleTestSupport
import SQLiteSaleStore
import SQLiteSupport
import Testing

/// What only the SQLite store must show: what survives reopening the file, what
/// a failed commit leaves behind, and that the audit reads the rows themselves.
@Suite("SQLite sale store")
struct SQLiteSaleStoreTests {
  let clock = ManualClock()

  func definition(quantity: Int64 = 5, perUserLimit: Int32 = 1) -> SaleDefinition {
    SaleDefinition(
      itemID: "phone-1", itemName: "Phone", price: Money(currency: "EUR", amountMinor: 129_900), quantity: quantity,
      startsAt: clock.now(), endsAt: clock.now() + .seconds(3600), perUserLimit: perUserLimit)
  }

  func request(_ sale: Sale, user: String, key: String) -> ClaimRequest {
    ClaimRequest(
      saleID: sale.id, userID: UserID(user), idempotencyKey: key, bookingID: BookingID(IdentifierFactory.make(prefix: "bkg")))
  }

  func freshPath() -> String {
    TemporaryDirectory.shared.file("sqlite-\(UInt64.random(in: 0 ... .max)).db")
  }

  @Test("SQLite keeps no memory statistics, which cost a process-wide mutex per allocation")
  func noMemoryStatistics() async throws {
    let store = try SQLiteSaleStore(path: freshPath())
    _ = try await store.sales(limit: 10, before: nil)
    #expect(SQLiteConnection.memoryUsedAsCounted == 0)
  }

  @Test("holds and idempotency keys survive reopening the file")
  func reopen() async throws {
    let path = freshPath()
    var store: SQLiteSaleStore? = try SQLiteSaleStore(path: path)
    let sale = try await store!.createSale(definition(), id: SaleID("sale_1"), idempotencyKey: "create-1", now: clock.now())
    let outcomes = try await store!.claim([request(sale, user: "a", key: "k1")], now: clock.now())
    guard case .held(let booking, _) = outcomes[0] else {
      Issue.record("no hold: \(outcomes)")
      return
    }
    store = nil  // closes the connection

    let reopened = try SQLiteSaleStore(path: path)
    #expect(try await reopened.sale(sale.id) == sale)
    #expect(try await reopened.createSale(definition(quantity: 9), id: SaleID("sale_2"), idempotencyKey: "create-1", now: clock.now()) == sale)
    let again = try await reopened.claim([request(sale, user: "a", key: "k1")], now: clock.now())
    #expect(again == [.replayed(booking, unitsLeft: 4)])
    #expect(try await reopened.counts(sale.id) == UnitCounts(quantity: 5, available: 4, held: 1, booked: 0))
  }

  @Test("a file written by an older schema (unique key and user indexes) migrates: its keys and holds still count")
  func migrationFromIndexedKeysAndUsers() async throws {
    let path = freshPath()
    var store: SQLiteSaleStore? = try SQLiteSaleStore(path: path)
    let sale = try await store!.createSale(
      definition(perUserLimit: 2), id: SaleID("sale_m"), idempotencyKey: nil, now: clock.now())
    let outcomes = try await store!.claim(
      [request(sale, user: "a", key: "a1"), request(sale, user: "a", key: "a2"), request(sale, user: "b", key: "b1")],
      now: clock.now())
    guard case .held(let first, _) = outcomes[0] else {
      Issue.record("no hold: \(outcomes)")
      return
    }
    // Back to schema version 2, as a build before user slots left the file:
    // the user index of then; migrations 3 and 4 run again at the next open.
    try await store!.executeUncheckedForTesting(
      """
      CREATE INDEX bookings_taken_by_user ON bookings (sale_id, user_id) WHERE status IN ('hold', 'booked');
      PRAGMA user_version = 2;
      """)
    store = nil

    let migrated = try SQLiteSaleStore(path: path)
    let reader = try SQLiteConnection(path: path, mode: .readOnly)
    #expect(try reader.pragmaInteger("user_version") == 4)
    let indexes = try reader.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'bookings' ORDER BY name") {
      $0.text(0)
    }
    #expect(indexes == ["bookings_hold_deadlines", "bookings_one_taker_per_unit", "sqlite_autoindex_bookings_1"])
    guard case .refused(let refusal) = try await migrated.claim([request(sale, user: "a", key: "a3")], now: clock.now())[0]
    else {
      Issue.record("a third hold went past the limit of 2")
      return
    }
    #expect(refusal.reason == .limitReached)
    guard case .replayed(let replayed, _) = try await migrated.claim([request(sale, user: "b", key: "b1")], now: clock.now())[0]
    else {
      Issue.record("a key used before the migration was not recognized")
      return
    }
    #expect(replayed.userID == UserID("b"))
    _ = try await migrated.cancel(first.id, token: first.fencingToken, now: clock.now())
    guard case .held = try await migrated.claim([request(sale, user: "a", key: "a4")], now: clock.now())[0] else {
      Issue.record("the place a cancel freed was not taken")
      return
    }
    #expect(try await migrated.audit(sale.id) == [])
  }

  @Test("a batch whose commit fails for a full volume applies nothing and reports the failure")
  func fullVolume() async throws {
    let store = try SQLiteSaleStore(path: freshPath(), maximumFileSize: 0)  // no room to grow past its size now
    let sale = try await store.createSale(definition(quantity: 1_000_000, perUserLimit: 1), id: SaleID("sale_full"), idempotencyKey: nil, now: clock.now())
    // Long keys fill the few free pages quickly.
    let batch = (0..<400).map { request(sale, user: "user-\($0)", key: String(repeating: "k", count: 900) + "\($0)") }
    var failure: (any Error)?
    do {
      _ = try await store.claim(batch, now: clock.now())
    } catch {
      failure = error
    }
    let error = try #require(failure as? SQLiteError)
    #expect(error.isFull, "\(error)")
    #expect(try await store.counts(sale.id) == UnitCounts(quantity: 1_000_000, available: 1_000_000, held: 0, booked: 0))
    #expect(try await store.nextHoldDeadline() == nil)
    #expect(try await store.audit(sale.id) == [])
  }

  @Test("the audit reads the rows: a double hold, a user over the limit and a key used twice, written with SQL, are named")
  func auditCatchesCorruption() async throws {
    let store = try SQLiteSaleStore(path: freshPath())
    let sale = try await store.createSale(definition(quantity: 5, perUserLimit: 1), id: SaleID("sale_c"), idempotencyKey: nil, now: clock.now())
    _ = try await store.claim([request(sale, user: "alice", key: "a1"), request(sale, user: "bob", key: "b1")], now: clock.now())
    #expect(try await store.audit(sale.id) == [])
    // The unique index refuses a second taker of a unit; drop it, as a bad
    // manual fix would, and write the corruption behind the store's back.
    await #expect(throws: SQLiteError.self) {
      try await store.executeUncheckedForTesting(
        "INSERT INTO bookings VALUES ('bkg_dup', 'sale_c', 'carol', 0, 'hold', 0, 0, 0, 'c1', 99, NULL)")
    }
    try await store.executeUncheckedForTesting(
      """
      DROP INDEX bookings_one_taker_per_unit;
      INSERT INTO bookings VALUES ('bkg_dup', 'sale_c', 'carol', 0, 'hold', 0, 0, 0, 'c1', 99, NULL);
      INSERT INTO bookings VALUES ('bkg_over', 'sale_c', 'alice', 3, 'booked', 0, 0, 0, 'a2', 98, NULL);
      INSERT INTO bookings VALUES ('bkg_key', 'sale_c', 'dave', 4, 'released', 0, 0, 0, 'b1', 97, 'cancelled');
      """)
    let findings = try await store.audit(sale.id).map(\.message)
    #expect(findings.contains { $0.contains("unit 0 is taken 2 times") && $0.contains("bkg_dup") })
    #expect(findings.contains { $0.contains("user alice") && $0.contains("bkg_over") })
    #expect(findings.contains { $0.contains("idempotency key \"b1\" made 2 bookings") && $0.contains("bkg_key") })
    #expect(findings.contains { $0.contains("counters") })
  }
}

/// The embedded store served by one process.
@Suite("SQLite store ownership")
struct SQLiteStoreOwnershipTests {
  @Test("a second process cannot serve the file; tools open it beside the server")
  func exclusive() async throws {
    let path = TemporaryDirectory.shared.file("owned-\(UInt64.random(in: 0 ... .max)).db")
    var owner: SQLiteSaleStore? = try SQLiteSaleStore(path: path, exclusive: true)
    #expect(owner?.isSoleWriter == true)
    #expect {
      _ = try SQLiteSaleStore(path: path, exclusive: true)
    } throws: { error in
      "\(error)".contains("is locked: a flashsale process serving \(path) is running")
    }
    let tool = try SQLiteSaleStore(path: path)
    #expect(!tool.isSoleWriter)
    owner = nil  // released
    #expect(try SQLiteSaleStore(path: path, exclusive: true).isSoleWriter)
  }

  @Test("the key fingerprints are those of the stored bookings")
  func fingerprints() async throws {
    let clock = ManualClock()
    let store = try SQLiteSaleStore(path: TemporaryDirectory.shared.file("keys-\(UInt64.random(in: 0 ... .max)).db"))
    let sale = try await store.createSale(
      SaleDefinition.testPhones(quantity: 10, from: clock.now()),
      id: SaleID("sale_keys"), idempotencyKey: nil, now: clock.now())
    let keys = ["k-1", "k-ü", "k-3"]
    _ = try await store.claim(
      keys.enumerated().map {
        ClaimRequest(
          saleID: sale.id, userID: UserID("u\($0.offset)"), idempotencyKey: $0.element,
          bookingID: BookingID(IdentifierFactory.make(prefix: "bkg")))
      }, now: clock.now())
    #expect(try await store.idempotencyKeyFingerprints() == Set(keys.map(ClaimedKeys.fingerprint)))
  }
}
