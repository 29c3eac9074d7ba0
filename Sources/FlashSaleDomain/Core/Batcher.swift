import Metrics
import Synchronization

/// Coalesces concurrent requests into batches: while one batch runs, the next
/// one gathers, so that throughput is bounded by batches (commits, round
/// trips), not by requests. The sale core batches its claims (group commit)
/// and the idempotency-key reads of sold-out answers this way.
///
/// No request is answered before the batch holding it has completed; when a
/// batch fails, every request in it gets the error.
public final class Batcher<Request: Sendable, Outcome: Sendable>: Sendable {
  /// How a request's outcome is delivered; called once, from any thread.
  public typealias Completion = @Sendable (Result<Outcome, any Error>) -> Void
  /// Runs one batch: one outcome per request, in order.
  public typealias Operation = @Sendable ([Request]) async throws -> [Outcome]

  private struct Pending {
    var request: Request
    var completion: Completion
  }

  private struct State {
    var queue: [Pending] = []
    /// Batches running now.
    var running = 0
  }

  private let state = Mutex(State())
  private let operation: Operation
  private let maximumBatchSize: Int
  private let maximumConcurrentBatches: Int
  private let batchSizes: Recorder?
  private let latency: Timer?

  /// A batcher running `operation` on at most `maximumBatchSize` requests at
  /// a time, `maximumConcurrentBatches` batches at once. With `metricsLabel`,
  /// it records batch sizes (`<label>_batch_size`) and batch latency
  /// (`<label>_commit_seconds`).
  public init(
    maximumBatchSize: Int, maximumConcurrentBatches: Int = 1, metricsLabel: String? = nil,
    operation: @escaping Operation
  ) {
    precondition(maximumBatchSize > 0)
    self.operation = operation
    self.maximumBatchSize = maximumBatchSize
    self.maximumConcurrentBatches = max(1, maximumConcurrentBatches)
    self.batchSizes = metricsLabel.map { Recorder(label: "\($0)_batch_size") }
    self.latency = metricsLabel.map { Timer(label: "\($0)_commit_seconds", preferredDisplayUnit: .seconds) }
  }

  /// Queues `request`; `completion` gets its outcome once its batch completed.
  public func submit(_ request: Request, completion: @escaping Completion) {
    let startRunner = state.withLock { state -> Bool in
      state.queue.append(Pending(request: request, completion: completion))
      guard state.running < maximumConcurrentBatches else { return false }
      state.running += 1
      return true
    }
    if startRunner {
      Task { await self.drain() }
    }
  }

  /// Runs `request` in the next batch.
  public func run(_ request: Request) async throws -> Outcome {
    try await withCheckedThrowingContinuation { continuation in
      submit(request) { continuation.resume(with: $0) }
    }
  }

  /// Runs batches until the queue is empty.
  private func drain() async {
    while true {
      let batch: [Pending] = state.withLock { state in
        if state.queue.isEmpty {
          state.running -= 1
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
        let outcomes = try await operation(batch.map(\.request))
        guard outcomes.count == batch.count else {
          throw StoreFault("a batch of \(batch.count) came back with \(outcomes.count) outcomes")
        }
        latency?.recordNanoseconds((ContinuousClock.now - started).wholeNanoseconds)
        batchSizes?.record(batch.count)
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

