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
public final class SoldOutKeys: Sendable {
  private struct Entry {
    /// Which load fills `keys`: a newer entry for the sale ignores an older load.
    var generation: Int
    /// Until when the reads vouch that no unit was granted.
    var validUntil: ContinuousClock.Instant
    /// The sale's keys, once loaded.
    var keys: Set<UInt64>?
  }

  private struct State {
    var entries: [SaleID: Entry] = [:]
    var nextGeneration = 0
    /// The sale the last ``SoldOutKeys/claimed(_:sale:now:)`` found a loaded
    /// set for, with that set and its time: a rush is for one sale, whose
    /// refusals then skip the lookup by sale id (hashing the id and copying
    /// the entry out were most of a refusal's cost here). Plain fields, not
    /// an optional tuple: the clock's instant has no layout known at compile
    /// time, and every test of such an optional was a runtime call.
    var hotSale: SaleID?
    var hotKeys = Set<UInt64>()
    var hotUntil = ContinuousClock.now
    /// The clock of ``SoldOutKeys/claimed(_:sale:)``.
    var clock = TickCachedClock()

    /// Whether the sale's set has `fingerprint`; `nil` without a loaded set
    /// vouching for `now`.
    mutating func claimed(_ fingerprint: UInt64, sale saleID: SaleID, now: ContinuousClock.Instant) -> Bool? {
      if hotSale != saleID {
        guard let entry = entries[saleID], let keys = entry.keys else { return nil }
        (hotSale, hotKeys, hotUntil) = (saleID, keys, entry.validUntil)
      }
      guard now < hotUntil else { return nil }
      return hotKeys.contains(fingerprint)
    }

    /// Forgets the memo of ``claimed(_:sale:now:)``: `entries` changed.
    mutating func entriesChanged() {
      hotSale = nil
      hotKeys = []
    }
  }

  private let state = Mutex(State())
  /// How long one sold-out read vouches for.
  public let lease: Duration
  private let load: @Sendable (SaleID) async throws -> Set<UInt64>

  /// Key sets for a store with `restockDelay`, loaded by `load` (the
  /// fingerprints, ``ClaimedKeys/fingerprint(_:)``, of a sale's keys).
  public init(restockDelay: Duration, load: @escaping @Sendable (SaleID) async throws -> Set<UInt64>) {
    self.lease = restockDelay * 3 / 4
    self.load = load
  }

  /// Key sets for `store`, which must have a ``SaleStore/restockDelay``.
  public convenience init?(store: any SaleStore) {
    guard let delay = store.restockDelay else { return nil }
    self.init(restockDelay: delay) { try await store.idempotencyKeyFingerprints(of: $0) }
  }

  /// A read of the sale's stock, sent at `readStart` and answered by
  /// `readEnd`, found `unitsFree` units free. The first sold-out read of a
  /// run of them loads the sale's keys.
  public func observe(
    _ saleID: SaleID, unitsFree: Int64, readStart: ContinuousClock.Instant, readEnd: ContinuousClock.Instant
  ) {
    let generation = state.withLock { state -> Int? in
      state.entriesChanged()
      guard unitsFree <= 0 else {
        state.entries[saleID] = nil
        return nil
      }
      let until = readStart + lease
      if var entry = state.entries[saleID], readEnd < entry.validUntil {
        entry.validUntil = max(entry.validUntil, until)
        state.entries[saleID] = entry
        return nil
      }
      // A new run of sold-out reads: the keys of the bookings made before it
      // (loaded after this read, so from a later snapshot than its own).
      defer { state.nextGeneration += 1 }
      state.entries[saleID] = Entry(generation: state.nextGeneration, validUntil: until)
      return state.nextGeneration
    }
    guard let generation else { return }
    Task {
      let keys = try? await load(saleID)
      state.withLock { state in
        guard state.entries[saleID]?.generation == generation else { return }
        state.entriesChanged()
        // A failed load ends the run: the next sold-out read starts another.
        if let keys { state.entries[saleID]?.keys = keys } else { state.entries[saleID] = nil }
      }
    }
  }

  /// Whether a booking of the sale was made with `key`, as memory can vouch
  /// now: `false` surely not, `true` it was; `nil` when the store must tell
  /// (no set, still loading, or expired).
  ///
  /// Called on every `Book` of a sold-out rush, so it reads the clock finely
  /// at most once per tick of the kernel's (``TickCachedClock``): the moment
  /// it checks against the set's time may be up to two ticks after the true
  /// one, which can only end a set that much earlier.
  public func claimed(_ key: String, sale saleID: SaleID) -> Bool? {
    let fingerprint = ClaimedKeys.fingerprint(key)
    return state.withLock { state in
      let now = state.clock.notBeforeNow()
      return state.claimed(fingerprint, sale: saleID, now: now)
    }
  }

  /// ``claimed(_:sale:)`` at the moment `now`.
  public func claimed(_ key: String, sale saleID: SaleID, now: ContinuousClock.Instant) -> Bool? {
    let fingerprint = ClaimedKeys.fingerprint(key)
    return state.withLock { $0.claimed(fingerprint, sale: saleID, now: now) }
  }
}
