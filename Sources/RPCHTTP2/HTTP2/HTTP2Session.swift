internal import CNghttp2
import NIOCore

/// An HTTP/2 endpoint's protocol state: one libnghttp2 session, owned by one
/// connection handler and used only on its event loop.
///
/// This is the only type that touches nghttp2's pointers. Bytes read from the
/// socket go in through ``receive(_:)``; the frames nghttp2 wants to send come
/// out of ``send(into:)``; everything nghttp2 reports in between arrives at the
/// ``HTTP2SessionDelegate`` synchronously, during those two calls.
///
/// nghttp2 gets `self` as its `user_data`, unretained: the handler that owns
/// the session keeps it alive, and ``close()`` deletes the nghttp2 session
/// before the handler goes away, so no callback can outlive `self`. The
/// session holds its delegate (that handler) strongly; the handler breaks
/// the cycle by dropping the session when the connection goes away.
final class HTTP2Session {
  /// Which side of the connection this is.
  enum Role {
    case server
    case client
  }

  /// Settings this endpoint announces.
  struct Settings {
    var maxConcurrentStreams: UInt32
    var initialWindowSize: UInt32
    var maxHeaderListSize: UInt32
    /// The connection-level receive window (SETTINGS cannot set it; a
    /// WINDOW_UPDATE on stream 0 does).
    var connectionWindowSize: Int32
  }

  private var session: OpaquePointer?
  /// Held strongly, so that a callback calls it without a retain and a
  /// release (an unowned reference is retained at every use, twice per
  /// header received). The delegate owns the session too: it breaks the
  /// cycle by dropping the session once the connection is gone.
  let delegate: any HTTP2SessionDelegate
  /// Where `send(into:)` collects frames.
  private let output = FrameOutput()
  /// Which dynamic header values go into the HPACK dynamic table.
  private var indexing = HeaderIndexingFilter()

