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
  public var id: BookingID {
    get { storage.fields.id }
    set { change { $0.id = newValue } }
  }
  public var saleID: SaleID {
    get { storage.fields.saleID }
    set { change { $0.saleID = newValue } }
  }
  public var userID: UserID {
    get { storage.fields.userID }
    set { change { $0.userID = newValue } }
  }
  /// The unit, 0 ..< quantity.
  public var unit: Int64 {
    get { storage.fields.unit }
    set { change { $0.unit = newValue } }
  }
  public var status: BookingStatus {
    get { storage.fields.status }
    set { change { $0.status = newValue } }
  }
  public var createdAt: Timestamp {
    get { storage.fields.createdAt }
    set { change { $0.createdAt = newValue } }
  }
  public var updatedAt: Timestamp {
    get { storage.fields.updatedAt }
    set { change { $0.updatedAt = newValue } }
  }
  /// The hold's deadline (kept after the hold ends, for the record).
  public var holdExpiresAt: Timestamp {
    get { storage.fields.holdExpiresAt }
    set { change { $0.holdExpiresAt = newValue } }
  }
  public var idempotencyKey: String {
    get { storage.fields.idempotencyKey }
    set { change { $0.idempotencyKey = newValue } }
  }
  public var fencingToken: UInt64 {
    get { storage.fields.fencingToken }
    set { change { $0.fencingToken = newValue } }
  }
  /// Why a booked unit was released, when it was.
  public var releaseReason: String? {
    get { storage.fields.releaseReason }
    set { change { $0.releaseReason = newValue } }
  }

  /// The fields in one immutable object, shared by copies: a booking is
  /// copied at each step from the store to the answer (one retain per copy
  /// instead of one per string), and changed rarely (a change makes a new one).
  private var storage: Storage

  private struct Fields: Hashable, Sendable {
    var id: BookingID
    var saleID: SaleID
    var userID: UserID
    var unit: Int64
    var status: BookingStatus
    var createdAt: Timestamp
    var updatedAt: Timestamp
    var holdExpiresAt: Timestamp
    var idempotencyKey: String
    var fencingToken: UInt64
    var releaseReason: String?
  }

  private final class Storage: Sendable {
    let fields: Fields

    init(_ fields: Fields) {
      self.fields = fields
    }
  }

  public init(
    id: BookingID, saleID: SaleID, userID: UserID, unit: Int64, status: BookingStatus, createdAt: Timestamp,
    updatedAt: Timestamp, holdExpiresAt: Timestamp, idempotencyKey: String, fencingToken: UInt64,
    releaseReason: String? = nil
  ) {
    storage = Storage(
      Fields(
        id: id, saleID: saleID, userID: userID, unit: unit, status: status, createdAt: createdAt,
        updatedAt: updatedAt, holdExpiresAt: holdExpiresAt, idempotencyKey: idempotencyKey,
        fencingToken: fencingToken, releaseReason: releaseReason))
  }

  private mutating func change(_ body: (inout Fields) -> Void) {
    var fields = storage.fields
    body(&fields)
    storage = Storage(fields)
  }

  public static func == (lhs: Booking, rhs: Booking) -> Bool {
    lhs.storage === rhs.storage || lhs.storage.fields == rhs.storage.fields
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(storage.fields)
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
