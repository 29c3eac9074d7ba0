/// Splits a stream of bytes into gRPC length-prefixed messages.
///
/// Bytes arrive in arbitrary pieces (one HTTP/2 DATA frame may hold several
/// messages, or a fraction of one). A message that lies whole inside one piece
/// is handed over without a copy; only messages split across pieces are
/// gathered into a buffer.
public struct MessageDeframer: Sendable {
  /// Why the byte stream is not a valid sequence of gRPC messages.
  public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
    /// A message is longer than the receiver accepts.
    case messageTooLarge(length: Int, limit: Int)
    /// The compressed flag is set, but the call uses no compression.
    case compressedMessageWithoutEncoding
    /// The flag byte is neither 0 nor 1.
    case invalidFlag(UInt8)
    /// The stream ended inside a message.
    case truncatedMessage(received: Int, expected: Int)

    public var description: String {
      switch self {
      case .messageTooLarge(let length, let limit):
        "received message larger than max (\(length) vs. \(limit))"
      case .compressedMessageWithoutEncoding:
        "received a compressed message but the call has no grpc-encoding"
      case .invalidFlag(let flag):
        "invalid message flag \(flag): the length prefix is corrupt"
      case .truncatedMessage(let received, let expected):
        "the stream ended inside a message: \(received) of \(expected) bytes received"
      }
    }

    /// The status the receiver answers with.
    public var statusCode: StatusCode {
      if case .messageTooLarge = self { return .resourceExhausted }
      return .internal
    }
  }

  /// The largest payload accepted.
  public let maxMessageLength: Int

  private var prefix: [UInt8] = []
  private var expectedLength: Int = -1
  private var payload: [UInt8] = []

  /// A deframer that refuses messages longer than `maxMessageLength` bytes.
  public init(maxMessageLength: Int) {
    self.maxMessageLength = maxMessageLength
  }

  /// Whether bytes of an unfinished message are waiting for more input.
  public var hasPartialMessage: Bool { !prefix.isEmpty || expectedLength >= 0 }

  /// Consumes `chunk`, calling `onMessage` with the payload of each message it
  /// completes. The payload is only valid during the call.
  ///
  /// - Throws: ``Error`` on a corrupt prefix or an over-long message; the
  ///   deframer must not be used again afterwards.
  public mutating func process(
    _ chunk: UnsafeRawBufferPointer,
    onMessage: (UnsafeRawBufferPointer) -> Void
  ) throws(Error) {
    guard let base = chunk.baseAddress else { return }
    let end = chunk.count
    var offset = 0
    while offset < end {
      if expectedLength < 0 {
        // Fast path: a whole prefix in the input.
        if prefix.isEmpty, end - offset >= 5 {
          let p = base + offset
          expectedLength = try Self.readPrefix(
            flag: p.load(as: UInt8.self), b1: p.load(fromByteOffset: 1, as: UInt8.self),
            b2: p.load(fromByteOffset: 2, as: UInt8.self), b3: p.load(fromByteOffset: 3, as: UInt8.self),
            b4: p.load(fromByteOffset: 4, as: UInt8.self), limit: maxMessageLength)
          offset += 5
        } else {
          let take = min(5 - prefix.count, end - offset)
          prefix.append(contentsOf: UnsafeRawBufferPointer(start: base + offset, count: take))
          offset += take
          guard prefix.count == 5 else { return }
          expectedLength = try Self.readPrefix(
            flag: prefix[0], b1: prefix[1], b2: prefix[2], b3: prefix[3], b4: prefix[4], limit: maxMessageLength)
          prefix.removeAll(keepingCapacity: true)
        }
      }
      // Fast path: the whole payload is in the input: no copy.
      if payload.isEmpty, end - offset >= expectedLength {
        let body = UnsafeRawBufferPointer(start: base + offset, count: expectedLength)
        offset += expectedLength
        expectedLength = -1
        onMessage(body)
        continue
      }
      let take = min(expectedLength - payload.count, end - offset)
      if payload.isEmpty { payload.reserveCapacity(expectedLength) }
      payload.append(contentsOf: UnsafeRawBufferPointer(start: base + offset, count: take))
      offset += take
      if payload.count == expectedLength {
        expectedLength = -1
        payload.withUnsafeBytes { onMessage($0) }
        payload.removeAll(keepingCapacity: false)
      }
    }
  }

  /// Checks that the stream did not end inside a message.
  public func finish() throws(Error) {
    if expectedLength >= 0 {
      throw .truncatedMessage(received: payload.count, expected: expectedLength)
    }
    if !prefix.isEmpty {
      throw .truncatedMessage(received: prefix.count, expected: 5)
    }
  }

  private static func readPrefix(
    flag: UInt8, b1: UInt8, b2: UInt8, b3: UInt8, b4: UInt8, limit: Int
  ) throws(Error) -> Int {
    switch flag {
    case 0: break
    case 1: throw .compressedMessageWithoutEncoding
    default: throw .invalidFlag(flag)
    }
    let length = Int(b1) << 24 | Int(b2) << 16 | Int(b3) << 8 | Int(b4)
    guard length <= limit else { throw .messageTooLarge(length: length, limit: limit) }
    return length
  }
}
