internal import InteropAPI
public import RPCCore

/// The gRPC interop test cases (doc/interop-test-descriptions.md), run by our
/// client against any grpc.testing.TestService server.
public enum InteropTestCases {
  /// A failed expectation of a test case.
  public struct Failure: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
  }

  /// One test case.
  public typealias TestCase = @Sendable (any RPCChannel) async throws -> Void

  static let requestSizes: [Int32] = [27182, 8, 1828, 45904]
  static let responseSizes: [Int32] = [31415, 9, 2653, 58979]
  static let echoInitial = "x-grpc-test-echo-initial"
  static let echoTrailing = "x-grpc-test-echo-trailing-bin"

  typealias Client = Grpc_Testing_TestService.Client
  typealias Request = Grpc_Testing_StreamingOutputCallRequest

  /// Every case, by the name the interop descriptions give it.
  public static let all: [(name: String, run: TestCase)] = [
    ("empty_unary", emptyUnary),
    ("large_unary", largeUnary),
    ("client_streaming", clientStreaming),
    ("server_streaming", serverStreaming),
    ("ping_pong", pingPong),
    ("empty_stream", emptyStream),
    ("custom_metadata", customMetadata),
    ("status_code_and_message", statusCodeAndMessage),
    ("special_status_message", specialStatusMessage),
    ("unimplemented_method", unimplementedMethod),
    ("unimplemented_service", unimplementedService),
    ("timeout_on_sleeping_server", timeoutOnSleepingServer),
    ("cancel_after_begin", cancelAfterBegin),
    ("cancel_after_first_response", cancelAfterFirstResponse),
  ]

  static func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw Failure(message()) }
  }

  static func payload(_ size: Int32) -> Grpc_Testing_Payload {
    Grpc_Testing_Payload(body: [UInt8](repeating: 0, count: Int(size)))
  }

  static let options = CallOptions(timeout: .seconds(10))

  static func emptyUnary(_ channel: any RPCChannel) async throws {
    _ = try await Client(channel: channel).emptyCall(Grpc_Testing_Empty(), options: options)
  }

  static func largeUnary(_ channel: any RPCChannel) async throws {
    let response = try await Client(channel: channel).unaryCall(
      Grpc_Testing_SimpleRequest(responseSize: 314_159, payload: payload(271_828)), options: options)
    try check(response.payload?.body.count == 314_159, "payload size \(response.payload?.body.count ?? -1)")
  }

  static func clientStreaming(_ channel: any RPCChannel) async throws {
    let response = try await Client(channel: channel).streamingInputCall(options: options) { writer in
      for size in requestSizes {
        try await writer.write(Grpc_Testing_StreamingInputCallRequest(payload: payload(size)))
      }
    }
    try check(response.aggregatedPayloadSize == 74922, "aggregated size \(response.aggregatedPayloadSize)")
  }

  static func serverStreaming(_ channel: any RPCChannel) async throws {
    let request = Request(responseParameters: responseSizes.map { Grpc_Testing_ResponseParameters(size: $0) })
    var sizes: [Int32] = []
    for try await response in try await Client(channel: channel).streamingOutputCall(request, options: options) {
      sizes.append(Int32(response.payload?.body.count ?? 0))
    }
    try check(sizes == responseSizes, "response sizes \(sizes)")
  }

  static func pingPong(_ channel: any RPCChannel) async throws {
    let call = try await Client(channel: channel).fullDuplexCall(options: options)
    var responses = call.responses.makeAsyncIterator()
    for (requestSize, responseSize) in zip(requestSizes, responseSizes) {
      try await call.send(
        Request(responseParameters: [Grpc_Testing_ResponseParameters(size: responseSize)], payload: payload(requestSize)))
      let response = try await responses.next()
      try check(response?.payload?.body.count == Int(responseSize), "response size \(response?.payload?.body.count ?? -1)")
    }
    try await call.finish()
    try check(try await responses.next() == nil, "more responses than requests")
  }

  static func emptyStream(_ channel: any RPCChannel) async throws {
    let call = try await Client(channel: channel).fullDuplexCall(options: options)
    try await call.finish()
    var responses = call.responses.makeAsyncIterator()
    try check(try await responses.next() == nil, "a response to no request")
  }

  static func customMetadata(_ channel: any RPCChannel) async throws {
    var metadata: Metadata = [echoInitial: "test_initial_metadata_value"]
    metadata.add(echoTrailing, .binary([0xab, 0xab, 0xab]))
    let unary = try await channel.unary(
      Grpc_Testing_TestService.Method.unaryCall,
      request: Grpc_Testing_SimpleRequest(responseSize: 314_159, payload: payload(271_828)), metadata: metadata,
      options: options, responseType: Grpc_Testing_SimpleResponse.self)
    try check(unary.message.payload?.body.count == 314_159, "unary payload size")
    try check(unary.headers[echoInitial] == "test_initial_metadata_value", "unary headers \(unary.headers)")
    try check(unary.trailers.binary(echoTrailing) == [0xab, 0xab, 0xab], "unary trailers \(unary.trailers)")

    let call = try await Client(channel: channel).fullDuplexCall(metadata: metadata, options: options)
    try await call.send(
      Request(responseParameters: [Grpc_Testing_ResponseParameters(size: 314_159)], payload: payload(271_828)))
    var responses = call.responses.makeAsyncIterator()
    let response = try await responses.next()
    try check(response?.payload?.body.count == 314_159, "streaming payload size")
    try await call.finish()
    try check(try await responses.next() == nil, "extra response")
    let headers = try await call.headers()
    try check(headers[echoInitial] == "test_initial_metadata_value", "streaming headers \(headers)")
    try check(call.trailers.binary(echoTrailing) == [0xab, 0xab, 0xab], "streaming trailers \(call.trailers)")
  }

  static func expectStatus(
    _ code: StatusCode, message: String?, _ body: () async throws -> Void
  ) async throws {
    do {
      try await body()
    } catch let error as RPCError {
      try check(error.code == code, "status \(error.code) (wanted \(code)): \(error.message)")
      if let message { try check(error.message == message, "message \(error.message.debugDescription)") }
      return
    }
    throw Failure("the call succeeded; wanted \(code)")
  }

  static func statusCodeAndMessage(_ channel: any RPCChannel) async throws {
    let message = "test status message"
    let status = Grpc_Testing_EchoStatus(code: 2, message: message)
    try await expectStatus(.unknown, message: message) {
      _ = try await Client(channel: channel).unaryCall(Grpc_Testing_SimpleRequest(responseStatus: status), options: options)
    }
    try await expectStatus(.unknown, message: message) {
      let call = try await Client(channel: channel).fullDuplexCall(options: options)
      try await call.send(Request(responseStatus: status))
      try await call.finish()
      for try await _ in call.responses {}
    }
  }

  static func specialStatusMessage(_ channel: any RPCChannel) async throws {
    let message = "\t\ntest with whitespace\r\nand Unicode BMP \u{263A} and non-BMP \u{1F608}\t\n"
    try await expectStatus(.unknown, message: message) {
      _ = try await Client(channel: channel).unaryCall(
        Grpc_Testing_SimpleRequest(responseStatus: Grpc_Testing_EchoStatus(code: 2, message: message)), options: options)
    }
  }

  static func unimplementedMethod(_ channel: any RPCChannel) async throws {
    try await expectStatus(.unimplemented, message: nil) {
      _ = try await Client(channel: channel).unimplementedMethod(Grpc_Testing_Empty(), options: options)
    }
  }

  static func unimplementedService(_ channel: any RPCChannel) async throws {
    try await expectStatus(.unimplemented, message: nil) {
      _ = try await Grpc_Testing_UnimplementedService.Client(channel: channel).unimplementedCall(
        Grpc_Testing_Empty(), options: options)
    }
  }

  static func timeoutOnSleepingServer(_ channel: any RPCChannel) async throws {
    try await expectStatus(.deadlineExceeded, message: nil) {
      let call = try await Client(channel: channel).fullDuplexCall(options: CallOptions(timeout: .milliseconds(1)))
      try await call.send(Request(payload: payload(27182)))
      for try await _ in call.responses {}
    }
  }

  static func cancelAfterBegin(_ channel: any RPCChannel) async throws {
    let task = Task {
      try await Client(channel: channel).streamingInputCall(options: options) { _ in
        try await Task.sleep(for: .seconds(10))
      }
    }
    try await Task.sleep(for: .milliseconds(50))
    task.cancel()
    try await expectStatus(.cancelled, message: nil) { _ = try await task.value }
  }

  static func cancelAfterFirstResponse(_ channel: any RPCChannel) async throws {
    let call = try await Client(channel: channel).fullDuplexCall(options: options)
    try await call.send(
      Request(responseParameters: [Grpc_Testing_ResponseParameters(size: 31415)], payload: payload(27182)))
    var responses = call.responses.makeAsyncIterator()
    let response = try await responses.next()
    try check(response?.payload?.body.count == 31415, "response size")
    call.cancel()
    try await expectStatus(.cancelled, message: nil) { _ = try await responses.next() }
  }
}
