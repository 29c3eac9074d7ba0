import InteropAPI
import NIOConcurrencyHelpers
import RPCCore
import Testing

@testable import RPCHTTP2

/// Our client against our server over loopback sockets: deadlines,
/// cancellation, flow control, reconnects, several addresses, retries and
/// graceful shutdown.
@Suite("Client and server")
struct ClientServerTests {
  typealias Client = Grpc_Testing_TestService.Client

  /// Starts a server of `service`; stops it after `body`.
  static func withServer<R>(
    _ service: TestDouble = TestDouble(),
    configuration: RPCServerConfiguration = RPCServerConfiguration(),
    _ body: (RPCServer, Int) async throws -> R
  ) async throws -> R {
    let server = RPCServer(configuration: configuration, services: [service])
    try await server.start()
    let port = try #require(server.listeningPort)
    do {
      let result = try await body(server, port)
      server.beginGracefulShutdown()
      try await server.run()
      return result
    } catch {
      server.beginGracefulShutdown()
      try await server.run()
      throw error
    }
  }

  static func client(_ ports: [Int], retry: RetryPolicy = .none) -> RPCClient {
    RPCClient(
      configuration: RPCClientConfiguration(
        targets: ports.map { .init(host: "127.0.0.1", port: $0) },
        backoff: .init(initial: .milliseconds(20), maximum: .milliseconds(200)), defaultRetryPolicy: retry))
  }

  @Test("a deadline ends the call with DEADLINE_EXCEEDED and cancels the handler")
  func deadline() async throws {
    let service = TestDouble()
    try await Self.withServer(service) { _, port in
      let client = Self.client([port])
      defer { client.close() }
      // Connected before the clock runs: on a busy machine the connection
      // alone could outlast the deadline, and then no handler starts.
      _ = try await Client(channel: client).emptyCall(Grpc_Testing_Empty())
      let started = ContinuousClock.now
      do {
        _ = try await Client(channel: client).unaryCall(
          Grpc_Testing_SimpleRequest(responseSize: -1), options: CallOptions(timeout: .milliseconds(300)))
        Issue.record("the call succeeded")
      } catch let error as RPCError {
        #expect(error.code == .deadlineExceeded)
      }
      #expect(ContinuousClock.now - started < .seconds(2))
      try await service.waitUntil { $0.cancelledHandlers >= 1 }
    }
  }

  @Test("calls with different deadlines on one connection each end at their own; the others are answered")
  func manyDeadlines() async throws {
    let service = TestDouble()
    try await Self.withServer(service) { _, port in
      let client = Self.client([port])
      defer { client.close() }
      _ = try await Client(channel: client).emptyCall(Grpc_Testing_Empty())  // connected before the clock runs
      try await withThrowingTaskGroup(of: Void.self) { group in
        for i in 0..<24 {
          group.addTask {
            let timeout = i % 2 == 0 ? Duration.milliseconds(100 + 40 * (i % 12)) : .seconds(10)
            let started = ContinuousClock.now
            do {
              // Even calls never get an answer; odd ones are answered at once.
              let response = try await Client(channel: client).unaryCall(
                Grpc_Testing_SimpleRequest(responseSize: i % 2 == 0 ? -1 : 3), options: CallOptions(timeout: timeout))
              #expect(i % 2 == 1)
              #expect(response.payload?.body.count == 3)
            } catch let error as RPCError {
              #expect(i % 2 == 0, "call \(i): \(error)")
              #expect(error.code == .deadlineExceeded)
              let elapsed = ContinuousClock.now - started
              #expect(elapsed >= timeout, "call \(i) ended after \(elapsed), before its \(timeout) deadline")
              #expect(elapsed < timeout + .seconds(3))
            }
          }
        }
        try await group.waitForAll()
      }
      try await service.waitUntil { $0.cancelledHandlers >= 12 }
    }
  }

