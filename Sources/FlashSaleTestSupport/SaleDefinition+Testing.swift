public import FlashSaleDomain

extension SaleDefinition {
  /// A phone sale open for an hour from `start`, as tests need one.
  public static func testPhones(quantity: Int64, perUserLimit: Int32 = 1, from start: Timestamp) -> SaleDefinition {
    SaleDefinition(
      itemID: "phone-1", itemName: "Phone", price: Money(currency: "EUR", amountMinor: 100), quantity: quantity,
      startsAt: start, endsAt: start + .seconds(3600), perUserLimit: perUserLimit)
  }
}
