import FlashSaleDomain
import FlashSaleTestSupport
import Testing

/// The use cases over a store: batching, failed commits, expiry and live counts.
@Suite("Sale core")
struct SaleCoreTests {
  let clock = ManualClock()

  func makeCore(_ store: any SaleStore) -> SaleCore {
    SaleCore(store: store, clock: clock, availability: AvailabilityTracker(store: store, clock: clock))
  }

  func definition(quantity: Int64, perUserLimit: Int32 = 1, hold: Duration = .seconds(300)) -> SaleDefinition {
    SaleDefinition(
      itemID: "phone-1", itemName: "Phone", price: Money(currency: "EUR", amountMinor: 100), quantity: quantity,
      startsAt: clock.now(), endsAt: clock.now() + .seconds(3600), perUserLimit: perUserLimit, holdDuration: hold)
  }

  /// Books concurrently for users 0..<count; returns each outcome.
  func bookAll(_ core: SaleCore, _ sale: Sale, users: Range<Int>) async -> [Result<SaleCore.BookResult, any Error>] {
    await withTaskGroup(of: Result<SaleCore.BookResult, any Error>.self) { group in
      for user in users {
        group.addTask {
          do {
            return .success(try await core.book(saleID: sale.id, userID: UserID("u\(user)"), idempotencyKey: "k\(user)"))
          } catch {
            return .failure(error)
          }
        }
      }
      return await group.reduce(into: []) { $0.append($1) }
    }
  }

  @Test("concurrent Book calls are claimed in batches, and never oversell")
  func batching() async throws {
    let store = FaultyStore(InMemorySaleStore())
    store.setClaimDelay(.milliseconds(20))
    let core = makeCore(store)
    let sale = try await core.createSale(definition(quantity: 100), idempotencyKey: nil)
    let results = await bookAll(core, sale, users: 0..<300)
    let held = results.compactMap { try? $0.get() }
    #expect(held.count == 100)
    #expect(Set(held.map(\.booking.unit)).count == 100)
    let refusals = results.compactMap { result -> DomainError.Reason? in
      if case .failure(let error as DomainError) = result { return error.reason }
      return nil
    }
    #expect(refusals.count == 200 && refusals.allSatisfy { $0 == .soldOutForNow })
    #expect(store.claimBatches.reduce(0, +) == 300)
    #expect(store.claimBatches.count < 300, "batches \(store.claimBatches)")
    #expect(try await store.audit(sale.id) == [])
  }

