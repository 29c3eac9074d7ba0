/// Where a booking is in its life.
public enum BookingStatus: String, Hashable, Sendable, CaseIterable {
  /// A unit is reserved until the hold's deadline.
  case hold
  /// The unit is the user's.
  case booked
  /// Cancelled by the user, or returned by an admin or a checkout compensation.
  case released
  /// The hold passed its deadline; the unit went back to stock.
  case expired

  /// Whether the booking still takes a unit.
  public var takesUnit: Bool { self == .hold || self == .booked }
}

/// One unit of a sale held or booked by one user: a fenced lease.
///
/// Each claim of a unit gets a fencing token greater than every earlier one;
/// every later step (confirm, cancel, checkout) presents it, and the store
/// refuses a step whose token is no longer the unit's current one — so a buyer
/// whose hold expired and whose unit went to someone else can never confirm
/// or pay for it.
public struct Booking: Hashable, Sendable {
  public var id: BookingID
  public var saleID: SaleID
  public var userID: UserID
  /// The unit, 0 ..< quantity.
  public var unit: Int64
  public var status: BookingStatus
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  /// The hold's deadline (kept after the hold ends, for the record).
  public var holdExpiresAt: Timestamp
  public var idempotencyKey: String
  public var fencingToken: UInt64
  /// Why a booked unit was released, when it was.
  public var releaseReason: String?

  public init(
    id: BookingID, saleID: SaleID, userID: UserID, unit: Int64, status: BookingStatus, createdAt: Timestamp,
    updatedAt: Timestamp, holdExpiresAt: Timestamp, idempotencyKey: String, fencingToken: UInt64,
    releaseReason: String? = nil
  ) {
    self.id = id
    self.saleID = saleID
    self.userID = userID
    self.unit = unit
    self.status = status
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.holdExpiresAt = holdExpiresAt
    self.idempotencyKey = idempotencyKey
    self.fencingToken = fencingToken
    self.releaseReason = releaseReason
  }
}

/// How many units of a sale are in each state: available + held + booked = quantity.
public struct UnitCounts: Hashable, Sendable {
  public var quantity: Int64
  public var available: Int64
  public var held: Int64
  public var booked: Int64

  public init(quantity: Int64, available: Int64, held: Int64, booked: Int64) {
    self.quantity = quantity
    self.available = available
    self.held = held
    self.booked = booked
  }

  /// Whether the counts add up.
  public var isConsistent: Bool { available + held + booked == quantity && available >= 0 && held >= 0 && booked >= 0 }
}
