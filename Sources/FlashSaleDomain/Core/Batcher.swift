import Metrics
import Synchronization

/// Coalesces concurrent requests into batches: while one batch runs, the next
/// one gathers, so that throughput is bounded by batches (commits, round
/// trips), not by requests. The sale core batches its claims (group commit)
/// and the idempotency-key reads of sold-out answers this way.
///
/// No request is answered before the batch holding it has completed; when a
/// batch fails, every request in it gets the error.
///
/// A batch may complete in two steps (``Staged``): its work, then a wait
/// (for its commit to reach the disk). The next batch starts once the work is
/// done, while the one before waits: the batches stay as large as the work
/// is slow, and the wait overlaps the next batch's work.
public final class Batcher<Request: Sendable, Outcome: Sendable>: Sendable {
  /// How a request's outcome is delivered; called once, from any thread.
  public typealias Completion = @Sendable (Result<Outcome, any Error>) -> Void
  /// Runs one batch: one outcome per request, in order.
  public typealias Operation = @Sendable ([Request]) async throws -> [Outcome]
  /// Runs one batch's work: its outcomes, told to no one until `settle` returned.
  public typealias StagedOperation = @Sendable ([Request]) async throws -> Staged

  /// A batch whose work is done and whose outcomes wait for `settle`.
  public struct Staged: Sendable {
    /// One outcome per request, in order.
    public var outcomes: [Outcome]
    /// Returns when the outcomes may be told (or throws the error every
    /// request of the batch gets instead); `nil` when they may be told at once.
    public var settle: (@Sendable () async throws -> Void)?

    public init(outcomes: [Outcome], settle: (@Sendable () async throws -> Void)?) {
      self.outcomes = outcomes
      self.settle = settle
    }
  }

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
  private let operation: StagedOperation
  private let maximumBatchSize: Int
  private let maximumConcurrentBatches: Int
  private let batchSizes: Recorder?
  private let latency: Timer?

  /// A batcher running `operation` on at most `maximumBatchSize` requests at
  /// a time, `maximumConcurrentBatches` batches at once. With `metricsLabel`,
  /// it records batch sizes (`<label>_batch_size`) and batch latency
  /// (`<label>_commit_seconds`).
  public convenience init(
    maximumBatchSize: Int, maximumConcurrentBatches: Int = 1, metricsLabel: String? = nil,
    operation: @escaping Operation
  ) {
    self.init(
      maximumBatchSize: maximumBatchSize, maximumConcurrentBatches: maximumConcurrentBatches,
      metricsLabel: metricsLabel, staged: { Staged(outcomes: try await operation($0), settle: nil) })
  }

  /// A batcher running batches in two steps: at most
  /// `maximumConcurrentBatches` batches in their work at once, and any number
  /// waiting for their `settle`.
  public init(
    maximumBatchSize: Int, maximumConcurrentBatches: Int = 1, metricsLabel: String? = nil,
    staged operation: @escaping StagedOperation
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
      let staged: Staged
      do {
        staged = try await operation(batch.map(\.request))
        guard staged.outcomes.count == batch.count else {
          throw StoreFault("a batch of \(batch.count) came back with \(staged.outcomes.count) outcomes")
        }
      } catch {
        Self.fail(batch, error)
        continue
      }
      guard let settle = staged.settle else {
        complete(batch, staged.outcomes, started: started)
        continue
      }
      // The next batch starts now; this one is told once it settled.
      Task {
        do {
          try await settle()
          self.complete(batch, staged.outcomes, started: started)
        } catch {
          Self.fail(batch, error)
        }
      }
    }
  }

  private func complete(_ batch: [Pending], _ outcomes: [Outcome], started: ContinuousClock.Instant) {
    latency?.recordNanoseconds((ContinuousClock.now - started).wholeNanoseconds)
    batchSizes?.record(batch.count)
    for (pending, outcome) in zip(batch, outcomes) {
      pending.completion(.success(outcome))
    }
  }

  private static func fail(_ batch: [Pending], _ error: any Error) {
    for pending in batch {
      pending.completion(.failure(error))
    }
  }
}
