import NIOCore
import NIOEmbedded
import RPCCore

@testable import RPCHTTP2

/// A raw HTTP/2 client for tests, on our nghttp2 wrapper, talking to a server
/// connection handler inside an `EmbeddedChannel`. It sends requests with any
/// headers and bytes (malformed ones included) and records every response.
final class H2TestClient: HTTP2SessionDelegate {
  struct Response {
    var headers: [(String, String)] = []
    var trailers: [(String, String)] = []
    var data: [UInt8] = []
    var closed = false
    var resetCode: UInt32?

    func header(_ name: String) -> String? {
      (headers + trailers).first { $0.0 == name }?.1
    }
    var status: String? { header(":status") }
    var grpcStatus: Int? { header("grpc-status").flatMap(Int.init) }
    var grpcMessage: String? { header("grpc-message").map(PercentEncoding.decode) }
  }

  let channel: EmbeddedChannel
  private var session: HTTP2Session!
  private(set) var responses: [Int32: Response] = [:]
  private var bodies: [Int32: (bytes: [UInt8], offset: Int, end: Bool)] = [:]
  private var inTrailers: Set<Int32> = []
  private(set) var goAway: (lastStreamID: Int32, errorCode: UInt32)?
  /// How many bytes to hand the server per write (1 = one byte at a time).
  var chunkSize = Int.max

  init(server: RPCServer) throws {
    channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(server.makeConnectionHandler())
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    session = try HTTP2Session(
      role: .client,
      settings: .init(maxConcurrentStreams: 100, initialWindowSize: 1 << 20, maxHeaderListSize: 1 << 16,
        connectionWindowSize: 1 << 24),
      delegate: self)
  }

  deinit {
    session.close()
  }

  /// Sends a request; `body` is sent as DATA (the raw bytes: framing included).
  @discardableResult
  func request(
    path: String, contentType: String = "application/grpc", extraHeaders: [(String, String)] = [],
    body: [UInt8], endStream: Bool = true, method: String = "POST"
  ) throws -> Int32 {
    var block = HeaderBlock()
    for (name, value) in [(":method", method), (":scheme", "http"), (":path", path), (":authority", "test")]
      + [("content-type", contentType), ("te", "trailers")] + extraHeaders
    {
      block.add(name: name, value: value)
    }
    let id = try session.submitRequest(headers: block, streamUserData: nil)
    bodies[id] = (body, 0, endStream)
    responses[id] = Response()
    try exchange()
    return id
  }

  /// Sends more of a request's body, after a `request(…, endStream: false)`.
  func send(_ id: Int32, body: [UInt8], endStream: Bool) throws {
    bodies[id] = (body, 0, endStream)
    session.resumeData(stream: id)
    try exchange()
  }

  /// The bytes of the client's HPACK encoder table.
  var encoderTableSize: Int { session.encoderTableSize }

  /// Sends a PING.
  func ping() throws {
    session.ping(42)
    try exchange()
  }

  /// Resets a stream from the client side.
  func reset(_ stream: Int32) throws {
    session.resetStream(stream, errorCode: .cancel)
    try exchange()
  }

  /// Moves bytes both ways until neither side has anything to send.
  func exchange() throws {
    for _ in 0..<10_000 {
      var out = channel.allocator.buffer(capacity: 1024)
      try session.send(into: &out)
      var moved = false
      while out.readableBytes > 0 {
        let slice = out.readSlice(length: min(chunkSize, out.readableBytes))!
        try channel.writeInbound(slice)
        moved = true
      }
      channel.embeddedEventLoop.run()
      while let reply = try channel.readOutbound(as: ByteBuffer.self) {
        try reply.withUnsafeReadableBytes { bytes throws(HTTP2SessionError) in try session.receive(bytes) }
        moved = true
      }
      if !moved { return }
    }
  }

  // MARK: HTTP2SessionDelegate

  func sessionBeginHeaders(stream: Int32, kind: HeadersKind) {
    if kind == .trailers { inTrailers.insert(stream) }
  }

  func sessionHeader(stream: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
    let pair = (name.string, value.string)
    if inTrailers.contains(stream) {
      responses[stream, default: Response()].trailers.append(pair)
    } else {
      responses[stream, default: Response()].headers.append(pair)
    }
    return true
  }

  func sessionHeadersComplete(stream: Int32, kind: HeadersKind, endStream: Bool) {}

  func sessionData(stream: Int32, bytes: UnsafeRawBufferPointer) {
    responses[stream, default: Response()].data.append(contentsOf: bytes)
    session.consume(stream: stream, bytes: bytes.count)
  }

  func sessionEndStream(stream: Int32) {}

  func sessionStreamClosed(stream: Int32, errorCode: UInt32) {
    responses[stream, default: Response()].closed = true
    if errorCode != 0 { responses[stream, default: Response()].resetCode = errorCode }
  }

  func sessionSentEndStream(stream: Int32) {}
  func sessionPing(ack: Bool, payload: UInt64) {}

  func sessionGoAway(lastStreamID: Int32, errorCode: UInt32) {
    goAway = (lastStreamID, errorCode)
  }


  func sessionReadData(stream: Int32, source: UnsafeMutableRawPointer?, maxLength: Int) -> OutboundData {
    guard let body = bodies[stream] else { return .deferred }
    let count = min(maxLength, body.bytes.count - body.offset)
    if body.offset + count == body.bytes.count {
      return body.end ? .endStream(count: count) : (count == 0 ? .deferred : .data(count: count, endOfData: false))
    }
    return .data(count: count, endOfData: false)
  }

  func sessionWriteData(stream: Int32, source: UnsafeMutableRawPointer?, length: Int, into output: FrameOutput) {
    guard var body = bodies[stream] else { return }
    body.bytes[body.offset..<body.offset + length].withUnsafeBytes { output.append($0) }
    body.offset += length
    bodies[stream] = body
  }
}

extension H2TestClient.Response {
  /// The payloads of the gRPC messages in the DATA received.
  var messages: [[UInt8]] {
    var deframer = MessageDeframer(maxMessageLength: 1 << 24)
    var out: [[UInt8]] = []
    data.withUnsafeBytes { bytes in
      try? deframer.process(bytes) { out.append(Array($0)) }
    }
    return out
  }
}
