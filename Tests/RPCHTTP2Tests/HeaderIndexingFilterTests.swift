import Testing

@testable import RPCHTTP2

@Suite("HPACK indexing filter")
struct HeaderIndexingFilterTests {
  func admits(_ filter: inout HeaderIndexingFilter, _ name: String, _ value: String) -> Bool {
    Array(name.utf8).withUnsafeBytes { n in Array(value.utf8).withUnsafeBytes { v in filter.admits(name: n, value: v) } }
  }

  @Test("a value is admitted from its second sending on")
  func secondSending() {
    var filter = HeaderIndexingFilter()
    #expect(!admits(&filter, "x-tenant", "shop-1"))
    #expect(admits(&filter, "x-tenant", "shop-1"))
    #expect(admits(&filter, "x-tenant", "shop-1"))
  }

  @Test("a value that changes every time is never admitted; the name and value are told apart")
  func changingValues() {
    var filter = HeaderIndexingFilter()
    for n in 0..<1000 { #expect(!admits(&filter, "x-request-id", "r-\(n)")) }
    #expect(!admits(&filter, "x-a", "bc"))
    #expect(!admits(&filter, "x-ab", "c"))  // not the same pair as ("x-a", "bc")
  }
}
