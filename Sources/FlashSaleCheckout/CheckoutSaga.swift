public import FlashSaleDomain
public import Logging
import Metrics
import Synchronization

/// The checkout saga: takes a hold to a purchase, or undoes what it did.
///
/// Forward steps, in this order:
///
/// 1. `verify_hold` — the booking is the caller's, a hold, its token current
///    and its deadline ahead (checked before the checkout exists);
/// 2. `authorize_payment` — the amount is reserved, nothing taken yet;
/// 3. `create_order` — a pending order;
/// 4. `confirm_booking` — the hold becomes the buyer's unit (token presented);
/// 5. `capture_payment` — the money is taken, only now that the unit is sure;
/// 6. `complete_order`.
///
/// Authorizing before confirming means a unit is never confirmed for a buyer
/// who cannot pay; confirming before capturing means no one is charged for a
/// unit they did not get (a hold that expired mid-saga fails the confirm,
/// and the authorization is voided, which costs the buyer nothing).
///
/// When a step fails for good, the saga compensates: it gives the unit back
/// first (buyers are waiting for it), cancels the order, then voids or
/// refunds the payment. Compensations are retried until they succeed.
///
/// Every step is logged `started` (durably) before it acts and finished
/// after, with the events it emits in the same transaction. A saga found
/// unfinished after a crash resumes from its log: a step that was started
/// but not finished runs again, and a payment step first asks the provider
/// what really happened. Every external call carries an idempotency key
/// derived from the checkout id and the step, so a repeated step never
/// charges twice.
public final class CheckoutSaga: Sendable {
  private let store: any CheckoutStore
  private let bookings: any CheckoutBookings
  private let payments: any PaymentGateway
  private let clock: any WallClock
  private let logger: Logger
  /// Sagas being driven in this process, so that each runs once at a time.
  private let running = Mutex<[CheckoutID: Task<Void, Never>]>([:])
  /// Told when events were committed here, so that watchers look at once.
  public let eventsCommitted: EventSignal
  /// A forward step that cannot reach the provider is tried this many times
  /// (each with the gateway's own retries) before the saga compensates.
  private let maximumForwardAttempts: Int
  private let started = Counter(label: "flashsale_checkouts_total", dimensions: [("event", "started")])
  private let completed = Counter(label: "flashsale_checkouts_total", dimensions: [("event", "completed")])
  private let compensated = Counter(label: "flashsale_checkouts_total", dimensions: [("event", "compensated")])

  /// The longest idempotency key or payment method token accepted.
  public static let maximumKeyLength = 128

  public init(
    store: any CheckoutStore, bookings: any CheckoutBookings, payments: any PaymentGateway, clock: any WallClock,
    maximumForwardAttempts: Int = 3, logger: Logger = Logger(label: "flashsale.checkout")
  ) {
    self.store = store
    self.bookings = bookings
    self.payments = payments
    self.clock = clock
    self.maximumForwardAttempts = max(1, maximumForwardAttempts)
    self.logger = logger
    self.eventsCommitted = EventSignal()
  }

  // MARK: Use cases

  /// Starts the checkout of `bookingID` for `user` (or, with an idempotency
  /// key the user used before for this booking, returns that checkout), and
  /// drives it for up to `wait`: the answer is the checkout when it ended or
  /// when `wait` ran out (then still running, and it goes on without the caller).
  public func start(
    bookingID: BookingID, fencingToken: UInt64, paymentMethodToken: String, idempotencyKey: String, user: UserID,
    wait: Duration = .seconds(15)
  ) async throws -> Checkout {
    try Self.check(bookingID.rawValue, field: "booking_id", maximum: 64)
    try Self.check(paymentMethodToken, field: "payment_method_token", maximum: Self.maximumKeyLength)
    try Self.check(idempotencyKey, field: "idempotency_key", maximum: Self.maximumKeyLength)
    guard fencingToken > 0 else {
      throw DomainError(
        .invalidArgument, "fencing_token: must be the token Book returned", field: "fencing_token")
    }
    let booking = try await bookings.booking(bookingID)
    guard booking.userID == user else { throw DomainError(.bookingNotFound, "no booking \(bookingID)") }
    if let existing = try await store.checkout(bookingID: bookingID), existing.idempotencyKey != idempotencyKey {
      throw DomainError(
        .checkoutExists, "booking \(bookingID) already has checkout \(existing.id) (another idempotency key)")
    }

    let now = clock.now()
    let candidate = Checkout(
      id: CheckoutID(IdentifierFactory.make(prefix: "chk")), bookingID: bookingID, fencingToken: fencingToken,
      saleID: booking.saleID, userID: user, amount: Money(currency: "", amountMinor: 0),
      paymentMethodToken: paymentMethodToken, idempotencyKey: idempotencyKey, createdAt: now, updatedAt: now)
    if let replay = try await replay(of: candidate) { return try await drive(replay.id, wait: wait) }

    try Self.verifyHold(booking, token: fencingToken, now: now)
    let sale = try await bookings.sale(booking.saleID)
    var checkout = candidate
    checkout.amount = sale.definition.price
    checkout.steps = [
      CheckoutStep(
        sequence: 1, name: Step.verifyHold, status: .succeeded, attempt: 1,
        detail: "hold until \(booking.holdExpiresAt), token \(fencingToken)", startedAt: now, finishedAt: now)
    ]
    let (stored, created) = try await store.create(checkout)
    if !created, stored.bookingID != bookingID {
      throw Self.keyReused(idempotencyKey)
    }
    if created { started.increment() }
    return try await drive(stored.id, wait: wait)
  }