  /// A session for `role`, announcing `settings`.
  init(role: Role, settings: Settings, delegate: any HTTP2SessionDelegate) throws(HTTP2SessionError) {
    self.delegate = delegate
    var callbacks: OpaquePointer?
    try HTTP2SessionError.check(nghttp2_session_callbacks_new(&callbacks))
    defer { nghttp2_session_callbacks_del(callbacks) }
    Self.install(callbacks!)

    var option: OpaquePointer?
    try HTTP2SessionError.check(nghttp2_option_new(&option))
    defer { nghttp2_option_del(option) }
    // The handler opens windows as the application consumes messages, so that
    // a slow reader slows its peer down instead of growing our buffers.
    nghttp2_option_set_no_auto_window_update(option, 1)
    nghttp2_option_set_peer_max_concurrent_streams(option, 100)
    // gRPC uses no stream priorities: closed streams need not be kept in the
    // RFC 7540 priority tree (and SETTINGS_NO_RFC7540_PRIORITIES below says so).
    nghttp2_option_set_no_closed_streams(option, 1)

    let userData = Unmanaged.passUnretained(self).toOpaque()
    var session: OpaquePointer?
    switch role {
    case .server:
      try HTTP2SessionError.check(nghttp2_session_server_new2(&session, callbacks, userData, option))
    case .client:
      try HTTP2SessionError.check(nghttp2_session_client_new2(&session, callbacks, userData, option))
    }
    self.session = session

    var entries = [
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: settings.maxConcurrentStreams),
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: settings.initialWindowSize),
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: settings.maxHeaderListSize),
    ]
    entries.append(
      nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES.rawValue), value: 1))
    if role == .client {
      // A client accepts no server push.
      entries.append(nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0))
    }
    try HTTP2SessionError.check(
      nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count))
    try HTTP2SessionError.check(
      nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, settings.connectionWindowSize))
  }

  deinit {
    assert(session == nil, "HTTP2Session deinitialized without close()")
    nghttp2_session_del(session)
  }

  /// Deletes the nghttp2 session; no callback runs after this.
  func close() {
    nghttp2_session_del(session)
    session = nil
  }

  // MARK: - Input and output

  /// Processes bytes read from the socket.
  ///
  /// - Throws: ``HTTP2SessionError`` when the peer broke the protocol badly
  ///   enough that the connection must close (nghttp2 has then queued a GOAWAY,
  ///   which ``send(into:)`` still writes).
  func receive(_ bytes: UnsafeRawBufferPointer) throws(HTTP2SessionError) {
    guard let session, let base = bytes.baseAddress, bytes.count > 0 else { return }
    let consumed = cnghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
    if consumed < 0 { throw HTTP2SessionError(code: Int32(consumed)) }
  }

  /// Appends every frame nghttp2 can send now (within the peer's flow-control
  /// windows) to `buffer`.
  func send(into buffer: inout ByteBuffer) throws(HTTP2SessionError) {
    guard let session else { return }
    let code = output.collect(into: &buffer) { nghttp2_session_send(session) }
    try HTTP2SessionError.check(code)
  }

  /// Whether nghttp2 has frames to send.
  var wantsWrite: Bool { session.map { nghttp2_session_want_write($0) != 0 } ?? false }

  // MARK: - Submitting frames

  /// Sends response (server) HEADERS; with `hasBody` the stream's DATA comes
  /// from the delegate, otherwise the HEADERS frame ends the stream.
  ///
  /// - Parameter source: Handed back to the delegate's data callbacks.
  func submitResponse(
    stream: Int32, headers: HeaderBlock, hasBody: Bool, source: UnsafeMutableRawPointer? = nil
  ) throws(HTTP2SessionError) {
    let session = session  // the closure captures the pointer, not self (no retain)
    let code = headers.withNVArray(indexing: &indexing) { nva, count in
      cnghttp2_submit_response(session, stream, nva, count, hasBody ? Self.readCallback : nil, source)
    }
    try HTTP2SessionError.check(code)
  }

  /// Sends request (client) HEADERS on a new stream whose DATA comes from the
  /// delegate, and returns the stream's id.
  func submitRequest(headers: HeaderBlock, streamUserData: UnsafeMutableRawPointer?) throws(HTTP2SessionError) -> Int32 {
    let session = session
    let id = headers.withNVArray(indexing: &indexing) { nva, count in
      cnghttp2_submit_request(session, nva, count, Self.readCallback, streamUserData)
    }
    try HTTP2SessionError.check(id)
    return id
  }

  /// Sends trailers after the stream's DATA. Only valid from inside
  /// ``HTTP2SessionDelegate/sessionReadData(stream:maxLength:)``, or when no
  /// data provider is active.
  func submitTrailers(stream: Int32, headers: HeaderBlock) throws(HTTP2SessionError) {
    let session = session
    let code = headers.withNVArray(indexing: &indexing) { nva, count in
      nghttp2_submit_trailer(session, stream, nva, count)
    }
    try HTTP2SessionError.check(code)
  }

  /// Resets a stream.
  func resetStream(_ stream: Int32, errorCode: HTTP2ErrorCode) {
    _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, errorCode.rawValue)
  }

  /// Tells nghttp2 that the stream's data provider has more to send.
  func resumeData(stream: Int32) {
    _ = nghttp2_session_resume_data(session, stream)
  }

  /// Opens the connection's and the stream's receive windows by `bytes`.
  func consume(stream: Int32, bytes: Int) {
    guard bytes > 0, let session else { return }
    _ = nghttp2_session_consume(session, stream, bytes)
  }

  /// Opens the connection's receive window only. Received bytes give the
  /// connection window back at once, so that one slow stream cannot stall the
  /// others; the stream's own window waits for its reader (``consumeStream``).
  func consumeConnection(bytes: Int) {
    guard bytes > 0, let session else { return }
    _ = nghttp2_session_consume_connection(session, bytes)
  }

  /// Opens one stream's receive window only.
  func consumeStream(_ stream: Int32, bytes: Int) {
    guard bytes > 0, let session else { return }
    _ = nghttp2_session_consume_stream(session, stream, bytes)
  }

  /// The bytes of this endpoint's HPACK encoder table (for tests).
  var encoderTableSize: Int { nghttp2_session_get_hd_deflate_dynamic_table_size(session) }

  /// Sends a PING with 8 bytes of opaque data.
  func ping(_ payload: UInt64) {
    var data = payload.bigEndian
    withUnsafeBytes(of: &data) { raw in
      _ = nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }
  }

  /// Sends a GOAWAY announcing shutdown without refusing any stream yet
  /// (last stream id 2^31-1); a later ``goAway(errorCode:debugData:)`` follows.
  func shutdownNotice() {
    _ = nghttp2_submit_shutdown_notice(session)
  }

  /// Sends GOAWAY with the last stream id processed; later streams are refused.
  func goAway(errorCode: HTTP2ErrorCode, debugData: String = "") {
    guard let session else { return }
    let last = nghttp2_session_get_last_proc_stream_id(session)
    var debug = Array(debugData.utf8)
    _ = debug.withUnsafeMutableBufferPointer { buffer in
      nghttp2_submit_goaway(
        session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode.rawValue, buffer.baseAddress, buffer.count)
    }
  }

  /// Whether nghttp2 allows a new request (no GOAWAY received, stream ids left).
  var canOpenStream: Bool {
    session.map { nghttp2_session_check_request_allowed($0) != 0 } ?? false
  }

  /// The stream's user data (the delegate's stream object), if any.
  func streamUserData(_ stream: Int32) -> UnsafeMutableRawPointer? {
    guard let session else { return nil }
    return nghttp2_session_get_stream_user_data(session, stream)
  }

  /// Attaches the delegate's stream object to a stream.
  func setStreamUserData(_ stream: Int32, _ pointer: UnsafeMutableRawPointer?) {
    _ = nghttp2_session_set_stream_user_data(session, stream, pointer)
  }

  /// Whether the peer may still send on the stream (it has not ended it).
  func isRemoteOpen(_ stream: Int32) -> Bool {
    guard let session else { return false }
    return nghttp2_session_get_stream_remote_close(session, stream) == 0
  }
}

