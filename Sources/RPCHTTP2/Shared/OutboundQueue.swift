/// The framed messages a stream has yet to send, in order.
///
/// nghttp2 asks how much it may send (within the peer's flow-control window)
/// and then takes that many bytes; the queue hands them out across message
/// boundaries. A message queued as *replaceable* is overwritten by the next
/// replaceable one while it is still entirely unsent, so a stream of
/// latest-value updates to a slow reader costs one message of memory.
struct OutboundQueue {
  /// Chunks from `head` on are queued (an empty array costs no allocation,
  /// which matters: most streams queue one message).
  private var chunks: [[UInt8]] = []
  private var head = 0
  private var single: [UInt8] = []
  private var singleOffset = 0
  private var frontOffset = 0
  private var lastIsReplaceable = false
  /// Bytes queued and not yet handed to nghttp2.
  private(set) var byteCount = 0

  var isEmpty: Bool { byteCount == 0 }

  /// Queues `bytes`; a `replaceable` message replaces the last one if that one
  /// is replaceable too and not started.
  mutating func append(_ bytes: [UInt8], replaceable: Bool = false) {
    // The common case, one message on an empty queue: kept in `single`, so
    // that a unary answer allocates no array of chunks.
    if byteCount == 0, chunks.isEmpty, !replaceable {
      single = bytes
      singleOffset = 0
      byteCount = bytes.count
      return
    }
    if !single.isEmpty {
      // Move the partly sent single message into the chunk list first.
      chunks.append(single)
      frontOffset = singleOffset
      single = []
      singleOffset = 0
    }
    if replaceable, lastIsReplaceable, head < chunks.count, !(chunks.count - head == 1 && frontOffset > 0) {
      byteCount += bytes.count - chunks[chunks.count - 1].count
      chunks[chunks.count - 1] = bytes
      return
    }
    guard !bytes.isEmpty else { return }
    chunks.append(bytes)
    byteCount += bytes.count
    lastIsReplaceable = replaceable
  }

  /// Moves the next `length` bytes (at most ``byteCount``) into `output`.
  mutating func write(_ length: Int, into output: FrameOutput) {
    var remaining = min(length, byteCount)
    byteCount -= remaining
    if !single.isEmpty {
      let take = remaining
      single.withUnsafeBytes { raw in
        output.append(UnsafeRawBufferPointer(rebasing: raw[singleOffset..<singleOffset + take]))
      }
      singleOffset += take
      if singleOffset == single.count {
        single = []
        singleOffset = 0
      }
      return
    }
    while remaining > 0, head < chunks.count {
      let available = chunks[head].count - frontOffset
      let take = min(available, remaining)
      chunks[head].withUnsafeBytes { raw in
        output.append(UnsafeRawBufferPointer(rebasing: raw[frontOffset..<frontOffset + take]))
      }
      remaining -= take
      if take == available {
        chunks[head] = []
        head += 1
        frontOffset = 0
        if head == chunks.count {
          chunks.removeAll(keepingCapacity: true)
          head = 0
          lastIsReplaceable = false
        } else if head >= 32, head * 2 >= chunks.count {
          chunks.removeFirst(head)
          head = 0
        }
      } else {
        frontOffset += take
      }
    }
  }

  /// Drops everything queued.
  mutating func removeAll() {
    single = []
    singleOffset = 0
    chunks.removeAll()
    head = 0
    frontOffset = 0
    byteCount = 0
    lastIsReplaceable = false
  }
}
