import Synchronization

/// The identifier of a sale.
public struct SaleID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }
  public init(_ rawValue: String) { self.rawValue = rawValue }
  public var description: String { rawValue }
}

/// The identifier of a booking (a hold, later maybe a booked unit).
public struct BookingID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }
  public init(_ rawValue: String) { self.rawValue = rawValue }
  public var description: String { rawValue }
}

/// The identifier of a user account, as the edge authenticated it.
public struct UserID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }
  public init(_ rawValue: String) { self.rawValue = rawValue }
  public var description: String { rawValue }
}

/// Makes identifiers: 26 Crockford base-32 characters in the ULID layout,
/// prefixed by what they identify (`sale_…`, `bkg_…`): 48 bits of the creation
/// time in milliseconds, then 80 random bits.
///
/// Leading with the time makes identifiers made one after another sort next to
/// each other, so a store's index on them grows at its right edge: a batch of
/// new bookings touches a few index pages instead of one random page each
/// (which, on SQLite, is most of what a commit writes). 80 random bits per
/// millisecond keep them unguessable and collision-free.
public enum IdentifierFactory {
  private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

  /// A new identifier starting with `prefix`, made at `millisecondsSinceEpoch`
  /// (default: now).
  public static func make(prefix: String, millisecondsSinceEpoch: UInt64 = currentMilliseconds()) -> String {
    let random = randomPool.withLock { $0.next() }
    // 128 bits: the time in the high 48, the random bits below.
    var high = (millisecondsSinceEpoch & 0xFFFF_FFFF_FFFF) << 16 | UInt64(random.high)
    var low = random.low
    // Written straight into the string's storage: one allocation per id (a
    // booking id is made for every hold).
    var prefix = prefix
    return prefix.withUTF8 { prefixBytes in
      String(unsafeUninitializedCapacity: prefixBytes.count + 27) { buffer in
        _ = buffer.initialize(fromContentsOf: prefixBytes)
        buffer[prefixBytes.count] = UInt8(ascii: "_")
        let start = prefixBytes.count + 1
        for i in (0..<26).reversed() {
          buffer[start + i] = alphabet[Int(low & 31)]
          low = (low >> 5) | (high << 59)
          high >>= 5
        }
        return prefixBytes.count + 27
      }
    }
  }

  /// The kernel's random bytes, fetched 4 KiB at a time: one `getrandom` call
  /// per ~400 identifiers instead of one each (glibc's `arc4random_buf` makes a
  /// system call every time).
  private struct RandomPool {
    private var bytes = [UInt8](repeating: 0, count: 4096)
    private var used = 4096

    /// 80 fresh random bits.
    mutating func next() -> (high: UInt16, low: UInt64) {
      if used + 10 > bytes.count {
        bytes.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, $0.count) }
        used = 0
      }
      defer { used += 10 }
      return bytes.withUnsafeBytes { raw in
        (raw.loadUnaligned(fromByteOffset: used, as: UInt16.self),
         raw.loadUnaligned(fromByteOffset: used + 2, as: UInt64.self))
      }
    }
  }

  private static let randomPool = Mutex(RandomPool())

  /// Milliseconds since 1970 from the system's real-time clock.
  public static func currentMilliseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
  }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
