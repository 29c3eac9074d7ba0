import FlashSaleDomain
import Synchronization
import Testing

/// The key sets of sold-out sales on a shared store, with the instants of
/// the stock reads given by the test.
@Suite("SoldOutKeys")
struct SoldOutKeysTests {
  let sale = SaleID("sale-1")
  let t0 = ContinuousClock.now

  /// A loader that counts its loads and answers with the keys it is given
  /// (or fails while `failing`).
  final class Loader: Sendable {
    let state = Mutex((loads: 0, keys: Set<UInt64>(), failing: false))

    func load(_ saleID: SaleID) async throws -> Set<UInt64> {
      try state.withLock { state in
        state.loads += 1
        if state.failing { throw StoreFault("no database") }
        return state.keys
      }
    }

    var loads: Int { state.withLock { $0.loads } }
  }

  func makeKeys(_ loader: Loader, keys: [String]) -> SoldOutKeys {
    loader.state.withLock { $0.keys = Set(keys.map(ClaimedKeys.fingerprint)) }
    return SoldOutKeys(restockDelay: .milliseconds(200)) { try await loader.load($0) }
  }

  /// A stock read sent `at` ms after t0 and answered 1 ms later (or at `answeredAt`).
  func read(_ keys: SoldOutKeys, free: Int64 = 0, at: Int, answeredAt: Int? = nil) {
    keys.observe(
      sale, unitsFree: free, readStart: t0 + .milliseconds(at), readEnd: t0 + .milliseconds(answeredAt ?? at + 1))
  }

  /// Key sets after a first sold-out read at t0, once its keys are loaded.
  func soldOutRun(granted: [String]) async throws -> (Loader, SoldOutKeys) {
    let loader = Loader()
    let keys = makeKeys(loader, keys: granted)
    read(keys, at: 0)
    #expect(try await settled(keys, "new", now: t0) == false)
    return (loader, keys)
  }

  /// Waits until the set answers for `key` at `now` (its load is a task).
  func settled(_ keys: SoldOutKeys, _ key: String, now: ContinuousClock.Instant) async throws -> Bool? {
    for _ in 0..<500 {
      if let answer = keys.claimed(key, sale: sale, now: now) { return answer }
      try await Task.sleep(for: .milliseconds(2))
    }
    return nil
  }

  @Test("no set before a sold-out read, or while units are free")
  func noSet() async throws {
    let loader = Loader()
    let keys = makeKeys(loader, keys: ["granted"])
    #expect(keys.claimed("new", sale: sale, now: t0) == nil)
    read(keys, free: 3, at: 0)
    try await Task.sleep(for: .milliseconds(20))
    #expect(keys.claimed("new", sale: sale, now: t0) == nil)
    #expect(loader.loads == 0)
  }

  @Test("after a sold-out read, the loaded keys answer until the lease from the read's start runs out")
  func lease() async throws {
    let (_, keys) = try await soldOutRun(granted: ["granted"])
    #expect(keys.claimed("granted", sale: sale, now: t0) == true)
    #expect(keys.claimed("new", sale: SaleID("another-sale"), now: t0) == nil)
    // 3/4 of the 200 ms restock delay.
    #expect(keys.lease == .milliseconds(150))
    #expect(keys.claimed("new", sale: sale, now: t0 + .milliseconds(149)) == false)
    #expect(keys.claimed("new", sale: sale, now: t0 + .milliseconds(150)) == nil)
  }

  @Test("two sold-out sales asked in turn each answer from their own keys, and each one's lease holds")
  func twoSales() async throws {
    let loader = Loader()
    let keys = SoldOutKeys(restockDelay: .milliseconds(200)) { saleID in
      _ = try await loader.load(saleID)
      return [ClaimedKeys.fingerprint("granted-in-\(saleID)")]
    }
    let other = SaleID("sale-2")
    keys.observe(sale, unitsFree: 0, readStart: t0, readEnd: t0 + .milliseconds(1))
    keys.observe(other, unitsFree: 0, readStart: t0 + .milliseconds(100), readEnd: t0 + .milliseconds(101))
    #expect(try await settled(keys, "new", now: t0) == false)
    for _ in 0..<500 where keys.claimed("new", sale: other, now: t0) == nil {
      try await Task.sleep(for: .milliseconds(2))
    }
    #expect(keys.claimed("granted-in-sale-1", sale: sale, now: t0) == true)
    #expect(keys.claimed("granted-in-sale-2", sale: sale, now: t0) == false)
    #expect(keys.claimed("granted-in-sale-2", sale: other, now: t0) == true)
    #expect(keys.claimed("granted-in-sale-1", sale: other, now: t0) == false)
    // The first sale's lease ends at 150 ms, the second's at 250 ms.
    #expect(keys.claimed("new", sale: sale, now: t0 + .milliseconds(200)) == nil)
    #expect(keys.claimed("new", sale: other, now: t0 + .milliseconds(200)) == false)
    #expect(keys.claimed("new", sale: sale, now: t0 + .milliseconds(200)) == nil)
    // A read that finds a unit of the second sale free drops its set only.
    #expect(keys.claimed("granted-in-sale-2", sale: other, now: t0) == true)
    keys.observe(other, unitsFree: 1, readStart: t0 + .milliseconds(110), readEnd: t0 + .milliseconds(111))
    #expect(keys.claimed("new", sale: other, now: t0) == nil)
    #expect(keys.claimed("new", sale: sale, now: t0) == false)
  }