  /// The checkout with `id`; `user`, when given, must own it.
  public func checkout(_ id: CheckoutID, user: UserID?) async throws -> Checkout {
    try Self.check(id.rawValue, field: "checkout_id", maximum: 64)
    guard let checkout = try await store.checkout(id), user == nil || checkout.userID == user else {
      throw DomainError(.checkoutNotFound, "no checkout \(id)")
    }
    return checkout
  }

  /// A page of orders, newest first, and where the next page starts.
  public func orders(
    _ filter: OrderFilter, pageSize: Int, after cursor: OrderCursor?
  ) async throws -> (orders: [Order], next: OrderCursor?) {
    let page = try await store.orders(filter, limit: pageSize + 1, before: cursor)
    guard page.count > pageSize else { return (page, nil) }
    let shown = Array(page.prefix(pageSize))
    return (shown, shown.last.map { OrderCursor(createdAt: $0.createdAt, id: $0.id) })
  }

  /// Up to `limit` events from `offset` on.
  public func events(from offset: UInt64, limit: Int) async throws -> [TransactionEvent] {
    try await store.events(from: max(1, offset), limit: limit)
  }

  /// Drives every unfinished checkout not already running in this process
  /// and not written for `idleFor` (at start-up: the sagas a crash
  /// interrupted; later: those paused by an outage, or left by a process that
  /// died). Returns how many it started.
  ///
  /// Two processes may come to drive one saga (one was slow, not dead): each
  /// write is checked against the revision it read, so only one records each
  /// step and its events, and the provider calls they repeat carry the same
  /// idempotency keys.
  @discardableResult
  public func resumeUnfinished(idleFor: Duration = .seconds(2), limit: Int = 500) async throws -> Int {
    let unfinished = try await store.unfinished(idleSince: clock.now() + (.zero - idleFor), limit: limit)
    var resumed = 0
    for checkout in unfinished where ensureRunning(checkout.id) {
      resumed += 1
    }
    if resumed > 0 { logger.info("resuming checkouts", metadata: ["count": "\(resumed)"]) }
    return resumed
  }

  // MARK: Driving

  /// Makes sure a task drives `id`; returns whether it started one.
  @discardableResult
  private func ensureRunning(_ id: CheckoutID) -> Bool {
    running.withLock { running in
      if running[id] != nil { return false }
      running[id] = Task {
        await self.run(id)
        _ = self.running.withLock { $0.removeValue(forKey: id) }
      }
      return true
    }
  }

  /// Drives checkout `id` (unless this process already does) and waits for
  /// it for up to `wait`; returns it as stored then.
  public func drive(_ id: CheckoutID, wait: Duration) async throws -> Checkout {
    ensureRunning(id)
    if let task = running.withLock({ $0[id] }) {
      await withTaskGroup(of: Void.self) { group in
        group.addTask { await task.value }
        group.addTask { try? await Task.sleep(for: wait) }
        await group.next()
        group.cancelAll()
      }
    }
    guard let checkout = try await store.checkout(id) else { throw StoreFault("checkout \(id) vanished") }
    return checkout
  }

