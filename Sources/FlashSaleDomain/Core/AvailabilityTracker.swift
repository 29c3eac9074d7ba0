public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization

/// Keeps every known sale's counts in memory, so that "items left" is
/// answered without a store round trip per call, and pushes changes to
/// watchers.
///
/// The counts come from the store, re-read every `refreshInterval`: a change
/// made by any process sharing the store shows here within that interval plus
/// one read. Each snapshot says when the store last confirmed it (`asOf`) and
/// the bound its staleness keeps while the tracker keeps up (`maxStaleness`).
public final class AvailabilityTracker: Service, Sendable {
  private struct Entry {
    var sale: Sale
    var level: StockLevel
    var asOf: Timestamp
    /// What watchers were last sent: the stock version and the state.
    var published: (version: UInt64, state: AvailabilitySnapshot.State)?
    var watchers: [Int: AsyncStream<AvailabilitySnapshot>.Continuation] = [:]
    /// Units this process gave back (cancel, release, expiry), counted; and
    /// how many of them the last store read had seen. While they differ the
    /// counts may show too few units, and no refusal is made from memory.
    var returnsNoted = 0
    var returnsSeen = 0
    /// On a store other processes share: the sale's keys while it is sold
    /// out, as ``SoldOutKeys`` vouches for them (``vouch(_:for:)``).
    var vouchedKeys: VouchedKeys?
    /// flashsale_sale_units{sale, state}, made once per sale.
    let gauges: UnitGauges
  }

  /// The per-sale unit gauges.
  private struct UnitGauges {
    let available, held, booked: Gauge

    init(_ saleID: SaleID) {
      func gauge(_ state: String) -> Gauge {
        Gauge(label: "flashsale_sale_units", dimensions: [("sale", saleID.rawValue), ("state", state)])
      }
      (available, held, booked) = (gauge("available"), gauge("held"), gauge("booked"))
    }

    func record(_ counts: UnitCounts) {
      available.record(counts.available)
      held.record(counts.held)
      booked.record(counts.booked)
    }
  }

  /// What a refusal from memory reads of an entry, kept beside it as
  /// plain values: copying an ``Entry`` out of the dictionary retained and
  /// released each of its sale's strings on every sold-out answer.
  private struct Gate {
    var schedule: Sale.Schedule
    var counts: UnitCounts
    /// No unit given back in this process since the last store read.
    var settled: Bool
    /// The entry's vouched keys, and their time in ``TickCachedClock``'s
    /// nanoseconds (a plain value, unlike the clock's instant).
    var vouchedFingerprints: Set<UInt64>?
    var vouchedUntil: Int64

    /// No sale's: what ``State/lastGate`` holds while it holds none.
    static let unused = Gate(
      schedule: Sale.Schedule(
        startsAt: Timestamp(nanosecondsSinceEpoch: 0), endsAt: Timestamp(nanosecondsSinceEpoch: 0), isPaused: false,
        isClosed: true),
      counts: UnitCounts(quantity: 0, available: 0, held: 0, booked: 0), settled: false, vouchedFingerprints: nil,
      vouchedUntil: .min)

    init(
      schedule: Sale.Schedule, counts: UnitCounts, settled: Bool, vouchedFingerprints: Set<UInt64>?,
      vouchedUntil: Int64
    ) {
      (self.schedule, self.counts, self.settled) = (schedule, counts, settled)
      (self.vouchedFingerprints, self.vouchedUntil) = (vouchedFingerprints, vouchedUntil)
    }

    init(_ entry: Entry) {
      schedule = entry.sale.schedule
      counts = entry.level.counts
      settled = entry.returnsNoted == entry.returnsSeen
      (vouchedFingerprints, vouchedUntil) = Self.vouched(entry.vouchedKeys)
    }

    static func vouched(_ keys: VouchedKeys?) -> (Set<UInt64>?, Int64) {
      guard let keys else { return (nil, .min) }
      return (keys.fingerprints, TickCachedClock.nanoseconds(keys.until))
    }
  }

  private struct State {
    /// Change through ``store(_:for:)`` (or keep ``gates`` and ``sales`` in step).
    var entries: [SaleID: Entry] = [:]
    var gates: [SaleID: Gate] = [:]
    /// Each entry's sale, for the answer of every claim (without copying the
    /// entry, its watchers and gauges).
    var sales: [SaleID: Sale] = [:]
    /// The gate read last (`lastGate`, of the sale `lastGateID`), found by
    /// comparing ids rather than hashing one (in a rush nearly every `Book`
    /// is for one sale); dropped at every change. Plain fields, read in
    /// place: a gate copied out of an optional tuple cost a runtime call per
    /// `Book`, and a retain and release of its key set.
    var lastGateID: SaleID?
    var lastGate = Gate.unused