  @Test("what is published for a sale, in order, is what its set vouches for after each step")
  func published() async throws {
    let loader = Loader()
    loader.state.withLock { $0.keys = [ClaimedKeys.fingerprint("granted")] }
    let log = Mutex<[VouchedKeys?]>([])
    let keys = SoldOutKeys(restockDelay: .milliseconds(200), load: { try await loader.load($0) }) { saleID, vouched in
      #expect(saleID == sale)
      log.withLock { $0.append(vouched) }
    }
    /// Waits for the `count`-th publication and returns it (`nil` if none
    /// came): a later one may already have followed, as loads run apart.
    func last(_ count: Int) async throws -> VouchedKeys?? {
      for _ in 0..<500 where log.withLock({ $0.count }) < count { try await Task.sleep(for: .milliseconds(2)) }
      return log.withLock { $0.count >= count ? $0[count - 1] : nil }
    }
    read(keys, at: 0)  // a new run: nothing vouched until its keys are loaded
    #expect(try await last(1) == .some(nil))
    let loaded = try #require(try await last(2) ?? nil)
    #expect(loaded.fingerprints == [ClaimedKeys.fingerprint("granted")])
    #expect(loaded.until == t0 + keys.lease)
    #expect(keys.claimed("granted", sale: sale, now: t0) == loaded.claimed(ClaimedKeys.fingerprint("granted"), at: t0))
    read(keys, at: 100)  // extends the run to 100 + 150 ms
    #expect(try await last(3)??.until == t0 + .milliseconds(250))
    read(keys, free: 1, at: 200)  // a unit free: nothing vouched
    #expect(try await last(4) == .some(nil))
    #expect(keys.claimed("new", sale: sale, now: t0 + .milliseconds(200)) == nil)
    loader.state.withLock { $0.failing = true }
    read(keys, at: 300)  // a new run whose load fails: nothing vouched, twice
    #expect(try await last(5) == .some(nil))
    #expect(try await last(6) == .some(nil))
    #expect(keys.claimed("new", sale: sale, now: t0 + .milliseconds(300)) == nil)
    try await Task.sleep(for: .milliseconds(20))
    #expect(log.withLock { $0.count } == 6, "a publication beyond the steps above")
  }

  @Test("reads that follow each other within the lease extend it with one load; a gap starts over")
  func chain() async throws {
    let (loader, keys) = try await soldOutRun(granted: ["granted"])
    read(keys, at: 100)
    read(keys, at: 200)
    #expect(keys.claimed("new", sale: sale, now: t0 + .milliseconds(349)) == false)
    #expect(loader.loads == 1)
    // The next read starts after the lease ran out: a grant may have been
    // made meanwhile, so the keys are loaded again.
    loader.state.withLock { _ = $0.keys.insert(ClaimedKeys.fingerprint("granted-in-the-gap")) }
    read(keys, at: 400)
    #expect(try await settled(keys, "granted-in-the-gap", now: t0 + .milliseconds(400)) == true)
    #expect(loader.loads == 2)
  }

  @Test("a read that started within the lease but ended after it starts a new run: it may have missed a grant")
  func lateAnswer() async throws {
    let (loader, keys) = try await soldOutRun(granted: ["granted"])
    // Sent at 100 ms, answered at 230 ms: its snapshot may be past the 150 ms vouched for.
    loader.state.withLock { _ = $0.keys.insert(ClaimedKeys.fingerprint("granted-meanwhile")) }
    read(keys, at: 100, answeredAt: 230)
    #expect(try await settled(keys, "granted-meanwhile", now: t0 + .milliseconds(231)) == true)
    #expect(loader.loads == 2)
  }

  @Test("a read that finds a unit free drops the set")
  func unitFree() async throws {
    let (_, keys) = try await soldOutRun(granted: [])
    read(keys, free: 1, at: 10)
    #expect(keys.claimed("new", sale: sale, now: t0 + .milliseconds(10)) == nil)
  }

  @Test("a failed load leaves no set; the next sold-out read loads again")
  func failedLoad() async throws {
    let loader = Loader()
    let keys = makeKeys(loader, keys: ["granted"])
    loader.state.withLock { $0.failing = true }
    read(keys, at: 0)
    for _ in 0..<500 where loader.loads == 0 { try await Task.sleep(for: .milliseconds(2)) }
    try await Task.sleep(for: .milliseconds(10))
    #expect(keys.claimed("new", sale: sale, now: t0) == nil)
    loader.state.withLock { $0.failing = false }
    // Within the first read's lease: had the failed run stayed, this read
    // would only extend it, and nothing would load.
    read(keys, at: 50)
    #expect(try await settled(keys, "granted", now: t0 + .milliseconds(50)) == true)
    #expect(loader.loads == 2)
  }
}