  /// Runs the saga's steps until it ends, or until a step cannot go on now
  /// (the store or the provider is down during a compensation): the resume
  /// job tries again later.
  private func run(_ id: CheckoutID) async {
    var conflicts = 0
    while true {
      do {
        guard var checkout = try await store.checkout(id) else { return }
        while !checkout.state.isFinal {
          guard try await advance(&checkout) else { return }
        }
        return
      } catch is CheckoutConflict {
        conflicts += 1
        if conflicts > 5 { return }
      } catch {
        logger.warning("checkout paused; it will be resumed", metadata: ["checkout": "\(id)", "error": "\(error)"])
        return
      }
    }
  }

  /// The step names of the log.
  public enum Step {
    public static let verifyHold = "verify_hold"
    public static let authorizePayment = "authorize_payment"
    public static let createOrder = "create_order"
    public static let confirmBooking = "confirm_booking"
    public static let capturePayment = "capture_payment"
    public static let completeOrder = "complete_order"
    public static let releaseUnit = "release_unit"
    public static let cancelOrder = "cancel_order"
    public static let voidPayment = "void_payment"
    public static let refundPayment = "refund_payment"
  }

  /// The next step of a checkout, from what it did so far.
  static func nextStep(_ checkout: Checkout) -> String? {
    switch checkout.state {
    case .completed, .compensated:
      return nil
    case .running:
      switch (checkout.payment, checkout.order, checkout.unit) {
      case (.none, _, _), (.unknown, _, _): return Step.authorizePayment
      case (.authorized, nil, _): return Step.createOrder
      case (.authorized, _, .held): return Step.confirmBooking
      case (.authorized, _, .booked): return Step.capturePayment
      case (.captured, .pending, _): return Step.completeOrder
      default: return nil  // not reachable: a failed step switches to compensating
      }
    case .compensating:
      if checkout.unit != .released { return Step.releaseUnit }
      if checkout.order == .pending { return Step.cancelOrder }
      switch checkout.payment {
      case .captured: return Step.refundPayment
      case .authorized, .unknown: return Step.voidPayment
      default: return nil
      }
    }
  }

  /// What a step came to.
  private struct StepResult {
    var status: CheckoutStep.Status
    var detail: String
    var events: [TransactionEvent.Kind] = []
    var order: Order? = nil
    /// Stop driving for now (the step could not act; try later).
    var pause = false
  }

  /// Runs the next step: logs it started, acts, logs how it ended with its
  /// events. Returns false when the saga should pause.
  private func advance(_ checkout: inout Checkout) async throws -> Bool {
    guard let name = Self.nextStep(checkout) else {
      if checkout.state == .running {
        throw StoreFault("checkout \(checkout.id) has no next step in state \(checkout.payment)/\(checkout.unit)")
      }
      // Compensating with nothing left to undo.
      checkout.state = .compensated
      try await commit(&checkout, order: nil, events: [])
      compensated.increment()
      logger.info("checkout compensated", metadata: ["checkout": "\(checkout.id)", "reason": "\(checkout.failureReason ?? "")"])
      return true
    }
    // The log first: a crash from here on finds the step started.
    let attempt = checkout.steps.filter { $0.name == name }.count + 1
    let now = clock.now()
    checkout.steps.append(
      CheckoutStep(
        sequence: checkout.steps.count + 1, name: name, status: .started, attempt: attempt, detail: "",
        startedAt: now, finishedAt: nil))
    try await commit(&checkout, order: nil, events: [])

    let result: StepResult
    switch name {
    case Step.authorizePayment: result = await authorize(&checkout, attempt: attempt)
    case Step.createOrder: result = createOrder(&checkout)
    case Step.confirmBooking: result = try await confirmBooking(&checkout)
    case Step.capturePayment: result = await capture(&checkout, attempt: attempt)
    case Step.completeOrder: result = completeOrder(&checkout)
    case Step.releaseUnit: result = try await releaseUnit(&checkout)
    case Step.cancelOrder: result = cancelOrder(&checkout)
    case Step.voidPayment: result = await void(&checkout, attempt: attempt)
    case Step.refundPayment: result = await refund(&checkout, attempt: attempt)
    default: throw StoreFault("unknown step \(name)")
    }
    let index = checkout.steps.count - 1
    checkout.steps[index].status = result.status
    checkout.steps[index].detail = result.detail
    checkout.steps[index].finishedAt = clock.now()
    if result.pause {
      // Logged as failed; the resume job starts the step again later.
      try await commit(&checkout, order: nil, events: [])
      logger.info(
        "checkout step could not act; will retry",
        metadata: ["checkout": "\(checkout.id)", "step": "\(name)", "detail": "\(result.detail)"])
      return false
    }
    if checkout.state == .running, checkout.payment == .captured, checkout.order == .completed {
      checkout.state = .completed
    }
    let events = result.events.map { event(kind: $0, for: checkout) }
    try await commit(&checkout, order: result.order, events: events)
    if checkout.state == .completed {
      completed.increment()
      logger.info("checkout completed", metadata: ["checkout": "\(checkout.id)", "order": "\(checkout.orderID ?? "")"])
    }
    return true
  }

