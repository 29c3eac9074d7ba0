/// One `Book` request, as the claim batcher hands it to the store.
public struct ClaimRequest: Hashable, Sendable {
  public var saleID: SaleID { storage.fields.saleID }
  public var userID: UserID { storage.fields.userID }
  public var idempotencyKey: String { storage.fields.idempotencyKey }
  /// The id the booking gets if this request creates one.
  public var bookingID: BookingID { storage.fields.bookingID }

  /// The fields in one immutable object: a request is copied at each step
  /// from the event loop through the batcher to the store and back, one
  /// retain per copy instead of one per string (whose reference counts the
  /// threads of those steps take turns at).
  private let storage: Storage

  private struct Fields: Hashable, Sendable {
    var saleID: SaleID
    var userID: UserID
    var idempotencyKey: String
    var bookingID: BookingID
  }

  private final class Storage: Sendable {
    let fields: Fields

    init(_ fields: Fields) {
      self.fields = fields
    }
  }

  public init(saleID: SaleID, userID: UserID, idempotencyKey: String, bookingID: BookingID) {
    storage = Storage(Fields(saleID: saleID, userID: userID, idempotencyKey: idempotencyKey, bookingID: bookingID))
  }

  public static func == (lhs: ClaimRequest, rhs: ClaimRequest) -> Bool {
    lhs.storage === rhs.storage || lhs.storage.fields == rhs.storage.fields
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(storage.fields)
  }
}

/// What one claim came to.
public enum ClaimOutcome: Hashable, Sendable {
  /// A unit is now held for the user.
  case held(Booking, unitsLeft: Int64)
  /// The idempotency key was seen before for this sale and user: the booking
  /// it made, as it is now. No second unit was taken.
  case replayed(Booking, unitsLeft: Int64)
  /// Refused; nothing changed.
  case refused(DomainError)
  /// Refused for a moment only: the free units are in rows other
  /// transactions hold, or are returned units waiting for their restock
  /// (``SaleStore/restockDelay``). Nothing changed; the same claim may hold a
  /// unit shortly. The error is the answer if it does not ("sold out for now").
  case busy(DomainError)
}

/// A mismatch between what the store holds and the sale's invariants.
public struct AuditFinding: Hashable, Sendable, CustomStringConvertible {
  /// What is wrong, naming the rows: "unit 17 held by bookings bkg_a and bkg_b".
  public var message: String

  public init(_ message: String) {
    self.message = message
  }

  public var description: String { message }

  /// A key that made more than one booking (stores whose keys are not
  /// unique in their files or tables check for it).
  public static func keyReused(_ key: String, bookings count: Int64, ids: String) -> AuditFinding {
    AuditFinding("idempotency key \"\(key)\" made \(count) bookings: \(ids)")
  }
}

/// The storage of sales, units and bookings: the design's "inventory queue".
///
/// Every operation is one transaction; ``claim(_:now:)`` takes a batch of
/// requests and commits them together, so that throughput is bounded by
/// commits rather than by requests. An operation returns only once its
/// transaction is durable. Business refusals are thrown (or, for claims,
/// returned) as ``DomainError``; anything else thrown is a storage failure, and
/// then nothing of that operation was applied.
public protocol SaleStore: Sendable {
  /// Creates a sale; with an idempotency key already used, returns the sale it created.
  func createSale(_ definition: SaleDefinition, id: SaleID, idempotencyKey: String?, now: Timestamp) async throws -> Sale

  /// The sale with `id`, if any.
  func sale(_ id: SaleID) async throws -> Sale?

  /// Sales, newest first: at most `limit`, created before `cursor` (exclusive) when given.
  func sales(limit: Int, before cursor: SaleCursor?) async throws -> [Sale]

  /// Pauses or resumes booking.
  func setPaused(_ id: SaleID, _ paused: Bool, now: Timestamp) async throws -> Sale

  /// Ends a sale before its end time. Holds still run to their deadline.
  func close(_ id: SaleID, now: Timestamp) async throws -> Sale

  /// Claims one unit per request, in order, in one transaction.
  func claim(_ requests: [ClaimRequest], now: Timestamp) async throws -> [ClaimOutcome]

  /// ``claim(_:now:)`` in two steps, for a store whose commits reach the
  /// disk after they are made (group commit with pipelining): the outcomes
  /// once the transaction committed, and a wait for that commit to be
  /// durable, before which no outcome may be told. The store can meanwhile
  /// run the next batch. The default is ``claim(_:now:)``, with nothing to wait for.
  func claimCommitted(_ requests: [ClaimRequest], now: Timestamp) async throws -> CommittedClaims

  /// Turns a hold into a booking, if `token` is the unit's current one and the
  /// hold's deadline has not passed. Idempotent.
  func confirm(_ id: BookingID, token: UInt64, now: Timestamp) async throws -> Booking

  /// Releases a hold at once. Idempotent.
  func cancel(_ id: BookingID, token: UInt64, now: Timestamp) async throws -> Booking

