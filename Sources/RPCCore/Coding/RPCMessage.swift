/// A message the runtime can send and receive: it encodes itself to bytes and
/// decodes itself from bytes. Generated protobuf messages conform.
public protocol RPCMessage: Sendable {
  /// Decodes a message from the payload of one gRPC frame.
  init(serializedBytes bytes: UnsafeRawBufferPointer) throws

  /// Appends the encoding of the message to `buffer`.
  func serialize(into buffer: inout [UInt8])

  /// The message as one gRPC length-prefixed frame: flag byte, 4-byte length,
  /// encoding. The default encodes after a reserved prefix; generated
  /// messages build it in a single allocation.
  func framedBytes() -> [UInt8]
}

extension RPCMessage {
  /// Decodes a message from `bytes`.
  public init(serializedBytes bytes: [UInt8]) throws {
    self = try bytes.withUnsafeBytes { try Self(serializedBytes: $0) }
  }

  public func framedBytes() -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: FramedMessage.prefixLength)
    serialize(into: &bytes)
    FramedMessage.writePrefix(into: &bytes)
    return bytes
  }

  /// The encoding of the message.
  public func serializedBytes() -> [UInt8] {
    var buffer = [UInt8]()
    serialize(into: &buffer)
    return buffer
  }
}
