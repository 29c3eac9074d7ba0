import Foundation
import InteropAPI
import InteropService
import NIOCore
import RPCCore
import StandardProtos
import Testing

@testable import RPCHTTP2

/// The server side of the gRPC protocol, driven through an `EmbeddedChannel`
/// by a raw HTTP/2 client: valid calls, every class of bad input, limits.
@Suite("Server connection")
struct ServerConnectionHandlerTests {
  static let unaryPath = "/grpc.testing.TestService/UnaryCall"

  static func server(_ configuration: RPCServerConfiguration = RPCServerConfiguration()) -> RPCServer {
    RPCServer(configuration: configuration, services: [TestService(), FailingHealth()])
  }

  static func unaryBody(responseSize: Int32 = 3) -> [UInt8] {
    FramedMessage(Grpc_Testing_SimpleRequest(responseSize: responseSize)).bytes
  }

  @Test("a unary call is answered whatever the size of the pieces it arrives in", arguments: [1, 2, 7, 100, Int.max])
  func unary(chunkSize: Int) throws {
    let client = try H2TestClient(server: Self.server())
    client.chunkSize = chunkSize
    let id = try client.request(path: Self.unaryPath, body: Self.unaryBody(responseSize: 5))
    let response = try #require(client.responses[id])
    #expect(response.status == "200")
    #expect(response.header("content-type") == "application/grpc")
    #expect(response.grpcStatus == 0)
    #expect(response.messages.count == 1)
    let decoded = try Grpc_Testing_SimpleResponse(serializedBytes: response.messages[0])
    #expect(decoded.payload?.body.count == 5)
    #expect(response.closed)
  }

  @Test("many calls on one connection")
  func multiplexed() throws {
    let client = try H2TestClient(server: Self.server())
    let ids = try (1...50).map { i in try client.request(path: Self.unaryPath, body: Self.unaryBody(responseSize: Int32(i))) }
    for (i, id) in ids.enumerated() {
      let response = try #require(client.responses[id])
      #expect(response.grpcStatus == 0)
      let decoded = try Grpc_Testing_SimpleResponse(serializedBytes: response.messages[0])
      #expect(decoded.payload?.body.count == i + 1)
    }
  }

  @Test(
    "unknown services and methods are UNIMPLEMENTED, as one HEADERS frame",
    arguments: [
      ("/grpc.testing.TestService/Nope", "unknown method Nope for service grpc.testing.TestService"),
      ("/x.Y/Z", "unknown service x.Y"),
    ])
  func unimplemented(path: String, message: String) throws {
    let client = try H2TestClient(server: Self.server())
    let id = try client.request(path: path, body: Self.unaryBody())
    let response = try #require(client.responses[id])
    #expect(response.status == "200")
    #expect(response.grpcStatus == StatusCode.unimplemented.rawValue)
    #expect(response.grpcMessage == message)
    #expect(response.data.isEmpty)
    #expect(response.trailers.isEmpty)  // Trailers-Only
  }

  @Test("a non-gRPC content type gets HTTP 415")
  func contentType() throws {
    let client = try H2TestClient(server: Self.server())
    let id = try client.request(path: Self.unaryPath, contentType: "application/json", body: Array("{}".utf8))
    let response = try #require(client.responses[id])
    #expect(response.status == "415")
    #expect(response.grpcStatus == StatusCode.invalidArgument.rawValue)
    #expect(response.grpcMessage == "invalid gRPC request content-type \"application/json\"")
  }

  @Test("a method other than POST gets HTTP 405")
  func method() throws {
    let client = try H2TestClient(server: Self.server())
    let id = try client.request(path: Self.unaryPath, body: [], method: "GET")
    #expect(client.responses[id]?.status == "405")
  }

  @Test("an unsupported grpc-encoding is UNIMPLEMENTED and names what is accepted")
  func encoding() throws {
    let client = try H2TestClient(server: Self.server())
    let id = try client.request(path: Self.unaryPath, extraHeaders: [("grpc-encoding", "gzip")], body: Self.unaryBody())
    let response = try #require(client.responses[id])
    #expect(response.grpcStatus == StatusCode.unimplemented.rawValue)
    #expect(response.header("grpc-accept-encoding") == "identity")
  }

