public import FlashSaleDomain

/// A payment as the provider reports it.
public struct ProviderPayment: Hashable, Sendable {
  public enum Status: String, Hashable, Sendable, CaseIterable {
    case authorized, captured, voided, refunded, declined
  }

  public var id: String
  public var status: Status
  public var amount: Money
  public var capturedMinor: Int64
  public var refundedMinor: Int64
  /// The caller's reference: the checkout id.
  public var reference: String
  public var declineReason: String?

  public init(
    id: String, status: Status, amount: Money, capturedMinor: Int64 = 0, refundedMinor: Int64 = 0, reference: String,
    declineReason: String? = nil
  ) {
    self.id = id
    self.status = status
    self.amount = amount
    self.capturedMinor = capturedMinor
    self.refundedMinor = refundedMinor
    self.reference = reference
    self.declineReason = declineReason
  }
}

extension PaymentState {
  /// What the saga records when the provider reports `status`.
  public init(_ status: ProviderPayment.Status) {
    switch status {
    case .authorized: self = .authorized
    case .captured: self = .captured
    case .voided: self = .voided
    case .refunded: self = .refunded
    case .declined: self = .declined
    }
  }
}

/// Why a call to the payment provider failed.
public enum PaymentGatewayError: Error, Hashable, Sendable, CustomStringConvertible {
  /// No answer, after the gateway's bounded retries: the call may or may not
  /// have taken effect. Ask the provider (``PaymentGateway/lookup(paymentID:)``)
  /// before acting again.
  case unavailable(String)
  /// The provider refused the call for good (a payment in the wrong state, a
  /// bad request): retrying the same call cannot help.
  case rejected(String)
  /// The provider has no such payment.
  case notFound(String)

  public var description: String {
    switch self {
    case .unavailable(let message): "payment provider unavailable: \(message)"
    case .rejected(let message): "payment provider refused the call: \(message)"
    case .notFound(let message): "payment provider has no such payment: \(message)"
    }
  }
}

/// The platform's side of the external payment provider (an adapter over its
/// API). Every mutating call carries an idempotency key: the provider answers
/// a repeated key with the first outcome, so a retry never charges twice.
/// Implementations give each attempt a deadline and retry a bounded number of
/// times with backoff before throwing ``PaymentGatewayError/unavailable(_:)``.
public protocol PaymentGateway: Sendable {
  /// Reserves `amount` on the payment method. A decline is a payment whose
  /// status is `declined`, not an error.
  func authorize(
    idempotencyKey: String, paymentMethodToken: String, amount: Money, reference: String
  ) async throws(PaymentGatewayError) -> ProviderPayment

  /// Takes the whole authorized amount.
  func capture(paymentID: String, idempotencyKey: String) async throws(PaymentGatewayError) -> ProviderPayment

  /// Cancels an authorization that was not captured.
  func void(paymentID: String, idempotencyKey: String) async throws(PaymentGatewayError) -> ProviderPayment

  /// Gives the whole captured amount back.
  func refund(paymentID: String, idempotencyKey: String) async throws(PaymentGatewayError) -> ProviderPayment

  /// The payment with `paymentID`.
  func lookup(paymentID: String) async throws(PaymentGatewayError) -> ProviderPayment

  /// The payment the Authorize with `idempotencyKey` created, if the provider saw it.
  func lookup(authorizeKey: String) async throws(PaymentGatewayError) -> ProviderPayment?
}
