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
  @inlinable
  package static func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    guard let pointer, pointer.pointee != 0 else { return "" }
    return String(cString: pointer)
  }

  /// A bytes field as a Swift array.
  @inlinable
  package static func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
    guard data.len > 0, let base = data.data else { return [] }
    return Array(UnsafeBufferPointer(start: base, count: data.len))
  }

  /// Unpacks `bytes` as the message of `descriptor` and hands the unpacked
  /// protobuf-c struct to `body`, which copies what it needs: the struct is
  /// released when `body` returns.
  ///
  /// Not generic, so that decoding costs no runtime generic instantiation.
  package static func unpack(
    _ bytes: UnsafeRawBufferPointer,
    descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
    messageName: String,
    _ body: (UnsafeRawPointer) -> Void
  ) throws(ProtoDecodingError) {
    var empty: UInt8 = 0
    let decoded = withUnsafeMutablePointer(to: &empty) { emptyPointer -> Bool in
      let base = bytes.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) } ?? UnsafePointer(emptyPointer)
      return ScratchAllocator.with { allocator -> Bool in
        guard let message = protobuf_c_message_unpack(descriptor, allocator, bytes.count, base) else { return false }
        body(UnsafeRawPointer(message))
        return true
      }
    }
    guard decoded else { throw ProtoDecodingError(messageName: messageName, byteCount: bytes.count) }
  }

  /// Packs the protobuf-c struct at `message` (any generated struct: each
  /// starts with a `ProtobufCMessage`), appending its encoding to `buffer`.
  package static func pack(_ message: UnsafeRawPointer, into buffer: inout [UInt8]) {
    let base = message.assumingMemoryBound(to: ProtobufCMessage.self)
    let size = protobuf_c_message_get_packed_size(base)
    guard size > 0 else { return }
    buffer.reserveCapacity(buffer.count + size)
    let start = buffer.count
    buffer.append(contentsOf: repeatElement(0, count: size))
    let written = buffer.withUnsafeMutableBufferPointer {
      protobuf_c_message_pack(base, $0.baseAddress! + start)
    }
    // protobuf-c writes exactly get_packed_size bytes; anything else is a bug there.
    precondition(written == size, "protobuf-c packed \(written) bytes, announced \(size)")
  }

  /// The protobuf-c struct at `message` as one gRPC frame (5-byte prefix and
  /// encoding), in a single allocation.
  package static func packFramed(_ message: UnsafeRawPointer) -> [UInt8] {
    let base = message.assumingMemoryBound(to: ProtobufCMessage.self)
    let size = protobuf_c_message_get_packed_size(base)
    return [UInt8](unsafeUninitializedCapacity: size + 5) { buffer, count in
      let length = UInt32(truncatingIfNeeded: size)
      buffer[0] = 0
      buffer[1] = UInt8(truncatingIfNeeded: length >> 24)
      buffer[2] = UInt8(truncatingIfNeeded: length >> 16)
      buffer[3] = UInt8(truncatingIfNeeded: length >> 8)
      buffer[4] = UInt8(truncatingIfNeeded: length)
      let written = size == 0 ? 0 : protobuf_c_message_pack(base, buffer.baseAddress! + 5)
      // protobuf-c writes exactly get_packed_size bytes; anything else is a bug there.
      precondition(written == size, "protobuf-c packed \(written) bytes, announced \(size)")
      count = size + 5
    }
  }

  /// The length of the encoding of the protobuf-c struct at `message`.
  package static func packedSize(_ message: UnsafeRawPointer) -> Int {
    protobuf_c_message_get_packed_size(message.assumingMemoryBound(to: ProtobufCMessage.self))
  }

  /// The descriptor of a message, found through its generated `_init`
  /// function (protoc-c generates `unpack` only for top-level messages; the
  /// descriptor works for nested ones too). Generated code calls this once
  /// per type and keeps the result.
  package static func descriptor<C>(
    _ type: C.Type, _ initialize: (UnsafeMutablePointer<C>) -> Void
  ) -> UnsafePointer<ProtobufCMessageDescriptor> {
    let probe = UnsafeMutablePointer<C>.allocate(capacity: 1)
    defer { probe.deallocate() }
    UnsafeMutableRawPointer(probe).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<C>.size)
    initialize(probe)
    // Every generated _init function sets base.descriptor.
    return UnsafeRawPointer(probe).assumingMemoryBound(to: ProtobufCMessage.self).pointee.descriptor!
  }

  /// The keys of a map field in encoding order. Any order is valid protobuf;
  /// this one is Python's (upb's) deterministic order, so that our encodings
  /// equal Python's byte for byte: string keys ascending by UTF-8 bytes,
  /// integer and bool keys descending.
  @inlinable
  package static func mapKeys<V>(_ map: [String: V]) -> [String] {
    map.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
  }

  /// See ``mapKeys(_:)-(String)``: integer keys, descending.
  @inlinable
  package static func mapKeys<K: BinaryInteger, V>(_ map: [K: V]) -> [K] {
    map.keys.sorted(by: >)
  }

  /// See ``mapKeys(_:)-(String)``: bool keys, `true` first.
  @inlinable
  package static func mapKeys<V>(_ map: [Bool: V]) -> [Bool] {
    map.keys.sorted { $0 && !$1 }
  }
}
