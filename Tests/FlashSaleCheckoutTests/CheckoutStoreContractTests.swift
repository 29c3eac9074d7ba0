import FlashSaleCheckout
import FlashSaleDomain
import FlashSaleTestSupport
import Foundation
import PostgresCheckoutStore
import SQLiteCheckoutStore
import Synchronization
import Testing

/// What every ``CheckoutStore`` must do, on SQLite and (when
/// `FLASHSALE_TEST_POSTGRES_URL` is set) on PostgreSQL.
@Suite("Checkout store contract")
struct CheckoutStoreContractTests {
  static let stores: [String] =
    ["sqlite"] + (ProcessInfo.processInfo.environment["FLASHSALE_TEST_POSTGRES_URL"] == nil ? [] : ["postgres"])

  static func makeStore(_ kind: String) async throws -> any CheckoutStore {
    switch kind {
    case "postgres":
      let url = ProcessInfo.processInfo.environment["FLASHSALE_TEST_POSTGRES_URL"]!
      let name = "checkout_test_\(UInt64.random(in: 0 ... .max))"
      let admin = try await PostgresCheckoutStore.connect(url: url, maximumConnections: 1)
      try await admin.executeUncheckedForTesting("CREATE DATABASE \(name)")
      admin.shutdown()
      return try await PostgresCheckoutStore.connect(
        url: String(url[..<url.lastIndex(of: "/")!]) + "/" + name, maximumConnections: 8)
    default:
      return try SQLiteCheckoutStore(path: TemporaryDirectory.shared.file("checkouts-\(UInt64.random(in: 0 ... .max)).db"))
    }
  }

  let clock = ManualClock()

  func checkout(_ n: Int, user: String = "u", key: String? = nil, sale: String = "s1") -> Checkout {
    Checkout(
      id: CheckoutID("chk_\(n)"), bookingID: BookingID("bkg_\(n)"), fencingToken: UInt64(n), saleID: SaleID(sale),
      userID: UserID(user), amount: Money(currency: "EUR", amountMinor: 100), paymentMethodToken: "tok",
      idempotencyKey: key ?? "key-\(n)",
      steps: [
        CheckoutStep(
          sequence: 1, name: "verify_hold", status: .succeeded, attempt: 1, detail: "", startedAt: clock.now(),
          finishedAt: clock.now())
      ], createdAt: clock.now() + .milliseconds(Int64(n)), updatedAt: clock.now())
  }

  func event(_ checkout: Checkout, _ kind: TransactionEvent.Kind) -> TransactionEvent {
    TransactionEvent(
      id: IdentifierFactory.make(prefix: "evt"), kind: kind, checkoutID: checkout.id, bookingID: checkout.bookingID,
      saleID: checkout.saleID, userID: checkout.userID, orderID: nil, paymentID: nil, amount: checkout.amount,
      occurredAt: clock.now())
  }

  @Test("create is idempotent per user and key; one checkout per booking", arguments: stores)
  func create(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let first = checkout(1)
    #expect(try await store.create(first).created)
    let again = try await store.create(checkout(2, key: "key-1"))
    #expect(!again.created && again.checkout.id == first.id && again.checkout.steps.count == 1)
    var twin = checkout(3)
    twin.bookingID = first.bookingID
    await #expect(throws: DomainError.self) { try await store.create(twin) }
    #expect(try await store.checkout(bookingID: first.bookingID)?.id == first.id)
  }