  @Test("the completion-based unary call: answers, errors, and a client not yet connected")
  func completionUnary() async throws {
    try await Self.withServer { _, port in
      let client = Self.client([port])  // not connected yet: the first calls connect
      defer { client.close() }
      typealias Outcome = Result<SingleResponse, RPCError>
      let outcomes = try await withThrowingTaskGroup(of: (Int, Outcome).self) { group in
        for i in 0..<40 {
          group.addTask {
            let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
              let method = i == 39 ? MethodDescriptor(service: "grpc.testing.TestService", method: "Nope", kind: .unary)
                : Grpc_Testing_TestService.Method.unaryCall
              client.unary(
                method, request: FramedMessage(Grpc_Testing_SimpleRequest(responseSize: Int32(i))), metadata: [:],
                timeout: .seconds(10)
              ) { continuation.resume(returning: $0) }
            }
            return (i, outcome)
          }
        }
        return try await group.reduce(into: [Int: Outcome]()) { $0[$1.0] = $1.1 }
      }
      #expect(outcomes.count == 40)
      for i in 0..<39 {
        let response = try #require(try outcomes[i]?.get())
        let message = try Grpc_Testing_SimpleResponse(serializedBytes: try #require(response.message))
        #expect(message.payload?.body.count ?? 0 == i)
        #expect(!response.hadMoreMessages)
      }
      guard case .failure(let error) = outcomes[39] else {
        Issue.record("an unknown method succeeded")
        return
      }
      #expect(error.code == .unimplemented)
    }
  }

