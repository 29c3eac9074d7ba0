/// An amount in the minor unit of an ISO 4217 currency (cents for EUR), so
/// that no price is ever rounded by a floating-point type.
public struct Money: Hashable, Sendable, CustomStringConvertible {
  /// Upper-case ISO 4217 code.
  public var currency: String
  /// Amount in minor units.
  public var amountMinor: Int64

  public init(currency: String, amountMinor: Int64) {
    self.currency = currency
    self.amountMinor = amountMinor
  }

  /// Currencies accepted for a sale: the active ISO 4217 codes of the markets
  /// a shop sells in. (An unknown code is refused rather than guessed.)
  public static let knownCurrencies: Set<String> = [
    "AED", "ARS", "AUD", "BGN", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK", "DKK", "EGP", "EUR", "GBP",
    "HKD", "HUF", "IDR", "ILS", "INR", "ISK", "JPY", "KES", "KRW", "MAD", "MXN", "MYR", "NGN", "NOK", "NZD",
    "PEN", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH", "USD",
    "VND", "ZAR",
  ]

  public var description: String { "\(amountMinor) \(currency) (minor units)" }
}
