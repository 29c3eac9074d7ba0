import FlashSaleAPI
import FlashSaleDomain
import RPCCore
import StandardProtos

/// Conversions between the `flashsale.v1` messages and the sale core's types.
/// Reading a request checks what the domain cannot (absent messages, bad
/// timestamps) and names the field at fault.
enum ProtoMapping {
  static func timestamp(_ value: Timestamp) -> Google_Protobuf_Timestamp {
    Google_Protobuf_Timestamp(seconds: value.seconds, nanos: value.nanoseconds)
  }

  static func timestamp(_ value: Google_Protobuf_Timestamp?, field: String) throws(DomainError) -> Timestamp {
    guard let value else { throw DomainError(.invalidArgument, "\(field): required", field: field) }
    guard (0..<1_000_000_000).contains(value.nanos) else {
      throw DomainError(.invalidArgument, "\(field): nanos must be in 0 ..< 1e9, got \(value.nanos)", field: field)
    }
    // Nanoseconds since the epoch in 64 bits: 1677-09-22 to 2262-04-11.
    guard (Timestamp.minimumSeconds...Timestamp.maximumSeconds).contains(value.seconds) else {
      throw DomainError(
        .invalidArgument, "\(field): must be between 1678 and 2261 (seconds \(value.seconds) is out of range)",
        field: field)
    }
    return Timestamp(seconds: value.seconds, nanoseconds: value.nanos)
  }

  static func definition(_ request: CreateSaleRequest) throws(DomainError) -> SaleDefinition {
    guard let price = request.price else { throw DomainError(.invalidArgument, "price: required", field: "price") }
    var holdDuration = Duration.seconds(300)
    if let duration = request.holdDuration {
      guard (-1_000_000_000...1_000_000_000).contains(duration.seconds),
        (-999_999_999...999_999_999).contains(duration.nanos)
      else {
        throw DomainError(.invalidArgument, "hold_duration: out of range", field: "hold_duration")
      }
      holdDuration = duration.duration
    }
    return SaleDefinition(
      itemID: request.itemID, itemName: request.itemName, description: request.description,
      price: FlashSaleDomain.Money(currency: price.currency, amountMinor: price.amountMinor),
      quantity: request.quantity, startsAt: try timestamp(request.startsAt, field: "starts_at"),
      endsAt: try timestamp(request.endsAt, field: "ends_at"), perUserLimit: request.perUserLimit?.value ?? 1,
      holdDuration: holdDuration)
  }

  static func sale(_ sale: FlashSaleDomain.Sale, now: Timestamp) -> FlashSaleAPI.Sale {
    let definition = sale.definition
    return FlashSaleAPI.Sale(
      saleID: sale.id.rawValue, itemID: definition.itemID, itemName: definition.itemName,
      description: definition.description, price: money(definition.price), quantity: definition.quantity,
      startsAt: timestamp(definition.startsAt), endsAt: timestamp(definition.endsAt),
      perUserLimit: definition.perUserLimit, holdDuration: Google_Protobuf_Duration(definition.holdDuration),
      state: state(sale.state(at: now)), createdAt: timestamp(sale.createdAt), updatedAt: timestamp(sale.updatedAt))
  }

  static func money(_ money: FlashSaleDomain.Money) -> FlashSaleAPI.Money {
    FlashSaleAPI.Money(currency: money.currency, amountMinor: money.amountMinor)
  }

  static func state(_ state: FlashSaleDomain.Sale.State) -> SaleState {
    switch state {
    case .scheduled: .scheduled
    case .active: .active
    case .paused: .paused
    case .ended: .ended
    }
  }

  static func availability(_ snapshot: AvailabilitySnapshot) -> Availability {
    let state: AvailabilityState =
      switch snapshot.state {
      case .notStarted: .notStarted
      case .available: .available
      case .soldOutForNow: .soldOutForNow
      case .soldOut: .soldOut
      case .paused: .paused
      case .ended: .ended
      }
    return Availability(
      saleID: snapshot.saleID.rawValue, quantity: snapshot.counts.quantity, available: snapshot.counts.available,
      held: snapshot.counts.held, booked: snapshot.counts.booked, state: state, version: snapshot.version,
      asOf: timestamp(snapshot.asOf), maxStaleness: Google_Protobuf_Duration(snapshot.maxStaleness))
  }

  static func booking(_ booking: FlashSaleDomain.Booking, sale: FlashSaleDomain.Sale?) -> BookingRecord {
    let status: FlashSaleAPI.BookingStatus =
      switch booking.status {
      case .hold: .hold
      case .booked: .booked
      case .released: .released
      case .expired: .expired
      }
    return BookingRecord(
      bookingID: booking.id.rawValue, saleID: booking.saleID.rawValue, userID: booking.userID.rawValue,
      itemID: sale?.definition.itemID ?? "", price: sale.map { money($0.definition.price) }, status: status,
      createdAt: timestamp(booking.createdAt), updatedAt: timestamp(booking.updatedAt),
      holdExpiresAt: timestamp(booking.holdExpiresAt), idempotencyKey: booking.idempotencyKey,
      fencingToken: booking.fencingToken, releaseReason: booking.releaseReason ?? "")
  }

  /// `ListSales` page tokens.
  static func pageToken(_ cursor: SaleCursor) -> String {
    PageToken.encode(createdAt: cursor.createdAt, id: cursor.id.rawValue)
  }

  static func cursor(pageToken: String) throws(DomainError) -> SaleCursor? {
    try PageToken.decode(pageToken).map { SaleCursor(createdAt: $0.createdAt, id: SaleID($0.id)) }
  }
}