// MARK: - Callbacks

extension HTTP2Session {
  /// Runs `body` with the session behind a callback's `user_data`, without
  /// retaining it: the owning handler keeps it alive across every nghttp2 call.
  @inline(__always)
  fileprivate static func with<R>(_ userData: UnsafeMutableRawPointer?, _ body: (HTTP2Session) -> R) -> R {
    // nghttp2 passes back the pointer given at creation: always an HTTP2Session.
    Unmanaged<HTTP2Session>.fromOpaque(userData!)._withUnsafeGuaranteedRef(body)
  }

  fileprivate static let readCallback: cnghttp2_read_callback = { _, streamID, _, length, flags, source, userData in
    let object = source?.pointee.ptr
    let outbound = HTTP2Session.with(userData) {
      $0.delegate.sessionReadData(stream: streamID, source: object, maxLength: length)
    }
    switch outbound {
    case .deferred:
      return cnghttp2_ssize(NGHTTP2_ERR_DEFERRED.rawValue)
    case .data(let count, let endOfData):
      var value = NGHTTP2_DATA_FLAG_NO_COPY.rawValue
      if endOfData {
        // Trailers follow (submitted by the delegate in this call), so the
        // DATA frame must not end the stream itself.
        value |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
      }
      flags!.pointee = value
      return cnghttp2_ssize(count)
    case .endStream(let count):
      flags!.pointee = NGHTTP2_DATA_FLAG_NO_COPY.rawValue | NGHTTP2_DATA_FLAG_EOF.rawValue
      return cnghttp2_ssize(count)
    case .resetStream:
      return cnghttp2_ssize(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
  }

  private static func install(_ callbacks: OpaquePointer) {
    cnghttp2_callbacks_set_send(callbacks) { _, data, length, _, userData in
      HTTP2Session.with(userData) { session in
        session.output.append(UnsafeRawBufferPointer(start: data, count: length))
      }
      return cnghttp2_ssize(length)
    }

    nghttp2_session_callbacks_set_send_data_callback(callbacks) { _, frame, header, length, source, userData in
      HTTP2Session.with(userData) { session in
        session.output.append(UnsafeRawBufferPointer(start: header, count: 9))
        let stream = frame!.pointee.hd.stream_id
        session.delegate.sessionWriteData(stream: stream, source: source?.pointee.ptr, length: length, into: session.output)
      }
      return 0
    }

    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
      let headers = frame!.pointee.headers
      HTTP2Session.with(userData) {
        $0.delegate.sessionBeginHeaders(stream: headers.hd.stream_id, kind: HeadersKind(headers.cat))
      }
      return 0
    }

    nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
      let ok = HTTP2Session.with(userData) {
        $0.delegate.sessionHeader(
          stream: frame!.pointee.hd.stream_id,
          name: UnsafeRawBufferPointer(start: name, count: nameLength),
          value: UnsafeRawBufferPointer(start: value, count: valueLength))
      }
      return ok ? 0 : Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }

    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
      HTTP2Session.with(userData) { session in HTTP2Session.frameReceived(frame!, session) }
      return 0
    }

    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
      HTTP2Session.with(userData) {
        $0.delegate.sessionData(stream: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
      }
      return 0
    }

    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
      let hd = frame!.pointee.hd
      let type = UInt32(hd.type)
      if (type == NGHTTP2_HEADERS.rawValue || type == NGHTTP2_DATA.rawValue),
        hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
      {
        HTTP2Session.with(userData) { $0.delegate.sessionSentEndStream(stream: hd.stream_id) }
      }
      return 0
    }

    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
      HTTP2Session.with(userData) { $0.delegate.sessionStreamClosed(stream: streamID, errorCode: errorCode) }
      return 0
    }
  }

  /// Reports a received frame to the delegate.
  private static func frameReceived(_ frame: UnsafePointer<nghttp2_frame>, _ session: HTTP2Session) {
    let hd = frame.pointee.hd
    let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(hd.type) {
    case NGHTTP2_HEADERS.rawValue:
      session.delegate.sessionHeadersComplete(
        stream: hd.stream_id, kind: HeadersKind(frame.pointee.headers.cat), endStream: endStream)
    case NGHTTP2_DATA.rawValue:
      if endStream { session.delegate.sessionEndStream(stream: hd.stream_id) }
    case NGHTTP2_PING.rawValue:
      let ack = hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0
      let payload = withUnsafeBytes(of: frame.pointee.ping.opaque_data) { $0.loadUnaligned(as: UInt64.self).bigEndian }
      session.delegate.sessionPing(ack: ack, payload: payload)
    case NGHTTP2_GOAWAY.rawValue:
      let goaway = frame.pointee.goaway
      session.delegate.sessionGoAway(lastStreamID: goaway.last_stream_id, errorCode: goaway.error_code)
    default:
      break
    }
  }
}