  /// Switches a running saga to compensation for `reason`.
  private func fail(_ checkout: inout Checkout, _ reason: DomainError.Reason, detail: String) -> StepResult {
    checkout.state = .compensating
    checkout.failureReason = reason.rawValue
    return StepResult(status: .failed, detail: "\(reason): \(detail)")
  }

  private func commit(_ checkout: inout Checkout, order: Order?, events: [TransactionEvent]) async throws {
    checkout.updatedAt = clock.now()
    try await store.save(checkout, order: order, events: events)
    checkout.revision += 1
    if !events.isEmpty { eventsCommitted.signal() }
  }

  private func event(kind: TransactionEvent.Kind, for checkout: Checkout) -> TransactionEvent {
    TransactionEvent(
      id: IdentifierFactory.make(prefix: "evt"), kind: kind, checkoutID: checkout.id, bookingID: checkout.bookingID,
      saleID: checkout.saleID, userID: checkout.userID, orderID: checkout.orderID, paymentID: checkout.paymentID,
      amount: checkout.amount, occurredAt: clock.now())
  }

  private func key(_ checkout: Checkout, _ operation: String) -> String { "\(checkout.id.rawValue):\(operation)" }

  // MARK: Forward steps

  private func authorize(_ checkout: inout Checkout, attempt: Int) async -> StepResult {
    let key = key(checkout, "authorize")
    do {
      // A repeated attempt (after a crash or a lost answer) asks first.
      var payment: ProviderPayment?
      if attempt > 1 || checkout.payment == .unknown {
        payment = try await payments.lookup(authorizeKey: key)
      }
      if payment == nil {
        payment = try await payments.authorize(
          idempotencyKey: key, paymentMethodToken: checkout.paymentMethodToken, amount: checkout.amount,
          reference: checkout.id.rawValue)
      }
      return adoptAuthorization(payment!, into: &checkout)
    } catch .unavailable(let message) {
      // The Authorize may have gone through unanswered: ask before deciding.
      if let found = try? await payments.lookup(authorizeKey: key) {
        return adoptAuthorization(found, into: &checkout)
      }
      if attempt < maximumForwardAttempts {
        checkout.payment = .unknown
        return StepResult(status: .failed, detail: message, pause: true)
      }
      checkout.payment = .unknown  // the compensation asks again, and voids what it finds
      return fail(&checkout, .paymentUnavailable, detail: message)
    } catch {
      // Refused for good (.rejected, .notFound): retrying cannot help.
      return fail(&checkout, .paymentRejected, detail: "\(error)")
    }
  }

  private func adoptAuthorization(_ payment: ProviderPayment, into checkout: inout Checkout) -> StepResult {
    checkout.paymentID = payment.id
    switch payment.status {
    case .declined:
      checkout.payment = .declined
      return fail(&checkout, .paymentDeclined, detail: payment.declineReason ?? "declined by the provider")
    case .authorized:
      checkout.payment = .authorized
      return StepResult(status: .succeeded, detail: "payment \(payment.id) authorized", events: [.paymentAuthorized])
    case .captured, .voided, .refunded:
      // Only this saga acts on the payment; it cannot be past authorized before capture.
      checkout.payment = PaymentState(payment.status)
      return fail(&checkout, .paymentRejected, detail: "payment \(payment.id) is already \(payment.status)")
    }
  }

  private func createOrder(_ checkout: inout Checkout) -> StepResult {
    let now = clock.now()
    let order = Order(
      id: IdentifierFactory.make(prefix: "ord"), checkoutID: checkout.id, bookingID: checkout.bookingID,
      saleID: checkout.saleID, userID: checkout.userID, status: .pending, amount: checkout.amount,
      paymentID: checkout.paymentID, createdAt: now, updatedAt: now)
    checkout.orderID = order.id
    checkout.order = .pending
    return StepResult(status: .succeeded, detail: "order \(order.id)", events: [.orderCreated], order: order)
  }

