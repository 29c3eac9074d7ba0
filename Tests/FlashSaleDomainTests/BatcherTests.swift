import FlashSaleDomain
import Synchronization
import Testing

/// The group-commit batcher on its own.
@Suite("Batcher")
struct BatcherTests {
  final class Probe: Sendable {
    let state = Mutex((running: 0, most: 0, batches: [Int]()))
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
}
