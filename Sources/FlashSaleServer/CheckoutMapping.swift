import FlashSaleAPI
import FlashSaleCheckout
import FlashSaleDomain
import RPCCore

/// Conversions between the `flashsale.v1` checkout messages and the checkout's types.
enum CheckoutMapping {
  static func record(_ checkout: FlashSaleCheckout.Checkout) -> CheckoutRecord {
    let state: FlashSaleAPI.CheckoutState =
      switch checkout.state {
      case .running: .running
      case .completed: .completed
      case .compensating: .compensating
      case .compensated: .compensated
      }
    return CheckoutRecord(
      checkoutID: checkout.id.rawValue, bookingID: checkout.bookingID.rawValue, saleID: checkout.saleID.rawValue,
      userID: checkout.userID.rawValue, state: state, amount: ProtoMapping.money(checkout.amount),
      orderID: checkout.orderID ?? "", paymentID: checkout.paymentID ?? "", steps: checkout.steps.map(step),
      failureReason: checkout.failureReason ?? "", idempotencyKey: checkout.idempotencyKey,
      createdAt: ProtoMapping.timestamp(checkout.createdAt), updatedAt: ProtoMapping.timestamp(checkout.updatedAt))
  }

  static func step(_ step: FlashSaleCheckout.CheckoutStep) -> FlashSaleAPI.CheckoutStep {
    let status: StepStatus =
      switch step.status {
      case .started: .started
      case .succeeded: .succeeded
      case .failed: .failed
      case .compensated: .compensated
      }
    return FlashSaleAPI.CheckoutStep(
      name: step.name, status: status, attempt: Int32(clamping: step.attempt), detail: step.detail,
      startedAt: ProtoMapping.timestamp(step.startedAt), finishedAt: step.finishedAt.map(ProtoMapping.timestamp))
  }

  static func order(_ order: FlashSaleCheckout.Order) -> FlashSaleAPI.Order {
    let status: FlashSaleAPI.OrderStatus =
      switch order.status {
      case .pending: .pending
      case .completed: .completed
      case .cancelled: .cancelled
      }
    return FlashSaleAPI.Order(
      orderID: order.id, checkoutID: order.checkoutID.rawValue, bookingID: order.bookingID.rawValue,
      saleID: order.saleID.rawValue, userID: order.userID.rawValue, status: status,
      amount: ProtoMapping.money(order.amount), paymentID: order.paymentID ?? "",
      createdAt: ProtoMapping.timestamp(order.createdAt), updatedAt: ProtoMapping.timestamp(order.updatedAt))
  }

  static func event(_ event: FlashSaleCheckout.TransactionEvent) -> FlashSaleAPI.TransactionEvent {
    let type: TransactionEventType =
      switch event.kind {
      case .orderCreated: .orderCreated
      case .paymentAuthorized: .paymentAuthorized
      case .paymentCaptured: .paymentCaptured
      case .paymentVoided: .paymentVoided
      case .paymentRefunded: .paymentRefunded
      case .holdReleased: .holdReleased
      case .bookingConfirmed: .bookingConfirmed
      case .orderCancelled: .orderCancelled
      }
    return FlashSaleAPI.TransactionEvent(
      offset: event.offset, eventID: event.id, type: type, checkoutID: event.checkoutID.rawValue,
      bookingID: event.bookingID.rawValue, saleID: event.saleID.rawValue, userID: event.userID.rawValue,
      orderID: event.orderID ?? "", paymentID: event.paymentID ?? "", amount: ProtoMapping.money(event.amount),
      occurredAt: ProtoMapping.timestamp(event.occurredAt))
  }

  /// `ListOrders` page tokens.
  static func pageToken(_ cursor: OrderCursor) -> String {
    PageToken.encode(createdAt: cursor.createdAt, id: cursor.id)
  }

  static func cursor(pageToken: String) throws(DomainError) -> OrderCursor? {
    try PageToken.decode(pageToken).map { OrderCursor(createdAt: $0.createdAt, id: $0.id) }
  }
}
