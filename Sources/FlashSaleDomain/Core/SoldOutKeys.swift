import Synchronization

/// For a store several processes share: the idempotency keys of each sold-out
/// sale's bookings, so that a `Book` on a sold-out sale is refused from memory,
/// without a read of its key, as ``ClaimedKeys`` lets a process that owns its
/// store do.
///
/// Another process may grant a unit at any moment, so a set of keys read once
/// is stale at once; but not while the sale is sold out. The store gives a
/// returned unit to no claim before its restock delay
/// (``SaleStore/restockDelay``) has passed since a moment after its return
/// committed. So when a read of the stock, started at local time t, finds no
/// unit free, no process grants a unit of the sale before t + delay: a key set
/// loaded after that read is complete until then. A later read that again
/// finds none free extends it to its own start + delay, if it *ended* before
/// the set expired (its snapshot then fell inside the time vouched for; a
/// read that started in time but waited past it may have missed a grant in
/// between). A free unit drops the set, and an expired one is not used:
/// refusals read their key from the store until the next sold-out read and
/// load.
///
/// A set vouches for `restockDelay × 3/4` from its read's start, a margin for
/// the database's clock and this machine's running at slightly different rates.
///
/// The set holds the sale's own keys: on a sold-out sale, a key used for
/// another sale is refused as sold out rather than as reused. No unit is
/// taken either way.
///
/// Each change of what a sale's set vouches for goes to `publish`: the
/// ``AvailabilityTracker`` keeps it beside the sale's counts, so that a
/// refusal reads both under one lock and finds the sale once.
public final class SoldOutKeys: Sendable {
  private struct Entry {
    /// Which load fills `keys`: a newer entry for the sale ignores an older load.
    var generation: Int
    /// Until when the reads vouch that no unit was granted.
    var validUntil: ContinuousClock.Instant
    /// The sale's keys, once loaded.
    var keys: Set<UInt64>?

    /// What the entry vouches for: nothing before its keys are loaded.
    var vouched: VouchedKeys? { keys.map { VouchedKeys(fingerprints: $0, until: validUntil) } }
  }

  private struct State {
    var entries: [SaleID: Entry] = [:]
    var nextGeneration = 0
  }

  private let state = Mutex(State())
  /// How long one sold-out read vouches for.
  public let lease: Duration
  private let load: @Sendable (SaleID) async throws -> Set<UInt64>
  private let publish: @Sendable (SaleID, VouchedKeys?) -> Void

  /// Key sets for a store with `restockDelay`, loaded by `load` (the
  /// fingerprints, ``ClaimedKeys/fingerprint(_:)``, of a sale's keys); each
  /// change of what a sale's set vouches for goes to `publish`, in order.
  public init(
    restockDelay: Duration, load: @escaping @Sendable (SaleID) async throws -> Set<UInt64>,
    publish: @escaping @Sendable (SaleID, VouchedKeys?) -> Void = { _, _ in }
  ) {
    self.lease = restockDelay * 3 / 4
    self.load = load
    self.publish = publish
  }

  /// Key sets for `store`, which must have a ``SaleStore/restockDelay``.
  public convenience init?(store: any SaleStore, publish: @escaping @Sendable (SaleID, VouchedKeys?) -> Void) {
    guard let delay = store.restockDelay else { return nil }
    self.init(restockDelay: delay, load: { try await store.idempotencyKeyFingerprints(of: $0) }, publish: publish)
  }

  /// A read of the sale's stock, sent at `readStart` and answered by
  /// `readEnd`, found `unitsFree` units free. The first sold-out read of a
  /// run of them loads the sale's keys.
  public func observe(
    _ saleID: SaleID, unitsFree: Int64, readStart: ContinuousClock.Instant, readEnd: ContinuousClock.Instant
  ) {
    let generation = state.withLock { state -> Int? in
      guard unitsFree <= 0 else {
        if state.entries.removeValue(forKey: saleID) != nil { publish(saleID, nil) }
        return nil
      }
      let until = readStart + lease
      if var entry = state.entries[saleID], readEnd < entry.validUntil {
        entry.validUntil = max(entry.validUntil, until)
        state.entries[saleID] = entry
        if let vouched = entry.vouched { publish(saleID, vouched) }
        return nil
      }
      // A new run of sold-out reads: the keys of the bookings made before it
      // (loaded after this read, so from a later snapshot than its own).
      defer { state.nextGeneration += 1 }
      state.entries[saleID] = Entry(generation: state.nextGeneration, validUntil: until)
      publish(saleID, nil)
      return state.nextGeneration
    }
    guard let generation else { return }
    Task {
      let keys = try? await load(saleID)
      state.withLock { state in
        guard state.entries[saleID]?.generation == generation else { return }
        // A failed load ends the run: the next sold-out read starts another.
        if let keys { state.entries[saleID]?.keys = keys } else { state.entries[saleID] = nil }
        publish(saleID, state.entries[saleID]?.vouched)
      }
    }
  }

  /// Whether a booking of the sale was made with `key`, as the sale's set
  /// vouches at `now`: `false` surely not, `true` it was; `nil` when the
  /// store must tell (no set, still loading, or expired). What `publish`
  /// was last given for the sale answers the same.
  public func claimed(_ key: String, sale saleID: SaleID, now: ContinuousClock.Instant) -> Bool? {
    let fingerprint = ClaimedKeys.fingerprint(key)
    return state.withLock { $0.entries[saleID]?.vouched?.claimed(fingerprint, at: now) }
  }
}

/// A sold-out sale's key set and until when the stock reads vouch for it
/// (``SoldOutKeys``).
public struct VouchedKeys: Equatable, Sendable {
  /// The fingerprints (``ClaimedKeys/fingerprint(_:)``) of the sale's keys.
  public var fingerprints: Set<UInt64>
  /// Until when no unit of the sale was granted beyond these keys.
  public var until: ContinuousClock.Instant

  public init(fingerprints: Set<UInt64>, until: ContinuousClock.Instant) {
    self.fingerprints = fingerprints
    self.until = until
  }

  /// Whether the set has `fingerprint`, if it still vouches at `now`.
  public func claimed(_ fingerprint: UInt64, at now: ContinuousClock.Instant) -> Bool? {
    guard now < until else { return nil }
    return fingerprints.contains(fingerprint)
  }
}