/// What a stream's data provider has for nghttp2 right now.
enum OutboundData {
  /// Nothing yet; the stream's owner calls `resumeData` when there is.
  case deferred
  /// `count` bytes to send; with `endOfData`, trailers were just submitted.
  case data(count: Int, endOfData: Bool)
  /// `count` bytes, the last of the stream (END_STREAM on the DATA frame).
  case endStream(count: Int)
  /// The stream cannot continue; nghttp2 resets it.
  case resetStream
}

/// What a HEADERS frame is, from nghttp2's point of view.
enum HeadersKind {
  /// The first HEADERS of a stream opened by the peer (a request).
  case request
  /// The first HEADERS of a response.
  case response
  /// Trailers, or any later HEADERS frame (push responses cannot arrive: a
  /// client announces ENABLE_PUSH 0).
  case trailers

  init(_ category: nghttp2_headers_category) {
    switch category {
    case NGHTTP2_HCAT_REQUEST: self = .request
    case NGHTTP2_HCAT_RESPONSE: self = .response
    default: self = .trailers
    }
  }
}

/// The events of an ``HTTP2Session``, delivered during `receive` and `send`.
protocol HTTP2SessionDelegate: AnyObject {
  func sessionBeginHeaders(stream: Int32, kind: HeadersKind)
  /// A header of the block being received; return `false` to reset the stream.
  func sessionHeader(stream: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool
  func sessionHeadersComplete(stream: Int32, kind: HeadersKind, endStream: Bool)
  func sessionData(stream: Int32, bytes: UnsafeRawBufferPointer)
  /// A DATA frame ended the stream (HEADERS ending it are reported by `sessionHeadersComplete`).
  func sessionEndStream(stream: Int32)
  func sessionStreamClosed(stream: Int32, errorCode: UInt32)
  /// A HEADERS or DATA frame ending this endpoint's side of the stream was sent.
  func sessionSentEndStream(stream: Int32)
  /// A PING, or the ack of ours; `payload` is its 8 opaque bytes.
  func sessionPing(ack: Bool, payload: UInt64)
  func sessionGoAway(lastStreamID: Int32, errorCode: UInt32)
  /// How much DATA the stream has for a frame of at most `maxLength` bytes.
  /// `source` is what the response or request was submitted with.
  func sessionReadData(stream: Int32, source: UnsafeMutableRawPointer?, maxLength: Int) -> OutboundData
  /// Copies the next `length` bytes of the stream's DATA into `output`.
  func sessionWriteData(stream: Int32, source: UnsafeMutableRawPointer?, length: Int, into output: FrameOutput)
}

/// An HTTP/2 error code (RFC 9113 section 7), as sent in RST_STREAM and GOAWAY.
struct HTTP2ErrorCode: RawRepresentable, Hashable, Sendable {
  let rawValue: UInt32

  static let noError = HTTP2ErrorCode(rawValue: 0x0)
  static let protocolError = HTTP2ErrorCode(rawValue: 0x1)
  static let internalError = HTTP2ErrorCode(rawValue: 0x2)
  static let flowControlError = HTTP2ErrorCode(rawValue: 0x3)
  static let refusedStream = HTTP2ErrorCode(rawValue: 0x7)
  static let cancel = HTTP2ErrorCode(rawValue: 0x8)
  static let enhanceYourCalm = HTTP2ErrorCode(rawValue: 0xB)
}

/// A failure reported by libnghttp2, with its own description of the code.
struct HTTP2SessionError: Error, CustomStringConvertible {
  /// The `nghttp2_error` code (negative).
  let code: Int32

  var description: String {
    "nghttp2: \(String(cString: nghttp2_strerror(code))) (\(code))"
  }

  /// Throws for a negative nghttp2 return value.
  @inline(__always)
  static func check(_ code: Int32) throws(HTTP2SessionError) {
    if code < 0 { throw HTTP2SessionError(code: code) }
  }
}