  /// Returns a held or booked unit to stock (an admin, or a checkout
  /// compensation), recording why. Idempotent. `token`, when given, must be
  /// the unit's current one.
  func release(_ id: BookingID, token: UInt64?, reason: String, now: Timestamp) async throws -> Booking

  /// Expires up to `limit` holds whose deadline is at or before `now`; their
  /// units go back to stock. Returns what it expired.
  func expireHolds(now: Timestamp, limit: Int) async throws -> [Booking]

  /// The earliest deadline of a hold still running, if any.
  func nextHoldDeadline() async throws -> Timestamp?

  /// The booking with `id`, if any.
  func booking(_ id: BookingID) async throws -> Booking?

  /// The bookings claims with these idempotency keys made, by key (keys
  /// without one are absent). A read only: it lets a sold-out sale be
  /// answered from memory without turning away the retry of a claim that did
  /// get a unit.
  func bookings(idempotencyKeys: [String]) async throws -> [String: Booking]

  /// The sale's unit counts, from the store.
  func counts(_ saleID: SaleID) async throws -> UnitCounts

  /// The sale's counts with the version of its stock, which grows with every
  /// change to them (in every process sharing the store).
  func stockLevel(_ saleID: SaleID) async throws -> StockLevel

  /// The sales among `ids` that exist, each with its stock level: what the
  /// availability tracker re-reads of every sale it follows, every 50 ms. A
  /// shared store answers in one query, however many sales there are.
  func salesWithStock(_ ids: [SaleID]) async throws -> [(sale: Sale, level: StockLevel)]

  /// Checks the sale's invariants against the stored rows.
  func audit(_ saleID: SaleID) async throws -> [AuditFinding]

  /// How many claim batches may be in their transactions at once: 1 for a
  /// store with a single writer, more for one whose claims do not block each
  /// other. (Batches waiting for ``claimCommitted(_:now:)``'s durability do
  /// not count.)
  var concurrentClaimBatches: Int { get }

  /// Whether this process is the only writer of the store (an embedded file
  /// it holds locked), so that what it remembers of its own writes is the
  /// whole truth; see ``ClaimedKeys``.
  var isSoleWriter: Bool { get }

  /// The fingerprints (``ClaimedKeys/fingerprint(_:)``) of the idempotency
  /// keys of every booking in the store. Needed only when ``isSoleWriter``.
  func idempotencyKeyFingerprints() async throws -> Set<UInt64>

  /// For a store several processes share: how long a unit given back to
  /// stock waits before any claim can take it, counted from a moment after
  /// its return committed. While a sale has no unit free, no process can
  /// grant one for that long; ``SoldOutKeys`` builds on it. `nil`: returned
  /// units are claimable at once.
  var restockDelay: Duration? { get }

  /// The fingerprints of the idempotency keys of every booking of the sale
  /// (held, booked or ended). Needed only with a ``restockDelay``.
  func idempotencyKeyFingerprints(of saleID: SaleID) async throws -> Set<UInt64>
}

/// A batch of claims committed, maybe not yet durable: its outcomes, told
/// once `settle` returned (the commit is durable) or failed (it cannot be); see
/// ``SaleStore/claimCommitted(_:now:)``.
public typealias CommittedClaims = Batcher<ClaimRequest, ClaimOutcome>.Staged

extension SaleStore {
  public func claimCommitted(_ requests: [ClaimRequest], now: Timestamp) async throws -> CommittedClaims {
    CommittedClaims(outcomes: try await claim(requests, now: now), settle: nil)
  }
  public var concurrentClaimBatches: Int { 1 }
  public var isSoleWriter: Bool { false }
  public func idempotencyKeyFingerprints() async throws -> Set<UInt64> {
    throw StoreFault("this store is shared by several processes: it keeps no key index in memory")
  }
  public var restockDelay: Duration? { nil }
  /// A read of each sale and then of its stock level.
  public func salesWithStock(_ ids: [SaleID]) async throws -> [(sale: Sale, level: StockLevel)] {
    var found: [(sale: Sale, level: StockLevel)] = []
    for id in ids {
      if let sale = try await sale(id) { found.append((sale, try await stockLevel(id))) }
    }
    return found
  }
  public func idempotencyKeyFingerprints(of saleID: SaleID) async throws -> Set<UInt64> {
    throw StoreFault("this store restocks returned units at once: it keeps no key sets of sold-out sales")
  }
}

/// Where a page of ``SaleStore/sales(limit:before:)`` starts.
public struct SaleCursor: Hashable, Sendable {
  public var createdAt: Timestamp
  public var id: SaleID

  public init(createdAt: Timestamp, id: SaleID) {
    self.createdAt = createdAt
    self.id = id
  }
}

/// A sale's counts at one version of its stock.
public struct StockLevel: Hashable, Sendable {
  public var counts: UnitCounts
  /// Grows each time a unit is claimed, confirmed, or given back.
  public var version: UInt64

  public init(counts: UnitCounts, version: UInt64) {
    self.counts = counts
    self.version = version
  }
}
