"""ONNX external data is refused wherever a tensor can live (issue #16 item 4).

Tensors sit in graph initializers, sparse initializers, node attributes, subgraphs,
model functions (node attributes and default attribute values) and training info.
Each can point at an external file that is read after verification.
"""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")
from onnx import AttributeProto, TensorProto, helper  # noqa: E402

from mgattest.inspect import scan_bytes  # noqa: E402
from mgattest.loading._loaders import UnsafeContentError, deserialize  # noqa: E402


def external(name: str = "w", location: str = "../outside.bin") -> TensorProto:
    tensor = TensorProto()
    tensor.name, tensor.data_type = name, TensorProto.FLOAT
    tensor.dims.extend([4])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def graph(initializer=(), sparse=(), nodes=None) -> onnx.GraphProto:
    nodes = nodes or [helper.make_node("Identity", ["x"], ["y"])]
    return helper.make_graph(nodes, "g",
                             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
                             initializer=list(initializer), sparse_initializer=list(sparse))


def model(g: onnx.GraphProto, **extra) -> bytes:
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("custom", 1)])
    for key, value in extra.items():
        getattr(m, key).extend(value)
    return m.SerializeToString()


def sparse_initializer() -> bytes:
    values = external("sv")
    indices = helper.make_tensor("si", TensorProto.INT64, [4], [0, 1, 2, 3])
    return model(graph(sparse=[helper.make_sparse_tensor(values, indices, [8])]))


def function_node_attribute() -> bytes:
    const = helper.make_node("Constant", [], ["c"], value=external("fc"))
    fn = helper.make_function("custom", "F", ["a"], ["c"], [const],
                              [helper.make_opsetid("", 17)])
    return model(graph(nodes=[helper.make_node("F", ["x"], ["y"], domain="custom")]),
                 functions=[fn])


def function_default_attribute() -> bytes:
    fn = helper.make_function("custom", "F", ["a"], ["a"],
                              [helper.make_node("Identity", ["a"], ["b"])],
                              [helper.make_opsetid("", 17)])
    default = AttributeProto()
    default.name, default.type = "t", AttributeProto.TENSOR
    default.t.CopyFrom(external("fd"))
    fn.attribute_proto.append(default)
    return model(graph(nodes=[helper.make_node("F", ["x"], ["y"], domain="custom")]),
                 functions=[fn])


def training_info() -> bytes:
    info = onnx.TrainingInfoProto()
    info.initialization.CopyFrom(graph(initializer=[external("ti")]))
    return model(graph(), training_info=[info])


def subgraph_attribute() -> bytes:
    inner = graph(initializer=[external("sub")])
    node = helper.make_node("If", ["x"], ["y"], then_branch=inner, else_branch=graph())
    return model(graph(nodes=[node]))


PLACES = {"sparse_initializer": sparse_initializer,
          "function_node_attribute": function_node_attribute,
          "function_default_attribute": function_default_attribute,
          "training_info": training_info, "subgraph_attribute": subgraph_attribute}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_loader_refuses_external_data_everywhere(place):
    data = PLACES[place]()
    with pytest.raises(UnsafeContentError, match="external data"):
        deserialize("m.onnx", data, "onnx")


@pytest.mark.parametrize("place", sorted(PLACES))
def test_scanner_flags_escaping_external_data_everywhere(place):
    report = scan_bytes("m.onnx", PLACES[place]())
    assert report.verdict == "dangerous", report.reasons()
    assert any(f.kind == "onnx-external" for f in report.findings)


def test_model_without_external_data_still_loads():
    got = deserialize("m.onnx", model(graph(initializer=[
        helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])])), "onnx")
    assert got.graph.initializer[0].name == "w"
