/// A hash table from 64-bit fingerprints (already well mixed, see
/// ``ClaimedKeys/fingerprint(_:)``) to 64-bit values: the in-memory indexes
/// of idempotency keys and buyers, which every claim and every sold-out
/// refusal reads.
///
/// Open addressing with linear probing over one array of key–value slots: a
/// lookup in a table of millions costs one cache miss and a few
/// instructions, where a `Dictionary<UInt64, Int64>` hashed the key with
/// SipHash and read its keys, values and occupancy from three arrays. About
/// 16–32 bytes per entry (the table doubles past half full).
public struct FingerprintTable: Sendable {
  private struct Slot {
    /// 0 marks an empty slot; fingerprint 0 lives in `zeroValue`.
    var key: UInt64
    var value: Int64
  }

  private var slots: [Slot]
  private var mask: Int
  private var zeroValue: Int64?
  /// The number of entries.
  public private(set) var count = 0

  /// An empty table with room for `minimumCapacity` entries before it grows.
  public init(minimumCapacity: Int = 8) {
    var capacity = 16
    while capacity < 2 * minimumCapacity { capacity *= 2 }
    slots = Array(repeating: Slot(key: 0, value: 0), count: capacity)
    mask = capacity - 1
  }

  public var isEmpty: Bool { count == 0 }

  /// The value of `fingerprint`, if it has one.
  public subscript(fingerprint: UInt64) -> Int64? {
    if fingerprint == 0 { return zeroValue }
    var index = Int(truncatingIfNeeded: fingerprint) & mask
    while true {
      let slot = slots[index]
      if slot.key == fingerprint { return slot.value }
      if slot.key == 0 { return nil }
      index = (index &+ 1) & mask
    }
  }

  /// Reads the slot where a lookup of `fingerprint` starts, and returns its
  /// key, for a caller about to look up many fingerprints: reading every
  /// home slot first lets their cache misses overlap (the loads do not
  /// depend on each other) instead of coming one after another.
  public func touch(_ fingerprint: UInt64) -> UInt64 {
    slots[Int(truncatingIfNeeded: fingerprint) & mask].key
  }

  /// Whether `fingerprint` has a value.
  public func contains(_ fingerprint: UInt64) -> Bool {
    self[fingerprint] != nil
  }

  /// Sets the value of `fingerprint`; returns the value it replaced.
  @discardableResult
  public mutating func updateValue(_ value: Int64, forKey fingerprint: UInt64) -> Int64? {
    if fingerprint == 0 {
      defer { zeroValue = value }
      if zeroValue == nil { count += 1 }
      return zeroValue
    }
    if 2 * (count + 1) > slots.count { grow() }
    var index = Int(truncatingIfNeeded: fingerprint) & mask
    while true {
      if slots[index].key == fingerprint {
        defer { slots[index].value = value }
        return slots[index].value
      }
      if slots[index].key == 0 {
        slots[index] = Slot(key: fingerprint, value: value)
        count += 1
        return nil
      }
      index = (index &+ 1) & mask
    }
  }

  /// Removes `fingerprint`; returns its value, if it had one.
  @discardableResult
  public mutating func removeValue(forKey fingerprint: UInt64) -> Int64? {
    if fingerprint == 0 {
      defer { zeroValue = nil }
      if zeroValue != nil { count -= 1 }
      return zeroValue
    }
    var hole = Int(truncatingIfNeeded: fingerprint) & mask
    while slots[hole].key != fingerprint {
      if slots[hole].key == 0 { return nil }
      hole = (hole &+ 1) & mask
    }
    let removed = slots[hole].value
    // Backward shift: each entry after the hole, up to the next empty slot,
    // moves into the hole unless its home slot lies after the hole (cyclically).
    var next = hole
    while true {
      next = (next &+ 1) & mask
      let key = slots[next].key
      if key == 0 { break }
      let home = Int(truncatingIfNeeded: key) & mask
      let homeIsAfterHole = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
      if !homeIsAfterHole {
        slots[hole] = slots[next]
        hole = next
      }
    }
    slots[hole] = Slot(key: 0, value: 0)
    count -= 1
    return removed
  }

  /// Every fingerprint in the table, in no order.
  public var fingerprints: [UInt64] {
    var all: [UInt64] = []
    all.reserveCapacity(count)
    for slot in slots where slot.key != 0 { all.append(slot.key) }
    if zeroValue != nil { all.append(0) }
    return all
  }

  private mutating func grow() {
    let old = slots
    slots = Array(repeating: Slot(key: 0, value: 0), count: old.count * 2)
    mask = slots.count - 1
    for slot in old where slot.key != 0 {
      var index = Int(truncatingIfNeeded: slot.key) & mask
      while slots[index].key != 0 { index = (index &+ 1) & mask }
      slots[index] = slot
    }
  }
}
