public import FlashSaleAPI
import FlashSaleDomain
public import PaymentSimulator
public import RPCCore
import StandardProtos

/// `flashsale.v1.Payments` served by the ``PaymentSimulator``: what
/// `flashsale serve --role payments-sim` runs in place of a real provider.
public struct PaymentsSimulatorService: Payments.ServiceProtocol {
  private let simulator: PaymentSimulator

  public init(simulator: PaymentSimulator) {
    self.simulator = simulator
  }

  public func authorize(_ request: AuthorizeRequest, context: ServerContext) -> Reply<Payment> {
    Self.answer { [simulator] () throws(PaymentSimulatorError) in
      guard let amount = request.amount else { throw .invalidArgument(field: "amount", "amount: required") }
      return try await simulator.authorize(
        idempotencyKey: request.idempotencyKey, paymentMethodToken: request.paymentMethodToken,
        amount: FlashSaleDomain.Money(currency: amount.currency, amountMinor: amount.amountMinor),
        reference: request.reference)
    }
  }

  public func capture(_ request: CaptureRequest, context: ServerContext) -> Reply<Payment> {
    Self.answer { [simulator] () throws(PaymentSimulatorError) in
      if let amount = request.amount, amount.amountMinor != 0 {
        // Partial captures are not simulated.
        throw .invalidArgument(field: "amount", "amount: partial captures are not supported; leave it unset")
      }
      return try await simulator.capture(paymentID: request.paymentID, idempotencyKey: request.idempotencyKey)
    }
  }

  public func void(_ request: VoidRequest, context: ServerContext) -> Reply<Payment> {
    Self.answer { [simulator] () throws(PaymentSimulatorError) in
      try await simulator.void(paymentID: request.paymentID, idempotencyKey: request.idempotencyKey)
    }
  }

  public func refund(_ request: RefundRequest, context: ServerContext) -> Reply<Payment> {
    Self.answer { [simulator] () throws(PaymentSimulatorError) in
      if let amount = request.amount, amount.amountMinor != 0 {
        throw .invalidArgument(field: "amount", "amount: partial refunds are not supported; leave it unset")
      }
      return try await simulator.refund(paymentID: request.paymentID, idempotencyKey: request.idempotencyKey)
    }
  }

  public func getPayment(_ request: GetPaymentRequest, context: ServerContext) -> Reply<Payment> {
    Self.answer { [simulator] () throws(PaymentSimulatorError) in
      switch request.key {
      case .paymentID(let id): try await simulator.payment(id: id)
      case .authorizeIdempotencyKey(let key): try await simulator.payment(authorizeKey: key)
      case nil: throw .invalidArgument(field: "key", "key: give payment_id or authorize_idempotency_key")
      }
    }
  }

  private static func answer(
    _ body: @escaping @Sendable () async throws(PaymentSimulatorError) -> SimulatedPayment
  ) -> Reply<Payment> {
    .later {
      do throws(PaymentSimulatorError) {
        return message(try await body())
      } catch {
        throw rpcError(error)
      }
    }
  }

  static func message(_ payment: SimulatedPayment) -> Payment {
    let status: PaymentStatus =
      switch payment.status {
      case .authorized: .authorized
      case .captured: .captured
      case .voided: .voided
      case .refunded: .refunded
      case .declined: .declined
      }
    let currency = payment.amount.currency
    return Payment(
      paymentID: payment.id, status: status, amount: ProtoMapping.money(payment.amount),
      captured: FlashSaleAPI.Money(currency: currency, amountMinor: payment.capturedMinor),
      refunded: FlashSaleAPI.Money(currency: currency, amountMinor: payment.refundedMinor),
      reference: payment.reference, declineReason: payment.declineReason ?? "",
      createdAt: ProtoMapping.timestamp(payment.createdAt), updatedAt: ProtoMapping.timestamp(payment.updatedAt))
  }

  static func rpcError(_ error: PaymentSimulatorError) -> RPCError {
    let domain = "payments.flashsale.v1"
    switch error {
    case .invalidArgument(let field, let message):
      return RPCError(
        code: .invalidArgument, message: message,
        details: [
          .errorInfo(Google_Rpc_ErrorInfo(reason: "INVALID_ARGUMENT", domain: domain)),
          .badRequest(Google_Rpc_BadRequest(fieldViolations: [.init(field: field, description: message)])),
        ])
    case .notFound(let message):
      return RPCError(
        code: .notFound, message: message,
        details: [.errorInfo(Google_Rpc_ErrorInfo(reason: "PAYMENT_NOT_FOUND", domain: domain))])
    case .failedPrecondition(let message):
      return RPCError(
        code: .failedPrecondition, message: message,
        details: [.errorInfo(Google_Rpc_ErrorInfo(reason: "PAYMENT_STATE", domain: domain))])
    case .unavailable(let message):
      return RPCError(
        code: .unavailable, message: message,
        details: [.errorInfo(Google_Rpc_ErrorInfo(reason: "PROVIDER_UNAVAILABLE", domain: domain))])
    }
  }
}
