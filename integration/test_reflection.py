"""Server reflection through Python's grpcio-reflection client: it lists our
services, fetches their descriptors (both the v1 and the v1alpha service),
builds request messages from them, and calls a method with them."""
import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from conftest import Process, binary
import protos

reflection_pb2, reflection_grpc = protos.load("grpc/reflection/v1/reflection.proto")
TOKEN = "reflection-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("reflection") / "flashsale.db"
    process = Process([binary("flashsale"), "serve", "--grpc-port", "0", "--store", f"sqlite:{store}",
                       "--service-token", TOKEN, "--demo-sale"])
    yield process
    process.stop()


def test_grpcio_reflection_lists_describes_and_calls(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        assert sorted(database.get_services()) == [
            "flashsale.v1.Booking", "flashsale.v1.Checkout", "flashsale.v1.Inventory", "flashsale.v1.Payments",
            "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"]
        pool = descriptor_pool.DescriptorPool(database)
        inventory = pool.FindServiceByName("flashsale.v1.Inventory")
        assert "WatchAvailability" in [m.name for m in inventory.methods]
        watch = inventory.FindMethodByName("WatchAvailability")
        assert watch.server_streaming and not watch.client_streaming
        # Messages built from the fetched descriptors, sent and decoded.
        request_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("flashsale.v1.ListSalesRequest"))
        response_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("flashsale.v1.ListSalesResponse"))
        call = channel.unary_unary("/flashsale.v1.Inventory/ListSales",
                                   request_serializer=request_class.SerializeToString,
                                   response_deserializer=response_class.FromString)
        response = call(request_class(page_size=5), timeout=5)
        assert [s.item_id for s in response.sales] == ["demo-phone"]
        # Imports come along: the checkout's Money and the well-known Timestamp.
        sale = pool.FindMessageTypeByName("flashsale.v1.Sale")
        assert sale.fields_by_name["starts_at"].message_type.full_name == "google.protobuf.Timestamp"


def test_v1_answers_each_request_kind(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = reflection_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(host="h", list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="flashsale.v1.Booking.Book"),
            reflection_pb2.ServerReflectionRequest(file_by_filename="flashsale/v1/money.proto"),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
            reflection_pb2.ServerReflectionRequest(all_extension_numbers_of_type="flashsale.v1.Sale"),
            reflection_pb2.ServerReflectionRequest(),
        ]
        answers = list(stub.ServerReflectionInfo(iter(requests), timeout=5))
        assert len(answers) == len(requests)
        assert answers[0].valid_host == "h" and answers[0].original_request == requests[0]
        assert "flashsale.v1.Booking" in [s.name for s in answers[0].list_services_response.service]
        files = answers[1].file_descriptor_response.file_descriptor_proto
        from google.protobuf import descriptor_pb2
        names = [descriptor_pb2.FileDescriptorProto.FromString(f).name for f in files]
        assert names[0] == "flashsale/v1/booking.proto" and "google/protobuf/timestamp.proto" in names
        assert [descriptor_pb2.FileDescriptorProto.FromString(f).name
                for f in answers[2].file_descriptor_response.file_descriptor_proto] == ["flashsale/v1/money.proto"]
        assert answers[3].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
        assert answers[4].all_extension_numbers_response.base_type_name == "flashsale.v1.Sale"
        assert answers[5].error_response.error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