  @Test("a save from a stale revision is a conflict and writes nothing", arguments: stores)
  func conflict(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    var c = checkout(1)
    try await store.create(c)
    c.payment = .authorized
    try await store.save(c, order: nil, events: [event(c, .paymentAuthorized)])
    // `c` still carries revision 0: the stored one is 1.
    c.payment = .declined
    await #expect(throws: CheckoutConflict.self) {
      try await store.save(c, order: nil, events: [self.event(c, .holdReleased)])
    }
    let stored = try #require(try await store.checkout(c.id))
    #expect(stored.payment == .authorized && stored.revision == 1)
    #expect(try await store.events(from: 1, limit: 10).map(\.kind) == [.paymentAuthorized])
  }

  @Test("unfinished lists only sagas idle since the given time", arguments: stores)
  func unfinished(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    try await store.create(checkout(1))
    var done = checkout(2)
    try await store.create(done)
    done.state = .completed
    try await store.save(done, order: nil, events: [])
    #expect(try await store.unfinished(idleSince: clock.now(), limit: 10).map(\.id) == [CheckoutID("chk_1")])
    #expect(try await store.unfinished(idleSince: clock.now() + .seconds(-1), limit: 10).isEmpty)
  }

  @Test("orders page newest first by user and by sale", arguments: stores)
  func orders(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    for n in 1...5 {
      var c = checkout(n, user: n % 2 == 0 ? "even" : "odd")
      try await store.create(c)
      c.order = .pending
      c.orderID = "ord_\(n)"
      let order = Order(
        id: "ord_\(n)", checkoutID: c.id, bookingID: c.bookingID, saleID: c.saleID, userID: c.userID, status: .pending,
        amount: c.amount, paymentID: nil, createdAt: clock.now() + .seconds(Int64(n)), updatedAt: clock.now())
      try await store.save(c, order: order, events: [])
    }
    let first = try await store.orders(.sale(SaleID("s1")), limit: 2, before: nil)
    #expect(first.map(\.id) == ["ord_5", "ord_4"])
    let next = try await store.orders(
      .sale(SaleID("s1")), limit: 10, before: OrderCursor(createdAt: first[1].createdAt, id: first[1].id))
    #expect(next.map(\.id) == ["ord_3", "ord_2", "ord_1"])
    #expect(try await store.orders(.user(UserID("even")), limit: 10, before: nil).map(\.id) == ["ord_4", "ord_2"])
  }

  @Test("concurrent writers: the stream stays consecutive, and readers only ever see a prefix", arguments: stores)
  func outboxUnderConcurrency(kind: String) async throws {
    let store = try await Self.makeStore(kind)
    let writers = 8
    let savesEach = 15
    for w in 0..<writers { try await store.create(checkout(w)) }
    let done = Atomic<Bool>(false)
    // The reader resumes from where it stopped, and now and then from an
    // earlier offset: what it reads again must be what it read before.
    let reader = Task {
      var seen: [TransactionEvent] = []
      var random = SeededRandom(seed: 7)
      while true {
        let finished = done.load(ordering: .acquiring)
        var from = UInt64(seen.count + 1)
        if !seen.isEmpty, Int.random(in: 0..<4, using: &random) == 0 {
          from = UInt64.random(in: 1...UInt64(seen.count), using: &random)
        }
        let page = try await store.events(from: from, limit: 7)
        for (index, event) in page.enumerated() {
          #expect(event.offset == from + UInt64(index), "a gap: expected \(from + UInt64(index)), got \(event.offset)")
          if event.offset <= UInt64(seen.count) {
            #expect(seen[Int(event.offset) - 1].id == event.id, "offset \(event.offset) changed")
          } else {
            seen.append(event)
          }
        }
        if finished && page.isEmpty && from == UInt64(seen.count + 1) { return seen }
      }
    }
    try await withThrowingTaskGroup(of: Void.self) { group in
      for w in 0..<writers {
        group.addTask {
          var c = try #require(try await store.checkout(CheckoutID("chk_\(w)")))
          for _ in 0..<savesEach {
            try await store.save(c, order: nil, events: [self.event(c, .orderCreated), self.event(c, .paymentAuthorized)])
            c.revision += 1
          }
        }
      }
      try await group.waitForAll()
    }
    done.store(true, ordering: .releasing)
    let seen = try await reader.value
    #expect(seen.count == writers * savesEach * 2)
    #expect(seen.map(\.offset) == Array(1...UInt64(writers * savesEach * 2)))
    #expect(Set(seen.map(\.id)).count == seen.count)
    // Each writer's events appear in the order it committed them.
    for w in 0..<writers {
      let kinds = seen.filter { $0.checkoutID == CheckoutID("chk_\(w)") }.map(\.kind)
      #expect(kinds == Array(repeating: [TransactionEvent.Kind.orderCreated, .paymentAuthorized], count: savesEach).flatMap { $0 })
    }
  }
}
