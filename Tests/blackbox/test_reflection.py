"""Server reflection: grpcurl (v1alpha), grpcio-reflection (v1alpha), and v1 from a grpcio
client whose messages come from a private DescriptorPool."""
import json
import os
import subprocess
import tempfile

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

BASE = {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
# Scripts/test.sh gives esaylov-server its database, so the directory is served.
SERVED = BASE | {"esaylov.v1.DirectoryService", "esaylov.v1.AuthService", "esaylov.v1.AuditService", "esaylov.v1.RequestService",
                 "esaylov.v1.DecisionService"}


def grpcurl(*args):
    r = subprocess.run(["grpcurl", "-plaintext", *args], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def test_grpcurl_lists_every_registered_service(esaylov_server, interop_server):
    rc, out, err = grpcurl(esaylov_server.address, "list")
    assert rc == 0, err
    assert set(out.split()) == SERVED
    rc, out, err = grpcurl(interop_server.address, "list")
    assert set(out.split()) == BASE | {"grpc.testing.TestService"}


def test_grpcurl_describes_with_comments(interop_server):
    rc, out, err = grpcurl(interop_server.address, "describe", "grpc.testing.TestService")
    assert rc == 0, err
    assert "rpc FullDuplexCall ( stream .grpc.testing.StreamingOutputCallRequest ) returns ( stream" in out
    rc, out, _ = grpcurl(interop_server.address, "describe", "grpc.testing.SimpleRequest")
    assert "int32 response_size = 2;" in out and "// Desired payload size" in out


def test_grpcurl_calls_with_json(interop_server, esaylov_server):
    rc, out, err = grpcurl("-d", '{"response_size": 3, "payload": {"body": "AAEC"}}', interop_server.address,
                           "grpc.testing.TestService/UnaryCall")
    assert rc == 0, err
    assert json.loads(out)["payload"]["body"] == "AAAA"
    rc, out, err = grpcurl("-d", "{}", esaylov_server.address, "grpc.health.v1.Health/Check")
    assert rc == 0 and json.loads(out) == {"status": "SERVING"}


def test_grpcurl_decodes_every_error_detail_by_reflection(esaylov_server):
    """The google.rpc details esaylov sends are served by reflection, so grpcurl prints them
    decoded rather than as base64 of an unknown type."""
    rc, out, err = grpcurl("-d", '{"page": {"page_size": 9999}}', esaylov_server.address, "esaylov.v1.DirectoryService/ListOrganisations")
    assert rc != 0 and "InvalidArgument" in out + err, out + err
    assert '"@type":"type.googleapis.com/google.rpc.BadRequest"' in out + err and '"field":"page.page_size"' in out + err, out + err
    assert "not recognized" not in out + err
    for name in ("google.rpc.BadRequest", "google.rpc.PreconditionFailure", "google.rpc.ErrorInfo"):
        rc, out, err = grpcurl(esaylov_server.address, "describe", name)
        assert rc == 0 and name in out, err


def test_grpcurl_unknown_symbol(esaylov_server):
    rc, _, err = grpcurl(esaylov_server.address, "describe", "esaylov.v1.Nothing")
    assert rc != 0 and "esaylov.v1.Nothing" in err


def reflect_v1alpha(address, **request):
    with grpc.insecure_channel(address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        return list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=5))


def test_v1alpha_file_by_name_has_transitive_dependencies(interop_server):
    [resp] = reflect_v1alpha(interop_server.address, file_by_filename="grpc/testing/test.proto")
    names = [descriptor_pb2.FileDescriptorProto.FromString(b).name
             for b in resp.file_descriptor_response.file_descriptor_proto]
    assert names[0] == "grpc/testing/test.proto"
    assert set(names) == {"grpc/testing/test.proto", "grpc/testing/empty.proto", "grpc/testing/messages.proto"}


def test_v1alpha_symbols_and_errors(interop_server):
    for symbol in ["grpc.testing.TestService", "grpc.testing.TestService.UnaryCall", "grpc.testing.Payload",
                   "grpc.testing.PayloadType", ".grpc.testing.SimpleRequest"]:
        [resp] = reflect_v1alpha(interop_server.address, file_containing_symbol=symbol)
        assert resp.WhichOneof("message_response") == "file_descriptor_response", symbol
    [resp] = reflect_v1alpha(interop_server.address, file_containing_symbol="no.Such")
    assert resp.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    [resp] = reflect_v1alpha(interop_server.address, file_by_filename="nope.proto")
    assert resp.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    [resp] = reflect_v1alpha(interop_server.address, all_extension_numbers_of_type="grpc.testing.Payload")
    assert resp.all_extension_numbers_response.base_type_name == "grpc.testing.Payload"
    assert list(resp.all_extension_numbers_response.extension_number) == []


@pytest.fixture(scope="module")
def v1():
    from grpc_tools import protoc
    import grpc_tools
    out = os.path.join(tempfile.mkdtemp(), "reflection.pb")
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    assert protoc.main(["protoc", "-I/usr/share/grpc-proto", f"-I{wkt}", "--include_imports",
                        f"--descriptor_set_out={out}", "grpc/reflection/v1/reflection.proto"]) == 0
    pool = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(open(out, "rb").read()).file:
        pool.Add(f)
    get = lambda n: message_factory.GetMessageClass(pool.FindMessageTypeByName(n))
    return get("grpc.reflection.v1.ServerReflectionRequest"), get("grpc.reflection.v1.ServerReflectionResponse")


def test_v1_reads_the_same_as_v1alpha(esaylov_server, v1):
    Req, Resp = v1
    with grpc.insecure_channel(esaylov_server.address) as ch:
        call = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                request_serializer=Req.SerializeToString, response_deserializer=Resp.FromString)
        answers = list(call(iter([Req(host="h", list_services=""),
                                  Req(file_containing_symbol="grpc.health.v1.Health")]), timeout=5))
    assert {s.name for s in answers[0].list_services_response.service} == SERVED
    assert answers[0].valid_host == "h" and answers[0].original_request.list_services == ""
    files = answers[1].file_descriptor_response.file_descriptor_proto
    assert descriptor_pb2.FileDescriptorProto.FromString(files[0]).service[0].name == "Health"
    alpha = reflect_v1alpha(esaylov_server.address, file_containing_symbol="grpc.health.v1.Health")[0]
    assert list(alpha.file_descriptor_response.file_descriptor_proto) == list(files)
