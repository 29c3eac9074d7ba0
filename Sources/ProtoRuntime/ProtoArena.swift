package import CProtobufC

/// Memory for the protobuf-c structs built to encode one message, freed at once
/// when the arena goes away.
///
/// Encoding a Swift value means building its C struct tree (strings
/// NUL-terminated, nested messages and arrays as pointers), packing it, and
/// throwing the tree away. A bump allocator over a stack buffer (and, for big
/// messages, a few heap blocks) makes that free of `malloc` in the common case.
package struct ProtoArena: ~Copyable {
  @usableFromInline var blocks: [UnsafeMutableRawPointer] = []
  @usableFromInline var cursor: UnsafeMutableRawPointer?
  @usableFromInline var remaining: Int
  @usableFromInline static var blockSize: Int { 4096 }

  /// An arena whose first block is `scratch` (owned by the caller).
  @usableFromInline init(scratch: UnsafeMutableRawBufferPointer) {
    self.cursor = scratch.baseAddress
    self.remaining = scratch.count
  }

  /// Runs `body` with an arena whose first kilobytes are on the stack.
  /// (Not generic: it runs for every message encoded.)
  package static func with(_ body: (inout ProtoArena) -> Void) {
    withUnsafeTemporaryAllocation(byteCount: 1024, alignment: 16) { scratch in
      var arena = ProtoArena(scratch: scratch)
      body(&arena)
    }
  }

  deinit {
    for block in blocks { block.deallocate() }
  }

  /// Zero-filled memory for `count` values of `T`.
  @inlinable
  package mutating func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
    let byteCount = MemoryLayout<T>.stride * max(count, 1)
    let raw = allocateBytes(byteCount, alignment: MemoryLayout<T>.alignment)
    raw.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
    return raw.bindMemory(to: T.self, capacity: max(count, 1))
  }

  /// A NUL-terminated copy of `string`.
  @inlinable
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
  @inlinable
  package mutating func binaryData(_ bytes: [UInt8]) -> ProtobufCBinaryData {
    guard !bytes.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
    let raw = allocateBytes(bytes.count, alignment: 1)
    bytes.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    return ProtobufCBinaryData(len: bytes.count, data: raw.bindMemory(to: UInt8.self, capacity: bytes.count))
  }

  /// A copy of a trivial array (numbers), for a repeated scalar field.
  @inlinable
  package mutating func copy<T: BitwiseCopyable>(_ values: [T]) -> UnsafeMutablePointer<T> {
    let pointer = allocate(T.self, count: values.count)
    values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: $0.count) }
    return pointer
  }

  @usableFromInline
  mutating func allocateBytes(_ count: Int, alignment: Int) -> UnsafeMutableRawPointer {
    if let cursor {
      let aligned = cursor.alignedUp(toMultipleOf: alignment)
      let needed = (aligned - cursor) + count
      if needed <= remaining {
        self.cursor = aligned + count
        remaining -= needed
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

/// A protobuf-c allocator for unpacking one message: bump allocation in a
/// stack buffer, overflowing to the heap, everything released at once at the
/// end (so no `free_unpacked` walk over the tree).
package enum ScratchAllocator {
  /// The allocator's state, pointed to by `allocator_data`.
  package struct State {
    @usableFromInline var cursor: UnsafeMutableRawPointer
    @usableFromInline var remaining: Int
    /// Heap blocks, each starting with a pointer to the previous one.
    @usableFromInline var overflow: UnsafeMutableRawPointer?

    @inlinable package init(cursor: UnsafeMutableRawPointer, remaining: Int, overflow: UnsafeMutableRawPointer?) {
      self.cursor = cursor
      self.remaining = remaining
      self.overflow = overflow
    }
  }

  /// Runs `body` with a protobuf-c allocator valid during the call.
  package static func with(_ body: (UnsafeMutablePointer<ProtobufCAllocator>) -> Bool) -> Bool {
    withUnsafeTemporaryAllocation(byteCount: 2048, alignment: 16) { scratch in
      var state = State(cursor: scratch.baseAddress!, remaining: scratch.count, overflow: nil)
      return withUnsafeMutablePointer(to: &state) { statePointer in
        var allocator = ProtobufCAllocator(alloc: allocate, free: release, allocator_data: UnsafeMutableRawPointer(statePointer))
        defer {
          var block = statePointer.pointee.overflow
          while let current = block {
            block = current.load(as: UnsafeMutableRawPointer?.self)
            current.deallocate()
          }
        }
        return body(&allocator)
      }
    }
  }

  package static let allocate: @convention(c) (UnsafeMutableRawPointer?, Int) -> UnsafeMutableRawPointer? = {
    data, size in
    // allocator_data is always the State set up by `with`.
    let state = data!.assumingMemoryBound(to: State.self)
    let aligned = state.pointee.cursor.alignedUp(toMultipleOf: 16)
    let needed = (aligned - state.pointee.cursor) + size
    if needed <= state.pointee.remaining {
      state.pointee.cursor = aligned + size
      state.pointee.remaining -= needed
      return aligned
    }
    let block = UnsafeMutableRawPointer.allocate(byteCount: size + 16, alignment: 16)
    block.storeBytes(of: state.pointee.overflow, as: UnsafeMutableRawPointer?.self)
    state.pointee.overflow = block
    return block + 16
  }

  /// Memory is released all at once when `with` returns.
  package static let release: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, _ in }
}