    mutating func store(_ entry: Entry, for id: SaleID) {
      entries[id] = entry
      gates[id] = Gate(entry)
      sales[id] = entry.sale
      forgetLastGate()
    }

    /// Makes `lastGate` the sale's gate; `false` when the sale is not tracked.
    mutating func selectGate(_ id: SaleID) -> Bool {
      if lastGateID == id { return true }
      guard let gate = gates[id] else { return false }
      (lastGateID, lastGate) = (id, gate)
      return true
    }

    mutating func forgetLastGate() {
      lastGateID = nil
      lastGate = .unused
    }
    var nextWatcherID = 0
    /// Set when ``run()`` ended: new watchers' streams end at once.
    var stopped = false
    /// Sales being looked up by ``trackSoon(_:)``.
    var lookingUp: Set<SaleID> = []
    /// The clock the vouched keys' time is checked on, on every refusal.
    var leaseClock = TickCachedClock()
  }

  private let state = Mutex(State())
  /// Told of every read of a sale's stock, with when it was sent and answered.
  private let stockReadObservers = Mutex<
    [@Sendable (SaleID, StockLevel, ContinuousClock.Instant, ContinuousClock.Instant) -> Void]
  >([])
  private let store: any SaleStore
  private let clock: any WallClock
  private let logger: Logger
  /// How often counts are re-read from the store.
  public let refreshInterval: Duration

  /// A tracker reading `store` every `refreshInterval`.
  public init(
    store: any SaleStore, clock: any WallClock, refreshInterval: Duration = .milliseconds(50),
    logger: Logger = Logger(label: "flashsale.availability")
  ) {
    self.store = store
    self.clock = clock
    self.refreshInterval = refreshInterval
    self.logger = logger
  }

  /// The staleness bound a snapshot states: one refresh interval, plus as
  /// much again for the read itself and scheduling.
  public var maxStaleness: Duration { refreshInterval * 2 }

  /// The sale's availability from memory; the first call for a sale this
  /// process has not seen reads it from the store once.
  ///
  /// - Throws: ``DomainError`` `SALE_NOT_FOUND`, or a storage error.
  public func snapshot(_ saleID: SaleID) async throws -> AvailabilitySnapshot {
    if let cached = cachedSnapshot(saleID) { return cached }
    guard let sale = try await store.sale(saleID) else { throw DomainError(.saleNotFound, "no sale \(saleID)") }
    try await track(sale)
    return cachedSnapshot(saleID)!
  }

  /// The sale's availability if this process tracks it.
  public func cachedSnapshot(_ saleID: SaleID) -> AvailabilitySnapshot? {
    let now = clock.now()
    return state.withLock { state in
      state.entries[saleID].map { snapshot(of: $0, now: now) }
    }
  }

  /// The sale as this process last read it, if it tracks it.
  public func cachedSale(_ saleID: SaleID) -> Sale? {
    state.withLock { $0.sales[saleID] }
  }

  /// Notes that this process gave units of the sale back to stock: until the
  /// next store read, ``refusalFromMemory(_:)`` (and its variant with a key)
  /// makes no refusal for it.
  public func noteReturned(_ saleID: SaleID) {
    state.withLock { state in
      state.entries[saleID]?.returnsNoted += 1
      state.gates[saleID]?.settled = false
      state.forgetLastGate()
    }
  }

  /// The refusal a `Book` on the sale would get, when memory can tell: the
  /// sale is not open, or no unit was free at the last store read and no unit
  /// came back in this process since. `nil` when a claim must decide.
  public func refusalFromMemory(_ saleID: SaleID) -> DomainError? {
    let bounds = clock.nowBounds()
    return state.withLock { state -> DomainError? in
      guard state.selectGate(saleID), state.lastGate.settled else { return nil }
      return Self.refusal(saleID, verdict(state.lastGate.schedule, state.lastGate.counts, bounds))
    }
  }

