import Dispatch

/// Owns a value that must be used from one thread at a time (a connection,
/// or an object wrapping one) and runs work on it on its own serial queue;
/// async callers suspend meanwhile instead of blocking a thread.
public final class SQLiteWorker<Resource>: @unchecked Sendable {
  // @unchecked: `resource` is touched only on `queue`.
  private let queue: DispatchQueue
  private let resource: Resource

  /// A worker owning `resource`, its queue named `label`.
  public init(_ resource: Resource, label: String) {
    self.resource = resource
    self.queue = DispatchQueue(label: label)
  }

  /// Runs `body` on the worker's queue and returns what it returns.
  public func run<T: Sendable>(_ body: @escaping @Sendable (Resource) throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
      queue.async {
        continuation.resume(with: Result { try body(self.resource) })
      }
    }
  }
}
