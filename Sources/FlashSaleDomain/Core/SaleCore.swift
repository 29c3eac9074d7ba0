import Metrics

/// The sale core's use cases, free of any transport: what the `Inventory` and
/// `Booking` services call. It checks requests, sends claims through the
/// ``Batcher`` (group commit), keeps the ``AvailabilityTracker`` informed and counts
/// what happens.
public final class SaleCore: Sendable {
  public let store: any SaleStore
  public let clock: any WallClock
  public let availability: AvailabilityTracker
  /// Claims, in batches of up to 1,024 per transaction (group commit); with
  /// a store that makes commits durable in the background, the next batch
  /// runs while the last one's commit reaches the disk.
  private let claims: Batcher<ClaimRequest, ClaimOutcome>
  /// Idempotency-key reads of refusals made from memory, batched the same way.
  private let keyReads: Batcher<String, Booking?>
  /// The keys that made bookings or are in running claims, for a store this
  /// process alone writes: a refusal from memory then needs no key read.
  private let claimedKeys: ClaimedKeys?
  /// The keys of sold-out sales, for a store other processes write too and
  /// that restocks returned units only after a delay: a sold-out refusal
  /// then needs no key read either. It hands each sale's set to the
  /// availability tracker, whose refusals check the key (kept here, as the
  /// tracker's stock-read observer, for as long as the core lives).
  private let soldOutKeys: SoldOutKeys?
  private let holds = Counter(label: "flashsale_bookings_total", dimensions: [("event", "held")])
  private let confirms = Counter(label: "flashsale_bookings_total", dimensions: [("event", "confirmed")])
  private let cancels = Counter(label: "flashsale_bookings_total", dimensions: [("event", "cancelled")])
  private let releases = Counter(label: "flashsale_bookings_total", dimensions: [("event", "released")])
  /// Refusals made from memory, by how the key was checked: `memory` (a key
  /// index) or `store` (a key read).
  private let refusalsFromMemory = Counter(
    label: "flashsale_book_refused_from_memory_total", dimensions: [("key_check", "memory")])
  private let refusalsAfterKeyRead = Counter(
    label: "flashsale_book_refused_from_memory_total", dimensions: [("key_check", "store")])

  /// The longest idempotency key accepted.
  public static let maximumKeyLength = 128

  public init(store: any SaleStore, clock: any WallClock, availability: AvailabilityTracker, maximumBatchSize: Int = 1024) {
    self.store = store
    self.clock = clock
    self.availability = availability
    self.claims = Batcher(
      maximumBatchSize: maximumBatchSize, maximumConcurrentBatches: store.concurrentClaimBatches,
      metricsLabel: "flashsale_claim",
      staged: { [store, clock, availability] requests in
        let committed = try await store.claimCommitted(requests, now: clock.now())
        Self.trackClaimedSales(requests, committed.outcomes, in: availability)
        return committed
      })
    self.keyReads = Batcher(maximumBatchSize: maximumBatchSize, maximumConcurrentBatches: 2) { [store] keys in
      let found = try await store.bookings(idempotencyKeys: keys)
      return keys.map { found[$0] }
    }
    if store.isSoleWriter {
      let claimedKeys = ClaimedKeys()
      self.claimedKeys = claimedKeys
      Task { await claimedKeys.load(from: store) }
    } else {
      self.claimedKeys = nil
    }
    if !store.isSoleWriter, let soldOutKeys = SoldOutKeys(store: store, publish: { availability.vouch($1, for: $0) }) {
      self.soldOutKeys = soldOutKeys
      availability.onStockRead { saleID, level, readStart, readEnd in
        soldOutKeys.observe(saleID, unitsFree: level.counts.available, readStart: readStart, readEnd: readEnd)
      }
    } else {
      self.soldOutKeys = nil
    }
  }

  // MARK: Sales

  /// Creates a sale; the same `idempotencyKey` returns the sale created first.
  public func createSale(_ definition: SaleDefinition, idempotencyKey: String?) async throws -> Sale {
    try definition.validate()
    if let key = idempotencyKey { try Self.checkKey(key) }
    let sale = try await store.createSale(
      definition, id: SaleID(IdentifierFactory.make(prefix: "sale")), idempotencyKey: idempotencyKey, now: clock.now())
    try await availability.track(sale)
    return sale
  }

