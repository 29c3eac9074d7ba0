import NIOCore

/// A call that can wait in a ``DeadlineQueue``: the queue keeps the call's
/// position in `deadlineSlot` (`-1` when it is not queued), so that removing
/// it costs O(log n) instead of a search.
protocol DeadlineQueueMember: AnyObject {
  var deadlineSlot: Int { get set }
}

/// The deadlines of one connection's calls, with one event-loop timer for all
/// of them.
///
/// A timer per call is what a gRPC connection would naively do, and it is
/// costly on the hot path: NIO allocates a task and a promise per timer and
/// removes a cancelled timer from its heap by a linear search, so with
/// hundreds of calls in flight the timers took ~8% of a server's CPU. Here a
/// call's deadline is one entry in a binary min-heap (insert and remove
/// O(log n), no allocation once the heap has grown), and the connection
/// arms a single timer for the earliest deadline. Calls mostly finish in the
/// order they started and carry similar timeouts, so the armed timer is
/// rarely moved: when the earliest call finishes, the timer stays armed and,
/// when it fires, finds nothing due and re-arms for the new earliest.
///
/// Used on the connection's event loop only.
struct DeadlineQueue<Member: DeadlineQueueMember> {
  /// Each member retained once while queued, as an `Unmanaged` reference:
  /// the heap's entries are then plain values, and moving them around costs
  /// no retain and release per swap (that was 3% of a client's CPU with a
  /// thousand calls in flight). The owner empties the queue with
  /// ``removeAll()`` before dropping it (the handlers do at teardown), or
  /// the members left in it are never released.
  private var heap: [(deadline: NIODeadline, member: Unmanaged<Member>)] = []
  private var timer: Scheduled<Void>?
  private var timerDeadline: NIODeadline?

  var isEmpty: Bool { heap.isEmpty }

  /// Queues `member` until `deadline`; arms the timer (calling `expire` on the
  /// event loop) when this is the new earliest deadline.
  mutating func insert(
    _ member: Member, deadline: NIODeadline, on eventLoop: any EventLoop,
    expire: @escaping () -> Void
  ) {
    precondition(member.deadlineSlot < 0, "a call's deadline is queued once")
    member.deadlineSlot = heap.count
    heap.append((deadline, Unmanaged.passRetained(member)))
    siftUp(heap.count - 1)
    armIfEarlier(deadline, on: eventLoop, expire: expire)
  }

  /// Takes `member` out of the queue (its call finished); a no-op when it is not queued.
  mutating func remove(_ member: Member) {
    let slot = member.deadlineSlot
    guard slot >= 0 else { return }
    member.deadlineSlot = -1
    let last = heap.count - 1
    if slot != last {
      heap.swapAt(slot, last)
      heap[slot].member._withUnsafeGuaranteedRef { $0.deadlineSlot = slot }
    }
    heap.removeLast().member.release()  // the caller still holds `member`
    if slot < heap.count {
      siftDown(slot)
      siftUp(slot)
    }
  }

  /// The members whose deadline is at or before `now`, removed from the
  /// queue; call from the timer's `expire`, then ``rearm(on:expire:)``.
  mutating func popExpired(now: NIODeadline) -> [Member] {
    timer = nil
    timerDeadline = nil
    var expired: [Member] = []
    while let first = heap.first, first.deadline <= now {
      let member = first.member.takeUnretainedValue()
      remove(member)
      expired.append(member)
    }
    return expired
  }

  /// Arms the timer for the earliest queued deadline, if any and if not armed.
  mutating func rearm(on eventLoop: any EventLoop, expire: @escaping () -> Void) {
    guard let first = heap.first else { return }
    armIfEarlier(first.deadline, on: eventLoop, expire: expire)
  }

  /// Cancels the timer and forgets every member (the connection closed).
  mutating func removeAll() {
    timer?.cancel()
    timer = nil
    timerDeadline = nil
    for entry in heap {
      entry.member._withUnsafeGuaranteedRef { $0.deadlineSlot = -1 }
      entry.member.release()
    }
    heap.removeAll()
  }

  private mutating func armIfEarlier(
    _ deadline: NIODeadline, on eventLoop: any EventLoop, expire: @escaping () -> Void
  ) {
    if let armed = timerDeadline, armed <= deadline { return }
    timer?.cancel()
    timerDeadline = deadline
    timer = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline, expire)
  }

  private mutating func siftUp(_ start: Int) {
    var child = start
    while child > 0 {
      let parent = (child - 1) / 2
      guard heap[child].deadline < heap[parent].deadline else { return }
      swapEntries(child, parent)
      child = parent
    }
  }

  private mutating func siftDown(_ start: Int) {
    var parent = start
    while true {
      let left = 2 * parent + 1
      guard left < heap.count else { return }
      let right = left + 1
      let smaller = right < heap.count && heap[right].deadline < heap[left].deadline ? right : left
      guard heap[smaller].deadline < heap[parent].deadline else { return }
      swapEntries(parent, smaller)
      parent = smaller
    }
  }

  private mutating func swapEntries(_ a: Int, _ b: Int) {
    heap.swapAt(a, b)
    heap[a].member._withUnsafeGuaranteedRef { $0.deadlineSlot = a }
    heap[b].member._withUnsafeGuaranteedRef { $0.deadlineSlot = b }
  }
}
