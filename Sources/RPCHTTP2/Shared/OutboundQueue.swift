import NIOCore

/// The framed messages a stream has yet to send, in order.
///
/// nghttp2 asks how much it may send (within the peer's flow-control window)
/// and then takes that many bytes; the queue hands them out across message
/// boundaries. A message queued as *replaceable* is overwritten by the next
/// replaceable one while it is still entirely unsent, so a stream of
/// latest-value updates to a slow reader costs one message of memory.
struct OutboundQueue {
  private var chunks = CircularBuffer<[UInt8]>()
  private var frontOffset = 0
  private var lastIsReplaceable = false
  /// Bytes queued and not yet handed to nghttp2.
  private(set) var byteCount = 0

  var isEmpty: Bool { byteCount == 0 }

  /// Queues `bytes`; a `replaceable` message replaces the last one if that one
  /// is replaceable too and not started.
  mutating func append(_ bytes: [UInt8], replaceable: Bool = false) {
    if replaceable, lastIsReplaceable, let last = chunks.last, !(chunks.count == 1 && frontOffset > 0) {
      byteCount += bytes.count - last.count
      chunks[chunks.index(before: chunks.endIndex)] = bytes
      return
    }
    guard !bytes.isEmpty else { return }
    chunks.append(bytes)
    byteCount += bytes.count
    lastIsReplaceable = replaceable
  }

  /// Moves the next `length` bytes (at most ``byteCount``) into `buffer`.
  mutating func write(_ length: Int, into buffer: inout ByteBuffer) {
    var remaining = min(length, byteCount)
    byteCount -= remaining
    while remaining > 0, let front = chunks.first {
      let available = front.count - frontOffset
      let take = min(available, remaining)
      front.withUnsafeBytes { raw in
        _ = buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[frontOffset..<frontOffset + take]))
      }
      remaining -= take
      if take == available {
        chunks.removeFirst()
        frontOffset = 0
        if chunks.isEmpty { lastIsReplaceable = false }
      } else {
        frontOffset += take
      }
    }
  }

  /// Drops everything queued.
  mutating func removeAll() {
    chunks.removeAll()
    frontOffset = 0
    byteCount = 0
    lastIsReplaceable = false
  }
}