  /// The sale with `id`.
  public func sale(_ id: SaleID) async throws -> Sale {
    try Self.checkID(id.rawValue, field: "sale_id")
    guard let sale = try await store.sale(id) else { throw DomainError(.saleNotFound, "no sale \(id)") }
    return sale
  }

  /// A page of sales, newest first, and where the next page starts (nil on the last).
  public func sales(pageSize: Int, after cursor: SaleCursor?) async throws -> (sales: [Sale], next: SaleCursor?) {
    let page = try await store.sales(limit: pageSize + 1, before: cursor)
    guard page.count > pageSize else { return (page, nil) }
    let shown = Array(page.prefix(pageSize))
    return (shown, shown.last.map { SaleCursor(createdAt: $0.createdAt, id: $0.id) })
  }

  /// Pauses or resumes booking.
  public func setPaused(_ id: SaleID, _ paused: Bool) async throws -> Sale {
    try Self.checkID(id.rawValue, field: "sale_id")
    let sale = try await store.setPaused(id, paused, now: clock.now())
    availability.saleChanged(sale)
    return sale
  }

  /// Ends a sale before its end time.
  public func close(_ id: SaleID) async throws -> Sale {
    try Self.checkID(id.rawValue, field: "sale_id")
    let sale = try await store.close(id, now: clock.now())
    availability.saleChanged(sale)
    return sale
  }

  // MARK: Bookings

  /// What `Book` came to.
  public struct BookResult: Hashable, Sendable {
    public var booking: Booking
    public var unitsLeft: Int64
    /// The idempotency key was seen before: this is the booking it made.
    public var replayed: Bool
  }

  /// Takes a unit of `saleID` on hold for `userID`; `completion` gets the
  /// hold once its batch committed, or the refusal (``DomainError``) or
  /// storage error. Called once, from any thread.
  public func book(
    saleID: SaleID, userID: UserID, idempotencyKey: String,
    completion: @escaping @Sendable (Result<BookResult, any Error>) -> Void
  ) {
    do {
      try Self.checkID(saleID.rawValue, field: "sale_id")
      try Self.checkKey(idempotencyKey)
    } catch {
      completion(.failure(error))
      return
    }
    // The booking id is made only for a claim: a refusal costs no random bits.
    @Sendable func request() -> ClaimRequest {
      ClaimRequest(
        saleID: saleID, userID: userID, idempotencyKey: idempotencyKey,
        bookingID: BookingID(IdentifierFactory.make(prefix: "bkg")))
    }
    if let (refusal, neverUsed) = refusalFromMemory(saleID, idempotencyKey) {
      // Sold out (or not open): no claim, no write. Only a retry of a claim
      // that did get a unit goes on, to be answered with its booking.
      switch neverUsed {
      case true?:
        refusalsFromMemory.increment()
        completion(.failure(refusal))
      case false?:
        // Maybe a retry: the claim answers with the booking, or refuses.
        claim(request(), completion: completion)
      case nil:  // no key index (a shared store): read the key
        readKey(idempotencyKey, refusal: refusal, request: request, completion: completion)
      }
      return
    }
    claim(request(), completion: completion)
  }

  /// What memory alone says of a `Book`: `nil` when the sale may have a unit;
  /// else the refusal, and whether the key surely made no booking (`nil`
  /// when memory cannot tell: no key index, or on a shared store no key set
  /// vouched for now).
  private func refusalFromMemory(_ saleID: SaleID, _ key: String) -> (DomainError, neverUsed: Bool?)? {
    if let claimedKeys {
      guard let refusal = availability.refusalFromMemory(saleID) else { return nil }
      return (refusal, claimedKeys.neverUsed(key))
    }
    // Only "sold out" is vouched for by a sold-out sale's key set.
    guard soldOutKeys != nil else { return availability.refusalFromMemory(saleID).map { ($0, nil) } }
    return availability.refusalFromMemory(saleID, keyFingerprint: ClaimedKeys.fingerprint(key))
  }

