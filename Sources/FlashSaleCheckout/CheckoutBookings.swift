public import FlashSaleDomain

/// What the checkout saga needs of the sale core: the booking and its sale,
/// and the steps that move its unit. Every step presents the booking's
/// fencing token, so a checkout can never confirm or release a unit that has
/// since gone to another buyer.
public protocol CheckoutBookings: Sendable {
  /// The booking with `id`; throws ``DomainError`` (`BOOKING_NOT_FOUND`) when there is none.
  func booking(_ id: BookingID) async throws -> Booking
  /// The sale with `id`.
  func sale(_ id: SaleID) async throws -> Sale
  /// Turns the hold into a booking.
  func confirm(_ id: BookingID, token: UInt64) async throws -> Booking
  /// Releases the hold at once.
  func cancel(_ id: BookingID, token: UInt64) async throws -> Booking
  /// Returns a booked unit to stock, recording `reason`.
  func release(_ id: BookingID, token: UInt64, reason: String) async throws -> Booking
}

extension SaleCore: CheckoutBookings {
  public func booking(_ id: BookingID) async throws -> Booking {
    try await booking(id, user: nil)
  }

  public func confirm(_ id: BookingID, token: UInt64) async throws -> Booking {
    try await confirm(id, token: token, user: nil)
  }

  public func cancel(_ id: BookingID, token: UInt64) async throws -> Booking {
    try await cancel(id, token: token, user: nil)
  }

  public func release(_ id: BookingID, token: UInt64, reason: String) async throws -> Booking {
    try await release(id, token: Optional(token), reason: reason)
  }
}

extension DomainError.Reason {
  /// No checkout with that id (for this user).
  public static let checkoutNotFound = Self(rawValue: "CHECKOUT_NOT_FOUND")
  /// The booking already has a checkout, started with another idempotency key.
  public static let checkoutExists = Self(rawValue: "CHECKOUT_EXISTS")
  /// Saga failure reasons, recorded on a compensated checkout.
  public static let paymentDeclined = Self(rawValue: "PAYMENT_DECLINED")
  public static let paymentUnavailable = Self(rawValue: "PAYMENT_UNAVAILABLE")
  public static let paymentRejected = Self(rawValue: "PAYMENT_REJECTED")
  public static let captureFailed = Self(rawValue: "PAYMENT_CAPTURE_FAILED")
}
