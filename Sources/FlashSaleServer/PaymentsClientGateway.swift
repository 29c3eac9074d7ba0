import FlashSaleAPI
public import FlashSaleCheckout
public import FlashSaleDomain
public import RPCCore

/// The checkout's adapter to the payment provider over its gRPC contract
/// (`flashsale.v1.Payments`, served by the real provider or the simulator).
///
/// Every attempt has its own deadline; a call that times out or meets
/// UNAVAILABLE is tried again, with the same idempotency key, after an
/// exponential backoff with full jitter, up to `attempts` times. Then it
/// throws ``PaymentGatewayError/unavailable(_:)``, and the saga asks the
/// provider what happened before it acts again.
public struct PaymentsClientGateway: PaymentGateway {
  private let client: Payments.Client
  private let metadata: Metadata
  private let attemptTimeout: Duration
  private let attempts: Int
  private let initialBackoff: Duration

  /// A gateway calling the provider through `channel`; `metadata` goes with
  /// every call (the internal service credential).
  public init(
    channel: any RPCChannel, metadata: Metadata = [:], attemptTimeout: Duration = .seconds(2), attempts: Int = 3,
    initialBackoff: Duration = .milliseconds(100)
  ) {
    self.client = Payments.Client(channel: channel)
    self.metadata = metadata
    self.attemptTimeout = attemptTimeout
    self.attempts = max(1, attempts)
    self.initialBackoff = initialBackoff
  }

  public func authorize(
    idempotencyKey: String, paymentMethodToken: String, amount: FlashSaleDomain.Money, reference: String
  ) async throws(PaymentGatewayError) -> ProviderPayment {
    let request = AuthorizeRequest(
      idempotencyKey: idempotencyKey, paymentMethodToken: paymentMethodToken,
      amount: ProtoMapping.money(amount), reference: reference)
    return try await call { client, metadata, options throws(RPCError) in
      try await client.authorize(request, metadata: metadata, options: options)
    }
  }

  public func capture(paymentID: String, idempotencyKey: String) async throws(PaymentGatewayError) -> ProviderPayment {
    let request = CaptureRequest(paymentID: paymentID, idempotencyKey: idempotencyKey)
    return try await call { client, metadata, options throws(RPCError) in
      try await client.capture(request, metadata: metadata, options: options)
    }
  }

  public func void(paymentID: String, idempotencyKey: String) async throws(PaymentGatewayError) -> ProviderPayment {
    let request = VoidRequest(paymentID: paymentID, idempotencyKey: idempotencyKey)
    return try await call { client, metadata, options throws(RPCError) in
      try await client.void(request, metadata: metadata, options: options)
    }
  }

  public func refund(paymentID: String, idempotencyKey: String) async throws(PaymentGatewayError) -> ProviderPayment {
    let request = RefundRequest(paymentID: paymentID, idempotencyKey: idempotencyKey)
    return try await call { client, metadata, options throws(RPCError) in
      try await client.refund(request, metadata: metadata, options: options)
    }
  }

  public func lookup(paymentID: String) async throws(PaymentGatewayError) -> ProviderPayment {
    let request = GetPaymentRequest(key: .paymentID(paymentID))
    return try await call { client, metadata, options throws(RPCError) in
      try await client.getPayment(request, metadata: metadata, options: options)
    }
  }

  public func lookup(authorizeKey: String) async throws(PaymentGatewayError) -> ProviderPayment? {
    let request = GetPaymentRequest(key: .authorizeIdempotencyKey(authorizeKey))
    do {
      return try await call { client, metadata, options throws(RPCError) in
        try await client.getPayment(request, metadata: metadata, options: options)
      }
    } catch .notFound {
      return nil
    }
  }

  /// Runs `body` with a deadline per attempt, retrying timeouts and outages.
  private func call(
    _ body: @Sendable (Payments.Client, Metadata, CallOptions) async throws(RPCError) -> Payment
  ) async throws(PaymentGatewayError) -> ProviderPayment {
    var last = ""
    for attempt in 1...attempts {
      if attempt > 1 {
        let bound = initialBackoff.wholeNanoseconds << (attempt - 2)
        try? await Task.sleep(for: .nanoseconds(Int64.random(in: 0...max(1, bound))))
      }
      do {
        let payment = try await body(client, metadata, CallOptions(timeout: attemptTimeout, retryPolicy: RetryPolicy.none))
        return try Self.payment(payment)
      } catch let error as RPCError {
        switch error.code {
        case .unavailable, .deadlineExceeded, .resourceExhausted, .aborted, .internal, .unknown:
          last = "\(error.code): \(error.message)"
        case .notFound:
          throw .notFound(error.message)
        default:
          throw .rejected("\(error.code): \(error.message)")
        }
      } catch let error as PaymentGatewayError {
        throw error
      } catch {
        last = "\(error)"
      }
    }
    throw .unavailable("\(attempts) attempts failed; last: \(last)")
  }

  private static func payment(_ message: Payment) throws(PaymentGatewayError) -> ProviderPayment {
    let status: ProviderPayment.Status
    switch message.status {
    case .authorized: status = .authorized
    case .captured: status = .captured
    case .voided: status = .voided
    case .refunded: status = .refunded
    case .declined: status = .declined
    default: throw .rejected("the provider answered payment \(message.paymentID) with status \(message.status)")
    }
    return ProviderPayment(
      id: message.paymentID, status: status,
      amount: FlashSaleDomain.Money(currency: message.amount?.currency ?? "", amountMinor: message.amount?.amountMinor ?? 0),
      capturedMinor: message.captured?.amountMinor ?? 0, refundedMinor: message.refunded?.amountMinor ?? 0,
      reference: message.reference, declineReason: message.declineReason.isEmpty ? nil : message.declineReason)
  }
}