  private func confirmBooking(_ checkout: inout Checkout) async throws -> StepResult {
    do {
      let booking = try await bookings.confirm(checkout.bookingID, token: checkout.fencingToken)
      guard booking.status == .booked else {
        throw StoreFault("confirm of \(booking.id) answered status \(booking.status)")
      }
      checkout.unit = .booked
      return StepResult(status: .succeeded, detail: "unit \(booking.unit) booked", events: [.bookingConfirmed])
    } catch let refusal as DomainError {
      // The hold expired, was cancelled, or its unit went to someone else.
      return fail(&checkout, refusal.reason, detail: refusal.message)
    }
  }

  private func capture(_ checkout: inout Checkout, attempt: Int) async -> StepResult {
    guard let paymentID = checkout.paymentID else {
      return fail(&checkout, .paymentRejected, detail: "no payment to capture")
    }
    do {
      var payment: ProviderPayment?
      if attempt > 1 { payment = try await payments.lookup(paymentID: paymentID) }
      if payment?.status != .captured {
        payment = try await payments.capture(paymentID: paymentID, idempotencyKey: key(checkout, "capture"))
      }
      return adoptCapture(payment!, into: &checkout)
    } catch .unavailable(let message) {
      if let found = try? await payments.lookup(paymentID: paymentID), found.status == .captured {
        return adoptCapture(found, into: &checkout)
      }
      if attempt < maximumForwardAttempts { return StepResult(status: .failed, detail: message, pause: true) }
      return fail(&checkout, .captureFailed, detail: message)
    } catch {
      // Refused for good (.rejected, .notFound): retrying cannot help.
      return fail(&checkout, .captureFailed, detail: "\(error)")
    }
  }

  private func adoptCapture(_ payment: ProviderPayment, into checkout: inout Checkout) -> StepResult {
    guard payment.status == .captured else {
      checkout.payment = PaymentState(payment.status)
      return fail(&checkout, .captureFailed, detail: "payment \(payment.id) is \(payment.status)")
    }
    checkout.payment = .captured
    return StepResult(
      status: .succeeded, detail: "payment \(payment.id) captured \(payment.capturedMinor)", events: [.paymentCaptured])
  }

  private func completeOrder(_ checkout: inout Checkout) -> StepResult {
    checkout.order = .completed
    return StepResult(status: .succeeded, detail: "order \(checkout.orderID ?? "?") completed", order: order(checkout))
  }

  /// The order of `checkout` as it now stands.
  private func order(_ checkout: Checkout) -> Order? {
    guard let id = checkout.orderID, let status = checkout.order else { return nil }
    return Order(
      id: id, checkoutID: checkout.id, bookingID: checkout.bookingID, saleID: checkout.saleID,
      userID: checkout.userID, status: status, amount: checkout.amount, paymentID: checkout.paymentID,
      createdAt: checkout.createdAt, updatedAt: clock.now())
  }

  // MARK: Compensations

  private func releaseUnit(_ checkout: inout Checkout) async throws -> StepResult {
    let reason = "checkout \(checkout.id): \(checkout.failureReason ?? "compensated")"
    do {
      let booking =
        checkout.unit == .booked
        ? try await bookings.release(checkout.bookingID, token: checkout.fencingToken, reason: reason)
        : try await bookings.cancel(checkout.bookingID, token: checkout.fencingToken)
      checkout.unit = .released
      guard booking.status == .released else {
        // Cancelling an expired hold is a no-op: the expiry job gave the unit back, not us.
        return StepResult(status: .compensated, detail: "nothing to release: the booking is \(booking.status)")
      }
      return StepResult(
        status: .compensated, detail: "unit \(booking.unit) back in stock", events: [.holdReleased])
    } catch let refusal as DomainError {
      // The hold had expired or the unit is someone else's now: not ours to give back.
      checkout.unit = .released
      return StepResult(status: .compensated, detail: "nothing to release: \(refusal.reason)")
    }
  }

  private func cancelOrder(_ checkout: inout Checkout) -> StepResult {
    checkout.order = .cancelled
    return StepResult(
      status: .compensated, detail: "order \(checkout.orderID ?? "?") cancelled", events: [.orderCancelled],
      order: order(checkout))
  }

