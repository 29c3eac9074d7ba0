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

/// Makes identifiers: 128 random bits as 26 Crockford base-32 characters,
/// prefixed by what they identify (`sale_…`, `bkg_…`).
public enum IdentifierFactory {
  private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

  /// A new random identifier starting with `prefix`.
  public static func make(prefix: String) -> String {
    // 128 random bits in one call (SystemRandomNumberGenerator makes one
    // getrandom call per 64-bit value).
    var words: (UInt64, UInt64) = (0, 0)
    withUnsafeMutableBytes(of: &words) { arc4random_buf($0.baseAddress!, $0.count) }
    var (high, low) = words
    var characters = [UInt8](repeating: 0, count: 26)
    for i in (0..<26).reversed() {
      characters[i] = alphabet[Int(low & 31)]
      low = (low >> 5) | (high << 59)
      high >>= 5
    }
    return prefix + "_" + String(decoding: characters, as: UTF8.self)
  }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
