import NIOCore
import NIOEmbedded
import Testing

@testable import RPCHTTP2

/// The per-connection deadline queue on an embedded event loop (virtual time).
@Suite("DeadlineQueue")
struct DeadlineQueueTests {
  final class Call: DeadlineQueueMember {
    let name: String
    var deadlineSlot = -1
    init(_ name: String) { self.name = name }
  }

  /// A queue and its timer on `loop`, recording what expired when.
  final class Harness {
    let loop = EmbeddedEventLoop()
    var queue = DeadlineQueue<Call>()
    var expired: [(name: String, at: Int64)] = []
    var timerFirings = 0

    func insert(_ call: Call, at nanoseconds: Int64) {
      queue.insert(call, deadline: .uptimeNanoseconds(UInt64(nanoseconds)), on: loop, expire: fire)
    }

    private func fire() {
      timerFirings += 1
      let now = loop.now
      for call in queue.popExpired(now: now) { expired.append((call.name, Int64(now.uptimeNanoseconds))) }
      queue.rearm(on: loop, expire: fire)
    }

    func advance(to nanoseconds: Int64) { loop.advanceTime(to: .uptimeNanoseconds(UInt64(nanoseconds))) }
  }

  @Test("calls expire at their own deadlines, in deadline order, whatever the insertion order")
  func order() throws {
    let harness = Harness()
    var random = SystemRandomNumberGenerator()
    let deadlines = (0..<200).map { _ in Int64.random(in: 1...1_000, using: &random) * 1_000 }
    for (index, deadline) in deadlines.enumerated() { harness.insert(Call("c\(index)"), at: deadline) }
    for step in stride(from: Int64(0), through: 1_000_000, by: 1_000) { harness.advance(to: step) }
    #expect(harness.expired.count == 200)
    for entry in harness.expired {
      let index = Int(entry.name.dropFirst())!
      #expect(entry.at == deadlines[index], "\(entry.name) expired at \(entry.at), due at \(deadlines[index])")
    }
    #expect(harness.expired.map(\.at) == harness.expired.map(\.at).sorted())
    #expect(harness.queue.isEmpty)
  }

  @Test("a removed call never expires; removing the earliest leaves one timer that re-arms for the next")
  func removal() {
    let harness = Harness()
    let calls = (0..<100).map { Call("c\($0)") }
    for (index, call) in calls.enumerated() { harness.insert(call, at: Int64(index + 1) * 10_000) }
    // Every even call finishes before its deadline, from the middle and the top of the heap.
    for call in calls.enumerated().filter({ $0.offset % 2 == 0 }).map(\.element).reversed() {
      harness.queue.remove(call)
      #expect(call.deadlineSlot == -1)
    }
    harness.queue.remove(calls[0])  // twice: a no-op
    harness.advance(to: 2_000_000)
    #expect(harness.expired.map(\.name) == calls.enumerated().filter { $0.offset % 2 == 1 }.map(\.element.name))
    // One timer at a time: the first firing found nothing due (call 0 was removed) and re-armed.
    #expect(harness.timerFirings <= 51)
  }

  @Test("an earlier deadline re-arms the timer earlier; removeAll cancels it")
  func rearmAndClear() {
    let harness = Harness()
    harness.insert(Call("late"), at: 500_000)
    harness.insert(Call("early"), at: 100_000)
    harness.advance(to: 100_000)
    #expect(harness.expired.map(\.name) == ["early"])
    harness.queue.removeAll()
    harness.advance(to: 1_000_000)
    #expect(harness.expired.map(\.name) == ["early"])
    #expect(harness.queue.isEmpty)
  }

  @Test("the queue keeps a queued call alive and lets it go when it leaves, whichever way it leaves")
  func ownership() {
    let harness = Harness()
    weak var removed: Call?
    weak var expired: Call?
    weak var cleared: Call?
    do {
      let (a, b, c) = (Call("removed"), Call("expired"), Call("cleared"))
      (removed, expired, cleared) = (a, b, c)
      harness.insert(a, at: 10_000)
      harness.insert(b, at: 20_000)
      harness.insert(c, at: 900_000)
    }
    #expect(removed != nil && expired != nil && cleared != nil, "the queue did not keep its calls")
    harness.queue.remove(removed!)
    #expect(removed == nil)
    harness.advance(to: 50_000)
    #expect(harness.expired.map(\.name) == ["expired"])
    #expect(expired == nil)
    #expect(cleared != nil)
    harness.queue.removeAll()
    #expect(cleared == nil)
  }
}
