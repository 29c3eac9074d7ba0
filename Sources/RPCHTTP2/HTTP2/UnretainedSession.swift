/// A connection handler's HTTP/2 session, lent to its uses without reference
/// counting.
///
/// A handler owns its session (a strong reference, dropped at teardown) and
/// uses it at almost every event of every call; each use through that
/// optional reference costs a retain and a release, and so does each lookup of
/// a stream's object. Through this, the session and the objects attached to
/// its streams are lent to a closure as guaranteed references instead.
///
/// Sound because a handler releases its session only at teardown, never from
/// inside one of the session's callbacks (nghttp2 forbids deleting a session
/// while it calls out), and a stream's object stays attached until nghttp2
/// reports the stream closed, which it never does while such a closure runs.
struct UnretainedSession {
  private let reference: Unmanaged<HTTP2Session>?

  /// Lends `session`, which the caller keeps alive.
  init(_ session: HTTP2Session?) {
    reference = session.map { Unmanaged.passUnretained($0) }
  }

  /// Runs `body` with the session, if there is one; `nil` if not.
  @inline(__always)
  func with<Result>(_ body: (HTTP2Session) throws -> Result) rethrows -> Result? {
    try reference?._withUnsafeGuaranteedRef(body)
  }

  /// Runs `body` with the object attached to stream `id` (of type `Stream`)
  /// and the session, if the stream is open.
  @inline(__always)
  func withStream<Stream: AnyObject>(_ id: Int32, as type: Stream.Type, _ body: (Stream, HTTP2Session) -> Void) {
    with { session in
      guard let pointer = session.streamUserData(id) else { return }
      Unmanaged<Stream>.fromOpaque(pointer)._withUnsafeGuaranteedRef { body($0, session) }
    }
  }
}
