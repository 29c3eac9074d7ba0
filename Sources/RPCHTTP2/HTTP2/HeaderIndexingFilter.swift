/// Which header values an endpoint lets into its HPACK dynamic table: those it
/// sent recently, once before at least.
///
/// HPACK indexes a header so that repeating it costs one byte. A value that
/// changes with every call (a `grpc-timeout`, a user id, a refusal's message
/// that names the user) gains nothing from it: each one takes a place in the
/// table, pushes out values that do repeat, and makes nghttp2's encoder walk
/// every entry of the same name at each call (one `memcmp` per entry). So a
/// value seen for the first time is sent as a literal that is never indexed,
/// and indexed from its second sending on, the "popularity" rule of
/// grpc-core's encoder. Values known when the program is built (static
/// strings, permanent bytes) are always indexed.
///
/// A small direct-mapped table of hashes: a collision only costs a repeating
/// value one literal, never a wrong header.
struct HeaderIndexingFilter {
  private var recent: [UInt64]

  init(slots: Int = 256) {
    precondition(slots > 0 && slots & (slots - 1) == 0, "slots must be a power of two")
    recent = Array(repeating: 0, count: slots)
  }

  /// Whether `value` under `name` was sent recently; it is remembered either way.
  mutating func admits(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
    // The name, then the value, eight bytes at a time (a call's dynamic
    // headers pass here on every request a client sends).
    var hash = value.multiplicativeHash(seed: name.multiplicativeHash())
    hash |= 1  // 0 marks an empty slot
    let slot = Int(truncatingIfNeeded: hash >> 40) & (recent.count - 1)
    if recent[slot] == hash { return true }
    recent[slot] = hash
    return false
  }
}
