import FlashSaleDomain
import Synchronization
import Testing

/// The group-commit batcher on its own.
@Suite("Batcher")
struct BatcherTests {
  final class Probe: Sendable {
    let state = Mutex((running: 0, most: 0, batches: [Int]()))
  }

  final class Log: Sendable {
    let told = Mutex([Int]())
    let second = Mutex<Int?>(nil)
  }

  @Test("batches never run more at once than allowed, and every request gets its own outcome")
  func concurrencyCap() async throws {
    let probe = Probe()
    let batcher = Batcher<Int, Int>(maximumBatchSize: 8, maximumConcurrentBatches: 2) { requests in
      probe.state.withLock {
        $0.running += 1
        $0.most = max($0.most, $0.running)
        $0.batches.append(requests.count)
      }
      try await Task.sleep(for: .milliseconds(5))
      probe.state.withLock { $0.running -= 1 }
      return requests.map { $0 * 10 }
    }
    let results = await withTaskGroup(of: (Int, Int?).self) { group in
      for n in 0..<200 {
        group.addTask { (n, try? await batcher.run(n)) }
      }
      return await group.reduce(into: [Int: Int?]()) { $0[$1.0] = $1.1 }
    }
    #expect(results.count == 200)
    #expect(results.allSatisfy { $0.value == $0.key * 10 })
    let (most, batches) = probe.state.withLock { ($0.most, $0.batches) }
    #expect(most <= 2)
    #expect(batches.allSatisfy { $0 <= 8 })
    #expect(batches.reduce(0, +) == 200)
    #expect(batches.count < 200, "requests were not batched: \(batches)")
  }

  @Test("a batch that answers the wrong number of outcomes fails every request in it with a store fault")
  func wrongCount() async {
    let batcher = Batcher<Int, Int>(maximumBatchSize: 4) { requests in Array(requests.dropLast()) }
    await #expect(throws: StoreFault.self) { _ = try await batcher.run(1) }
  }

  @Test(
    "a staged batch is told its outcomes only once it settled, and the next batch runs meanwhile",
    .timeLimit(.minutes(1)))
  func stagedBatches() async throws {
    let (gate, open) = AsyncStream<Void>.makeStream()
    let probe = Probe()
    let log = Log()
    let batcher = Batcher<Int, Int>(maximumBatchSize: 8, maximumConcurrentBatches: 1, staged: { requests in
      let first = probe.state.withLock {
        $0.batches.append(requests.count)
        return $0.batches.count == 1
      }
      // The first batch settles when the test opens the gate; the others at once.
      let settle: (@Sendable () async throws -> Void)? = first ? { @Sendable in for await _ in gate { break } } : nil
      return Batcher.Staged(outcomes: requests.map { -$0 }, settle: settle)
    })
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
      batcher.submit(1) { result in
        log.told.withLock { $0.append(1) }
        #expect(try! result.get() == -1)
      }
      // Submitted after the first batch started: it runs while the first waits.
      Task {
        while probe.state.withLock({ $0.batches.isEmpty }) { await Task.yield() }
        batcher.submit(2) { result in
          log.told.withLock { $0.append(2) }
          log.second.withLock { $0 = try? result.get() }
          done.resume()
        }
      }
    }
    #expect(log.second.withLock { $0 } == -2)
    #expect(log.told.withLock { $0 } == [2], "the first batch was told before it settled")
    open.yield()
    while log.told.withLock({ $0.count }) < 2 { await Task.yield() }
    #expect(log.told.withLock { $0 } == [2, 1])
    #expect(probe.state.withLock { $0.batches } == [1, 1])
  }

  @Test("a staged batch whose settling fails gives every request in it the error, and no outcome")
  func stagedFailure() async {
    struct Lost: Error {}
    let batcher = Batcher<Int, Int>(maximumBatchSize: 4, staged: { requests in
      Batcher.Staged(outcomes: requests, settle: { throw Lost() })
    })
    await #expect(throws: Lost.self) { _ = try await batcher.run(1) }
  }
}
