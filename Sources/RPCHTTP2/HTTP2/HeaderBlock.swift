internal import CNghttp2
import RPCCore

/// The name-value pairs of one HEADERS frame to send.
///
/// Names and values known at compile time are `StaticString`s, and an error's
/// status encoded once for the life of the process is permanent bytes:
/// nghttp2 is told not to copy either. The common blocks (`:status 200`,
/// `grpc-status 0`) are static values, so answering a call allocates nothing
/// for them.
struct HeaderBlock: Sendable {
  /// A header name or value.
  enum Text: Sendable {
    case constant(StaticString)
    /// Bytes that live for the whole process (an error's encoded status).
    case permanent(RPCError.PermanentBytes)
    case dynamic(String)

    /// The bytes, if they outlive any frame: nghttp2 is told not to copy them.
    var lastingBytes: (start: UnsafePointer<UInt8>, count: Int)? {
      switch self {
      case .constant(let s): (s.utf8Start, s.utf8CodeUnitCount)
      case .permanent(let p):
        (p.bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? Text.empty.utf8Start, p.bytes.count)
      case .dynamic: nil
      }
    }

    private static let empty: StaticString = ""
  }

  /// One name and its value. (A struct, not a tuple: an array of structs is
  /// destroyed through the struct's compiled destructor, an array of tuples
  /// through the runtime's generic one, at several times the cost.)
  struct Field: Sendable {
    var name: Text
    var value: Text
  }

  private(set) var fields: [Field]
  /// Whether every name and value outlives any frame (static strings,
  /// permanent bytes): then no temporary copy is made.
  private var isConstant: Bool

  /// An empty block with room for `capacity` fields (one allocation).
  init(capacity: Int) {
    self.fields = []
    self.fields.reserveCapacity(capacity)
    self.isConstant = true
  }

  init(_ fields: [(name: Text, value: Text)] = []) {
    self.fields = fields.map { Field(name: $0.name, value: $0.value) }
    self.isConstant = fields.allSatisfy { $0.name.lastingBytes != nil && $0.value.lastingBytes != nil }
  }

  mutating func add(_ name: StaticString, _ value: StaticString) {
    fields.append(Field(name: .constant(name), value: .constant(value)))
  }

  mutating func add(_ name: StaticString, value: String) {
    fields.append(Field(name: .constant(name), value: .dynamic(value)))
    isConstant = false
  }

  mutating func add(_ name: StaticString, value: RPCError.PermanentBytes) {
    fields.append(Field(name: .constant(name), value: .permanent(value)))
  }

  mutating func add(name: String, value: String) {
    fields.append(Field(name: .dynamic(name), value: .dynamic(value)))
    isConstant = false
  }

  /// Adds the custom metadata that may be sent: invalid keys and values are
  /// left out (see ``Metadata/isValidCustomKey(_:)``), except the one reserved
  /// key a server sets itself, `grpc-retry-pushback-ms` (gRPC's retry design).
  mutating func add(_ metadata: Metadata) {
    for entry in metadata where Metadata.isValidCustomKey(entry.key) || entry.key == "grpc-retry-pushback-ms" {
      if let value = Metadata.wireValue(key: entry.key, value: entry.value) {
        fields.append(Field(name: .dynamic(entry.key), value: .dynamic(value)))
        isConstant = false
      }
    }
  }

  /// Calls `body` with an `nghttp2_nv` array of the fields, valid during the
  /// call. nghttp2 copies dynamic strings when a frame is submitted, and keeps
  /// pointers to the static ones (flagged NO_COPY). A field with a dynamic
  /// name or value that `indexing` does not admit is flagged NO_INDEX.
  func withNVArray<R>(indexing: inout HeaderIndexingFilter, _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
    if isConstant {
      // The common blocks: no storage to build, nothing for nghttp2 to copy.
      return withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(fields.count, 1)) { nva in
        let flags = UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue)
        for (i, field) in fields.enumerated() {
          let name = field.name.lastingBytes!
          let value = field.value.lastingBytes!
          nva[i] = nghttp2_nv(
            name: UnsafeMutablePointer(mutating: name.start), value: UnsafeMutablePointer(mutating: value.start),
            namelen: name.count, valuelen: value.count, flags: flags)
        }
        return body(UnsafePointer(nva.baseAddress!), fields.count)
      }
    }
    // The dynamic strings' bytes, copied one after another into one
    // temporary buffer (nghttp2 copies them again when the frame is submitted).
    var byteCount = 0
    for field in fields {
      if case .dynamic(let s) = field.name { byteCount += s.utf8.count }
      if case .dynamic(let s) = field.value { byteCount += s.utf8.count }
    }
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(byteCount, 1)) { storage in
      withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(fields.count, 1)) { nva in
        var offset = 0
        func pointer(_ text: Text) -> (UnsafeMutablePointer<UInt8>, Int, UInt8) {
          switch text {
          case .constant, .permanent:
            // Static strings and permanent bytes live for the whole process.
            let bytes = text.lastingBytes!
            return (UnsafeMutablePointer(mutating: bytes.start), bytes.count, 1)
          case .dynamic(var s):
            let base = storage.baseAddress! + offset
            let count = s.withUTF8 { bytes in
              if let source = bytes.baseAddress { base.initialize(from: source, count: bytes.count) }
              return bytes.count
            }
            offset += count
            return (base, count, 0)
          }
        }
        for (i, field) in fields.enumerated() {
          let (name, nameLength, nameStatic) = pointer(field.name)
          let (value, valueLength, valueStatic) = pointer(field.value)
          var flags = UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)
          if nameStatic == 1 { flags |= UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue) }
          if valueStatic == 1 { flags |= UInt8(NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue) }
          // `:path` is left out: nghttp2 never indexes it, whatever the flag.
          if nameStatic == 0 || valueStatic == 0,
            !UnsafeRawBufferPointer(start: name, count: nameLength).equals(":path"),
            !indexing.admits(
              name: UnsafeRawBufferPointer(start: name, count: nameLength),
              value: UnsafeRawBufferPointer(start: value, count: valueLength))
          {
            flags |= UInt8(NGHTTP2_NV_FLAG_NO_INDEX.rawValue)
          }
          nva[i] = nghttp2_nv(name: name, value: value, namelen: nameLength, valuelen: valueLength, flags: flags)
        }
        return body(UnsafePointer(nva.baseAddress!), fields.count)
      }
    }
  }
}
