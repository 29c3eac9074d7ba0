@testable import FlashSaleCheckout
import FlashSaleDomain
import FlashSaleTestSupport
import SQLiteCheckoutStore
import Testing

/// The saga over the real sale core (in memory) and checkout store (SQLite),
/// with a scripted payment provider and a clock moved by hand.
@Suite("Checkout saga")
struct CheckoutSagaTests {
  let clock = ManualClock()
  let saleStore = InMemorySaleStore()
  let core: SaleCore
  let store: SQLiteCheckoutStore

  init() throws {
    core = SaleCore(store: saleStore, clock: clock, availability: AvailabilityTracker(store: saleStore, clock: clock))
    store = try SQLiteCheckoutStore(path: TemporaryDirectory.shared.file("checkout-\(UInt64.random(in: 0 ... .max)).db"))
  }

  func saga(_ payments: ScriptedPaymentGateway) -> CheckoutSaga {
    CheckoutSaga(store: store, bookings: core, payments: payments, clock: clock)
  }

  /// A sale of `quantity` and a hold on one of its units for `user`.
  func hold(user: String = "alice", quantity: Int64 = 1, hold: Duration = .seconds(300)) async throws -> Booking {
    let sale = try await core.createSale(
      SaleDefinition(
        itemID: "phone", itemName: "Phone", price: Money(currency: "EUR", amountMinor: 500), quantity: quantity,
        startsAt: clock.now(), endsAt: clock.now() + .seconds(3600), holdDuration: hold),
      idempotencyKey: nil)
    return try await core.book(saleID: sale.id, userID: UserID(user), idempotencyKey: "book-\(user)").booking
  }

  func start(_ saga: CheckoutSaga, _ booking: Booking, key: String = "k1") async throws -> Checkout {
    try await saga.start(
      bookingID: booking.id, fencingToken: booking.fencingToken, paymentMethodToken: "tok", idempotencyKey: key,
      user: booking.userID)
  }

  func events(_ checkout: Checkout) async throws -> [TransactionEvent.Kind] {
    try await store.events(from: 1, limit: 1000).filter { $0.checkoutID == checkout.id }.map(\.kind)
  }