  /// A refusal from memory on a shared store: refused if the key made no
  /// booking, else claimed (the claim replays the booking).
  private func readKey(
    _ idempotencyKey: String, refusal: DomainError, request: @escaping @Sendable () -> ClaimRequest,
    completion: @escaping @Sendable (Result<BookResult, any Error>) -> Void
  ) {
    keyReads.submit(idempotencyKey) { [refusalsAfterKeyRead] result in
      switch result {
      case .success(nil):
        refusalsAfterKeyRead.increment()
        completion(.failure(refusal))
      case .success:
        self.claim(request(), completion: completion)
      case .failure(let error):
        completion(.failure(error))
      }
    }
  }

  private func claim(
    _ request: ClaimRequest, completion: @escaping @Sendable (Result<BookResult, any Error>) -> Void
  ) {
    let fingerprint = claimedKeys?.record(request.idempotencyKey)
    submit(request) { [holds, claimedKeys] result in
      if let fingerprint {
        let madeBooking: Bool
        switch result {
        case .success(.refused(let error)): madeBooking = error.reason == .idempotencyKeyReused
        case .success: madeBooking = true
        case .failure: madeBooking = true  // unknown: keep treating the key as used
        }
        claimedKeys?.settle(fingerprint, madeBooking: madeBooking)
      }
      completion(
        result.flatMap { outcome in
          switch outcome {
          case .held(let booking, let left):
            holds.increment()
            return .success(BookResult(booking: booking, unitsLeft: left, replayed: false))
          case .replayed(let booking, let left):
            return .success(BookResult(booking: booking, unitsLeft: left, replayed: true))
          case .refused(let error), .busy(let error):
            return .failure(error)
          }
        })
    }
  }

  /// Starts tracking the sales a batch of claims showed to exist (a sale
  /// another instance created), so that their refusals come from memory:
  /// once per sale and batch, not per claim (the tracker's lock is shared by
  /// every thread).
  private static func trackClaimedSales(
    _ requests: [ClaimRequest], _ outcomes: [ClaimOutcome], in availability: AvailabilityTracker
  ) {
    var sales = Set<SaleID>()
    var last: SaleID?  // a batch's claims are mostly for one sale
    for (request, outcome) in zip(requests, outcomes) where request.saleID != last {
      switch outcome {
      case .held, .replayed, .busy:
        break
      case .refused(let error) where error.reason != .saleNotFound && error.reason != .idempotencyKeyReused:
        break
      default:
        continue
      }
      last = request.saleID
      sales.insert(request.saleID)
    }
    for sale in sales { availability.trackSoon(sale) }
  }

  /// Submits a claim to the batcher. A claim the store refused for a moment
  /// only (``ClaimOutcome/busy(_:)``) goes again in a later batch, backing
  /// off from 2 ms to 50 ms, until ``busyPatience`` has passed since its
  /// first such answer and it went again at least 4 times (however slow the
  /// machine); then its refusal stands. Its batch is not held up.
  private func submit(
    _ request: ClaimRequest, attempt: Int = 0, giveUpAt: ContinuousClock.Instant? = nil,
    completion: @escaping @Sendable (Result<ClaimOutcome, any Error>) -> Void
  ) {
    claims.submit(request) { result in
      guard case .success(.busy(let refusal)) = result else { return completion(result) }
      let now = ContinuousClock.now
      let giveUpAt = giveUpAt ?? now + self.busyPatience
      guard attempt < 4 || now < giveUpAt else { return completion(.success(.refused(refusal))) }
      let pause = min(.milliseconds(2 << min(attempt, 5)), Duration.milliseconds(50))
      Task {
        // The last try comes at the end of the patience.
        try? await Task.sleep(for: attempt < 4 ? pause : min(pause, giveUpAt - now))
        self.submit(request, attempt: attempt + 1, giveUpAt: giveUpAt, completion: completion)
      }
    }
  }

  /// How long a claim answered "busy" keeps being retried: long enough for
  /// a returned unit's restock (``SaleStore/restockDelay``), and for other
  /// transactions holding free units to commit.
  private var busyPatience: Duration { (store.restockDelay ?? .zero) + .milliseconds(50) }

