import NIOConcurrencyHelpers
public import RPCCore
public import StandardProtos

/// The serving status of each service of a process, as `grpc.health.v1.Health`
/// reports it. The empty name stands for the whole server.
public final class HealthRegistry: Sendable {
  public typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus

  private struct State {
    var statuses: [String: Status] = [:]
    var watchers: [Int: (service: String, continuation: AsyncStream<Status>.Continuation)] = [:]
    var nextWatcher = 0
  }
  private let state = NIOLockedValueBox(State())

  public init() {}

  /// Sets the status of `service` (and tells its watchers).
  public func set(_ service: String, _ status: Status) {
    let watchers = state.withLockedValue { state in
      state.statuses[service] = status
      return state.watchers.values.filter { $0.service == service }.map(\.continuation)
    }
    for watcher in watchers { watcher.yield(status) }
  }

  /// Sets every known service to `status` (NOT_SERVING when shutting down).
  public func setAll(_ status: Status) {
    let names = state.withLockedValue { Array($0.statuses.keys) }
    for name in names { set(name, status) }
  }

  /// The status of `service`, or `nil` when it is unknown.
  public func status(of service: String) -> Status? {
    state.withLockedValue { $0.statuses[service] }
  }

  /// The status of `service` now and at every change; unknown services
  /// start as SERVICE_UNKNOWN. Only the newest status is kept for a slow reader.
  public func watch(_ service: String) -> AsyncStream<Status> {
    let (stream, continuation) = AsyncStream<Status>.makeStream(bufferingPolicy: .bufferingNewest(1))
    let id = state.withLockedValue { state -> Int in
      state.nextWatcher += 1
      state.watchers[state.nextWatcher] = (service, continuation)
      continuation.yield(state.statuses[service] ?? .serviceUnknown)
      return state.nextWatcher
    }
    continuation.onTermination = { [weak self] _ in
      _ = self?.state.withLockedValue { $0.watchers.removeValue(forKey: id) }
    }
    return stream
  }
}

/// `grpc.health.v1.Health` (doc/health-checking.md): `Check` answers from the
/// registry, `Watch` streams changes.
public struct HealthService: Grpc_Health_V1_Health.ServiceProtocol {
  private let registry: HealthRegistry

  public init(registry: HealthRegistry) {
    self.registry = registry
  }

  public func check(_ request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext)
    -> Reply<Grpc_Health_V1_HealthCheckResponse>
  {
    guard let status = registry.status(of: request.service) else {
      return .failure(RPCError(code: .notFound, message: "unknown service \(request.service)"))
    }
    return .ok(Grpc_Health_V1_HealthCheckResponse(status: status))
  }

  public func watch(
    _ request: Grpc_Health_V1_HealthCheckRequest,
    responses: ResponseWriter<Grpc_Health_V1_HealthCheckResponse>,
    context: ServerContext
  ) async throws {
    for await status in registry.watch(request.service) {
      responses.writeLatest(Grpc_Health_V1_HealthCheckResponse(status: status))
    }
  }
}
