/// Why the sale core refused a request: a stable reason callers can act on,
/// and a message for people. The RPC layer sends the reason as the `reason`
/// of a `google.rpc.ErrorInfo` (see the table in the README).
public struct DomainError: Error, Hashable, Sendable, CustomStringConvertible {
  /// A stable, machine-readable cause.
  public struct Reason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Every unit is booked; none will come back.
    public static let soldOut = Reason(rawValue: "SOLD_OUT")
    /// No unit is free, but some are on holds that may still expire.
    public static let soldOutForNow = Reason(rawValue: "SOLD_OUT_FOR_NOW")
    public static let saleNotStarted = Reason(rawValue: "SALE_NOT_STARTED")
    public static let saleEnded = Reason(rawValue: "SALE_ENDED")
    public static let salePaused = Reason(rawValue: "SALE_PAUSED")
    /// The user already holds or bought as many units as the sale allows.
    public static let limitReached = Reason(rawValue: "LIMIT_REACHED")
    /// The hold passed its deadline.
    public static let holdExpired = Reason(rawValue: "HOLD_EXPIRED")
    /// The presented fencing token is not the unit's current one.
    public static let staleFencingToken = Reason(rawValue: "STALE_FENCING_TOKEN")
    /// The booking was cancelled or returned.
    public static let bookingReleased = Reason(rawValue: "BOOKING_RELEASED")
    /// The booking is confirmed: it cannot be cancelled, only released.
    public static let bookingConfirmed = Reason(rawValue: "BOOKING_CONFIRMED")
    /// The idempotency key was used before for another sale or user.
    public static let idempotencyKeyReused = Reason(rawValue: "IDEMPOTENCY_KEY_REUSED")
    public static let saleNotFound = Reason(rawValue: "SALE_NOT_FOUND")
    public static let bookingNotFound = Reason(rawValue: "BOOKING_NOT_FOUND")
    /// A field of the request is wrong; ``DomainError/field`` names it.
    public static let invalidArgument = Reason(rawValue: "INVALID_ARGUMENT")

    public var description: String { rawValue }
  }

  public var reason: Reason
  public var message: String
  /// The request field at fault, for ``Reason/invalidArgument``.
  public var field: String?

  public init(_ reason: Reason, _ message: String, field: String? = nil) {
    self.reason = reason
    self.message = message
    self.field = field
  }

  public var description: String { "\(reason): \(message)" }

  /// The refusal of a `Book` when every unit is held or booked (held units
  /// may come back: the reason and the RPC layer's `RetryInfo` say so).
  ///
  /// The messages are short on purpose: a sold-out rush is answered with
  /// them millions of times, and every client checks each byte of the
  /// message, and of the status details that repeat it (h2load: ~8
  /// instructions a byte; with a sentence here, 2,128 per refusal).
  public static let soldOutForNow = DomainError(.soldOutForNow, "sold out for now")
  /// The refusal of a `Book` when every unit is booked.
  public static let soldOut = DomainError(.soldOut, "sold out")
}

/// The store broke its own contract (malformed rows, a schema newer than this
/// build, fewer answers than requests): a fault to fix, not a refusal and not
/// a passing outage. The RPC layer answers INTERNAL.
public struct StoreFault: Error, Hashable, Sendable, CustomStringConvertible {
  public var message: String

  public init(_ message: String) {
    self.message = message
  }

  public var description: String { "store fault: \(message)" }
}
