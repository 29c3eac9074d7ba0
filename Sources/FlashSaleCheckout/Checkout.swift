public import FlashSaleDomain

/// The identifier of a checkout (`chk_…`).
public struct CheckoutID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }
  public init(_ rawValue: String) { self.rawValue = rawValue }
  public var description: String { rawValue }
}

/// Where a checkout saga is.
public enum CheckoutState: String, Hashable, Sendable, CaseIterable {
  /// Forward steps are running.
  case running
  /// Paid, ordered, booked.
  case completed
  /// A step failed; the completed steps are being undone.
  case compensating
  /// Every completed step was undone: nothing charged, no order, the unit back in stock.
  case compensated

  /// Whether the saga has ended.
  public var isFinal: Bool { self == .completed || self == .compensated }
}

/// What the saga knows of its payment at the provider.
public enum PaymentState: String, Hashable, Sendable, CaseIterable {
  /// No Authorize was sent.
  case none
  /// An Authorize was sent but its outcome is not known (the provider did not
  /// answer in time): the provider is asked before anything else is done.
  case unknown
  case authorized
  case declined
  case captured
  case voided
  case refunded
}

/// What the saga did with the order.
public enum OrderStatus: String, Hashable, Sendable, CaseIterable {
  case pending
  case completed
  case cancelled
}

/// What the saga did with the booking's unit.
public enum UnitState: String, Hashable, Sendable, CaseIterable {
  /// Still the hold the checkout started from.
  case held
  /// Confirmed: the unit is the buyer's.
  case booked
  /// Given back to stock (or found already back: the hold had expired).
  case released
}

/// One step of a saga, as its log records it: written `started` before the
/// step acts, and finished once it has.
public struct CheckoutStep: Hashable, Sendable {
  public enum Status: String, Hashable, Sendable, CaseIterable {
    case started, succeeded, failed, compensated
  }

  /// The step's position in the log, from 1.
  public var sequence: Int
  public var name: String
  public var status: Status
  /// How many times the step was started (a resumed saga starts a step again).
  public var attempt: Int
  /// What happened, for people: a payment id, a refusal reason.
  public var detail: String
  public var startedAt: Timestamp
  public var finishedAt: Timestamp?

  public init(
    sequence: Int, name: String, status: Status, attempt: Int, detail: String, startedAt: Timestamp,
    finishedAt: Timestamp?
  ) {
    self.sequence = sequence
    self.name = name
    self.status = status
    self.attempt = attempt
    self.detail = detail
    self.startedAt = startedAt
    self.finishedAt = finishedAt
  }
}

/// A checkout: the saga taking one hold to a purchase, and everything it did.
public struct Checkout: Hashable, Sendable {
  public var id: CheckoutID
  public var bookingID: BookingID
  /// The booking's fencing token, presented at every step that touches the unit.
  public var fencingToken: UInt64
  public var saleID: SaleID
  public var userID: UserID
  public var amount: Money
  /// The buyer's opaque card or wallet token, passed to the provider.
  public var paymentMethodToken: String
  public var idempotencyKey: String
  public var state: CheckoutState
  public var payment: PaymentState
  public var paymentID: String?
  public var order: OrderStatus?
  public var orderID: String?
  public var unit: UnitState
  /// Why the saga compensated (a stable reason such as `PAYMENT_DECLINED`).
  public var failureReason: String?
  /// The step log, oldest first.
  public var steps: [CheckoutStep]
  /// Grows with every change; a change made from a stale copy is refused.
  public var revision: Int64
  public var createdAt: Timestamp
  public var updatedAt: Timestamp

  public init(
    id: CheckoutID, bookingID: BookingID, fencingToken: UInt64, saleID: SaleID, userID: UserID, amount: Money,
    paymentMethodToken: String, idempotencyKey: String, state: CheckoutState = .running, payment: PaymentState = .none,
    paymentID: String? = nil, order: OrderStatus? = nil, orderID: String? = nil, unit: UnitState = .held,
    failureReason: String? = nil, steps: [CheckoutStep] = [], revision: Int64 = 0, createdAt: Timestamp,
    updatedAt: Timestamp
  ) {
    self.id = id
    self.bookingID = bookingID
    self.fencingToken = fencingToken
    self.saleID = saleID
    self.userID = userID
    self.amount = amount
    self.paymentMethodToken = paymentMethodToken
    self.idempotencyKey = idempotencyKey
    self.state = state
    self.payment = payment
    self.paymentID = paymentID
    self.order = order
    self.orderID = orderID
    self.unit = unit
    self.failureReason = failureReason
    self.steps = steps
    self.revision = revision
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }
}

/// An order, made by a checkout.
public struct Order: Hashable, Sendable {
  public var id: String
  public var checkoutID: CheckoutID
  public var bookingID: BookingID
  public var saleID: SaleID
  public var userID: UserID
  public var status: OrderStatus
  public var amount: Money
  public var paymentID: String?
  public var createdAt: Timestamp
  public var updatedAt: Timestamp

  public init(
    id: String, checkoutID: CheckoutID, bookingID: BookingID, saleID: SaleID, userID: UserID, status: OrderStatus,
    amount: Money, paymentID: String?, createdAt: Timestamp, updatedAt: Timestamp
  ) {
    self.id = id
    self.checkoutID = checkoutID
    self.bookingID = bookingID
    self.saleID = saleID
    self.userID = userID
    self.status = status
    self.amount = amount
    self.paymentID = paymentID
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }
}

/// One fact of a checkout for downstream services, from the transactional
/// outbox. Offsets are consecutive from 1, in commit order.
public struct TransactionEvent: Hashable, Sendable {
  public enum Kind: String, Hashable, Sendable, CaseIterable {
    case orderCreated = "order_created"
    case paymentAuthorized = "payment_authorized"
    case paymentCaptured = "payment_captured"
    case paymentVoided = "payment_voided"
    case paymentRefunded = "payment_refunded"
    case holdReleased = "hold_released"
    case bookingConfirmed = "booking_confirmed"
    case orderCancelled = "order_cancelled"
  }

  /// Position in the stream; 0 until the outbox assigns it at commit.
  public var offset: UInt64
  public var id: String
  public var kind: Kind
  public var checkoutID: CheckoutID
  public var bookingID: BookingID
  public var saleID: SaleID
  public var userID: UserID
  public var orderID: String?
  public var paymentID: String?
  public var amount: Money
  public var occurredAt: Timestamp

  public init(
    offset: UInt64 = 0, id: String, kind: Kind, checkoutID: CheckoutID, bookingID: BookingID, saleID: SaleID,
    userID: UserID, orderID: String?, paymentID: String?, amount: Money, occurredAt: Timestamp
  ) {
    self.offset = offset
    self.id = id
    self.kind = kind
    self.checkoutID = checkoutID
    self.bookingID = bookingID
    self.saleID = saleID
    self.userID = userID
    self.orderID = orderID
    self.paymentID = paymentID
    self.amount = amount
    self.occurredAt = occurredAt
  }
}
