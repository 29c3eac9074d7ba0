package import CProtobufC

/// Memory for the protobuf-c structs built to encode one message, freed at once
/// when the arena goes away.
///
/// Encoding a Swift value means building its C struct tree (strings
/// NUL-terminated, nested messages and arrays as pointers), packing it, and
/// throwing the tree away. A bump allocator over a few blocks makes that one
/// or two `malloc` calls instead of one per field.
package struct ProtoArena: ~Copyable {
  private var blocks: [UnsafeMutableRawPointer] = []
  private var cursor: UnsafeMutableRawPointer? = nil
  private var remaining = 0
  private static let blockSize = 2048

  package init() {}

  deinit {
    for block in blocks { block.deallocate() }
  }

  /// Uninitialized, zero-filled memory for `count` values of `T`.
  package mutating func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
    let raw = allocateBytes(MemoryLayout<T>.stride * max(count, 1), alignment: MemoryLayout<T>.alignment)
    raw.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.stride * max(count, 1))
    return raw.bindMemory(to: T.self, capacity: max(count, 1))
  }

  /// A NUL-terminated copy of `string`.
  package mutating func cString(_ string: String) -> UnsafeMutablePointer<CChar> {
    var string = string
    return string.withUTF8 { utf8 in
      let raw = allocateBytes(utf8.count + 1, alignment: 1)
      if let base = utf8.baseAddress { raw.copyMemory(from: base, byteCount: utf8.count) }
      raw.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
      return raw.bindMemory(to: CChar.self, capacity: utf8.count + 1)
    }
  }

  /// A protobuf-c bytes value pointing at a copy of `bytes`.
  package mutating func binaryData(_ bytes: [UInt8]) -> ProtobufCBinaryData {
    guard !bytes.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
    let raw = allocateBytes(bytes.count, alignment: 1)
    bytes.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    return ProtobufCBinaryData(len: bytes.count, data: raw.bindMemory(to: UInt8.self, capacity: bytes.count))
  }

  /// A copy of a trivial array (numbers), for a repeated scalar field.
  package mutating func copy<T: BitwiseCopyable>(_ values: [T]) -> UnsafeMutablePointer<T> {
    let pointer = allocate(T.self, count: values.count)
    values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: $0.count) }
    return pointer
  }

  private mutating func allocateBytes(_ count: Int, alignment: Int) -> UnsafeMutableRawPointer {
    if let cursor {
      let aligned = cursor.alignedUp(toMultipleOf: alignment)
      let padding = aligned - cursor
      if padding + count <= remaining {
        self.cursor = aligned + count
        remaining -= padding + count
        return aligned
      }
    }
    if count > Self.blockSize / 2 {
      let block = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: max(alignment, 16))
      blocks.append(block)
      return block
    }
    let block = UnsafeMutableRawPointer.allocate(byteCount: Self.blockSize, alignment: 16)
    blocks.append(block)
    cursor = block + count
    remaining = Self.blockSize - count
    return block
  }
}
