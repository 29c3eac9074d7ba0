import FlashSaleDomain
import FlashSaleTestSupport
import Testing

@Suite("Sale definitions and the audit")
struct SaleDefinitionTests {
  static let valid = SaleDefinition(
    itemID: "phone", itemName: "Phone", price: Money(currency: "EUR", amountMinor: 100), quantity: 10,
    startsAt: Timestamp(seconds: 100), endsAt: Timestamp(seconds: 200))

  @Test(
    "bad definitions are refused, naming the field",
    arguments: [
      ("quantity", { @Sendable (d: inout SaleDefinition) in d.quantity = 0 }),
      ("quantity", { $0.quantity = SaleDefinition.maximumQuantity + 1 }),
      ("ends_at", { $0.endsAt = $0.startsAt }),
      ("price.amount_minor", { $0.price.amountMinor = -1 }),
      ("price.currency", { $0.price.currency = "XYZ" }),
      ("price.currency", { $0.price.currency = "eur" }),
      ("per_user_limit", { $0.perUserLimit = 0 }),
      ("hold_duration", { $0.holdDuration = .zero }),
      ("item_id", { $0.itemID = "" }),
    ] as [(String, @Sendable (inout SaleDefinition) -> Void)])
  func invalid(field: String, change: @Sendable (inout SaleDefinition) -> Void) {
    var definition = Self.valid
    change(&definition)
    do {
      try definition.validate()
      Issue.record("accepted a bad \(field)")
    } catch {
      #expect(error.reason == .invalidArgument)
      #expect(error.field == field)
      #expect(error.message.hasPrefix(field + ": "))
    }
  }

  @Test("a valid definition passes")
  func valid() throws {
    try Self.valid.validate()
  }

  @Test("the audit names double holds and users over the limit")
  func auditFindsCorruption() async throws {
    let store = InMemorySaleStore()
    let sale = try await store.createSale(Self.valid, id: SaleID("s1"), idempotencyKey: nil, now: Timestamp(seconds: 150))
    let base = Booking(
      id: BookingID("b1"), saleID: sale.id, userID: UserID("u1"), unit: 4, status: .hold,
      createdAt: Timestamp(seconds: 150), updatedAt: Timestamp(seconds: 150), holdExpiresAt: Timestamp(seconds: 450),
      idempotencyKey: "k1", fencingToken: 1)
    var twin = base
    twin.id = BookingID("b2")
    twin.userID = UserID("u2")
    twin.idempotencyKey = "k2"
    var greedy = base
    greedy.id = BookingID("b3")
    greedy.unit = 5
    greedy.idempotencyKey = "k3"
    for booking in [base, twin, greedy] { await store.insertCorruptBooking(booking) }
    let findings = try await store.audit(sale.id).map(\.message)
    #expect(findings.contains("unit 4 is taken 2 times, by bookings b1, b2"))
    #expect(findings.contains("user u1 holds or bought 2 units, over the limit of 1: b1, b3"))
  }

  @Test("timestamps carry nanoseconds and add durations")
  func timestamps() {
    let t = Timestamp(seconds: 10, nanoseconds: 5)
    #expect((t + .milliseconds(1500)).nanosecondsSinceEpoch == 11_500_000_005)
    #expect(Timestamp(nanosecondsSinceEpoch: -1).seconds == -1)
    #expect(Timestamp(nanosecondsSinceEpoch: -1).nanoseconds == 999_999_999)
    #expect(Timestamp(seconds: 20) - Timestamp(seconds: 5) == .seconds(15))
  }
}
