/// Checks a sale's invariants over its booking rows, whatever store they come
/// from: no unit held or booked twice, every unit in range, no user above the
/// limit, and (when the store keeps counters) counters that match the rows.
public enum SaleAuditor {
  /// What is wrong, naming the offending rows; empty when all holds.
  public static func findings(
    quantity: Int64, perUserLimit: Int32, bookings: some Sequence<Booking>, storedCounts: UnitCounts? = nil
  ) -> [AuditFinding] {
    var findings: [AuditFinding] = []
    var byUnit: [Int64: [Booking]] = [:]
    var byUser: [UserID: [Booking]] = [:]
    var held: Int64 = 0
    var booked: Int64 = 0
    for booking in bookings where booking.status.takesUnit {
      byUnit[booking.unit, default: []].append(booking)
      byUser[booking.userID, default: []].append(booking)
      if booking.status == .hold { held += 1 } else { booked += 1 }
      if booking.unit < 0 || booking.unit >= quantity {
        findings.append(AuditFinding("booking \(booking.id) takes unit \(booking.unit), outside 0..<\(quantity)"))
      }
    }
    for (unit, owners) in byUnit.sorted(by: { $0.key < $1.key }) where owners.count > 1 {
      let names = owners.map(\.id.rawValue).sorted().joined(separator: ", ")
      findings.append(AuditFinding("unit \(unit) is taken \(owners.count) times, by bookings \(names)"))
    }
    for (user, owned) in byUser.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where owned.count > Int(perUserLimit) {
      let names = owned.map(\.id.rawValue).sorted().joined(separator: ", ")
      findings.append(
        AuditFinding("user \(user) holds or bought \(owned.count) units, over the limit of \(perUserLimit): \(names)"))
    }
    if held + booked > quantity {
      findings.append(AuditFinding("\(held + booked) units are taken, more than the quantity \(quantity)"))
    }
    if let stored = storedCounts {
      let derived = UnitCounts(quantity: quantity, available: quantity - held - booked, held: held, booked: booked)
      if stored != derived {
        findings.append(AuditFinding("the store's counters \(stored) disagree with its rows \(derived)"))
      }
      if !stored.isConsistent {
        findings.append(AuditFinding("the store's counters do not add up to the quantity: \(stored)"))
      }
    }
    return findings
  }
}
