import Testing

@testable import RPCCore

@Suite("grpc-timeout")
struct GRPCTimeoutTests {
  @Test(
    "valid values parse",
    arguments: [
      ("1H", Duration.seconds(3600)), ("2M", .seconds(120)), ("3S", .seconds(3)), ("45m", .milliseconds(45)),
      ("7u", .microseconds(7)), ("99999999n", .nanoseconds(99_999_999)), ("0S", .zero),
    ])
  func parses(text: String, duration: Duration) {
    #expect(GRPCTimeout.parse(text) == duration)
  }

  @Test(
    "the server's form is nanoseconds, saturating",
    arguments: [("1H", Int64(3_600_000_000_000)), ("45m", 45_000_000), ("7n", 7), ("99999999H", .max), ("0S", 0)])
  func nanoseconds(text: String, nanoseconds: Int64) {
    let parsed = Array(text.utf8).withUnsafeBytes { GRPCTimeout.parseNanoseconds($0) }
    #expect(parsed == nanoseconds)
    #expect(Array("5s".utf8).withUnsafeBytes { GRPCTimeout.parseNanoseconds($0) } == nil)
  }

  @Test("invalid values are refused", arguments: ["", "S", "5", "5s", "123456789S", "-1S", "1.5S", " 5S", "5 S"])
  func refuses(text: String) {
    #expect(GRPCTimeout.parse(text) == nil)
  }

  @Test(
    "encoding picks the finest unit that fits in eight digits, rounding up",
    arguments: [
      (Duration.milliseconds(1), "1000000n"), (.seconds(5), "5000000u"), (.seconds(100), "100000m"),
      (.seconds(200_000), "200000S"), (.nanoseconds(1), "1n"), (.seconds(-1), "0n"), (.zero, "0n"),
    ])
  func encodes(duration: Duration, text: String) {
    #expect(GRPCTimeout.encode(duration) == text)
  }

  @Test("an encoded timeout parses back to at least the original", arguments: [1, 999, 123_456_789, 98_765_432_100])
  func roundTrip(nanoseconds: Int64) throws {
    let duration = Duration.nanoseconds(nanoseconds)
    let parsed = try #require(GRPCTimeout.parse(GRPCTimeout.encode(duration)))
    #expect(parsed >= duration)
  }
}

@Suite("grpc-message percent-encoding")
struct PercentEncodingTests {
  @Test("printable ASCII except % passes through; the rest is %XX")
  func encodes() {
    #expect(PercentEncoding.encode("plain text") == "plain text")
    #expect(PercentEncoding.encode("100%") == "100%25")
    #expect(PercentEncoding.encode("\t\n") == "%09%0A")
    #expect(PercentEncoding.encode("\u{263A}") == "%E2%98%BA")
  }

  @Test("decoding inverts encoding, and tolerates bad escapes", arguments: [
    "\t\ntest with whitespace\r\nand Unicode BMP \u{263A} and non-BMP \u{1F608}\t\n", "%", "a%zzb", "",
  ])
  func roundTrip(message: String) {
    #expect(PercentEncoding.decode(PercentEncoding.encode(message)) == message)
  }

  @Test("a % not followed by two hex digits is kept")
  func lenient() {
    #expect(PercentEncoding.decode("50%") == "50%")
    #expect(PercentEncoding.decode("%4") == "%4")
    #expect(PercentEncoding.decode("%41%zz") == "A%zz")
  }
}

@Suite("Base64")
struct Base64Tests {
  @Test("RFC 4648 vectors, padded and not", arguments: [
    ("", "", ""), ("f", "Zg==", "Zg"), ("fo", "Zm8=", "Zm8"), ("foo", "Zm9v", "Zm9v"), ("foob", "Zm9vYg==", "Zm9vYg"),
    ("fooba", "Zm9vYmE=", "Zm9vYmE"), ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
  ])
  func vectors(plain: String, padded: String, unpadded: String) {
    let bytes = Array(plain.utf8)
    #expect(Base64.encode(bytes, padded: true) == padded)
    #expect(Base64.encode(bytes, padded: false) == unpadded)
    #expect(Base64.decode(padded) == bytes)
    #expect(Base64.decode(unpadded) == bytes)
  }

  @Test("non-base64 is refused", arguments: ["Zg=a", "Z", "Zm9v!", "Zg==="])
  func refuses(text: String) {
    #expect(Base64.decode(text) == nil)
  }

  @Test("every byte value round-trips")
  func allBytes() {
    let bytes = (0...255).map { UInt8($0) }
    #expect(Base64.decode(Base64.encode(bytes, padded: false)) == bytes)
  }
}

@Suite("Metadata")
struct MetadataTests {
  @Test("keys are lower-cased; values keep their order")
  func keys() {
    var metadata: Metadata = ["X-Request-ID": "1"]
    metadata.add("x-request-id", "2")
    #expect(metadata.values("x-request-id") == [.string("1"), .string("2")])
    #expect(metadata["X-REQUEST-ID"] == "1")
    metadata["x-request-id"] = "3"
    #expect(metadata.values("x-request-id") == [.string("3")])
  }

  @Test("binary values travel as unpadded base64 and come back")
  func binary() {
    var metadata = Metadata()
    let added = metadata.addWire(key: "trace-bin", value: "q6ur")
    #expect(added)
    #expect(metadata.binary("trace-bin") == [0xab, 0xab, 0xab])
    #expect(Metadata.wireValue(key: "trace-bin", value: .binary([0xab, 0xab, 0xab])) == "q6ur")
    let malformed = metadata.addWire(key: "bad-bin", value: "!!")
    #expect(!malformed)
  }

  @Test("text values outside printable ASCII cannot be sent")
  func invalidText() {
    #expect(Metadata.wireValue(key: "x", value: .string("caf\u{e9}")) == nil)
    #expect(Metadata.wireValue(key: "x", value: .string("line\nbreak")) == nil)
    #expect(Metadata.wireValue(key: "x", value: .string("fine")) == "fine")
  }

  @Test("reserved and malformed keys are not custom metadata", arguments: [
    ("grpc-status", false), ("content-type", false), ("te", false), (":path", false), ("Upper", false),
    ("x-fine_key.1", true), ("", false), ("host", false), ("upgrade", false), ("user-agent", false),
    ("connection", false), ("keep-alive", false), ("proxy-connection", false), ("transfer-encoding", false),
    ("grpc-", false), ("grpc", true), ("tf", true), ("hosts", true), ("x-connection", true),
    ("content-types", true), ("x-flashsale-service-token", true),
  ])
  func customKeys(key: String, valid: Bool) {
    #expect(Metadata.isValidCustomKey(key) == valid)
  }
}

@Suite("StatusCode")
struct StatusCodeTests {
  @Test("names round-trip for every code")
  func names() {
    for raw in 0...16 {
      let code = StatusCode(rawValue: raw)
      #expect(StatusCode(name: code.name) == code)
    }
    #expect(StatusCode.deadlineExceeded.name == "DEADLINE_EXCEEDED")
    #expect(StatusCode(rawValue: 42).name == "CODE_42")
  }

  @Test("an RPCError is never OK, and internals do not leak")
  func errors() {
    #expect(RPCError(code: .ok, message: "x").code == .unknown)
    struct Secret: Error {}
    let wrapped = RPCError(wrapping: Secret())
    #expect(wrapped.code == .internal)
    #expect(!wrapped.message.contains("Secret"))
    #expect(RPCError(wrapping: CancellationError()).code == .cancelled)
  }
}