  @Test("an approved checkout authorizes, orders, confirms, captures, in that order")
  func completes() async throws {
    let payments = ScriptedPaymentGateway()
    let booking = try await hold()
    let checkout = try await start(saga(payments), booking)
    #expect(checkout.state == .completed)
    #expect(checkout.steps.map(\.name) == [
      "verify_hold", "authorize_payment", "create_order", "confirm_booking", "capture_payment", "complete_order",
    ])
    #expect(payments.calls == ["authorize", "capture"])
    #expect(try await saleStore.booking(booking.id)?.status == .booked)
    #expect(try await events(checkout) == [.paymentAuthorized, .orderCreated, .bookingConfirmed, .paymentCaptured])
    #expect(try await store.order(checkout.orderID!)?.status == .completed)
  }

  @Test("a decline releases the hold at once; nothing is ordered")
  func decline() async throws {
    let payments = ScriptedPaymentGateway()
    payments.script("authorize", [.decline])
    let booking = try await hold()
    let checkout = try await start(saga(payments), booking)
    #expect(checkout.state == .compensated && checkout.failureReason == "PAYMENT_DECLINED")
    #expect(checkout.orderID == nil)
    #expect(try await saleStore.booking(booking.id)?.status == .released)
    #expect(try await events(checkout) == [.holdReleased])
  }

  @Test("a lost Authorize answer is recovered by asking the provider: one payment")
  func lostAuthorizeAnswer() async throws {
    let payments = ScriptedPaymentGateway()
    payments.script("authorize", [.lostAnswer])
    let checkout = try await start(saga(payments), try await hold())
    #expect(checkout.state == .completed)
    #expect(payments.payments.count == 1)
    #expect(payments.calls == ["authorize", "capture"], "no second Authorize: the lookup found the first")
  }

  @Test("a hold that expires while the provider is slow ends with the authorization voided")
  func holdExpiresMidSaga() async throws {
    let clock = self.clock
    let payments = ScriptedPaymentGateway { operation in
      if operation == "authorize" { clock.advance(by: .seconds(301)) }
    }
    let booking = try await hold()
    let checkout = try await start(saga(payments), booking)
    #expect(checkout.state == .compensated && checkout.failureReason == "HOLD_EXPIRED")
    #expect(payments.payments.map(\.status) == [.voided])
    #expect(try await events(checkout) == [.paymentAuthorized, .orderCreated, .orderCancelled, .paymentVoided])
    #expect(try await saleStore.booking(booking.id)?.status == .expired)
  }

  @Test("a capture whose answer is lost is captured once")
  func lostCaptureAnswer() async throws {
    let payments = ScriptedPaymentGateway()
    payments.script("capture", [.lostAnswer])
    let checkout = try await start(saga(payments), try await hold())
    #expect(checkout.state == .completed)
    #expect(payments.captures(checkout.paymentID!) == 1)
    #expect(try await events(checkout).filter { $0 == .paymentCaptured }.count == 1)
  }

  @Test("a saga paused by an outage is resumed from its log by another instance")
  func resumeFromLog() async throws {
    let down = ScriptedPaymentGateway()
    down.script("capture", [.unavailable])
    let booking = try await hold()
    let paused = try await start(saga(down), booking)
    #expect(paused.state == .running)
    #expect(paused.steps.last?.name == "capture_payment" && paused.steps.last?.status == .failed)

    // "After a restart": a new saga over the same store and provider records.
    let resumed = try await saga(down).drive(paused.id, wait: .seconds(10))
    #expect(resumed.state == .completed)
    #expect(resumed.steps.filter { $0.name == "capture_payment" }.map(\.attempt) == [1, 2])
    #expect(down.captures(resumed.paymentID!) == 1)
    #expect(try await events(resumed) == [.paymentAuthorized, .orderCreated, .bookingConfirmed, .paymentCaptured])
  }

  @Test("an outage that outlasts the attempts compensates, returning the unit")
  func outageCompensates() async throws {
    let payments = ScriptedPaymentGateway()
    payments.script("authorize", [.unavailable, .unavailable, .unavailable])
    let booking = try await hold()
    let saga = saga(payments)
    var checkout = try await start(saga, booking)
    for _ in 0..<3 where checkout.state == .running {
      checkout = try await saga.drive(checkout.id, wait: .seconds(10))
    }
    #expect(checkout.state == .compensated && checkout.failureReason == "PAYMENT_UNAVAILABLE")
    #expect(checkout.steps.filter { $0.name == "authorize_payment" }.count == 3)
    #expect(try await saleStore.booking(booking.id)?.status == .released)
  }

  @Test("two instances driving one saga record each step and event once")
  func twoDrivers() async throws {
    let payments = ScriptedPaymentGateway()
    payments.script("capture", [.unavailable])
    let paused = try await start(saga(payments), try await hold())
    let (a, b) = (saga(payments), saga(payments))
    async let first = a.drive(paused.id, wait: .seconds(10))
    async let second = b.drive(paused.id, wait: .seconds(10))
    _ = try await (first, second)
    let done = try #require(try await store.checkout(paused.id))
    #expect(done.state == .completed)
    #expect(try await events(done) == [.paymentAuthorized, .orderCreated, .bookingConfirmed, .paymentCaptured])
    #expect(payments.captures(done.paymentID!) == 1)
  }

  @Test("refusals before any payment: stale token, another user's booking, a key reused for another booking")
  func refusals() async throws {
    let payments = ScriptedPaymentGateway()
    let saga = saga(payments)
    let booking = try await hold(quantity: 2)
    await #expect(throws: DomainError(.staleFencingToken, "fencing token 99 is not the booking's current one")) {
      try await saga.start(
        bookingID: booking.id, fencingToken: 99, paymentMethodToken: "tok", idempotencyKey: "k", user: booking.userID)
    }
    await #expect(throws: DomainError(.bookingNotFound, "no booking \(booking.id)")) {
      try await saga.start(
        bookingID: booking.id, fencingToken: booking.fencingToken, paymentMethodToken: "tok", idempotencyKey: "k",
        user: UserID("mallory"))
    }
    let first = try await start(saga, booking, key: "same")
    #expect(try await start(saga, booking, key: "same").id == first.id)
    await #expect(throws: DomainError.self) { try await start(saga, booking, key: "other") }
    #expect(payments.payments.count == 1)
  }

  @Test("the next step follows from what the saga did")
  func nextSteps() {
    var checkout = Checkout(
      id: CheckoutID("c"), bookingID: BookingID("b"), fencingToken: 1, saleID: SaleID("s"), userID: UserID("u"),
      amount: Money(currency: "EUR", amountMinor: 1), paymentMethodToken: "t", idempotencyKey: "k",
      createdAt: clock.now(), updatedAt: clock.now())
    #expect(CheckoutSaga.nextStep(checkout) == "authorize_payment")
    checkout.payment = .authorized
    #expect(CheckoutSaga.nextStep(checkout) == "create_order")
    checkout.order = .pending
    #expect(CheckoutSaga.nextStep(checkout) == "confirm_booking")
    checkout.unit = .booked
    #expect(CheckoutSaga.nextStep(checkout) == "capture_payment")
    checkout.payment = .captured
    #expect(CheckoutSaga.nextStep(checkout) == "complete_order")
    checkout.state = .compensating
    #expect(CheckoutSaga.nextStep(checkout) == "release_unit")
    checkout.unit = .released
    #expect(CheckoutSaga.nextStep(checkout) == "cancel_order")
    checkout.order = .cancelled
    #expect(CheckoutSaga.nextStep(checkout) == "refund_payment")
    checkout.payment = .unknown
    #expect(CheckoutSaga.nextStep(checkout) == "void_payment")
    checkout.payment = .voided
    #expect(CheckoutSaga.nextStep(checkout) == nil)
  }
}