  private func void(_ checkout: inout Checkout, attempt: Int) async -> StepResult {
    await undoPayment(&checkout, attempt: attempt, operation: "void", goal: .voided, event: .paymentVoided) {
      [payments] id, key throws(PaymentGatewayError) in try await payments.void(paymentID: id, idempotencyKey: key)
    }
  }

  private func refund(_ checkout: inout Checkout, attempt: Int) async -> StepResult {
    await undoPayment(&checkout, attempt: attempt, operation: "refund", goal: .refunded, event: .paymentRefunded) {
      [payments] id, key throws(PaymentGatewayError) in try await payments.refund(paymentID: id, idempotencyKey: key)
    }
  }

  /// Voids or refunds: asks the provider where the payment stands first
  /// (the authorization's outcome may be unknown, an earlier attempt may
  /// have gone through), then acts if still needed.
  private func undoPayment(
    _ checkout: inout Checkout, attempt: Int, operation: String, goal: ProviderPayment.Status,
    event: TransactionEvent.Kind,
    _ call: @Sendable (String, String) async throws(PaymentGatewayError) -> ProviderPayment
  ) async -> StepResult {
    do {
      var payment: ProviderPayment?
      if let id = checkout.paymentID {
        payment = try await payments.lookup(paymentID: id)
      } else {
        payment = try await payments.lookup(authorizeKey: key(checkout, "authorize"))
      }
      guard var current = payment else {
        checkout.payment = .none
        return StepResult(status: .compensated, detail: "the provider has no payment: nothing to \(operation)")
      }
      checkout.paymentID = current.id
      switch current.status {
      case .declined, .voided, .refunded:
        // Nothing taken, or already given back (by an earlier attempt whose answer was lost).
        let done = current.status == goal && checkout.payment != PaymentState(goal)
        checkout.payment = PaymentState(current.status)
        return StepResult(
          status: .compensated, detail: "payment \(current.id) is \(current.status)", events: done ? [event] : [])
      case .authorized where goal == .refunded, .captured where goal == .voided:
        // The provider is ahead of or behind our record: act on what it says.
        checkout.payment = PaymentState(current.status)
        return StepResult(status: .compensated, detail: "payment \(current.id) is \(current.status) at the provider")
      default:
        current = try await call(current.id, key(checkout, operation))
        checkout.payment = PaymentState(current.status)
        guard current.status == goal else {
          return StepResult(status: .failed, detail: "\(operation) left payment \(current.status)", pause: true)
        }
        return StepResult(status: .compensated, detail: "payment \(current.id) \(current.status)", events: [event])
      }
    } catch {
      // A compensation must happen: keep the step open and try again later.
      return StepResult(status: .failed, detail: "\(error)", pause: true)
    }
  }

  // MARK: Checks

  private static func verifyHold(_ booking: Booking, token: UInt64, now: Timestamp) throws {
    switch booking.status {
    case .hold: break
    case .booked: throw DomainError(.bookingConfirmed, "booking \(booking.id) is already confirmed")
    case .released: throw DomainError(.bookingReleased, "booking \(booking.id) was released")
    case .expired: throw DomainError(.holdExpired, "the hold of booking \(booking.id) expired")
    }
    guard booking.fencingToken == token else {
      throw DomainError(.staleFencingToken, "fencing token \(token) is not the booking's current one")
    }
    guard now < booking.holdExpiresAt else {
      throw DomainError(.holdExpired, "the hold of booking \(booking.id) expired at \(booking.holdExpiresAt)")
    }
  }

  private func replay(of candidate: Checkout) async throws -> Checkout? {
    // The store answers a known (user, key) with the checkout it made; a
    // new key is stored only after the hold was verified (below).
    guard let existing = try await store.checkout(bookingID: candidate.bookingID),
      existing.idempotencyKey == candidate.idempotencyKey, existing.userID == candidate.userID
    else { return nil }
    return existing
  }

  private static func keyReused(_ key: String) -> DomainError {
    DomainError(
      .idempotencyKeyReused, "idempotency_key: \(key) was used for another booking", field: "idempotency_key")
  }

  private static func check(_ value: String, field: String, maximum: Int) throws(DomainError) {
    if value.isEmpty { throw DomainError(.invalidArgument, "\(field): must not be empty", field: field) }
    if value.utf8.count > maximum {
      throw DomainError(.invalidArgument, "\(field): longer than \(maximum) bytes", field: field)
    }
  }
}
