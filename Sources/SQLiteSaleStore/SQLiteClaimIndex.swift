import FlashSaleDomain
import SQLiteSupport

/// Where the bookings of each idempotency key and of each buyer (a user in a
/// sale) are, kept in memory by the one connection that writes the file.
///
/// Idempotency keys and user ids arrive in no order: as unique indexes in the
/// file, each claim would insert into a random leaf page of two B-trees, and
/// SQLite's write-ahead log writes every page a transaction touched, whole.
/// Measured with keys and users scattered as real buyers send them: ~19 KB
/// written per hold and 22,000 holds/s, against ~1.8 KB and ~88,000/s when
/// they come in order. The file keeps only indexes whose keys grow with time
/// (the booking id, the unit, the hold deadline), so that a batch of claims
/// appends to a few pages, and this index answers "was this key used?" and
/// "what does this user already hold?" with the rows to read.
///
/// It is sound because one process writes the file (`flashsale serve` holds
/// its lock, see ``SQLiteSaleStore``), and every booking is added here in
/// the transaction that inserts it, or, at start-up, read from the file.
/// Entries are 64-bit fingerprints, so a lookup gives candidate rows that
/// the caller reads and compares exactly: a fingerprint shared by two keys
/// costs a row read, never a wrong answer. `flashsale audit` checks for keys
/// used twice and users above their limit, as a check of this code.
///
/// About 32–64 bytes per booking (two ``FingerprintTable`` entries).
struct SQLiteClaimIndex {
  /// The rows of each idempotency key's fingerprint.
  private var keys = RowsByFingerprint()
  /// The rows of each buyer's fingerprint (sale and user).
  private var buyers = RowsByFingerprint()
  /// What the running transaction added, to take back if it rolls back.
  private var added: [(key: UInt64, buyer: UInt64, row: Int64)] = []

  /// The index of the bookings in `connection`'s file.
  static func load(_ connection: SQLiteConnection) throws -> SQLiteClaimIndex {
    var index = SQLiteClaimIndex()
    _ = try connection.query("SELECT rowid, idempotency_key, sale_id, user_id FROM bookings") { row in
      let key = row.withTextBytes(1) { ClaimedKeys.fingerprint($0) }
      let buyer = row.withTextBytes(2) { sale in row.withTextBytes(3) { user in buyerFingerprint(sale, user) } }
      index.keys.add(key, row: row.int64(0))
      index.buyers.add(buyer, row: row.int64(0))
    }
    return index
  }

  /// The fingerprint of every key (for ``ClaimedKeys``).
  var keyFingerprints: Set<UInt64> { keys.fingerprints }

  /// Rows that may hold bookings made with `key`: read them and compare.
  func rows(key: String) -> [Int64] {
    keys.rows(ClaimedKeys.fingerprint(key))
  }

  /// Rows that may hold bookings made with the claim's key.
  func rows(key claim: Fingerprints) -> [Int64] {
    keys.rows(claim.key)
  }

  /// Rows that may hold bookings of the claim's user in its sale.
  func rows(buyer claim: Fingerprints) -> [Int64] {
    buyers.rows(claim.buyer)
  }

  /// A claim's key and buyer, fingerprinted once for the lookup and the insert.
  struct Fingerprints {
    var key: UInt64
    var buyer: UInt64
  }

  static func fingerprints(of request: ClaimRequest) -> Fingerprints {
    Fingerprints(
      key: ClaimedKeys.fingerprint(request.idempotencyKey),
      buyer: ClaimedKeys.fingerprint(request.userID.rawValue, seed: ClaimedKeys.fingerprint(request.saleID.rawValue)))
  }

  /// Reads where the claims' lookups will start, so that a batch's cache
  /// misses overlap (see ``FingerprintTable/touch(_:)``); returns what it
  /// read, for the caller to keep.
  func touch(_ claims: [Fingerprints]) -> UInt64 {
    var read: UInt64 = 0
    for claim in claims {
      read ^= keys.touch(claim.key) ^ buyers.touch(claim.buyer)
    }
    return read
  }

  /// Whether the claim's key may have been used, or its user may have a
  /// booking in its sale: when neither, the claim needs no row read.
  func mayHaveBooking(_ claim: Fingerprints) -> Bool {
    keys.contains(claim.key) || buyers.contains(claim.buyer)
  }

  /// Adds the booking at `row`, inserted by the running transaction.
  mutating func add(row: Int64, _ claim: Fingerprints) {
    keys.add(claim.key, row: row)
    buyers.add(claim.buyer, row: row)
    added.append((claim.key, claim.buyer, row))
  }

  /// The running transaction committed: what it added stays.
  mutating func commit() {
    added.removeAll(keepingCapacity: true)
  }

  /// The running transaction rolled back: what it added goes.
  mutating func rollBack() {
    for entry in added.reversed() {
      keys.remove(entry.key, row: entry.row)
      buyers.remove(entry.buyer, row: entry.row)
    }
    added.removeAll(keepingCapacity: true)
  }

  /// A buyer's fingerprint as ``fingerprints(of:)`` makes it (the user's,
  /// seeded with the sale's), from the bytes of a row.
  private static func buyerFingerprint(_ sale: UnsafeRawBufferPointer, _ user: UnsafeRawBufferPointer) -> UInt64 {
    ClaimedKeys.fingerprint(user, seed: ClaimedKeys.fingerprint(sale))
  }
}

/// Rows by a 64-bit fingerprint: one row inline (almost every fingerprint
/// has one), more in a side table, so that the common entry allocates nothing.
private struct RowsByFingerprint {
  private var first = FingerprintTable()
  private var more: [UInt64: [Int64]] = [:]

  var fingerprints: Set<UInt64> { Set(first.fingerprints) }

  func contains(_ fingerprint: UInt64) -> Bool {
    first.contains(fingerprint)
  }

  func touch(_ fingerprint: UInt64) -> UInt64 {
    first.touch(fingerprint)
  }

  func rows(_ fingerprint: UInt64) -> [Int64] {
    guard let row = first[fingerprint] else { return [] }
    return [row] + (more[fingerprint] ?? [])
  }

  mutating func add(_ fingerprint: UInt64, row: Int64) {
    // One probe in the common case: the slot is taken while it is looked at.
    if let earlier = first.updateValue(row, forKey: fingerprint) {
      first.updateValue(earlier, forKey: fingerprint)
      more[fingerprint, default: []].append(row)
    }
  }

  mutating func remove(_ fingerprint: UInt64, row: Int64) {
    if var others = more[fingerprint], let at = others.lastIndex(of: row) {
      others.remove(at: at)
      more[fingerprint] = others.isEmpty ? nil : others
    } else if first[fingerprint] == row {
      if var others = more[fingerprint], !others.isEmpty {
        first.updateValue(others.removeFirst(), forKey: fingerprint)
        more[fingerprint] = others.isEmpty ? nil : others
      } else {
        first.removeValue(forKey: fingerprint)
      }
    }
  }
}