  @Test("a claim answered busy goes again in later batches until it holds; if it stays busy, its refusal stands")
  func busyClaims() async throws {
    let store = FaultyStore(InMemorySaleStore())
    let core = makeCore(store)
    let sale = try await core.createSale(definition(quantity: 10), idempotencyKey: nil)
    store.setBusyAnswers(3)
    let held = try await core.book(saleID: sale.id, userID: UserID("patient"), idempotencyKey: "k-patient")
    #expect(held.booking.status == .hold)
    #expect(store.claimBatches == [1, 1, 1, 1])
    // Busy for longer than the patience (50 ms for a store without a restock
    // delay, and at least 4 more tries).
    store.setBusyAnswers(1_000_000)
    let started = ContinuousClock.now
    await #expect(throws: DomainError.soldOutForNow) {
      _ = try await core.book(saleID: sale.id, userID: UserID("refused"), idempotencyKey: "k-refused")
    }
    #expect(ContinuousClock.now - started >= .milliseconds(50))
    #expect(store.claimBatches.count >= 4 + 5)
    #expect(try await store.counts(sale.id).held == 1)
  }

  @Test("an instance starts tracking a sale another one created once a claim shows it exists, not for an unknown sale")
  func tracksSalesClaimedHere() async throws {
    let store = InMemorySaleStore()  // shared: two instances on one store
    let creator = makeCore(store)
    let other = makeCore(store)
    let sale = try await creator.createSale(definition(quantity: 5), idempotencyKey: nil)
    #expect(other.availability.cachedSnapshot(sale.id) == nil)
    await confirmation("the unknown sale is refused") { refused in
      do {
        _ = try await other.book(saleID: SaleID("sale_unknown"), userID: UserID("u0"), idempotencyKey: "k-unknown")
      } catch let error as DomainError where error.reason == .saleNotFound {
        refused()
      } catch {}
    }
    let results = await bookAll(other, sale, users: 0..<3)
    #expect(results.allSatisfy { (try? $0.get()) != nil })
    // Tracked in the background, once per batch: wait for it (bounded).
    var waits = 0
    while other.availability.cachedSnapshot(sale.id) == nil, waits < 200 {
      try await Task.sleep(for: .milliseconds(5))
      waits += 1
    }
    #expect(other.availability.cachedSnapshot(sale.id) != nil, "tracked after its first claim batch")
    try await other.availability.refresh()  // (the refresh job does this every 50 ms)
    #expect(other.availability.cachedSnapshot(sale.id)?.counts.held == 3)
    #expect(other.availability.cachedSnapshot(SaleID("sale_unknown")) == nil)
  }

  @Test("when a batch fails to commit, no request in it is answered with a hold, and nothing was taken")
  func failedCommit() async throws {
    let store = FaultyStore(InMemorySaleStore())
    let core = makeCore(store)
    let sale = try await core.createSale(definition(quantity: 10), idempotencyKey: nil)
    store.setFailClaims(true)
    let results = await bookAll(core, sale, users: 0..<20)
    #expect(results.allSatisfy { if case .failure(let e) = $0 { e is FaultyStore.InjectedFailure } else { false } })
    #expect(try await store.counts(sale.id) == UnitCounts(quantity: 10, available: 10, held: 0, booked: 0))
    // A retry with the same keys, once the store recovers, gets the units.
    store.setFailClaims(false)
    let retried = await bookAll(core, sale, users: 0..<10)
    #expect(retried.allSatisfy { (try? $0.get())?.replayed == false })
  }

  @Test("bad requests are refused before the store, naming the field")
  func badRequests() async throws {
    let core = makeCore(InMemorySaleStore())
    let sale = try await core.createSale(definition(quantity: 1), idempotencyKey: nil)
    for (key, field) in [("", "idempotency_key"), (String(repeating: "k", count: 129), "idempotency_key")] {
      do {
        _ = try await core.book(saleID: sale.id, userID: UserID("u"), idempotencyKey: key)
        Issue.record("a bad key was accepted")
      } catch let error as DomainError {
        #expect(error.reason == .invalidArgument && error.field == field)
      }
    }
  }

  @Test("the expiry job returns due holds, and only those, a batch per transaction")
  func expiryJob() async throws {
    let store = InMemorySaleStore()
    let core = makeCore(store)
    let sale = try await core.createSale(definition(quantity: 5, hold: .seconds(10)), idempotencyKey: nil)
    _ = try await core.book(saleID: sale.id, userID: UserID("a"), idempotencyKey: "a")
    clock.advance(by: .seconds(5))
    let late = try await core.book(saleID: sale.id, userID: UserID("b"), idempotencyKey: "b")
    let job = HoldExpiryJob(store: store, clock: clock, batchLimit: 1)
    #expect(try await job.expireDue() == 0)
    clock.advance(by: .seconds(5))
    #expect(try await job.expireDue() == 1)
    let lateStatus = await store.booking(late.booking.id)?.status
    #expect(lateStatus == .hold)
    clock.advance(by: .seconds(5))
    #expect(try await job.expireDue() == 1)
    #expect(try await store.counts(sale.id).available == 5)
  }

  @Test("availability comes from memory, carries a growing version, and tells sold out for now from for good")
  func availability() async throws {
    let store = InMemorySaleStore()
    let core = makeCore(store)
    let sale = try await core.createSale(definition(quantity: 2, hold: .seconds(10)), idempotencyKey: nil)
    let start = try #require(core.availability.cachedSnapshot(sale.id))
    #expect(start.state == .available && start.counts.available == 2)
    let a = try await core.book(saleID: sale.id, userID: UserID("a"), idempotencyKey: "a")
    _ = try await core.book(saleID: sale.id, userID: UserID("b"), idempotencyKey: "b")
    // Not re-read yet: the snapshot is the old one, honestly dated.
    #expect(core.availability.cachedSnapshot(sale.id)?.version == start.version)
    try await core.availability.refresh()
    let soldOutForNow = try #require(core.availability.cachedSnapshot(sale.id))
    #expect(soldOutForNow.state == .soldOutForNow && soldOutForNow.version > start.version)
    _ = try await core.confirm(a.booking.id, token: a.booking.fencingToken, user: UserID("a"))
    clock.advance(by: .seconds(11))
    _ = try await HoldExpiryJob(store: store, clock: clock) { expired in
      for booking in expired { core.availability.noteReturned(booking.saleID) }
    }.expireDue()
    let c = try await core.book(saleID: sale.id, userID: UserID("c"), idempotencyKey: "c")
    _ = try await core.confirm(c.booking.id, token: c.booking.fencingToken, user: UserID("c"))
    try await core.availability.refresh()
    let soldOut = try #require(core.availability.cachedSnapshot(sale.id))
    #expect(soldOut.state == .soldOut && soldOut.counts == UnitCounts(quantity: 2, available: 0, held: 0, booked: 2))
    #expect(soldOut.asOf == clock.now())
    _ = try await core.setPaused(sale.id, true)
    #expect(core.availability.cachedSnapshot(sale.id)?.state == .paused)
  }

  @Test("a sold-out sale is refused from memory, but a retry of a granted claim still gets its booking")
  func soldOutFromMemory() async throws {
    let store = FaultyStore(InMemorySaleStore())
    let core = makeCore(store)
    let sale = try await core.createSale(definition(quantity: 1), idempotencyKey: nil)
    let granted = try await core.book(saleID: sale.id, userID: UserID("a"), idempotencyKey: "a-1")
    try await core.availability.refresh()
    let claimsBefore = store.claimBatches.count
    do {
      _ = try await core.book(saleID: sale.id, userID: UserID("b"), idempotencyKey: "b-1")
      Issue.record("a sold-out sale granted a unit")
    } catch let error as DomainError {
      #expect(error.reason == .soldOutForNow)
    }
    #expect(store.claimBatches.count == claimsBefore, "the refusal went to the store")
    let replay = try await core.book(saleID: sale.id, userID: UserID("a"), idempotencyKey: "a-1")
    #expect(replay.replayed && replay.booking == granted.booking)
    // A unit this process gives back is claimable at once, before the next read.
    _ = try await core.cancel(granted.booking.id, token: granted.booking.fencingToken, user: UserID("a"))
    let next = try await core.book(saleID: sale.id, userID: UserID("b"), idempotencyKey: "b-2")
    #expect(next.booking.unit == granted.booking.unit)
  }

  @Test("watchers get the current count, then changes")
  func watch() async throws {
    let store = InMemorySaleStore()
    let core = makeCore(store)
    let sale = try await core.createSale(definition(quantity: 3), idempotencyKey: nil)
    var updates = try await core.availability.updates(sale.id).makeAsyncIterator()
    #expect(await updates.next()?.counts.available == 3)
    _ = try await core.book(saleID: sale.id, userID: UserID("a"), idempotencyKey: "a")
    try await core.availability.refresh()
    #expect(await updates.next()?.counts.available == 2)
  }
}

