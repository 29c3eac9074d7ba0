import RPCCore

/// A message as its encoded bytes: what the probe sends and receives, since
/// it knows message types only from descriptors at run time.
struct RawMessage: RPCMessage {
  var bytes: [UInt8]

  init(_ bytes: [UInt8]) {
    self.bytes = bytes
  }

  init(serializedBytes bytes: UnsafeRawBufferPointer) throws {
    self.bytes = Array(bytes)
  }

  func serialize(into buffer: inout [UInt8]) {
    buffer += bytes
  }
}