  /// The refusal of a `Book` that needs nothing but memory: the counts in
  /// memory say sold out (or not open) and the key was surely never claimed
  /// (``ClaimedKeys`` on a store this process alone writes, ``SoldOutKeys``
  /// on a shared one). `nil` when the call must go the usual way. Lets a
  /// server answer at once, on its event loop, the calls that make up most
  /// of a sold-out rush.
  public func immediateRefusal(saleID: SaleID, idempotencyKey: String) -> DomainError? {
    guard claimedKeys != nil || soldOutKeys != nil, (try? Self.checkID(saleID.rawValue, field: "sale_id")) != nil,
      (try? Self.checkKey(idempotencyKey)) != nil,
      let (refusal, neverUsed) = refusalFromMemory(saleID, idempotencyKey), neverUsed == true
    else { return nil }
    refusalsFromMemory.increment()
    return refusal
  }

  /// ``book(saleID:userID:idempotencyKey:completion:)`` for async callers.
  public func book(saleID: SaleID, userID: UserID, idempotencyKey: String) async throws -> BookResult {
    try await withCheckedThrowingContinuation { continuation in
      book(saleID: saleID, userID: userID, idempotencyKey: idempotencyKey) { continuation.resume(with: $0) }
    }
  }

  /// Turns a hold into a booking. `user`, when given, must own the booking.
  public func confirm(_ id: BookingID, token: UInt64, user: UserID?) async throws -> Booking {
    let before = try await booking(id, user: user)
    do {
      let booking = try await store.confirm(id, token: token, now: clock.now())
      if before.status == .hold { confirms.increment() }
      return booking
    } catch let error as DomainError where error.reason == .holdExpired {
      availability.noteReturned(before.saleID)  // the late confirm expired the hold
      throw error
    }
  }

  /// Releases a hold at once. `user`, when given, must own the booking.
  public func cancel(_ id: BookingID, token: UInt64, user: UserID?) async throws -> Booking {
    let before = try await booking(id, user: user)
    let booking = try await store.cancel(id, token: token, now: clock.now())
    if before.status == .hold {
      cancels.increment()
      availability.noteReturned(booking.saleID)
    }
    return booking
  }

  /// Returns a held or booked unit to stock, recording `reason`.
  public func release(_ id: BookingID, token: UInt64?, reason: String) async throws -> Booking {
    try Self.checkID(id.rawValue, field: "booking_id")
    guard !reason.isEmpty else { throw DomainError(.invalidArgument, "reason: must not be empty", field: "reason") }
    let before = try await booking(id, user: nil)
    let booking = try await store.release(id, token: token, reason: reason, now: clock.now())
    if before.status.takesUnit {
      releases.increment()
      availability.noteReturned(booking.saleID)
    }
    return booking
  }

  /// The booking with `id`. `user`, when given, must own it: another
  /// user's booking is "not found", so that ids reveal nothing.
  public func booking(_ id: BookingID, user: UserID?) async throws -> Booking {
    try Self.checkID(id.rawValue, field: "booking_id")
    guard let booking = try await store.booking(id), user == nil || booking.userID == user else {
      throw DomainError(.bookingNotFound, "no booking \(id)")
    }
    return booking
  }

  // MARK: Checks

  private static func checkID(_ id: String, field: String) throws(DomainError) {
    if id.isEmpty { throw DomainError(.invalidArgument, "\(field): must not be empty", field: field) }
    if id.utf8.count > 64 { throw DomainError(.invalidArgument, "\(field): longer than 64 bytes", field: field) }
  }

  private static func checkKey(_ key: String) throws(DomainError) {
    if key.isEmpty {
      throw DomainError(
        .invalidArgument, "idempotency_key: must not be empty (one per purchase attempt, e.g. a UUID)",
        field: "idempotency_key")
    }
    if key.utf8.count > maximumKeyLength {
      throw DomainError(
        .invalidArgument, "idempotency_key: longer than \(maximumKeyLength) bytes", field: "idempotency_key")
    }
  }
}