/// The in-memory index of claimed keys, for a store the process alone writes.
@Suite("Claimed keys")
struct ClaimedKeysTests {
  let clock = ManualClock()

  func soldOutSale(_ core: SaleCore) async throws -> (Sale, SaleCore.BookResult) {
    let sale = try await core.createSale(
      SaleDefinition.testPhones(quantity: 1, from: clock.now()),
      idempotencyKey: nil)
    let held = try await core.book(saleID: sale.id, userID: UserID("winner"), idempotencyKey: "k-winner")
    try await core.availability.refresh()  // the counts in memory now say sold out (for now)
    return (sale, held)
  }

  func reason(_ body: () async throws -> SaleCore.BookResult) async -> DomainError.Reason? {
    do {
      _ = try await body()
      return nil
    } catch let error as DomainError {
      return error.reason
    } catch {
      Issue.record("unexpected \(error)")
      return nil
    }
  }

  /// Waits until refusals no longer read keys from the store (the index loaded).
  func untilIndexed(_ core: SaleCore, _ store: InMemorySaleStore, _ sale: Sale) async throws {
    for attempt in 0..<200 {
      let before = await store.keysRead
      _ = await reason { try await core.book(saleID: sale.id, userID: UserID("probe"), idempotencyKey: "probe-\(attempt)") }
      if await store.keysRead == before { return }
      try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("the key index never loaded")
  }

  @Test("on the process's clock, a sold-out sale's vouched keys never answer once their time has run out, and do until shortly before")
  func vouchedKeysOnTheClock() async throws {
    let store = InMemorySaleStore(restockDelay: .seconds(20))
    let (sale, _) = try await soldOutSale(
      SaleCore(store: store, clock: clock, availability: AvailabilityTracker(store: store, clock: clock)))
    // A tracker of its own, with no SoldOutKeys vouching besides the test.
    let tracker = AvailabilityTracker(store: store, clock: clock)
    try await tracker.track(sale)
    let until = ContinuousClock.now + .milliseconds(150)
    tracker.vouch(VouchedKeys(fingerprints: [ClaimedKeys.fingerprint("k-winner")], until: until), for: sale.id)
    #expect(tracker.refusalFromMemory(sale.id, keyFingerprint: ClaimedKeys.fingerprint("k-winner"))?.neverUsed == false)
    // The clock the refusals read may run up to two ticks of the kernel's
    // clock ahead (20 ms at most where the kernel ticks at 100 Hz or more),
    // never behind.
    let margin = Duration.milliseconds(20)
    let fingerprint = ClaimedKeys.fingerprint("new")
    var (answered, lateAnswers, missedAnswers) = (0, 0, 0)
    while ContinuousClock.now < until + .milliseconds(30) {
      for _ in 0..<50 {
        let before = ContinuousClock.now
        let answer = tracker.refusalFromMemory(sale.id, keyFingerprint: fingerprint)
        let after = ContinuousClock.now
        #expect(answer?.refusal.reason == .soldOutForNow)
        if answer?.neverUsed != nil { answered += 1 }
        if answer?.neverUsed != nil, before >= until { lateAnswers += 1 }
        if answer?.neverUsed == nil, after + margin < until { missedAnswers += 1 }
      }
      try await Task.sleep(for: .microseconds(500))
    }
    #expect(answered > 0)
    #expect(lateAnswers == 0)
    #expect(missedAnswers == 0)
    // Nothing vouched: the store must tell.
    tracker.vouch(nil, for: sale.id)
    #expect(tracker.refusalFromMemory(sale.id, keyFingerprint: fingerprint)?.neverUsed == nil)
  }

  /// A store this process alone writes (the key index, ``ClaimedKeys``), or
  /// one shared with other processes that restocks after a delay (the key
  /// sets of sold-out sales, ``SoldOutKeys``).
  static func makeStore(_ kind: String) -> InMemorySaleStore {
    kind == "sole writer" ? InMemorySaleStore(soleWriter: true) : InMemorySaleStore(restockDelay: .seconds(20))
  }

  @Test("a sold-out sale refuses unknown keys without a store read, and still replays a granted key",
    arguments: ["sole writer", "shared, with a restock delay"])
  func refusalsFromTheIndex(store kind: String) async throws {
    let store = Self.makeStore(kind)
    let core = SaleCore(store: store, clock: clock, availability: AvailabilityTracker(store: store, clock: clock))
    let (sale, held) = try await soldOutSale(core)
    try await untilIndexed(core, store, sale)
    let readsBefore = await store.keysRead
    for i in 0..<50 {
      let refused = await reason { try await core.book(saleID: sale.id, userID: UserID("u\(i)"), idempotencyKey: "k\(i)") }
      #expect(refused == .soldOutForNow)
    }
    #expect(await store.keysRead == readsBefore, "refusals read keys from the store")
    // The winner's retry goes the claim's way and gets the same booking.
    let retry = try await core.book(saleID: sale.id, userID: UserID("winner"), idempotencyKey: "k-winner")
    #expect(retry.replayed)
    #expect(retry.booking == held.booking)
    // What a server can answer at once, on its event loop: only a new, valid key.
    #expect(core.immediateRefusal(saleID: sale.id, idempotencyKey: "k-fresh")?.reason == .soldOutForNow)
    #expect(core.immediateRefusal(saleID: sale.id, idempotencyKey: "k-winner") == nil)
    #expect(core.immediateRefusal(saleID: sale.id, idempotencyKey: "") == nil)
    #expect(core.immediateRefusal(saleID: SaleID(""), idempotencyKey: "k-fresh") == nil)
    // The same key from someone else is still refused as a reuse.
    #expect(await reason { try await core.book(saleID: sale.id, userID: UserID("thief"), idempotencyKey: "k-winner") }
      == .idempotencyKeyReused)
  }

