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
    get { storage.id }
    set { uniqueStorage().id = newValue }
  }
  public var saleID: SaleID {
    get { storage.saleID }
    set { uniqueStorage().saleID = newValue }
  }
  public var userID: UserID {
    get { storage.userID }
    set { uniqueStorage().userID = newValue }
  }
  /// The unit, 0 ..< quantity.
  public var unit: Int64 {
    get { storage.unit }
    set { uniqueStorage().unit = newValue }
  }
  public var status: BookingStatus {
    get { storage.status }
    set { uniqueStorage().status = newValue }
  }
  public var createdAt: Timestamp {
    get { storage.createdAt }
    set { uniqueStorage().createdAt = newValue }
  }
  public var updatedAt: Timestamp {
    get { storage.updatedAt }
    set { uniqueStorage().updatedAt = newValue }
  }
  /// The hold's deadline (kept after the hold ends, for the record).
  public var holdExpiresAt: Timestamp {
    get { storage.holdExpiresAt }
    set { uniqueStorage().holdExpiresAt = newValue }
  }
  public var idempotencyKey: String {
    get { storage.idempotencyKey }
    set { uniqueStorage().idempotencyKey = newValue }
  }
  public var fencingToken: UInt64 {
    get { storage.fencingToken }
    set { uniqueStorage().fencingToken = newValue }
  }
  /// Why a booked unit was released, when it was.
  public var releaseReason: String? {
    get { storage.releaseReason }
    set { uniqueStorage().releaseReason = newValue }
  }

  /// The fields in one object, shared by copies until one changes: a booking
  /// is copied at each step from the store to the answer (one retain per
  /// copy instead of one per string).
  private var storage: Storage

  public init(
    id: BookingID, saleID: SaleID, userID: UserID, unit: Int64, status: BookingStatus, createdAt: Timestamp,
    updatedAt: Timestamp, holdExpiresAt: Timestamp, idempotencyKey: String, fencingToken: UInt64,
    releaseReason: String? = nil
  ) {
    storage = Storage(
      id: id, saleID: saleID, userID: userID, unit: unit, status: status, createdAt: createdAt, updatedAt: updatedAt,
      holdExpiresAt: holdExpiresAt, idempotencyKey: idempotencyKey, fencingToken: fencingToken,
      releaseReason: releaseReason)
  }

  private mutating func uniqueStorage() -> Storage {
    if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    return storage
  }

  public static func == (lhs: Booking, rhs: Booking) -> Bool {
    lhs.storage === rhs.storage || lhs.storage.fields == rhs.storage.fields
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(storage.fields)
  }

  /// Changed only through `uniqueStorage()`, when no other booking shares it.
  private final class Storage: @unchecked Sendable {
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

    init(
      id: BookingID, saleID: SaleID, userID: UserID, unit: Int64, status: BookingStatus, createdAt: Timestamp,
      updatedAt: Timestamp, holdExpiresAt: Timestamp, idempotencyKey: String, fencingToken: UInt64,
      releaseReason: String?
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

    func copy() -> Storage {
      Storage(
        id: id, saleID: saleID, userID: userID, unit: unit, status: status, createdAt: createdAt, updatedAt: updatedAt,
        holdExpiresAt: holdExpiresAt, idempotencyKey: idempotencyKey, fencingToken: fencingToken,
        releaseReason: releaseReason)
    }

    /// The fields as one value, for comparing and hashing.
    var fields: Fields {
      Fields(
        id: id, saleID: saleID, userID: userID, unit: unit, status: status, createdAt: createdAt, updatedAt: updatedAt,
        holdExpiresAt: holdExpiresAt, idempotencyKey: idempotencyKey, fencingToken: fencingToken,
        releaseReason: releaseReason)
    }
  }

  private struct Fields: Hashable {
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