  /// ``refusalFromMemory(_:)``, and whether the key with `keyFingerprint`
  /// (``ClaimedKeys/fingerprint(_:)``) surely made no booking of the sale, as
  /// its vouched keys tell while it is sold out (`nil`: they cannot tell).
  /// One lookup of the sale, under one lock, for a sold-out rush's refusals
  /// on a store other processes share.
  public func refusalFromMemory(
    _ saleID: SaleID, keyFingerprint: UInt64
  ) -> (refusal: DomainError, neverUsed: Bool?)? {
    let bounds = clock.nowBounds()
    return state.withLock { state -> (refusal: DomainError, neverUsed: Bool?)? in
      guard state.selectGate(saleID), state.lastGate.settled else { return nil }
      let verdict = verdict(state.lastGate.schedule, state.lastGate.counts, bounds)
      guard let refusal = Self.refusal(saleID, verdict) else { return nil }
      guard verdict == .soldOut || verdict == .soldOutForNow,
        let used = state.lastGate.vouchedFingerprints?.contains(keyFingerprint),
        state.leaseClock.notBeforeNow() < state.lastGate.vouchedUntil
      else { return (refusal, nil) }
      return (refusal, !used)
    }
  }

  /// Keeps what ``SoldOutKeys`` vouches for of a tracked sale's keys now.
  /// For a sale not tracked yet it keeps nothing: the next sold-out read
  /// that extends the set's time hands it over again (within a refresh).
  public func vouch(_ keys: VouchedKeys?, for saleID: SaleID) {
    state.withLock { state in
      guard var entry = state.entries[saleID] else { return }
      entry.vouchedKeys = keys
      state.store(entry, for: saleID)
    }
  }

  /// The state of a sale with `schedule` and `counts` at `bounds`, or
  /// exactly now at a boundary.
  private func verdict(
    _ schedule: Sale.Schedule, _ counts: UnitCounts, _ bounds: ClosedRange<Timestamp>
  ) -> AvailabilitySnapshot.State {
    let verdict = AvailabilitySnapshot.state(of: schedule, counts: counts, at: bounds.lowerBound)
    guard verdict == AvailabilitySnapshot.state(of: schedule, counts: counts, at: bounds.upperBound) else {
      return AvailabilitySnapshot.state(of: schedule, counts: counts, at: clock.now())
    }
    return verdict
  }

  /// The refusal a sale in `verdict` gives a `Book`; `nil` while available.
  private static func refusal(_ saleID: SaleID, _ verdict: AvailabilitySnapshot.State) -> DomainError? {
    switch verdict {
    case .available: return nil
    case .notStarted: return DomainError(.saleNotStarted, "sale \(saleID) has not started")
    case .paused: return DomainError(.salePaused, "sale \(saleID) is paused")
    case .ended: return DomainError(.saleEnded, "sale \(saleID) has ended")
    case .soldOutForNow: return .soldOutForNow
    case .soldOut: return .soldOut
    }
  }

  /// Calls `observer` after each read of a sale's stock from the store, with
  /// the level read and the moments (on this process's monotonic clock)
  /// before the read was sent and after its answer came.
  public func onStockRead(
    _ observer: @escaping @Sendable (SaleID, StockLevel, ContinuousClock.Instant, ContinuousClock.Instant) -> Void
  ) {
    stockReadObservers.withLock { $0.append(observer) }
  }

  /// Reads the sale's stock level and tells the observers.
  private func readStockLevel(_ saleID: SaleID) async throws -> StockLevel {
    let started = ContinuousClock.now
    let level = try await store.stockLevel(saleID)
    let ended = ContinuousClock.now
    for observer in stockReadObservers.withLock({ $0 }) { observer(saleID, level, started, ended) }
    return level
  }

  /// Reads the sales and their stock levels in one go and tells the observers.
  private func readSalesWithStock(_ ids: [SaleID]) async throws -> [(sale: Sale, level: StockLevel)] {
    let started = ContinuousClock.now
    let found = try await store.salesWithStock(ids)
    let ended = ContinuousClock.now
    let observers = stockReadObservers.withLock { $0 }
    for (sale, level) in found {
      for observer in observers { observer(sale.id, level, started, ended) }
    }
    return found
  }

  /// Starts tracking `sale` (after it was created, or first asked about).
  public func track(_ sale: Sale) async throws {
    let level = try await readStockLevel(sale.id)
    let asOf = clock.now()
    state.withLock { state in
      if state.entries[sale.id] == nil {
        state.store(Entry(sale: sale, level: level, asOf: asOf, gauges: UnitGauges(sale.id)), for: sale.id)
      }
    }
  }

