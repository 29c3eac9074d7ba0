public import FlashSaleDomain

/// Someone else changed the checkout since it was read (another runner of
/// the same saga): reread it and decide again.
public struct CheckoutConflict: Error, Hashable, Sendable, CustomStringConvertible {
  public var checkoutID: CheckoutID
  public init(_ checkoutID: CheckoutID) { self.checkoutID = checkoutID }
  public var description: String { "checkout \(checkoutID) changed meanwhile" }
}

/// Which orders ``CheckoutStore/orders(_:limit:before:)`` lists.
public enum OrderFilter: Hashable, Sendable {
  case user(UserID)
  case sale(SaleID)
}

/// Where a page of orders starts: orders created before this one.
public struct OrderCursor: Hashable, Sendable {
  public var createdAt: Timestamp
  public var id: String
  public init(createdAt: Timestamp, id: String) {
    self.createdAt = createdAt
    self.id = id
  }
}

/// The storage of checkouts: the saga log, orders and the transactional
/// outbox, in tables of their own in the sale core's database.
///
/// Every method is one transaction, durable before it returns. A step's end,
/// the checkout's new state, the order it touched and the events it emits
/// commit together, so the outbox holds an event if and only if its step
/// happened. Offsets are assigned inside that transaction so that they are
/// consecutive and in commit order, also with several writers.
public protocol CheckoutStore: Sendable {
  /// Stores a new checkout (with its first steps), or returns the one the
  /// same user made with the same idempotency key (`created` false).
  func create(_ checkout: Checkout) async throws -> (checkout: Checkout, created: Bool)

  /// The checkout with `id`, with its step log.
  func checkout(_ id: CheckoutID) async throws -> Checkout?

  /// The checkout of a booking, if one was started.
  func checkout(bookingID: BookingID) async throws -> Checkout?

  /// Checkouts not yet completed or compensated and not written since
  /// `idleSince` (so not being driven by a live process), oldest first.
  func unfinished(idleSince: Timestamp, limit: Int) async throws -> [Checkout]

  /// Writes `checkout` (its state and the steps it appended or finished)
  /// if its stored revision is `checkout.revision - 1`, with the order it
  /// creates or changes and `events` appended to the outbox, all in one
  /// transaction. Returns the events with their offsets.
  ///
  /// - Throws: ``CheckoutConflict`` when the stored revision differs.
  @discardableResult
  func save(_ checkout: Checkout, order: Order?, events: [TransactionEvent]) async throws -> [TransactionEvent]

  /// The order with `id`.
  func order(_ id: String) async throws -> Order?

  /// Orders, newest first.
  func orders(_ filter: OrderFilter, limit: Int, before cursor: OrderCursor?) async throws -> [Order]

  /// Up to `limit` events with offsets from `offset` on, in offset order.
  func events(from offset: UInt64, limit: Int) async throws -> [TransactionEvent]

  /// Every checkout of a sale (for reconciliation).
  func checkouts(saleID: SaleID) async throws -> [Checkout]
}