  @Test("unary calls started from the completions of others (on the event loop, without a hop) all complete")
  func chainedCompletions() async throws {
    try await Self.withServer { _, port in
      let client = Self.client([port])
      defer { client.close() }
      // Connect first, so that the chained calls start on the event loop.
      _ = try await Client(channel: client).unaryCall(Grpc_Testing_SimpleRequest(responseSize: 1))
      let sizes = NIOLockedValueBox<[Int]>([])
      let unknown = MethodDescriptor(service: "grpc.testing.TestService", method: "Nope", kind: .unary)
      await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        @Sendable func call(_ i: Int) {
          // Every fifth call fails (UNIMPLEMENTED); the chain goes on.
          let method = i % 5 == 4 ? unknown : Grpc_Testing_TestService.Method.unaryCall
          client.unary(
            method, request: FramedMessage(Grpc_Testing_SimpleRequest(responseSize: Int32(i))), metadata: [:],
            timeout: .seconds(10)
          ) { result in
            let size = (try? result.get().message).flatMap { try? Grpc_Testing_SimpleResponse(serializedBytes: $0) }
              .map { $0.payload?.body.count ?? 0 } ?? -1
            sizes.withLockedValue { $0.append(size) }
            if i == 99 { done.resume() } else { call(i + 1) }
          }
        }
        call(0)
      }
      #expect(sizes.withLockedValue { $0 } == (0..<100).map { $0 % 5 == 4 ? -1 : $0 })
    }
  }

  @Test("cancelling the calling task cancels the call on both sides")
  func cancellation() async throws {
    let service = TestDouble()
    try await Self.withServer(service) { _, port in
      let client = Self.client([port])
      defer { client.close() }
      let task = Task { try await Client(channel: client).unaryCall(Grpc_Testing_SimpleRequest(responseSize: -1)) }
      try await service.waitUntil { $0.startedHandlers >= 1 }
      task.cancel()
      do {
        _ = try await task.value
        Issue.record("the call succeeded")
      } catch let error as RPCError {
        #expect(error.code == .cancelled)
      }
      try await service.waitUntil { $0.cancelledHandlers >= 1 }
    }
  }

  @Test("a writer waits on the client's window instead of buffering without bound")
  func serverFlowControl() async throws {
    let service = TestDouble()
    try await Self.withServer(service) { _, port in
      let client = Self.client([port])
      defer { client.close() }
      let messages = 200
      let request = Grpc_Testing_StreamingOutputCallRequest(
        responseParameters: Array(repeating: Grpc_Testing_ResponseParameters(size: 64 * 1024), count: messages))
      let stream = try await Client(channel: client).streamingOutputCall(request)
      try await Task.sleep(for: .milliseconds(300))
      // Not reading: the handler is held back by the windows (1 MiB per stream
      // on the client side) and the server's queue limit (256 KiB).
      let written = service.state.withLockedValue { $0.written }
      #expect(written < 40, "the server wrote \(written) of \(messages) messages to a client that reads nothing")
      var received = 0
      for try await _ in stream { received += 1 }
      #expect(received == messages)
    }
  }

  @Test("a reader that is slow to read holds back a client-streaming sender")
  func clientFlowControl() async throws {
    let service = TestDouble()
    service.state.withLockedValue { $0.readDelay = .milliseconds(300) }
    try await Self.withServer(service) { _, port in
      let client = Self.client([port])
      defer { client.close() }
      let sent = NIOLockedValueBox(0)
      let task = Task {
        try await Client(channel: client).streamingInputCall { writer in
          for _ in 0..<100 {
            try await writer.write(
              Grpc_Testing_StreamingInputCallRequest(payload: Grpc_Testing_Payload(body: [UInt8](repeating: 1, count: 64 * 1024))))
            sent.withLockedValue { $0 += 1 }
          }
        }
      }
      try await Task.sleep(for: .milliseconds(200))
      let early = sent.withLockedValue { $0 }
      #expect(early < 60, "the client sent \(early) of 100 messages to a server that reads nothing")
      let response = try await task.value
      #expect(response.aggregatedPayloadSize == 100 * 64 * 1024)
    }
  }

  @Test("streams whose handlers do not read do not starve other calls on the connection")
  func stalledStreamsDoNotStarveOthers() async throws {
    let service = TestDouble()
    service.state.withLockedValue { $0.readDelay = .seconds(3) }
    try await Self.withServer(service) { _, port in
      let client = Self.client([port])
      defer { client.close() }
      // Twelve uploads of 1.5 MiB that nobody reads: 12 stream windows of
      // 1 MiB exceed the 8 MiB connection window if it were held back too.
      var uploads: [Task<Void, any Error>] = []
      for _ in 0..<12 {
        uploads.append(
          Task {
            _ = try await Client(channel: client).streamingInputCall(options: CallOptions(timeout: .seconds(20))) {
              writer in
              for _ in 0..<24 {
                try await writer.write(
                  Grpc_Testing_StreamingInputCallRequest(
                    payload: Grpc_Testing_Payload(body: [UInt8](repeating: 1, count: 64 * 1024))))
              }
            }
          })
      }
      try await Task.sleep(for: .milliseconds(500))
      // A unary call on the same connection still gets through at once.
      let response = try await Client(channel: client).unaryCall(
        Grpc_Testing_SimpleRequest(responseSize: 1, payload: Grpc_Testing_Payload(body: [UInt8](repeating: 2, count: 100_000))),
        options: CallOptions(timeout: .seconds(2)))
      #expect(response.payload?.body.count == 1)
      for upload in uploads { try await upload.value }
    }
  }

  @Test("a slow reader of latest values gets the newest one, not a backlog")
  func latestValue() async throws {
    let service = TestDouble()
    try await Self.withServer(service) { _, port in
      let client = Self.client([port])
      defer { client.close() }
      let request = Grpc_Testing_StreamingOutputCallRequest(responseStatus: Grpc_Testing_EchoStatus(code: 0, message: "latest"))
      let stream = try await Client(channel: client).streamingOutputCall(request)
      // Read only once every value is published: the reader is as slow as can be.
      try await service.waitUntil { $0.latestPublished }
      try await Task.sleep(for: .milliseconds(100))
      var values: [Int] = []
      for try await response in stream {
        let body = response.payload?.body ?? []
        values.append(body.prefix(4).reduce(0) { $0 << 8 | Int($1) })
      }
      #expect(values.last == TestDouble.latestCount - 1)
      // The stream window (1 MiB) and the client's buffer (256 KiB) hold about
      // 320 messages of 4 KiB; beyond that, only the newest value is kept.
      #expect(values.count < 400, "\(values.count) messages for \(TestDouble.latestCount) values")
      #expect(values == values.sorted())
    }
  }

  @Test("the client reconnects after the server restarts")
  func reconnect() async throws {
    let first = RPCServer(configuration: RPCServerConfiguration(), services: [TestDouble()])
    try await first.start()
    let port = try #require(first.listeningPort)
    let client = Self.client([port], retry: RetryPolicy(maxAttempts: 20, initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(100)))
    defer { client.close() }
    _ = try await Client(channel: client).emptyCall(Grpc_Testing_Empty())
    first.beginGracefulShutdown()
    try await first.run()  // returns once drained
    do {
      _ = try await Client(channel: client).emptyCall(Grpc_Testing_Empty(), options: CallOptions(retryPolicy: RetryPolicy.none))
      Issue.record("a call succeeded with no server")
    } catch {
      #expect(error.code == .unavailable)
    }
    let second = RPCServer(configuration: RPCServerConfiguration(port: port), services: [TestDouble()])
    try await second.start()
    _ = try await Client(channel: client).emptyCall(Grpc_Testing_Empty(), options: CallOptions(timeout: .seconds(10)))
    second.beginGracefulShutdown()
    try await second.run()
  }

  @Test("calls move to another address when one server shuts down")
  func severalAddresses() async throws {
    let a = RPCServer(configuration: RPCServerConfiguration(), services: [TestDouble()])
    let b = RPCServer(configuration: RPCServerConfiguration(), services: [TestDouble()])
    try await a.start()
    try await b.start()
    let client = Self.client([try #require(a.listeningPort), try #require(b.listeningPort)])
    defer { client.close() }
    try await withThrowingTaskGroup(of: Void.self) { group in
      for i in 0..<200 {
        group.addTask { _ = try await Client(channel: client).emptyCall(Grpc_Testing_Empty()) }
        if i == 50 { a.beginGracefulShutdown() }
      }
      try await group.waitForAll()
    }
    for _ in 0..<20 { _ = try await Client(channel: client).emptyCall(Grpc_Testing_Empty()) }
    b.beginGracefulShutdown()
    try await a.run()
    try await b.run()
  }

  @Test("graceful shutdown lets in-flight calls finish and refuses new connections")
  func gracefulShutdown() async throws {
    let service = TestDouble()
    let server = RPCServer(configuration: RPCServerConfiguration(), services: [service])
    try await server.start()
    let port = try #require(server.listeningPort)
    let client = Self.client([port])
    defer { client.close() }
    let slow = Task {
      try await Client(channel: client).unaryCall(Grpc_Testing_SimpleRequest(responseSize: -2))  // answers after 300 ms
    }
    try await service.waitUntil { $0.startedHandlers >= 1 }
    server.beginGracefulShutdown()
    let response = try await slow.value
    #expect(response.payload?.body.count == 2)
    try await server.run()
    do {
      _ = try await Client(channel: client).emptyCall(Grpc_Testing_Empty())
      Issue.record("a call succeeded after shutdown")
    } catch {
      #expect(error.code == .unavailable)
    }
  }

  @Test("UNAVAILABLE is retried per the policy; other codes are not")
  func retryPolicy() async throws {
    let service = TestDouble()
    service.state.withLockedValue { $0.failuresBeforeSuccess = 2 }
    try await Self.withServer(service) { _, port in
      let client = Self.client([port])
      defer { client.close() }
      let retrying = CallOptions(retryPolicy: RetryPolicy(maxAttempts: 4, initialBackoff: .milliseconds(10)))
      _ = try await Client(channel: client).emptyCall(Grpc_Testing_Empty(), options: retrying)
      #expect(service.state.withLockedValue { $0.emptyCalls } == 3)

      service.state.withLockedValue { $0.failuresBeforeSuccess = 2 }
      do {
        _ = try await Client(channel: client).emptyCall(Grpc_Testing_Empty())
        Issue.record("no retry was configured, yet the call succeeded")
      } catch let error as RPCError {
        #expect(error.code == .unavailable)
      }
      do {
        _ = try await Client(channel: client).unimplementedMethod(Grpc_Testing_Empty(), options: retrying)
      } catch let error as RPCError {
        #expect(error.code == .unimplemented)
      }
      #expect(service.state.withLockedValue { $0.unimplementedCalls } == 1)
    }
  }

  @Test("the server's keepalive PINGs keep an idle connection alive")
  func keepalive() async throws {
    let configuration = RPCServerConfiguration(keepalive: .init(time: .milliseconds(50), timeout: .seconds(5)))
    try await Self.withServer(configuration: configuration) { _, port in
      let client = Self.client([port])
      defer { client.close() }
      _ = try await Client(channel: client).emptyCall(Grpc_Testing_Empty())
      try await Task.sleep(for: .milliseconds(400))  // several keepalive rounds
      _ = try await Client(channel: client).emptyCall(Grpc_Testing_Empty())
    }
  }
}
