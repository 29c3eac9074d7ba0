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

  @Test("the permanent wire form holds the same bytes, and goes stale with the message")
  func encodedPermanently() {
    var error = RPCError(code: .resourceExhausted, message: "sold out: 100% gone", statusDetails: [1, 2, 3, 250])
      .encodingStatusPermanently()
    let permanent = error.encodedStatus?.permanent
    #expect(permanent.map { Array($0.message.bytes) } == Array("sold out: 100%25 gone".utf8))
    #expect(permanent?.details.map { Array($0.bytes) } == Array(Base64.encode([1, 2, 3, 250], padded: false).utf8))
    let withoutDetails = RPCError(code: .notFound, message: "gone").encodingStatusPermanently()
    #expect(withoutDetails.encodedStatus?.permanent.map { Array($0.message.bytes) } == Array("gone".utf8))
    #expect(withoutDetails.encodedStatus?.permanent?.details == nil)
    error.message = "changed"
    #expect(error.encodedStatus == nil, "a changed message drops the permanent form with the rest")
  }
}
