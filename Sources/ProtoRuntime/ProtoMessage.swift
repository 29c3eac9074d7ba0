public import RPCCore

/// A protobuf message as a Swift value, encoded and decoded by protobuf-c.
///
/// Generated code conforms every message of the `.proto` contracts; see
/// `codegen/protoc-gen-swiftc`. Encodings are deterministic: fields in field
/// number order, map entries sorted by key. Decoding (`init(serializedBytes:)`,
/// from ``RPCMessage``) throws ``ProtoDecodingError``.
public protocol ProtoMessage: RPCMessage, Hashable {
  /// The fully qualified protobuf name, e.g. `flashsale.v1.BookRequest`.
  static var protoMessageName: String { get }

  /// A message with every field at its default value.
  init()

  /// The length of the encoding, in bytes.
  var serializedSize: Int { get }
}

/// A protobuf enum: open, as in proto3, so unknown numbers survive a round trip.
public protocol ProtoEnum: Hashable, Sendable, RawRepresentable where RawValue == Int32 {
  /// The value for `rawValue`, a known case or `unrecognized`.
  init(rawValue: Int32)

  /// The names of the known values, as the `.proto` file spells them.
  static var protoValueNames: [Int32: String] { get }
}

extension ProtoEnum {
  /// The `.proto` name of the value (`BOOKING_STATUS_HOLD`), or its number.
  public var protoName: String {
    Self.protoValueNames[rawValue] ?? String(rawValue)
  }
}

/// The bytes are not a valid protobuf encoding of the message.
public struct ProtoDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The fully qualified name of the message being decoded.
  public var messageName: String
  /// How many bytes were offered.
  public var byteCount: Int

  /// An error for `messageName`.
  public init(messageName: String, byteCount: Int) {
    self.messageName = messageName
    self.byteCount = byteCount
  }

  public var description: String {
    "\(byteCount) bytes are not a valid \(messageName) (malformed protobuf, or a field of the wrong wire type)"
  }
}
