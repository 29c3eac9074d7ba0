import FlashSaleDomain
import FlashSaleTestSupport
import Foundation
import PostgresSaleStore
import SQLiteSaleStore
import Testing

/// The behaviour every ``SaleStore`` must have, checked through the protocol
/// only. The in-memory store runs it here (also with a restock delay, as a
/// shared store has); the SQL stores run the same cases.
@Suite("Sale store contract")
struct SaleStoreContractTests {
  /// The stores under test: PostgreSQL too when `FLASHSALE_TEST_POSTGRES_URL`
  /// names a database (`make test` starts a throwaway one).
  static let stores: [String] =
    ["memory", "memory-restock", "sqlite"] + (ProcessInfo.processInfo.environment["FLASHSALE_TEST_POSTGRES_URL"] == nil ? [] : ["postgres"])

  static func makeStore(_ kind: String) async throws -> any SaleStore {
    switch kind {
    case "sqlite": try SQLiteSaleStore(path: TemporaryDirectory.shared.file("contract-\(UInt64.random(in: 0 ... .max)).db"))
    case "postgres": try await freshPostgresStore()
    case "memory-restock": InMemorySaleStore(restockDelay: .milliseconds(100))
    default: InMemorySaleStore()
    }
  }

  let clock = ManualClock()

  func definition(quantity: Int64 = 3, perUserLimit: Int32 = 1, startsIn: Duration = .zero) -> SaleDefinition {
    let now = clock.now()
    return SaleDefinition(
      itemID: "phone-1", itemName: "Phone", price: Money(currency: "EUR", amountMinor: 129_900), quantity: quantity,
      startsAt: now + startsIn, endsAt: now + startsIn + .seconds(3600), perUserLimit: perUserLimit,
      holdDuration: .seconds(300))
  }

  func makeSale(_ store: any SaleStore, _ definition: SaleDefinition) async throws -> Sale {
    try await store.createSale(
      definition, id: SaleID(IdentifierFactory.make(prefix: "sale")), idempotencyKey: nil, now: clock.now())
  }