  @Test(
    "malformed requests are INTERNAL with a clear message",
    arguments: [
      ([2, 0, 0, 0, 1, 0] as [UInt8], "invalid message flag 2: the length prefix is corrupt"),
      ([1, 0, 0, 0, 1, 0], "received a compressed message but the call has no grpc-encoding"),
      ([0, 0, 0, 0, 9, 1, 2], "the stream ended inside a message: 2 of 9 bytes received"),
      ([0, 0, 0], "the stream ended inside a message: 3 of 5 bytes received"),
      ([], "/grpc.testing.TestService/UnaryCall is unary: the request has no message"),
      ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "/grpc.testing.TestService/UnaryCall is unary: the request has more than one message"),
      ([0, 0, 0, 0, 2, 0xFF, 0xFF], "failed to decode the request message Grpc_Testing_SimpleRequest: 2 bytes are not a valid grpc.testing.SimpleRequest (malformed protobuf, or a field of the wrong wire type)"),
    ])
  func malformed(body: [UInt8], message: String) throws {
    let client = try H2TestClient(server: Self.server())
    let id = try client.request(path: Self.unaryPath, body: body)
    let response = try #require(client.responses[id])
    #expect(response.status == "200")
    #expect(response.grpcStatus == StatusCode.internal.rawValue)
    #expect(response.grpcMessage == message)
    // The connection still serves calls.
    let next = try client.request(path: Self.unaryPath, body: Self.unaryBody())
    #expect(client.responses[next]?.grpcStatus == 0)
  }

  @Test("suspended calls end with DEADLINE_EXCEEDED each at its own grpc-timeout, whatever their order")
  func deadlines() throws {
    let client = try H2TestClient(server: RPCServer(configuration: RPCServerConfiguration(), services: [TestDouble()]))
    let loop = client.channel.embeddedEventLoop
    let timeouts: [Int64] = [700, 100, 400, 300, 900, 200, 600, 500, 800, 1000, 150, 150]  // ms
    // The server's deadlines are on the real clock; the embedded loop's timer
    // fires when its virtual time is moved past them.
    let base = NIODeadline.now()
    let ids = try timeouts.map { timeout in
      // Response size -3: the handler suspends and never answers, and no
      // thread but the test's touches the embedded loop.
      try client.request(
        path: Self.unaryPath, extraHeaders: [("grpc-timeout", "\(timeout)m")], body: Self.unaryBody(responseSize: -3))
    }
    // Rounded up: each call's deadline counts from when the server read it,
    // after `base` (a call sent within the first millisecond ends just after
    // its timeout on the virtual clock, not at it).
    let sendingTook = ((NIODeadline.now() - base).nanoseconds + 999_999) / 1_000_000
    for step in stride(from: Int64(50), through: 1_100, by: 50) {
      loop.advanceTime(to: base + .milliseconds(step))
      try client.exchange()
      for (id, timeout) in zip(ids, timeouts) {
        let status = client.responses[id]?.grpcStatus
        if timeout > step {
          #expect(status == nil, "a \(timeout) ms call ended at \(step) ms")
        } else if timeout + sendingTook <= step {
          #expect(status == 4, "a \(timeout) ms call at \(step) ms: status \(String(describing: status))")
        }
      }
    }
    #expect(ids.allSatisfy { client.responses[$0]?.grpcStatus == 4 })
  }

  @Test("a unary request that ends after its deadline is DEADLINE_EXCEEDED without reaching the handler")
  func requestArrivesLate() throws {
    let client = try H2TestClient(server: Self.server())
    let id = try client.request(
      path: Self.unaryPath, extraHeaders: [("grpc-timeout", "30m")], body: [], endStream: false)
    #expect(client.responses[id]?.grpcStatus == nil)
    Thread.sleep(forTimeInterval: 0.06)  // the server's deadlines are on the real clock
    try client.send(id, body: Self.unaryBody(), endStream: true)
    let response = try #require(client.responses[id])
    #expect(response.grpcStatus == StatusCode.deadlineExceeded.rawValue)
    #expect(response.messages.isEmpty)
    // A request that ends in time is answered.
    let timely = try client.request(
      path: Self.unaryPath, extraHeaders: [("grpc-timeout", "5S")], body: [], endStream: false)
    try client.send(timely, body: Self.unaryBody(), endStream: true)
    #expect(client.responses[timely]?.grpcStatus == 0)
  }

  @Test("the handler's context has the deadline of the grpc-timeout, or none")
  func contextDeadline() throws {
    let client = try H2TestClient(server: RPCServer(configuration: RPCServerConfiguration(), services: [TestDouble()]))
    func left(_ headers: [(String, String)]) throws -> String {
      let id = try client.request(path: Self.unaryPath, extraHeaders: headers, body: Self.unaryBody(responseSize: -4))
      let response = try #require(client.responses[id])
      let decoded = try Grpc_Testing_SimpleResponse(serializedBytes: try #require(response.messages.first))
      return String(decoding: decoded.payload?.body ?? [], as: UTF8.self)
    }
    let milliseconds = try #require(Int(try left([("grpc-timeout", "5S")])))
    #expect(milliseconds > 4000 && milliseconds <= 5000)
    #expect(try left([]) == "none")
  }

  @Test("a malformed grpc-timeout is INTERNAL")
  func badTimeout() throws {
    let client = try H2TestClient(server: Self.server())
    let id = try client.request(path: Self.unaryPath, extraHeaders: [("grpc-timeout", "soon")], body: Self.unaryBody())
    #expect(client.responses[id]?.grpcStatus == StatusCode.internal.rawValue)
    #expect(client.responses[id]?.grpcMessage == "malformed grpc-timeout \"soon\"")
  }

  @Test("a message over the limit is RESOURCE_EXHAUSTED; other calls on the connection go on")
  func oversized() throws {
    let client = try H2TestClient(server: Self.server(RPCServerConfiguration(maxReceiveMessageLength: 1024)))
    let big = FramedMessage(Grpc_Testing_SimpleRequest(payload: Grpc_Testing_Payload(body: [UInt8](repeating: 1, count: 5000)))).bytes
    let bigID = try client.request(path: Self.unaryPath, body: big)
    let small = try client.request(path: Self.unaryPath, body: Self.unaryBody())
    let response = try #require(client.responses[bigID])
    #expect(response.grpcStatus == StatusCode.resourceExhausted.rawValue)
    #expect(response.grpcMessage?.hasPrefix("received message larger than max (5") == true)
    #expect(client.responses[small]?.grpcStatus == 0)
  }

  @Test("custom metadata goes both ways; -bin values are base64")
  func metadata() throws {
    let client = try H2TestClient(server: Self.server())
    let id = try client.request(
      path: Self.unaryPath,
      extraHeaders: [("x-grpc-test-echo-initial", "hello"), ("x-grpc-test-echo-trailing-bin", "q6ur")],
      body: Self.unaryBody())
    let response = try #require(client.responses[id])
    #expect(response.headers.contains { $0 == ("x-grpc-test-echo-initial", "hello") })
    #expect(response.trailers.contains { $0 == ("x-grpc-test-echo-trailing-bin", "q6ur") })
  }

  @Test("a handler's rich error reaches the client as google.rpc.Status details")
  func richError() throws {
    let client = try H2TestClient(server: Self.server())
    let body = FramedMessage(Grpc_Health_V1_HealthCheckRequest(service: "rich")).bytes
    let id = try client.request(path: "/grpc.health.v1.Health/Check", body: body)
    let response = try #require(client.responses[id])
    #expect(response.grpcStatus == StatusCode.resourceExhausted.rawValue)
    #expect(response.grpcMessage == "sold out")
    let encoded = try #require(response.header("grpc-status-details-bin"))
    let status = try Google_Rpc_Status(serializedBytes: try #require(Base64.decode(encoded)))
    #expect(status.code == Int32(StatusCode.resourceExhausted.rawValue))
    var error = RPCError(code: .resourceExhausted, message: "sold out")
    error.statusDetails = Base64.decode(encoded)
    #expect(error.errorInfo?.reason == "SOLD_OUT")
    #expect(error.details.contains { if case .retryInfo = $0 { true } else { false } })
  }

  @Test("errors encoded into permanent memory reach the client intact, call after call, each its own")
  func permanentError() throws {
    let client = try H2TestClient(server: Self.server())
    func call(_ service: String) throws -> (status: Int?, message: String?, reason: String?, trailer: String?) {
      let body = FramedMessage(Grpc_Health_V1_HealthCheckRequest(service: service)).bytes
      let id = try client.request(path: "/grpc.health.v1.Health/Check", body: body)
      let response = try #require(client.responses[id])
      var error = RPCError(code: .unknown, message: "")
      error.statusDetails = response.header("grpc-status-details-bin").flatMap { Base64.decode($0) }
      return (response.grpcStatus, response.grpcMessage, error.errorInfo?.reason, response.header("x-sale-state"))
    }
    // The later answers come from the HPACK dynamic table and from the
    // connection's block of each permanent error; one with a trailer of
    // its handler's is built for its call.
    for _ in 0..<3 {
      let soldOut = try call("permanent")
      #expect(soldOut.status == StatusCode.resourceExhausted.rawValue)
      #expect(soldOut.message == "sold out: 100% gone")
      #expect(soldOut.reason == "SOLD_OUT")
      #expect(soldOut.trailer == nil)
      let ended = try call("permanent-ended")
      #expect(ended.status == StatusCode.failedPrecondition.rawValue)
      #expect(ended.message == "sale ended")
      #expect(ended.reason == "SALE_ENDED")
      let withTrailer = try call("permanent-with-trailer")
      #expect(withTrailer.status == StatusCode.resourceExhausted.rawValue)
      #expect(withTrailer.reason == "SOLD_OUT")
      #expect(withTrailer.trailer == "closed")
    }
  }

  @Test("header values that change with every call stay out of the HPACK table; repeating ones go in once")
  func headerIndexing() throws {
    let client = try H2TestClient(server: Self.server())
    let body = FramedMessage(Grpc_Health_V1_HealthCheckRequest()).bytes
    func call(_ n: Int) throws {
      let id = try client.request(
        path: "/grpc.health.v1.Health/Check",
        extraHeaders: [("x-tenant", "shop-1"), ("x-request-id", "request-\(n)"), ("grpc-timeout", "\(900 + n)m")],
        body: body)
      #expect(client.responses[id]?.grpcStatus == 0)
    }
    try call(0)
    #expect(client.encoderTableSize == 0)  // nothing was sent before
    try call(1)
    let repeating = client.encoderTableSize  // :authority, content-type, te, x-tenant
    #expect(repeating > 0)
    for n in 2..<60 { try call(n) }
    #expect(client.encoderTableSize == repeating)
  }

  @Test("any other error a handler throws is INTERNAL, without internals")
  func internalError() throws {
    let client = try H2TestClient(server: Self.server())
    let body = FramedMessage(Grpc_Health_V1_HealthCheckRequest(service: "crash")).bytes
    let id = try client.request(path: "/grpc.health.v1.Health/Check", body: body)
    #expect(client.responses[id]?.grpcStatus == StatusCode.internal.rawValue)
    #expect(client.responses[id]?.grpcMessage == "internal error")
  }

  @Test("a client that pings too often gets GOAWAY ENHANCE_YOUR_CALM")
  func pingFlood() throws {
    let configuration = RPCServerConfiguration(
      keepalive: .init(minPingInterval: .seconds(60), permitWithoutCalls: true, maxPingStrikes: 2))
    let client = try H2TestClient(server: Self.server(configuration))
    for _ in 0..<2 { try client.ping() }
    #expect(client.goAway == nil)
    for _ in 0..<3 { try client.ping() }
    #expect(client.goAway?.errorCode == HTTP2ErrorCode.enhanceYourCalm.rawValue)
  }

  @Test("streams over SETTINGS_MAX_CONCURRENT_STREAMS are refused")
  func maxConcurrentStreams() throws {
    let server = Self.server(RPCServerConfiguration(maxConcurrentStreams: 2))
    let frames = try RawFrames.exchange(server: server) { writer in
      // Unary calls still waiting for their request: open streams that start
      // no handler task (no thread but the test's touches the embedded loop).
      for stream in [1, 3, 5] as [UInt32] {
        writer.headers(stream: stream, path: Self.unaryPath, endStream: false)
      }
    }
    #expect(frames.contains { $0.type == 0x3 && $0.stream == 5 && $0.errorCode == 7 })  // RST_STREAM REFUSED_STREAM
    #expect(!frames.contains { $0.type == 0x3 && $0.stream == 1 })
  }
}

/// Health answering with errors, to test how errors reach the wire.
struct FailingHealth: Grpc_Health_V1_Health.ServiceProtocol {
  static let permanentError = RPCError(
    code: .resourceExhausted, message: "sold out: 100% gone",
    details: [.errorInfo(Google_Rpc_ErrorInfo(reason: "SOLD_OUT", domain: "flashsale.v1"))]
  ).encodingStatusPermanently()
  static let permanentEnded = RPCError(
    code: .failedPrecondition, message: "sale ended",
    details: [.errorInfo(Google_Rpc_ErrorInfo(reason: "SALE_ENDED", domain: "flashsale.v1"))]
  ).encodingStatusPermanently()

  func check(_ request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext)
    -> Reply<Grpc_Health_V1_HealthCheckResponse>
  {
    struct Secret: Error {}
    switch request.service {
    case "rich":
      return .failure(
        RPCError(
          code: .resourceExhausted, message: "sold out",
          details: [
            .errorInfo(Google_Rpc_ErrorInfo(reason: "SOLD_OUT", domain: "flashsale.v1")),
            .retryInfo(Google_Rpc_RetryInfo(retryDelay: Google_Protobuf_Duration(seconds: 1))),
          ]))
    case "permanent":
      return .failure(Self.permanentError)
    case "permanent-ended":
      return .failure(Self.permanentEnded)
    case "permanent-with-trailer":
      context.trailers = ["x-sale-state": "closed"]
      return .failure(Self.permanentError)
    case "crash":
      return .failure(Secret())
    default:
      return .ok(Grpc_Health_V1_HealthCheckResponse(status: .serving))
    }
  }

  func watch(
    _ request: Grpc_Health_V1_HealthCheckRequest, responses: ResponseWriter<Grpc_Health_V1_HealthCheckResponse>,
    context: ServerContext
  ) async throws {
    responses.writeLatest(Grpc_Health_V1_HealthCheckResponse(status: .serving))
  }
}
