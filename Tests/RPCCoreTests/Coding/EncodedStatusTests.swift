import Testing

@testable import RPCCore

@Suite("RPCError encoded once")
struct EncodedStatusTests {
  @Test("the wire form is made once and used only while it matches the message and details")
  func encodedOnce() {
    var error = RPCError(code: .resourceExhausted, message: "sold out: 100% gone", statusDetails: [1, 2, 3, 250])
      .encodingStatusOnce()
    #expect(error.encodedStatus?.message == "sold out: 100%25 gone")
    #expect(error.encodedStatus?.details == Base64.encode([1, 2, 3, 250], padded: false))
    #expect(RPCError(code: .internal, message: "x").encodedStatus == nil, "not encoded unless asked")
    let encoded = error
    error.message = "changed"
    #expect(error.encodedStatus == nil, "a changed message makes the encoded form stale")
    var other = encoded
    other.statusDetails = nil
    #expect(other.encodedStatus == nil, "changed details make it stale too")
    #expect(encoded == RPCError(code: .resourceExhausted, message: "sold out: 100% gone", statusDetails: [1, 2, 3, 250]))
  }
}
