import InteropAPI
import NIOConcurrencyHelpers
import RPCCore

/// A grpc.testing.TestService whose behaviour the tests steer and observe.
///
/// - `UnaryCall`: response size -1 never answers (a task sleeping until
///   cancelled); -3 never answers either, without a task (a promise that the
///   call's cancellation fails on the cancelling thread: for tests on an
///   embedded loop, which no other thread may touch); -2 answers after 300 ms
///   with a 2-byte payload; -4 answers with the time left until the
///   context's deadline, in whole milliseconds as text ("none" without one);
///   otherwise a payload of that size.
/// - `EmptyCall`: fails with UNAVAILABLE `failuresBeforeSuccess` times first.
/// - `StreamingOutputCall`: writes the requested sizes with `write`; with a
///   response status message "latest", publishes 0..<latestCount with
///   `writeLatest`, each a 4 KiB payload starting with the value (big endian).
/// - `StreamingInputCall`: waits `readDelay` before reading.
final class TestDouble: Grpc_Testing_TestService.ServiceProtocol {
  struct State {
    var startedHandlers = 0
    var cancelledHandlers = 0
    var written = 0
    var readDelay: Duration = .zero
    var failuresBeforeSuccess = 0
    var emptyCalls = 0
    var unimplementedCalls = 0
    var latestPublished = false
  }
  let state = NIOLockedValueBox(State())
  static let latestCount = 2_000

  /// Polls until `condition` holds (at most 5 s).
  func waitUntil(_ condition: (State) -> Bool) async throws {
    for _ in 0..<500 {
      if state.withLockedValue({ condition($0) }) { return }
      try await Task.sleep(for: .milliseconds(10))
    }
    throw RPCError(code: .deadlineExceeded, message: "condition not met: \(state.withLockedValue { $0 })")
  }

  func emptyCall(_ request: Grpc_Testing_Empty, context: ServerContext) -> Reply<Grpc_Testing_Empty> {
    let fail = state.withLockedValue { state -> Bool in
      state.emptyCalls += 1
      guard state.failuresBeforeSuccess > 0 else { return false }
      state.failuresBeforeSuccess -= 1
      return true
    }
    return fail ? .failure(RPCError(code: .unavailable, message: "try again")) : .ok(Grpc_Testing_Empty())
  }

  func unaryCall(_ request: Grpc_Testing_SimpleRequest, context: ServerContext) -> Reply<Grpc_Testing_SimpleResponse> {
    switch request.responseSize {
    case -1:
      return .later { [state] in
        state.withLockedValue { $0.startedHandlers += 1 }
        do {
          try await Task.sleep(for: .seconds(30))
        } catch {
          state.withLockedValue { $0.cancelledHandlers += 1 }
          throw error
        }
        return Grpc_Testing_SimpleResponse()
      }
    case -3:
      return .promise { [state] promise in
        state.withLockedValue { $0.startedHandlers += 1 }
        context.onCancel {
          state.withLockedValue { $0.cancelledHandlers += 1 }
          promise.fail(CancellationError())
        }
      }
    case -4:
      let left = context.deadline.map { "\(Int(ContinuousClock.now.duration(to: $0) / .milliseconds(1)))" } ?? "none"
      return .ok(Grpc_Testing_SimpleResponse(payload: Grpc_Testing_Payload(body: Array(left.utf8))))
    case -2:
      return .later { [state] in
        state.withLockedValue { $0.startedHandlers += 1 }
        try await Task.sleep(for: .milliseconds(300))
        return Grpc_Testing_SimpleResponse(payload: Grpc_Testing_Payload(body: [1, 2]))
      }
    default:
      return .ok(Grpc_Testing_SimpleResponse(payload: Grpc_Testing_Payload(body: [UInt8](repeating: 0, count: Int(request.responseSize)))))
    }
  }

  func streamingOutputCall(
    _ request: Grpc_Testing_StreamingOutputCallRequest,
    responses: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext
  ) async throws {
    if request.responseStatus?.message == "latest" {
      for value in 0..<Self.latestCount {
        var body = [UInt8](repeating: 0, count: 4 * 1024)
        body[0] = UInt8(value >> 24 & 0xFF)
        body[1] = UInt8(value >> 16 & 0xFF)
        body[2] = UInt8(value >> 8 & 0xFF)
        body[3] = UInt8(value & 0xFF)
        responses.writeLatest(Grpc_Testing_StreamingOutputCallResponse(payload: Grpc_Testing_Payload(body: body)))
      }
      state.withLockedValue { $0.latestPublished = true }
      return
    }
    for parameters in request.responseParameters {
      try await responses.write(
        Grpc_Testing_StreamingOutputCallResponse(
          payload: Grpc_Testing_Payload(body: [UInt8](repeating: 0, count: Int(parameters.size)))))
      state.withLockedValue { $0.written += 1 }
    }
  }

  func streamingInputCall(
    requests: RequestStream<Grpc_Testing_StreamingInputCallRequest>, context: ServerContext
  ) async throws -> Grpc_Testing_StreamingInputCallResponse {
    let delay = state.withLockedValue { $0.readDelay }
    try await Task.sleep(for: delay)
    var total = 0
    for try await request in requests { total += request.payload?.body.count ?? 0 }
    return Grpc_Testing_StreamingInputCallResponse(aggregatedPayloadSize: Int32(total))
  }

  func fullDuplexCall(
    requests: RequestStream<Grpc_Testing_StreamingOutputCallRequest>,
    responses: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext
  ) async throws {
    for try await _ in requests {}
  }

  func halfDuplexCall(
    requests: RequestStream<Grpc_Testing_StreamingOutputCallRequest>,
    responses: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext
  ) async throws {
    for try await _ in requests {}
  }

  func unimplementedMethod(_ request: Grpc_Testing_Empty, context: ServerContext) -> Reply<Grpc_Testing_Empty> {
    state.withLockedValue { $0.unimplementedCalls += 1 }
    return .failure(RPCError.unimplemented(context.descriptor))
  }
}