  /// One claim, sent again while the store answers "busy" (as the sale core does).
  func claim(_ store: any SaleStore, _ sale: Sale, user: String, key: String? = nil) async throws -> ClaimOutcome {
    let key = key ?? IdentifierFactory.make(prefix: "key")
    for _ in 0..<100 {
      let outcome = try await claimOnce(store, sale, user: user, key: key)
      guard case .busy = outcome else { return outcome }
      try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("still busy after 2 s")
    throw DomainError(.soldOutForNow, "busy")
  }

  /// One claim, one answer.
  func claimOnce(_ store: any SaleStore, _ sale: Sale, user: String, key: String) async throws -> ClaimOutcome {
    let request = ClaimRequest(
      saleID: sale.id, userID: UserID(user), idempotencyKey: key,
      bookingID: BookingID(IdentifierFactory.make(prefix: "bkg")))
    return try await store.claim([request], now: clock.now())[0]
  }

  func held(_ outcome: ClaimOutcome) throws -> (Booking, Int64) {
    guard case .held(let booking, let left) = outcome else {
      Issue.record("expected a hold, got \(outcome)")
      throw DomainError(.invalidArgument, "not held")
    }
    return (booking, left)
  }

  func refusal(_ outcome: ClaimOutcome) -> DomainError.Reason? {
    if case .refused(let error) = outcome { return error.reason }
    return nil
  }

  func reason(_ body: () async throws -> Void) async -> DomainError.Reason? {
    do {
      try await body()
      return nil
    } catch let error as DomainError {
      return error.reason
    } catch {
      Issue.record("unexpected error \(error)")
      return nil
    }
  }

  @Test("claims hold distinct units with growing tokens until sold out for now", arguments: stores)
  func claims(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 3))
    var units = Set<Int64>()
    var lastToken: UInt64 = 0
    for (i, user) in ["a", "b", "c"].enumerated() {
      let (booking, left) = try held(try await claim(store, sale, user: user))
      #expect(booking.status == .hold)
      #expect(booking.holdExpiresAt == clock.now() + .seconds(300))
      #expect(booking.fencingToken > lastToken)
      #expect(left == Int64(2 - i))
      lastToken = booking.fencingToken
      units.insert(booking.unit)
    }
    #expect(units == [0, 1, 2])
    #expect(refusal(try await claim(store, sale, user: "d")) == .soldOutForNow)
    #expect(try await store.counts(sale.id) == UnitCounts(quantity: 3, available: 0, held: 3, booked: 0))
  }

  @Test("when every unit is booked, the sale is sold out for good", arguments: stores)
  func soldOut(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 1))
    let (booking, _) = try held(try await claim(store, sale, user: "a"))
    _ = try await store.confirm(booking.id, token: booking.fencingToken, now: clock.now())
    #expect(refusal(try await claim(store, sale, user: "b")) == .soldOut)
  }

  @Test("a user cannot go over the per-user limit", arguments: stores)
  func limit(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 10, perUserLimit: 2))
    _ = try held(try await claim(store, sale, user: "a"))
    _ = try held(try await claim(store, sale, user: "a"))
    #expect(refusal(try await claim(store, sale, user: "a")) == .limitReached)
    _ = try held(try await claim(store, sale, user: "b"))
  }

  @Test("a place a user frees under the limit is taken again, and only it", arguments: stores)
  func limitPlaceFreed(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 10, perUserLimit: 2))
    let (first, _) = try held(try await claim(store, sale, user: "a"))
    let (second, _) = try held(try await claim(store, sale, user: "a"))
    #expect(refusal(try await claim(store, sale, user: "a")) == .limitReached)
    _ = try await store.cancel(first.id, token: first.fencingToken, now: clock.now())
    _ = try held(try await claim(store, sale, user: "a"))
    #expect(refusal(try await claim(store, sale, user: "a")) == .limitReached)
    _ = try await store.confirm(second.id, token: second.fencingToken, now: clock.now())
    _ = try await store.release(second.id, token: nil, reason: "refund", now: clock.now())
    _ = try held(try await claim(store, sale, user: "a"))
    #expect(refusal(try await claim(store, sale, user: "a")) == .limitReached)
    #expect(try await store.counts(sale.id).held == 2)
    #expect(try await store.audit(sale.id) == [])
  }

  @Test("a retry is replayed whatever the sale's state since: paused, ended, sold out", arguments: stores)
  func replayAfterTheSaleChanged(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 1))
    let (first, _) = try held(try await claim(store, sale, user: "a", key: "k-a"))
    func replayed() async throws -> Booking? {
      if case .replayed(let booking, _) = try await claim(store, sale, user: "a", key: "k-a") { return booking }
      return nil
    }
    #expect(try await replayed() == first)  // sold out
    _ = try await store.setPaused(sale.id, true, now: clock.now())
    #expect(try await replayed() == first)
    _ = try await store.close(sale.id, now: clock.now())
    #expect(try await replayed() == first)
    #expect(refusal(try await claim(store, sale, user: "b", key: "k-a")) == .idempotencyKeyReused)
  }

  @Test("the same idempotency key returns the same booking, and never a second unit", arguments: stores)
  func idempotency(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 5, perUserLimit: 3))
    let (first, _) = try held(try await claim(store, sale, user: "a", key: "k1"))
    guard case .replayed(let again, let left) = try await claim(store, sale, user: "a", key: "k1") else {
      Issue.record("a retry with the same key was not replayed")
      return
    }
    #expect(again == first)
    #expect(left == 4)
    #expect(refusal(try await claim(store, sale, user: "b", key: "k1")) == .idempotencyKeyReused)
    let other = try await makeSale(store, definition(quantity: 5))
    #expect(refusal(try await claim(store, other, user: "a", key: "k1")) == .idempotencyKeyReused)
    #expect(try await store.counts(sale.id).held == 1)
  }

  @Test("one key twice in one batch: one unit, the same booking for both", arguments: stores)
  func keyTwiceInABatch(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 5, perUserLimit: 3))
    let request = ClaimRequest(
      saleID: sale.id, userID: UserID("a"), idempotencyKey: "k-twice",
      bookingID: BookingID(IdentifierFactory.make(prefix: "bkg")))
    let retry = ClaimRequest(  // the same call again: a new booking id is made for it
      saleID: request.saleID, userID: request.userID, idempotencyKey: request.idempotencyKey,
      bookingID: BookingID(IdentifierFactory.make(prefix: "bkg")))
    let outcomes = try await store.claim([request, retry, request], now: clock.now())
    let bookings = outcomes.compactMap { outcome -> Booking? in
      switch outcome {
      case .held(let booking, _), .replayed(let booking, _): booking
      case .refused, .busy: nil
      }
    }
    #expect(bookings.count == 3, "\(outcomes)")
    #expect(Set(bookings).count == 1)
    #expect(outcomes.filter { if case .held = $0 { true } else { false } }.count == 1)
    #expect(try await store.counts(sale.id).held == 1)
    #expect(try await store.audit(sale.id) == [])
  }

  @Test("one key from two users in one batch: the first holds, the other is a reuse", arguments: stores)
  func keyOfTwoUsersInABatch(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 5))
    let requests = ["a", "b", "a"].map { user in
      ClaimRequest(
        saleID: sale.id, userID: UserID(user), idempotencyKey: "k-shared",
        bookingID: BookingID(IdentifierFactory.make(prefix: "bkg")))
    }
    let outcomes = try await store.claim(requests, now: clock.now())
    let (first, _) = try held(outcomes[0])
    #expect(refusal(outcomes[1]) == .idempotencyKeyReused)
    guard case .replayed(let again, _) = outcomes[2] else {
      Issue.record("the repeat of a's claim was not replayed: \(outcomes[2])")
      return
    }
    #expect(again == first)
    #expect(try await store.counts(sale.id).held == 1)
  }

  @Test("one user's several claims in one batch count against the limit one by one", arguments: stores)
  func limitWithinABatch(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 10, perUserLimit: 2))
    _ = try held(try await claim(store, sale, user: "a"))  // a already holds one
    let requests = ["a", "b", "a", "b", "a", "b", "c"].enumerated().map { index, user in
      ClaimRequest(
        saleID: sale.id, userID: UserID(user), idempotencyKey: "batch-\(index)",
        bookingID: BookingID(IdentifierFactory.make(prefix: "bkg")))
    }
    let outcomes = try await store.claim(requests, now: clock.now())
    let heldBy = zip(requests, outcomes).compactMap { request, outcome -> String? in
      if case .held = outcome { return request.userID.rawValue }
      return nil
    }
    #expect(heldBy.sorted() == ["a", "b", "b", "c"])
    #expect(outcomes.compactMap(refusal) == [.limitReached, .limitReached, .limitReached])
    #expect(try await store.counts(sale.id).held == 5)
    #expect(try await store.audit(sale.id) == [])
  }

  @Test("booking is refused outside the sale window and while paused", arguments: stores)
  func windows(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 5, perUserLimit: 5, startsIn: .seconds(60)))
    #expect(refusal(try await claim(store, sale, user: "a")) == .saleNotStarted)
    clock.advance(by: .seconds(60))
    _ = try held(try await claim(store, sale, user: "a"))
    _ = try await store.setPaused(sale.id, true, now: clock.now())
    #expect(refusal(try await claim(store, sale, user: "a")) == .salePaused)
    _ = try await store.setPaused(sale.id, false, now: clock.now())
    _ = try held(try await claim(store, sale, user: "a"))
    _ = try await store.close(sale.id, now: clock.now())
    #expect(refusal(try await claim(store, sale, user: "a")) == .saleEnded)
    let late = try await makeSale(store, definition(quantity: 5))
    clock.advance(by: .seconds(3601))
    #expect(refusal(try await claim(store, late, user: "a")) == .saleEnded)
  }

  @Test("confirm before the deadline books; after it, the expiry wins", arguments: stores)
  func confirmRacingExpiry(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 2, perUserLimit: 1))
    let (a, _) = try held(try await claim(store, sale, user: "a"))
    let (b, _) = try held(try await claim(store, sale, user: "b"))
    clock.advance(by: .seconds(299))
    let booked = try await store.confirm(a.id, token: a.fencingToken, now: clock.now())
    #expect(booked.status == .booked)
    #expect(try await store.confirm(a.id, token: a.fencingToken, now: clock.now()) == booked)  // idempotent
    clock.advance(by: .seconds(1))
    #expect(await reason { _ = try await store.confirm(b.id, token: b.fencingToken, now: clock.now()) } == .holdExpired)
    #expect(try await store.booking(b.id)?.status == .expired)
    #expect(try await store.counts(sale.id) == UnitCounts(quantity: 2, available: 1, held: 0, booked: 1))
  }

  @Test("a stale fencing token is refused, also after the unit went to someone else", arguments: stores)
  func fencing(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 1, perUserLimit: 1))
    let (slow, _) = try held(try await claim(store, sale, user: "slow"))
    #expect(
      await reason { _ = try await store.confirm(slow.id, token: slow.fencingToken + 1, now: clock.now()) }
        == .staleFencingToken)
    clock.advance(by: .seconds(301))
    let expired = try await store.expireHolds(now: clock.now(), limit: 100)
    #expect(expired.map(\.id) == [slow.id])
    let (fast, _) = try held(try await claim(store, sale, user: "fast"))
    #expect(fast.unit == slow.unit)
    #expect(fast.fencingToken > slow.fencingToken)
    // The slow buyer can neither confirm nor take the unit back from the fast one.
    #expect(await reason { _ = try await store.confirm(slow.id, token: slow.fencingToken, now: clock.now()) } == .holdExpired)
    let released = try await store.release(slow.id, token: slow.fencingToken, reason: "compensation", now: clock.now())
    #expect(released.status == .expired)
    #expect(try await store.booking(fast.id)?.status == .hold)
    #expect(try await store.counts(sale.id).held == 1)
  }

  @Test("cancel releases a hold at once; a booked unit is returned with release", arguments: stores)
  func cancelAndRelease(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 1, perUserLimit: 1))
    let (a, _) = try held(try await claim(store, sale, user: "a"))
    let cancelled = try await store.cancel(a.id, token: a.fencingToken, now: clock.now())
    #expect(cancelled.status == .released)
    #expect(try await store.cancel(a.id, token: a.fencingToken, now: clock.now()).status == .released)  // idempotent
    let (b, _) = try held(try await claim(store, sale, user: "b"))
    _ = try await store.confirm(b.id, token: b.fencingToken, now: clock.now())
    #expect(await reason { _ = try await store.cancel(b.id, token: b.fencingToken, now: clock.now()) } == .bookingConfirmed)
    let returned = try await store.release(b.id, token: nil, reason: "refund", now: clock.now())
    #expect(returned.status == .released)
    #expect(returned.releaseReason == "refund")
    #expect(try await store.counts(sale.id) == UnitCounts(quantity: 1, available: 1, held: 0, booked: 0))
    // A user whose hold was released may book again.
    _ = try held(try await claim(store, sale, user: "a"))
  }

  @Test("a store with a restock delay gives a returned unit to no claim before it; one without, at once",
    arguments: stores)
  func restockDelay(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 1, perUserLimit: 1))
    let (a, _) = try held(try await claim(store, sale, user: "a"))
    _ = try await store.cancel(a.id, token: a.fencingToken, now: clock.now())
    guard let delay = store.restockDelay else {
      // Restocked at once: the next claim holds the unit, never "busy".
      let (b, _) = try held(try await claimOnce(store, sale, user: "b", key: "kb"))
      #expect(b.unit == a.unit)
      return
    }
    // The claim is answered "busy" until the unit restocks, then holds it.
    let started = ContinuousClock.now
    var outcome = try await claimOnce(store, sale, user: "b", key: "kb")
    var busyAnswers = 0
    while case .busy(let refusal) = outcome, busyAnswers < 100 {
      #expect(refusal.reason == .soldOutForNow)
      busyAnswers += 1
      try await Task.sleep(for: .milliseconds(20))
      outcome = try await claimOnce(store, sale, user: "b", key: "kb")
    }
    let (b, _) = try held(outcome)
    #expect(busyAnswers > 0)
    #expect(ContinuousClock.now - started >= delay)
    #expect(b.unit == a.unit)
    // The unit's keys, for the key sets of sold-out sales: every booking's.
    #expect(
      try await store.idempotencyKeyFingerprints(of: sale.id)
        == Set([a.idempotencyKey, b.idempotencyKey].map(ClaimedKeys.fingerprint)))
  }

  @Test("the sales read with their stock levels at once are those of single reads; unknown ids are left out",
    arguments: stores)
  func salesWithStock(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let first = try await makeSale(store, definition(quantity: 3, perUserLimit: 1))
    let second = try await makeSale(store, definition(quantity: 5, perUserLimit: 2))
    _ = try held(try await claim(store, first, user: "a"))
    let (b, _) = try held(try await claim(store, second, user: "b"))
    _ = try await store.confirm(b.id, token: b.fencingToken, now: clock.now())
    _ = try held(try await claim(store, second, user: "c"))
    #expect(try await store.salesWithStock([]).isEmpty)
    let found = try await store.salesWithStock([first.id, SaleID("sale-that-is-not"), second.id])
    #expect(found.count == 2)
    for sale in [first, second] {
      let read = found.first { $0.sale.id == sale.id }
      #expect(read?.sale == (try await store.sale(sale.id)))
      #expect(read?.level == (try await store.stockLevel(sale.id)))
    }
    #expect(found.first { $0.sale.id == second.id }?.level.counts == UnitCounts(quantity: 5, available: 3, held: 1, booked: 1))
  }

  @Test("expired holds go back to stock; the next deadline is known", arguments: stores)
  func expiry(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 3, perUserLimit: 1))
    let (a, _) = try held(try await claim(store, sale, user: "a"))
    clock.advance(by: .seconds(10))
    let (b, _) = try held(try await claim(store, sale, user: "b"))
    #expect(try await store.nextHoldDeadline() == a.holdExpiresAt)
    clock.advance(by: .seconds(295))
    #expect(try await store.expireHolds(now: clock.now(), limit: 100).map(\.id) == [a.id])
    #expect(try await store.nextHoldDeadline() == b.holdExpiresAt)
    #expect(try await store.counts(sale.id) == UnitCounts(quantity: 3, available: 2, held: 1, booked: 0))
    #expect(try await store.audit(sale.id).isEmpty)
  }

  @Test("due holds expire in batches of at most the limit, each once, answered whole", arguments: stores)
  func expiryInBatches(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 6, perUserLimit: 1))
    var due: [Booking] = []
    for user in ["a", "b", "c", "d", "e"] { due.append(try held(try await claim(store, sale, user: user)).0) }
    clock.advance(by: .seconds(10))
    let (late, _) = try held(try await claim(store, sale, user: "late"))
    clock.advance(by: .seconds(295))
    let first = try await store.expireHolds(now: clock.now(), limit: 3)
    let second = try await store.expireHolds(now: clock.now(), limit: 3)
    #expect(first.count == 3)
    #expect(second.count == 2)
    #expect(Set((first + second).map(\.id)) == Set(due.map(\.id)))
    for booking in first + second {
      let original = try #require(due.first { $0.id == booking.id })
      #expect(booking.status == .expired)
      #expect(booking.userID == original.userID)
      #expect(booking.unit == original.unit)
      #expect(booking.fencingToken == original.fencingToken)
      #expect(booking.idempotencyKey == original.idempotencyKey)
    }
    #expect(try await store.expireHolds(now: clock.now(), limit: 3).isEmpty)
    #expect(try await store.booking(late.id)?.status == .hold)
    #expect(try await store.counts(sale.id) == UnitCounts(quantity: 6, available: 5, held: 1, booked: 0))
  }

  @Test("the invariant holds through a random mix of operations", arguments: stores)
  func randomOperations(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let sale = try await makeSale(store, definition(quantity: 20, perUserLimit: 2))
    var rng = SeededRandom(seed: 42)
    var live: [Booking] = []
    for _ in 0..<600 {
      switch rng.next() % 5 {
      case 0, 1:
        if case .held(let booking, _) = try await claim(store, sale, user: "u\(rng.next() % 15)") { live.append(booking) }
      case 2 where !live.isEmpty:
        let booking = live[Int(rng.next() % UInt64(live.count))]
        _ = try? await store.confirm(booking.id, token: booking.fencingToken, now: clock.now())
      case 3 where !live.isEmpty:
        let booking = live.remove(at: Int(rng.next() % UInt64(live.count)))
        _ = try? await store.cancel(booking.id, token: booking.fencingToken, now: clock.now())
      default:
        clock.advance(by: .seconds(Int64(rng.next() % 120)))
        _ = try await store.expireHolds(now: clock.now(), limit: 1000)
      }
      let counts = try await store.counts(sale.id)
      #expect(counts.isConsistent, "counts \(counts)")
    }
    #expect(try await store.audit(sale.id) == [])
  }
}

/// A PostgreSQL store on a database of its own, so that tests running in
/// parallel (expiry is store-wide) do not see each other's holds.
func freshPostgresStore() async throws -> PostgresSaleStore {
  let url = ProcessInfo.processInfo.environment["FLASHSALE_TEST_POSTGRES_URL"]!
  let name = "test_\(UInt64.random(in: 0 ... .max))"
  let admin = try await PostgresSaleStore.connect(url: url, maximumConnections: 1)
  try await admin.executeUncheckedForTesting("CREATE DATABASE \(name)")
  admin.shutdown()
  let base = url.hasSuffix("/") ? url : String(url[..<url.lastIndex(of: "/")!]) + "/"
  return try await PostgresSaleStore.connect(url: base + name, maximumConnections: 4)
}
