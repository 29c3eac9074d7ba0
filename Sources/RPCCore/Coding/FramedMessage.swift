/// One gRPC length-prefixed message, ready to send: a flag byte (compressed or
/// not), the payload length as a 4-byte big-endian integer, then the payload.
///
/// Built in one buffer so that the transport copies it once, into its frames.
public struct FramedMessage: Sendable, Hashable {
  /// The 5-byte prefix followed by the payload.
  public let bytes: [UInt8]

  /// The size of the prefix.
  public static var prefixLength: Int { 5 }

  /// Frames `message`.
  @inlinable
  public init(_ message: some RPCMessage) {
    self.bytes = message.framedBytes()
  }

  /// Frames an already encoded payload.
  public init(payload: [UInt8]) {
    var bytes = [UInt8](repeating: 0, count: Self.prefixLength)
    bytes.append(contentsOf: payload)
    self.init(prefixReserved: bytes)
  }

  @usableFromInline
  init(prefixReserved bytes: [UInt8]) {
    var bytes = bytes
    Self.writePrefix(into: &bytes)
    self.bytes = bytes
  }

  /// Fills the first five bytes of `bytes`: flag 0, and the length of what follows.
  public static func writePrefix(into bytes: inout [UInt8]) {
    let length = UInt32(truncatingIfNeeded: bytes.count - prefixLength)
    bytes[0] = 0
    bytes[1] = UInt8(truncatingIfNeeded: length >> 24)
    bytes[2] = UInt8(truncatingIfNeeded: length >> 16)
    bytes[3] = UInt8(truncatingIfNeeded: length >> 8)
    bytes[4] = UInt8(truncatingIfNeeded: length)
  }

  /// The length of the payload.
  public var payloadLength: Int { bytes.count - Self.prefixLength }
}
