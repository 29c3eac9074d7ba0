import FlashSaleDomain
import FlashSaleTestSupport
import Testing

/// The open-addressing table behind the key and buyer indexes, against a
/// `Dictionary` doing the same random operations.
@Suite("Fingerprint table")
struct FingerprintTableTests {
  @Test("random inserts, updates and removals leave the same contents as a Dictionary", arguments: [1, 2, 3])
  func matchesDictionary(seed: UInt64) {
    var random = SeededRandom(seed: seed)
    var table = FingerprintTable()
    var reference: [UInt64: Int64] = [:]
    // Few distinct keys, with low bits that collide often (long probe runs,
    // removals in the middle of them) and the special fingerprint 0.
    func key() -> UInt64 {
      let choice = random.next() % 400
      return choice == 0 ? 0 : (choice << 40) | (choice % 7)
    }
    for step in 0..<20_000 {
      let k = key()
      switch random.next() % 3 {
      case 0, 1:
        let value = Int64(step)
        #expect(table.updateValue(value, forKey: k) == reference.updateValue(value, forKey: k))
      default:
        #expect(table.removeValue(forKey: k) == reference.removeValue(forKey: k))
      }
      #expect(table.count == reference.count)
    }
    for choice in UInt64(0)..<400 {
      let k = choice == 0 ? 0 : (choice << 40) | (choice % 7)
      #expect(table[k] == reference[k])
    }
    #expect(Set(table.fingerprints) == Set(reference.keys))
  }

  @Test("a table grows past its first capacity and keeps every entry")
  func grows() {
    var table = FingerprintTable(minimumCapacity: 4)
    for k in UInt64(1)...100_000 { table.updateValue(Int64(k), forKey: k &* 0x9E37_79B9_7F4A_7C15) }
    #expect(table.count == 100_000)
    #expect((UInt64(1)...100_000).allSatisfy { table[$0 &* 0x9E37_79B9_7F4A_7C15] == Int64($0) })
    #expect(table[12345] == nil)
  }
}