  @Test("near a sale's end a refusal from memory reads the exact time: the cheap bounds straddle the end")
  func refusalAtTheEnd() async throws {
    let store = InMemorySaleStore(soleWriter: true)
    let core = SaleCore(store: store, clock: clock, availability: AvailabilityTracker(store: store, clock: clock))
    let (sale, _) = try await soldOutSale(core)
    clock.setBoundsSlack(.milliseconds(5))
    let end = sale.definition.endsAt
    clock.set(end + .milliseconds(-1))
    #expect(core.availability.refusalFromMemory(sale.id)?.reason == .soldOutForNow)
    clock.set(end + .milliseconds(1))
    #expect(core.availability.refusalFromMemory(sale.id)?.reason == .saleEnded)
    clock.set(end + .milliseconds(-20))  // the bounds agree: no exact read needed
    #expect(core.availability.refusalFromMemory(sale.id)?.reason == .soldOutForNow)
  }

  @Test("the key of a claim the store refused is forgotten: its retries are refused from memory")
  func refusedKeysForgotten() async throws {
    let store = InMemorySaleStore(soleWriter: true)
    let core = SaleCore(store: store, clock: clock, availability: AvailabilityTracker(store: store, clock: clock))
    let sale = try await core.createSale(
      SaleDefinition.testPhones(quantity: 1, from: clock.now()),
      idempotencyKey: nil)
    // Two claims race for the one unit: the store grants one and refuses the other.
    async let first = reason { try await core.book(saleID: sale.id, userID: UserID("u1"), idempotencyKey: "k1") }
    async let second = reason { try await core.book(saleID: sale.id, userID: UserID("u2"), idempotencyKey: "k2") }
    let outcomes = await [first, second]
    #expect(outcomes.filter { $0 == nil }.count == 1 && outcomes.contains(.soldOutForNow), "\(outcomes)")
    let (winner, loser) = outcomes[0] == nil ? ("k1", "k2") : ("k2", "k1")
    try await core.availability.refresh()
    try await untilIndexed(core, store, sale)
    #expect(core.immediateRefusal(saleID: sale.id, idempotencyKey: loser)?.reason == .soldOutForNow)
    #expect(core.immediateRefusal(saleID: sale.id, idempotencyKey: winner) == nil)
  }

