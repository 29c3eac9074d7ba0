import FlashSaleDomain
import Testing

@Suite("IdentifierFactory")
struct IdentifierFactoryTests {
  private static let alphabet = Set("0123456789abcdefghjkmnpqrstvwxyz")

  @Test("an identifier is the prefix and 26 base-32 characters, the first 10 of them the time")
  func layout() {
    // 2026-11-29T12:00:00Z = 1,795,953,600,000 ms; in base 32, 10 characters.
    let id = IdentifierFactory.make(prefix: "bkg", millisecondsSinceEpoch: 1_795_953_600_000)
    #expect(id.hasPrefix("bkg_"))
    let body = id.dropFirst(4)
    #expect(body.count == 26)
    #expect(body.allSatisfy { Self.alphabet.contains($0) })
    #expect(String(body.prefix(10)) == String(1_795_953_600_000, radix: 32).paddedCrockford(to: 10))
  }

  @Test("identifiers made in later milliseconds sort after earlier ones; within one they differ")
  func ordering() {
    var previous = IdentifierFactory.make(prefix: "bkg", millisecondsSinceEpoch: 1_000)
    for ms in stride(from: UInt64(1_001), to: 3_000_000_000_000, by: 97_654_321_987) {
      let next = IdentifierFactory.make(prefix: "bkg", millisecondsSinceEpoch: ms)
      #expect(previous < next, "\(previous) made before \(next)")
      previous = next
    }
    let sameMillisecond = (0..<1000).map { _ in IdentifierFactory.make(prefix: "bkg", millisecondsSinceEpoch: 42) }
    #expect(Set(sameMillisecond).count == 1000)
  }
}

extension String {
  /// Standard base-32 digits (0-9a-v) mapped to Crockford's alphabet, left-padded with zeros.
  fileprivate func paddedCrockford(to width: Int) -> String {
    let standard = Array("0123456789abcdefghijklmnopqrstuv")
    let crockford = Array("0123456789abcdefghjkmnpqrstvwxyz")
    let mapped = String(map { crockford[standard.firstIndex(of: $0)!] })
    return String(repeating: "0", count: max(0, width - mapped.count)) + mapped
  }
}
