import Testing

@testable import RPCCore

@Suite("RetryPolicy")
struct RetryPolicyTests {
  @Test("backoff bounds grow by the multiplier up to the maximum")
  func backoff() {
    let policy = RetryPolicy(
      maxAttempts: 5, initialBackoff: .milliseconds(100), maxBackoff: .milliseconds(350), backoffMultiplier: 2)
    #expect(policy.backoffBound(beforeAttempt: 2) == .milliseconds(100))
    #expect(policy.backoffBound(beforeAttempt: 3) == .milliseconds(200))
    #expect(policy.backoffBound(beforeAttempt: 4) == .milliseconds(350))
  }

  @Test("at least one attempt")
  func attempts() {
    #expect(RetryPolicy(maxAttempts: 0).maxAttempts == 1)
  }
}
