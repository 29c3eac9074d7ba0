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
    var generator = SystemRandomNumberGenerator()
    var high = generator.next() as UInt64
    var low = generator.next() as UInt64
    var characters = [UInt8](repeating: 0, count: 26)
    for i in (0..<26).reversed() {
      characters[i] = alphabet[Int(low & 31)]
      low = (low >> 5) | (high << 59)
      high >>= 5
    }
    return prefix + "_" + String(decoding: characters, as: UTF8.self)
  }
}
