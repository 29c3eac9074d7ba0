import Metrics
import Synchronization

/// Coalesces concurrent `Book` requests into batched claims: while one batch
/// commits, the next one gathers, so that throughput is bounded by commits,
/// not by requests (group commit).
///
/// No request is answered before the transaction holding it has committed;
/// when a batch fails, every request in it gets the error and none of them
/// took a unit.
public final class ClaimBatcher: Sendable {
  /// How a request's outcome is delivered; called once, from any thread.
  public typealias Completion = @Sendable (Result<ClaimOutcome, any Error>) -> Void

  private struct Pending {
    var request: ClaimRequest
    var completion: Completion
  }

  private struct State {
    var queue: [Pending] = []
    /// Batches being committed now.
    var drainers = 0
  }

  private let state = Mutex(State())
  private let store: any SaleStore
  private let clock: any WallClock
  private let maximumBatchSize: Int
  private let maximumConcurrentBatches: Int
  private let batchSizes = Recorder(label: "flashsale_claim_batch_size")
  private let commitLatency = Timer(label: "flashsale_claim_commit_seconds", preferredDisplayUnit: .seconds)

  /// A batcher claiming through `store`, at most `maximumBatchSize` requests
  /// per transaction and the store's ``SaleStore/concurrentClaimBatches``
  /// transactions at once.
  public init(store: any SaleStore, clock: any WallClock, maximumBatchSize: Int = 1024) {
    precondition(maximumBatchSize > 0)
    self.store = store
    self.clock = clock
    self.maximumBatchSize = maximumBatchSize
    self.maximumConcurrentBatches = max(1, store.concurrentClaimBatches)
  }

  /// Queues `request`; `completion` gets its outcome once its batch committed.
  public func submit(_ request: ClaimRequest, completion: @escaping Completion) {
    let startDrain = state.withLock { state -> Bool in
      state.queue.append(Pending(request: request, completion: completion))
      guard state.drainers < maximumConcurrentBatches else { return false }
      state.drainers += 1
      return true
    }
    if startDrain {
      Task { await self.drain() }
    }
  }

  /// Claims `request` in the next batch.
  public func claim(_ request: ClaimRequest) async throws -> ClaimOutcome {
    try await withCheckedThrowingContinuation { continuation in
      submit(request) { continuation.resume(with: $0) }
    }
  }

  /// Commits batches until the queue is empty.
  private func drain() async {
    while true {
      let batch: [Pending] = state.withLock { state in
        if state.queue.isEmpty {
          state.drainers -= 1
          return []
        }
        if state.queue.count <= maximumBatchSize {
          defer { state.queue = [] }
          return state.queue
        }
        defer { state.queue.removeFirst(maximumBatchSize) }
        return Array(state.queue.prefix(maximumBatchSize))
      }
      if batch.isEmpty { return }
      let started = ContinuousClock.now
      do {
        let outcomes = try await store.claim(batch.map(\.request), now: clock.now())
        commitLatency.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        batchSizes.record(batch.count)
        for (pending, outcome) in zip(batch, outcomes) {
          pending.completion(.success(outcome))
        }
      } catch {
        for pending in batch {
          pending.completion(.failure(error))
        }
      }
    }
  }
}

extension Duration {
  /// The duration in whole nanoseconds.
  var nanoseconds: Int64 {
    let (seconds, attoseconds) = components
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
  }
}