  @Test("keys already in the store when the process starts are in the index")
  func loadedAtStart() async throws {
    let store = InMemorySaleStore(soleWriter: true)
    let first = SaleCore(store: store, clock: clock, availability: AvailabilityTracker(store: store, clock: clock))
    let (sale, held) = try await soldOutSale(first)
    // A new process over the same store.
    let second = SaleCore(store: store, clock: clock, availability: AvailabilityTracker(store: store, clock: clock))
    _ = try await second.availability.snapshot(sale.id)
    try await second.availability.refresh()
    try await untilIndexed(second, store, sale)
    let retry = try await second.book(saleID: sale.id, userID: UserID("winner"), idempotencyKey: "k-winner")
    #expect(retry.replayed && retry.booking == held.booking)
  }

  @Test("a shared store keeps no index: refusals read the key from the store")
  func sharedStoreReads() async throws {
    let store = InMemorySaleStore()
    let core = SaleCore(store: store, clock: clock, availability: AvailabilityTracker(store: store, clock: clock))
    let (sale, _) = try await soldOutSale(core)
    var readsPerRefusal: [Int] = []
    for attempt in 0..<3 {
      let before = await store.keysRead
      let refused = await reason { try await core.book(saleID: sale.id, userID: UserID("u"), idempotencyKey: "k\(attempt)") }
      #expect(refused == .soldOutForNow)
      readsPerRefusal.append(await store.keysRead - before)
    }
    #expect(readsPerRefusal == [1, 1, 1])
    #expect(core.immediateRefusal(saleID: sale.id, idempotencyKey: "k-fresh") == nil, "no index, no immediate answer")
  }

  @Test("fingerprints tell apart keys that differ in one byte, in length, or in their seed")
  func fingerprint() {
    // Every key of length 0...40 over a few bytes, and each with one byte
    // changed at every position: no two share a fingerprint.
    var keys: Set<[UInt8]> = []
    for length in 0...40 {
      let base = (0..<length).map { UInt8(truncatingIfNeeded: 0x61 + $0 % 26) }
      keys.insert(base)
      keys.insert(base + [0])  // a trailing zero byte changes the length only
      for position in 0..<length {
        for flip: UInt8 in [1, 0x80] {
          var changed = base
          changed[position] ^= flip
          keys.insert(changed)
        }
      }
    }
    let fingerprints = Set(keys.map { key in key.withUnsafeBytes { ClaimedKeys.fingerprint($0) } })
    #expect(fingerprints.count == keys.count)
    // A string and its UTF-8 bytes agree; a seed changes the result.
    let key = "k-7f3a-0123456789abcdef0123456789abcdef"
    #expect(ClaimedKeys.fingerprint(key) == Array(key.utf8).withUnsafeBytes { ClaimedKeys.fingerprint($0) })
    #expect(Array(key.utf8).withUnsafeBytes { ClaimedKeys.fingerprint($0, seed: 1) } != ClaimedKeys.fingerprint(key))
  }
}
