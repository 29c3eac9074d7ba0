package import CProtobufC

/// A generated message's link to its protobuf-c struct. Package-internal: the
/// C types never appear in public API.
package protocol ProtoCMessageConvertible: ProtoMessage {
  /// The protobuf-c struct of the message.
  associatedtype CMessage

  /// Copies a protobuf-c struct into a Swift value.
  init(cMessage: UnsafePointer<CMessage>)

  /// Builds the protobuf-c struct of the value, allocated in `arena`.
  func cMessage(in arena: inout ProtoArena) -> UnsafeMutablePointer<CMessage>
}

/// Conversions between protobuf-c's C representations and Swift values, used
/// by generated code.
package enum ProtoC {
  /// A C string field as a Swift string (`NULL` is the empty string).
  ///
  /// - Important: protobuf-c stores strings NUL-terminated, so a string field
  ///   holding U+0000 is cut at that character.
  @inline(__always)
  package static func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    guard let pointer, pointer.pointee != 0 else { return "" }
    return String(cString: pointer)
  }

  /// A bytes field as a Swift array.
  @inline(__always)
  package static func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
    guard data.len > 0, let base = data.data else { return [] }
    return Array(UnsafeBufferPointer(start: base, count: data.len))
  }

  /// Unpacks `bytes` as the message whose protobuf-c struct is `C`, and hands
  /// the unpacked struct to `body` before freeing it.
  ///
  /// - Parameters:
  ///   - initialize: The struct's generated `..._init` function, which is how
  ///     the message's descriptor is found (protoc-c generates `unpack` only for
  ///     top-level messages; the descriptor works for nested ones too).
  ///   - messageName: For the error.
  package static func decode<C, T>(
    _ bytes: UnsafeRawBufferPointer,
    as type: C.Type,
    initialize: (UnsafeMutablePointer<C>) -> Void,
    messageName: String,
    _ body: (UnsafePointer<C>) -> T
  ) throws(ProtoDecodingError) -> T {
    let descriptor = Self.descriptor(C.self, initialize)
    var empty: UInt8 = 0
    let base = bytes.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) } ?? UnsafePointer(&empty)
    guard let message = protobuf_c_message_unpack(descriptor, nil, bytes.count, base) else {
      throw ProtoDecodingError(messageName: messageName, byteCount: bytes.count)
    }
    defer { protobuf_c_message_free_unpacked(message, nil) }
    return body(UnsafeRawPointer(message).assumingMemoryBound(to: C.self))
  }

  /// Packs the protobuf-c struct `message`, appending its encoding to `buffer`.
  package static func encode<C>(_ message: UnsafeMutablePointer<C>, into buffer: inout [UInt8]) {
    let base = UnsafeRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self)
    let size = protobuf_c_message_get_packed_size(base)
    guard size > 0 else { return }
    let start = buffer.count
    buffer.append(contentsOf: repeatElement(0, count: size))
    let written = buffer.withUnsafeMutableBufferPointer {
      protobuf_c_message_pack(base, $0.baseAddress! + start)
    }
    // protobuf-c writes exactly get_packed_size bytes; anything else is a bug there.
    precondition(written == size, "protobuf-c packed \(written) bytes, announced \(size)")
  }

  /// The length of the encoding of the protobuf-c struct `message`.
  package static func packedSize<C>(_ message: UnsafeMutablePointer<C>) -> Int {
    protobuf_c_message_get_packed_size(UnsafeRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self))
  }

  /// The keys of a map field in encoding order. Any order is valid protobuf;
  /// this one is Python's (upb's) deterministic order, so that our encodings
  /// equal Python's byte for byte: string keys ascending by UTF-8 bytes,
  /// integer and bool keys descending.
  package static func mapKeys<V>(_ map: [String: V]) -> [String] {
    map.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
  }

  /// See ``mapKeys(_:)-(String)``: integer keys, descending.
  package static func mapKeys<K: BinaryInteger, V>(_ map: [K: V]) -> [K] {
    map.keys.sorted(by: >)
  }

  /// See ``mapKeys(_:)-(String)``: bool keys, `true` first.
  package static func mapKeys<V>(_ map: [Bool: V]) -> [Bool] {
    map.keys.sorted { $0 && !$1 }
  }

  /// The descriptor of the message whose struct is `C`: every protobuf-c struct
  /// starts with a `ProtobufCMessage` whose `descriptor` its `_init` sets.
  private static func descriptor<C>(
    _ type: C.Type, _ initialize: (UnsafeMutablePointer<C>) -> Void
  ) -> UnsafePointer<ProtobufCMessageDescriptor> {
    let probe = UnsafeMutablePointer<C>.allocate(capacity: 1)
    defer { probe.deallocate() }
    UnsafeMutableRawPointer(probe).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<C>.size)
    initialize(probe)
    // Set by every generated _init function.
    return UnsafeRawPointer(probe).assumingMemoryBound(to: ProtobufCMessage.self).pointee.descriptor!
  }
}
