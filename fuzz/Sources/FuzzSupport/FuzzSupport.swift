public import ProtoDescriptors
public import ProtoJSON
import RPCCore

/// The transcoder over the codegen test contract (every field kind), whose
/// descriptor set the JSON agreement tests also use.
public let contractTranscoder: ProtoJSONTranscoder = {
  guard let bytes = Base64.decode(PythonJSONVectors.descriptorSet),
    let pool = try? DescriptorPool(fileDescriptorSet: bytes)
  else { fatalError("the contract's descriptor set does not decode") }
  return ProtoJSONTranscoder(pool: pool)
}()

/// The message type of the contract that holds every field kind.
public let contractType = "codegen.v1.Everything"

/// JSON limits deep enough for anything the decoder prints (it refuses
/// messages nested deeper than 100 levels; JSON adds an array level per repeated field).
public let roundTripLimits = JSONLimits(maximumDepth: 1000)

/// Stops the fuzzer with a message: a property of the code under test broke.
public func violated(_ message: String) -> Never {
  fatalError("property violated: \(message)")
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
  _ argc: UnsafeMutablePointer<CInt>,
  _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
  _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs libFuzzer with `body` as the test of one input. SwiftPM names an
/// executable's entry point `<Target>_main`, so libFuzzer's own `main` is not
/// the one called: each target's entry point calls this.
public func runFuzzer(
  _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
  _ body: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt {
  var argc = argc
  var argv = argv
  return LLVMFuzzerRunDriver(&argc, &argv, body)
}
