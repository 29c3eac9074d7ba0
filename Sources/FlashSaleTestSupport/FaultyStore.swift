public import FlashSaleDomain
import Synchronization

/// Wraps a store and can make its claims slow or fail, to test what callers
/// see when a commit fails, and how claims batch up while one commits.
public final class FaultyStore: SaleStore {
  /// A failure the store reports, as a storage error would be.
  public struct InjectedFailure: Error, Hashable {
    public init() {}
  }

  private struct Faults {
    var failClaims = false
    var claimDelay: Duration = .zero
    var claimBatches: [Int] = []
    var busyAnswers = 0
  }

  private let base: any SaleStore
  private let faults = Mutex(Faults())

  public init(_ base: any SaleStore) {
    self.base = base
  }

  /// Makes every claim batch fail (nothing applied) until set back.
  public func setFailClaims(_ fail: Bool) { faults.withLock { $0.failClaims = fail } }
  /// Makes each claim batch take at least `delay`, as a slow commit would.
  public func setClaimDelay(_ delay: Duration) { faults.withLock { $0.claimDelay = delay } }
  /// Answers the next `count` claims "busy" (sold out for now) without
  /// passing them on, as a shared store whose free units are held by other
  /// transactions, or still restocking, does.
  public func setBusyAnswers(_ count: Int) { faults.withLock { $0.busyAnswers = count } }
  /// The size of every claim batch so far.
  public var claimBatches: [Int] { faults.withLock { $0.claimBatches } }

  public func claim(_ requests: [ClaimRequest], now: Timestamp) async throws -> [ClaimOutcome] {
    let (fail, delay) = faults.withLock { faults in
      faults.claimBatches.append(requests.count)
      return (faults.failClaims, faults.claimDelay)
    }
    if delay > .zero { try await Task.sleep(for: delay) }
    if fail { throw InjectedFailure() }
    let busy = faults.withLock { faults in
      let busy = min(faults.busyAnswers, requests.count)
      faults.busyAnswers -= busy
      return busy
    }
    let passed = try await base.claim(Array(requests.dropFirst(busy)), now: now)
    return Array(repeating: .busy(.soldOutForNow), count: busy) + passed
  }

  public func createSale(_ definition: SaleDefinition, id: SaleID, idempotencyKey: String?, now: Timestamp) async throws -> Sale {
    try await base.createSale(definition, id: id, idempotencyKey: idempotencyKey, now: now)
  }
  public func sale(_ id: SaleID) async throws -> Sale? { try await base.sale(id) }
  public func sales(limit: Int, before cursor: SaleCursor?) async throws -> [Sale] {
    try await base.sales(limit: limit, before: cursor)
  }
  public func setPaused(_ id: SaleID, _ paused: Bool, now: Timestamp) async throws -> Sale {
    try await base.setPaused(id, paused, now: now)
  }
  public func close(_ id: SaleID, now: Timestamp) async throws -> Sale { try await base.close(id, now: now) }
  public func confirm(_ id: BookingID, token: UInt64, now: Timestamp) async throws -> Booking {
    try await base.confirm(id, token: token, now: now)
  }
  public func cancel(_ id: BookingID, token: UInt64, now: Timestamp) async throws -> Booking {
    try await base.cancel(id, token: token, now: now)
  }
  public func release(_ id: BookingID, token: UInt64?, reason: String, now: Timestamp) async throws -> Booking {
    try await base.release(id, token: token, reason: reason, now: now)
  }
  public func expireHolds(now: Timestamp, limit: Int) async throws -> [Booking] {
    try await base.expireHolds(now: now, limit: limit)
  }
  public func nextHoldDeadline() async throws -> Timestamp? { try await base.nextHoldDeadline() }
  public func booking(_ id: BookingID) async throws -> Booking? { try await base.booking(id) }
  public func bookings(idempotencyKeys: [String]) async throws -> [String: Booking] {
    try await base.bookings(idempotencyKeys: idempotencyKeys)
  }
  public func counts(_ saleID: SaleID) async throws -> UnitCounts { try await base.counts(saleID) }
  public func stockLevel(_ saleID: SaleID) async throws -> StockLevel { try await base.stockLevel(saleID) }
  public func audit(_ saleID: SaleID) async throws -> [AuditFinding] { try await base.audit(saleID) }
}