  /// Starts tracking the sale in the background if this process does not
  /// yet (a sale another instance created, booked here): its refusals can
  /// then come from memory. One lookup at a time per sale; a sale the store
  /// does not know is looked up again at the next call.
  public func trackSoon(_ saleID: SaleID) {
    let start = state.withLock { state in
      state.entries[saleID] == nil && state.lookingUp.insert(saleID).inserted
    }
    guard start else { return }
    Task {
      _ = try? await snapshot(saleID)
      state.withLock { _ = $0.lookingUp.remove(saleID) }
    }
  }

  /// Takes a sale row this process changed (paused, resumed, closed), so
  /// that snapshots and watchers show it at once.
  public func saleChanged(_ sale: Sale) {
    let now = clock.now()
    state.withLock { state in
      guard var entry = state.entries[sale.id] else { return }
      entry.sale = sale
      publish(&entry, now: now)
      state.store(entry, for: sale.id)
    }
  }

  /// A stream of the sale's availability: the current one first, then each
  /// change. A slow reader gets the newest, never a backlog. The stream ends
  /// when the caller stops iterating it.
  public func updates(_ saleID: SaleID) async throws -> AsyncStream<AvailabilitySnapshot> {
    _ = try await snapshot(saleID)  // tracked from here on
    let (stream, continuation) = AsyncStream.makeStream(
      of: AvailabilitySnapshot.self, bufferingPolicy: .bufferingNewest(1))
    let now = clock.now()
    // The first snapshot and the registration under one lock: no refresh can
    // publish between them and be missed.
    let id = state.withLock { state -> Int in
      defer { state.nextWatcherID += 1 }
      if let entry = state.entries[saleID] { continuation.yield(snapshot(of: entry, now: now)) }
      if state.stopped {
        continuation.finish()
      } else {
        state.entries[saleID]?.watchers[state.nextWatcherID] = continuation
      }
      return state.nextWatcherID
    }
    continuation.onTermination = { [weak self] _ in
      self?.state.withLock { state in _ = state.entries[saleID]?.watchers.removeValue(forKey: id) }
    }
    return stream
  }

  /// Re-reads every tracked sale until cancelled or shut down gracefully;
  /// then ends every watcher's stream.
  public func run() async throws {
    try? await cancelWhenGracefulShutdown {
      while !Task.isCancelled {
        do {
          try await self.refresh()
        } catch {
          self.logger.warning(
            "availability refresh failed; counts grow stale until it succeeds", metadata: ["error": "\(error)"])
        }
        try await Task.sleep(for: self.refreshInterval)
      }
    }
    state.withLock { state in
      state.stopped = true
      for entry in state.entries.values { entry.watchers.values.forEach { $0.finish() } }
    }
  }

  /// Reads every tracked sale's row and stock level once, all in one store
  /// read (one query on PostgreSQL, not two per sale).
  public func refresh() async throws {
    // The returns noted before the read, which it therefore reflects.
    let noted = state.withLock { state in state.entries.mapValues(\.returnsNoted) }
    guard !noted.isEmpty else { return }
    let found = try await readSalesWithStock(Array(noted.keys))
    let now = clock.now()
    for (sale, level) in found {
      let gauges = state.withLock { state -> UnitGauges? in
        guard var entry = state.entries[sale.id] else { return nil }
        entry.sale = sale
        entry.level = level
        entry.asOf = now
        entry.returnsSeen = noted[sale.id] ?? 0
        publish(&entry, now: now)
        state.store(entry, for: sale.id)
        return entry.gauges
      }
      gauges?.record(level.counts)
    }
  }

  private func snapshot(of entry: Entry, now: Timestamp) -> AvailabilitySnapshot {
    AvailabilitySnapshot(
      saleID: entry.sale.id, counts: entry.level.counts,
      state: AvailabilitySnapshot.state(of: entry.sale, counts: entry.level.counts, at: now),
      version: entry.level.version, asOf: entry.asOf, maxStaleness: maxStaleness)
  }

  /// Sends watchers the entry's snapshot if its version or state changed.
  private func publish(_ entry: inout Entry, now: Timestamp) {
    let snapshot = snapshot(of: entry, now: now)
    if let published = entry.published, published.version == snapshot.version, published.state == snapshot.state {
      return
    }
    entry.published = (snapshot.version, snapshot.state)
    for watcher in entry.watchers.values { watcher.yield(snapshot) }
  }
}
