extension UnsafeRawBufferPointer {
  /// A fast, non-cryptographic hash of the bytes and their count, folded into
  /// `seed`: a multiplicative step per eight bytes, then one per remaining
  /// byte (a 30-byte header value costs four steps instead of thirty in a
  /// chain). For the tables that see every call: the route table and the
  /// HPACK indexing filter. Mix the result's high bits down before taking
  /// low ones.
  func multiplicativeHash(seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
    var hash = (seed ^ UInt64(count)) &* 0x9e37_79b9_7f4a_7c15
    var offset = 0
    while offset + 8 <= count {
      hash = (hash ^ loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* 0x9e37_79b9_7f4a_7c15
      hash ^= hash >> 29
      offset += 8
    }
    while offset < count {
      hash = (hash ^ UInt64(self[offset])) &* 0x100_0000_01b3
      offset += 1
    }
    return hash ^ (hash >> 32)
  }
}
