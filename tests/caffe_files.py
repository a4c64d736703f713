"""Caffe model files written without Caffe, for tests: a ``.prototxt`` and a ``.caffemodel`` with
its own random weights, in the layout of a published model, that ``cv2.dnn.readNetFromCaffe``
loads.

A ``NetDef`` is a network's layers in order: name, Caffe type, bottoms, tops, the layer's
``*_param`` block as prototxt text, and the shapes of its parameter blobs. ``NetDef.prototxt()``
writes the deploy prototxt; ``write_caffemodel`` writes the binary ``NetParameter`` with one
``BlobProto`` of random float32 per parameter blob (``random_blobs`` says how they are drawn).
``resnet_ssd_net()`` (OpenCV's res10 300x300 SSD face detector) and ``vgg_face_net()`` (VGG-Face,
Parkhi et al. 2015) build the two published architectures; the weights are random, only names,
topology and shapes are the real ones.

The binary format is protobuf, written here by hand (a few varint and length-delimited fields),
so nothing but NumPy is needed. Field numbers, from BVLC Caffe's ``src/caffe/proto/caffe.proto``:

- ``NetParameter``: name = 1, layers = 2 (``V1LayerParameter``, the pre-2015 format),
  layer = 100 (``LayerParameter``).
- ``LayerParameter``: name = 1, type = 2 (a string such as "Convolution"), bottom = 3, top = 4,
  blobs = 7.
- ``V1LayerParameter``: bottom = 2, top = 3, name = 4, type = 5 (enum ``LayerType``), blobs = 6.
- ``BlobProto``: data = 5 (packed float), shape = 7 (``BlobShape``: dim = 1, packed int64); the
  pre-2015 blobs give num = 1, channels = 2, height = 3, width = 4 (int32) instead of a shape.

A 500 MB blob (VGG-Face's fc6 is 25088 x 4096 floats) is streamed to the file from the NumPy
array, never copied into one ``bytes``.
"""
from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Sequence

import numpy as np

# -- protobuf wire format ------------------------------------------------------------------------

_VARINT, _LENGTH_DELIMITED = 0, 2

#: V1LayerParameter.LayerType values (caffe.proto) of the layer types the V1 nets here use.
V1_TYPES = {"Convolution": 4, "Dropout": 6, "InnerProduct": 14, "Pooling": 17, "ReLU": 18, "Softmax": 20}
#: The V1 prototxt spelling of those types.
V1_NAMES = {"Convolution": "CONVOLUTION", "Dropout": "DROPOUT", "InnerProduct": "INNER_PRODUCT",
            "Pooling": "POOLING", "ReLU": "RELU", "Softmax": "SOFTMAX"}


def varint(value: int) -> bytes:
    """Base-128 varint; negative values as protobuf writes int32/int64 (two's complement, 10 bytes)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def key(field_number: int, wire_type: int) -> bytes:
    return varint(field_number << 3 | wire_type)


def varint_field(field_number: int, value: int) -> bytes:
    return key(field_number, _VARINT) + varint(value)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    """A string, bytes, sub-message or packed repeated field."""
    return key(field_number, _LENGTH_DELIMITED) + varint(len(payload)) + payload


def string_field(field_number: int, text: str) -> bytes:
    return length_delimited(field_number, text.encode())


def packed_varints(field_number: int, values: Iterable[int]) -> bytes:
    return length_delimited(field_number, b"".join(varint(v) for v in values))


# -- network definitions -------------------------------------------------------------------------

@dataclass
class LayerDef:
    """One layer: ``params`` is its ``*_param`` block(s) as prototxt text; ``blob_shapes`` the
    shapes of the parameter blobs a trained caffemodel holds for it, in Caffe's order."""

    name: str
    type: str
    bottom: tuple[str, ...]
    top: tuple[str, ...]
    params: str = ""
    blob_shapes: tuple[tuple[int, ...], ...] = ()
    # how random_blobs draws this layer's blobs when the generic rule will not do
    hints: dict[str, float] = field(default_factory=dict)


@dataclass
class NetDef:
    """A network: its input and its layers. ``legacy`` writes the pre-2015 format (V1 ``layers``
    with enum types, ``input_dim`` and 4-D num/channels/height/width blobs), as the original
    VGG-Face release was written; otherwise ``layer`` with string types and ``BlobShape``."""

    name: str
    input_name: str
    input_shape: tuple[int, ...]
    layers: list[LayerDef]
    legacy: bool = False

    def prototxt(self) -> str:
        lines = [f'name: "{self.name}"', f'input: "{self.input_name}"']
        if self.legacy:
            lines += [f"input_dim: {d}" for d in self.input_shape]
        else:
            lines.append("input_shape {\n" + "".join(f"  dim: {d}\n" for d in self.input_shape) + "}")
        for layer in self.layers:
            body = [f'  name: "{layer.name}"',
                    f"  type: {V1_NAMES[layer.type]}" if self.legacy else f'  type: "{layer.type}"']
            body += [f'  bottom: "{b}"' for b in layer.bottom]
            body += [f'  top: "{t}"' for t in layer.top]
            if layer.params:
                body += ["  " + line for line in layer.params.strip().splitlines()]
            lines.append(("layers" if self.legacy else "layer") + " {\n" + "\n".join(body) + "\n}")
        return "\n".join(lines) + "\n"

    def parameter_count(self) -> int:
        return sum(int(np.prod(s)) for layer in self.layers for s in layer.blob_shapes)


# -- the caffemodel ------------------------------------------------------------------------------

def random_blobs(layer: LayerDef, rng: np.random.Generator) -> list[np.ndarray]:
    """Random float32 parameters of the layer's shapes that keep activations finite and of a
    sane size through a deep net: He-scaled weights, small biases, batch-norm variances near 1
    (``hints["variance"]`` scales them: a net's first batch norm sees 0-255 pixels),
    a unit batch-norm scale factor, and SSD's Normalize scale at its usual initial 20."""
    shapes = layer.blob_shapes
    if layer.type == "BatchNorm":  # mean, variance, moving-average factor (the stats are divided by it)
        channels = shapes[0][0]
        variance = layer.hints.get("variance", 1.0)
        return [(rng.standard_normal(channels) * 0.1 * np.sqrt(variance)).astype(np.float32),
                (rng.uniform(0.5, 1.5, channels) * variance).astype(np.float32),
                np.ones(1, np.float32)]
    if layer.type == "Scale":  # gamma, beta
        return [rng.uniform(0.5, 1.5, shapes[0]).astype(np.float32),
                (rng.standard_normal(shapes[1]) * 0.1).astype(np.float32)]
    if layer.type == "Normalize":
        return [np.full(shapes[0], 20.0, np.float32)]
    blobs = []
    for i, shape in enumerate(shapes):
        if i == 0:  # weights: (out, in, kh, kw) or (out, in)
            fan_in = int(np.prod(shape[1:]))
            gain = layer.hints.get("gain", 1.0)
            weights = rng.standard_normal(shape, dtype=np.float32)
            weights *= np.float32(gain * np.sqrt(2.0 / fan_in))
            blobs.append(weights)
        else:
            blobs.append((rng.standard_normal(shape) * 0.01).astype(np.float32))
    return blobs


def write_caffemodel(target: str | os.PathLike[str] | BinaryIO, net: NetDef, seed: int = 0) -> int:
    """Write ``net`` with ``random_blobs`` weights as a binary caffemodel to a path or a binary
    stream (a zip member opened for writing, say); returns the bytes written. Layers without
    parameters are written too (name, type, bottoms, tops), as Caffe does."""
    if not hasattr(target, "write"):
        with open(target, "wb") as out:  # type: ignore[arg-type]
            return write_caffemodel(out, net, seed)
    out = target  # type: ignore[assignment]
    rng = np.random.default_rng(seed)
    written = out.write(string_field(1, net.name))
    for layer in net.layers:
        blobs = random_blobs(layer, rng) if layer.blob_shapes else []
        written += _write_layer(out, layer, blobs, net.legacy)
    return written


def _write_layer(out: BinaryIO, layer: LayerDef, blobs: Sequence[np.ndarray], legacy: bool) -> int:
    if legacy:
        head = (b"".join(string_field(2, b) for b in layer.bottom)
                + b"".join(string_field(3, t) for t in layer.top)
                + string_field(4, layer.name) + varint_field(5, V1_TYPES[layer.type]))
        layer_field, blob_field = 2, 6
    else:
        head = (string_field(1, layer.name) + string_field(2, layer.type)
                + b"".join(string_field(3, b) for b in layer.bottom)
                + b"".join(string_field(4, t) for t in layer.top))
        layer_field, blob_field = 100, 7
    blob_heads = [_blob_head(blob, legacy) for blob in blobs]
    blob_sizes = [len(h) + blob.nbytes for h, blob in zip(blob_heads, blobs)]
    body = len(head) + sum(len(key(blob_field, _LENGTH_DELIMITED)) + len(varint(n)) + n for n in blob_sizes)
    start = key(layer_field, _LENGTH_DELIMITED) + varint(body)
    out.write(start + head)
    for blob, blob_head, size in zip(blobs, blob_heads, blob_sizes):
        out.write(key(blob_field, _LENGTH_DELIMITED) + varint(size) + blob_head)
        out.write(np.ascontiguousarray(blob, dtype="<f4").data)  # no copy of the big blobs
    return len(start) + body


def _blob_head(blob: np.ndarray, legacy: bool) -> bytes:
    """A BlobProto up to its packed data's bytes (the shape, then the data field's key and length)."""
    if legacy:  # num, channels, height, width: shapes right-aligned into 4 dims, as old Caffe did
        dims = (1,) * (4 - blob.ndim) + tuple(blob.shape)
        shape = b"".join(varint_field(f, d) for f, d in zip((1, 2, 3, 4), dims))
    else:
        shape = length_delimited(7, packed_varints(1, blob.shape))
    return shape + key(5, _LENGTH_DELIMITED) + varint(blob.nbytes)


# -- the published architectures -----------------------------------------------------------------

class _Builder:
    """Appends layers while tracking each blob's channel count, so parameter shapes follow."""

    def __init__(self, input_name: str, channels: int) -> None:
        self.layers: list[LayerDef] = []
        self.channels = {input_name: channels}

    def add(self, name: str, type: str, bottom: str | Sequence[str], top: str, params: str = "",
            shapes: tuple[tuple[int, ...], ...] = (), channels: int | None = None,
            **hints: float) -> str:
        bottoms = (bottom,) if isinstance(bottom, str) else tuple(bottom)
        self.layers.append(LayerDef(name, type, bottoms, (top,), params, shapes, dict(hints)))
        self.channels[top] = self.channels[bottoms[0]] if channels is None else channels
        return top

    def conv(self, name: str, bottom: str, out: int, kernel: int, stride: int = 1, pad: int = 0,
             dilation: int = 1, bias: bool = True, top: str | None = None, **hints: float) -> str:
        params = [f"num_output: {out}"] + ([] if bias else ["bias_term: false"])
        params += [f"pad: {pad}", f"kernel_size: {kernel}", f"stride: {stride}"]
        params += [f"dilation: {dilation}"] if dilation != 1 else []
        shapes = ((out, self.channels[bottom], kernel, kernel),) + (((out,),) if bias else ())
        return self.add(name, "Convolution", bottom, top or name, _block("convolution_param", params),
                        shapes, out, **hints)

    def bn_scale_relu(self, bn: str, scale: str, relu: str | None, bottom: str, top: str,
                      relu_top: str | None = None, **hints: float) -> str:
        """BatchNorm (into ``top``), an in-place Scale with bias, and optionally a ReLU."""
        c = self.channels[bottom]
        self.add(bn, "BatchNorm", bottom, top, "", ((c,), (c,), (1,)), **hints)
        self.add(scale, "Scale", top, top, _block("scale_param", ["bias_term: true"]), ((c,), (c,)))
        return self.add(relu, "ReLU", top, relu_top or top) if relu else top


def _block(name: str, lines: Sequence[str]) -> str:
    return f"{name} {{\n" + "".join(f"  {line}\n" for line in lines) + "}"


#: The SSD heads of res10_300x300_ssd: (source blob, head name, min size, max size, aspect
#: ratios besides 1, step). Priors per cell: 2 + 2 per extra aspect ratio (each flipped).
SSD_HEADS = (
    ("conv4_3_norm", "conv4_3_norm", 30, 60, (2,), 8),
    ("fc7", "fc7", 60, 111, (2, 3), 16),
    ("conv6_2_h", "conv6_2", 111, 162, (2, 3), 32),
    ("conv7_2_h", "conv7_2", 162, 213, (2, 3), 64),
    ("conv8_2_h", "conv8_2", 213, 264, (2,), 100),
    ("conv9_2_h", "conv9_2", 264, 315, (2,), 300),
)


def resnet_ssd_net() -> NetDef:
    """OpenCV's face detector (``res10_300x300_ssd_iter_140000``, the deploy.prototxt in OpenCV's
    samples/dnn/face_detector, published by faceswap as resnet_ssd_v1): a 10-layer ResNet trunk
    with batch-norm and scale layers, SSD extra layers conv6-conv9, six multibox heads with prior
    boxes, and a DetectionOutput layer giving [1, 1, N, 7] for two classes (background, face)."""
    b = _Builder("data", 3)
    # the real model normalises raw 0-255 pixels with its first batch norm
    b.bn_scale_relu("data_bn", "data_scale", None, "data", "data_bn", variance=60.0 ** 2)
    b.conv("conv1_h", "data_bn", 32, 7, stride=2, pad=3)
    b.bn_scale_relu("conv1_bn_h", "conv1_scale_h", "conv1_relu", "conv1_h", "conv1_h")
    b.add("conv1_pool", "Pooling", "conv1_h", "conv1_pool", _block("pooling_param", ["kernel_size: 3", "stride: 2"]))
    # layer_64_1: identity shortcut
    b.conv("layer_64_1_conv1_h", "conv1_pool", 32, 3, pad=1, bias=False)
    b.bn_scale_relu("layer_64_1_bn2_h", "layer_64_1_scale2_h", "layer_64_1_relu2", "layer_64_1_conv1_h",
                    "layer_64_1_conv1_h")
    b.conv("layer_64_1_conv2_h", "layer_64_1_conv1_h", 32, 3, pad=1, bias=False)
    b.add("layer_64_1_sum", "Eltwise", ("layer_64_1_conv2_h", "conv1_pool"), "layer_64_1_sum")
    # layer_128_1, layer_256_1: pre-activation blocks with 1x1 projection shortcuts, stride 2
    b.bn_scale_relu("layer_128_1_bn1_h", "layer_128_1_scale1_h", "layer_128_1_relu1", "layer_64_1_sum",
                    "layer_128_1_bn1_h")
    b.conv("layer_128_1_conv1_h", "layer_128_1_bn1_h", 128, 3, stride=2, pad=1, bias=False)
    b.bn_scale_relu("layer_128_1_bn2", "layer_128_1_scale2", "layer_128_1_relu2", "layer_128_1_conv1_h",
                    "layer_128_1_conv1_h")
    b.conv("layer_128_1_conv2", "layer_128_1_conv1_h", 128, 3, pad=1, bias=False)
    b.conv("layer_128_1_conv_expand_h", "layer_128_1_bn1_h", 128, 1, stride=2, bias=False)
    b.add("layer_128_1_sum", "Eltwise", ("layer_128_1_conv2", "layer_128_1_conv_expand_h"), "layer_128_1_sum")
    b.bn_scale_relu("layer_256_1_bn1", "layer_256_1_scale1", "layer_256_1_relu1", "layer_128_1_sum",
                    "layer_256_1_bn1")
    b.conv("layer_256_1_conv1", "layer_256_1_bn1", 256, 3, stride=2, pad=1, bias=False)
    b.bn_scale_relu("layer_256_1_bn2", "layer_256_1_scale2", "layer_256_1_relu2", "layer_256_1_conv1",
                    "layer_256_1_conv1")
    b.conv("layer_256_1_conv2", "layer_256_1_conv1", 256, 3, pad=1, bias=False)
    b.conv("layer_256_1_conv_expand", "layer_256_1_bn1", 256, 1, stride=2, bias=False)
    b.add("layer_256_1_sum", "Eltwise", ("layer_256_1_conv2", "layer_256_1_conv_expand"), "layer_256_1_sum")
    # layer_512_1: stride 1, the second conv dilated
    b.bn_scale_relu("layer_512_1_bn1", "layer_512_1_scale1", "layer_512_1_relu1", "layer_256_1_sum",
                    "layer_512_1_bn1")
    b.conv("layer_512_1_conv1_h", "layer_512_1_bn1", 128, 3, pad=1, bias=False)
    b.bn_scale_relu("layer_512_1_bn2_h", "layer_512_1_scale2_h", "layer_512_1_relu2", "layer_512_1_conv1_h",
                    "layer_512_1_conv1_h")
    b.conv("layer_512_1_conv2_h", "layer_512_1_conv1_h", 256, 3, pad=2, dilation=2, bias=False)
    b.conv("layer_512_1_conv_expand_h", "layer_512_1_bn1", 256, 1, bias=False)
    b.add("layer_512_1_sum", "Eltwise", ("layer_512_1_conv2_h", "layer_512_1_conv_expand_h"), "layer_512_1_sum")
    b.bn_scale_relu("last_bn_h", "last_scale_h", "last_relu", "layer_512_1_sum", "layer_512_1_sum",
                    relu_top="fc7")
    # SSD extra feature layers
    previous = "fc7"
    for stage, (mid, out, stride) in zip((6, 7, 8, 9), ((128, 256, 2), (64, 128, 2), (64, 128, 1), (64, 128, 1))):
        first = b.conv(f"conv{stage}_1_h", previous, mid, 1)
        b.add(f"conv{stage}_1_relu", "ReLU", first, first)
        second = b.conv(f"conv{stage}_2_h", first, out, 3, stride=stride, pad=1)
        previous = b.add(f"conv{stage}_2_relu", "ReLU", second, second)
    c = b.channels["layer_256_1_bn1"]
    b.add("conv4_3_norm", "Normalize", "layer_256_1_bn1", "conv4_3_norm",
          _block("norm_param", ["across_spatial: false", "scale_filler {\n    type: \"constant\"\n    value: 20\n  }",
                                "channel_shared: false"]), ((c,),))
    # multibox heads
    flats: dict[str, list[str]] = {"loc": [], "conf": [], "priorbox": []}
    for source, head, min_size, max_size, ratios, step in SSD_HEADS:
        priors = 2 + 2 * len(ratios)
        for kind, per_prior in (("loc", 4), ("conf", 2)):
            conv = b.conv(f"{head}_mbox_{kind}", source, priors * per_prior, 3, pad=1, gain=0.1)
            perm = b.add(f"{conv}_perm", "Permute", conv, f"{conv}_perm",
                         _block("permute_param", ["order: 0", "order: 2", "order: 3", "order: 1"]))
            flats[kind].append(b.add(f"{conv}_flat", "Flatten", perm, f"{conv}_flat",
                                     _block("flatten_param", ["axis: 1"])))
        prior_params = [f"min_size: {min_size}.0", f"max_size: {max_size}.0"]
        prior_params += [f"aspect_ratio: {r}" for r in ratios]
        prior_params += ["flip: true", "clip: false"] + [f"variance: {v}" for v in (0.1, 0.1, 0.2, 0.2)]
        prior_params += [f"step: {step}", "offset: 0.5"]
        flats["priorbox"].append(b.add(f"{head}_mbox_priorbox", "PriorBox", (source, "data"),
                                       f"{head}_mbox_priorbox", _block("prior_box_param", prior_params)))
    for kind, axis in (("loc", 1), ("conf", 1), ("priorbox", 2)):
        b.add(f"mbox_{kind}", "Concat", flats[kind], f"mbox_{kind}", _block("concat_param", [f"axis: {axis}"]))
    b.add("mbox_conf_reshape", "Reshape", "mbox_conf", "mbox_conf_reshape",
          _block("reshape_param", ["shape {\n    dim: 0\n    dim: -1\n    dim: 2\n  }"]))
    b.add("mbox_conf_softmax", "Softmax", "mbox_conf_reshape", "mbox_conf_softmax",
          _block("softmax_param", ["axis: 2"]))
    b.add("mbox_conf_flatten", "Flatten", "mbox_conf_softmax", "mbox_conf_flatten",
          _block("flatten_param", ["axis: 1"]))
    b.add("detection_out", "DetectionOutput", ("mbox_loc", "mbox_conf_flatten", "mbox_priorbox"), "detection_out",
          "include {\n  phase: TEST\n}\n" + _block("detection_output_param", [
              "num_classes: 2", "share_location: true", "background_label_id: 0",
              "nms_param {\n    nms_threshold: 0.45\n    top_k: 400\n  }", "code_type: CENTER_SIZE",
              "keep_top_k: 200", "confidence_threshold: 0.01"]))
    return NetDef("res10_300x300_ssd", "data", (1, 3, 300, 300), b.layers)


def vgg_face_net() -> NetDef:
    """VGG-Face (VGG_FACE_16_layers, 2015): VGG-16 (thirteen 3x3 convolutions with ReLU in five
    blocks, each ending in 2x2 max pooling), fc6 and fc7 (4096, ReLU, dropout), fc8 (2622
    identities) and a softmax, in the V1 format of the original release."""
    b = _Builder("data", 3)
    bottom = "data"
    for block, (convs, width) in enumerate(((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), start=1):
        for i in range(1, convs + 1):
            bottom = b.conv(f"conv{block}_{i}", bottom, width, 3, pad=1)
            b.add(f"relu{block}_{i}", "ReLU", bottom, bottom)
        bottom = b.add(f"pool{block}", "Pooling", bottom, f"pool{block}",
                       _block("pooling_param", ["pool: MAX", "kernel_size: 2", "stride: 2"]))
    inputs = b.channels[bottom] * 7 * 7  # 224 / 2**5 = 7
    for name, out in (("fc6", 4096), ("fc7", 4096), ("fc8", 2622)):
        b.add(name, "InnerProduct", bottom, name, _block("inner_product_param", [f"num_output: {out}"]),
              ((out, inputs), (out,)), out)
        bottom, inputs = name, out
        if name != "fc8":
            index = name[2]
            b.add(f"relu{index}", "ReLU", name, name)
            b.add(f"drop{index}", "Dropout", name, name, _block("dropout_param", ["dropout_ratio: 0.5"]))
    b.add("prob", "Softmax", "fc8", "prob")
    return NetDef("VGG_FACE_16_layers", "data", (1, 3, 224, 224), b.layers, legacy=True)


def write_model(folder: str | os.PathLike[str], net: NetDef, stem: str, seed: int = 0) -> dict[str, str]:
    """``<stem>.caffemodel`` and ``<stem>.prototxt`` in ``folder``: member name -> path."""
    folder = os.fspath(folder)
    prototxt, caffemodel = os.path.join(folder, f"{stem}.prototxt"), os.path.join(folder, f"{stem}.caffemodel")
    with open(prototxt, "w") as f:
        f.write(net.prototxt())
    write_caffemodel(caffemodel, net, seed)
    return {f"{stem}.caffemodel": caffemodel, f"{stem}.prototxt": prototxt}


def model_zip(net: NetDef, members: dict[str, str], seed: int = 0) -> bytes:
    """A release zip as faceswap publishes one, built in memory: ``members`` maps each member
    name to "caffemodel" or "prototxt". Stored, not deflated: random floats do not compress,
    and deflating half a gigabyte would take most of a test's time."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zipped:
        for name, kind in members.items():
            if kind == "prototxt":
                zipped.writestr(name, net.prototxt())
            elif kind == "caffemodel":
                with zipped.open(name, "w", force_zip64=True) as member:
                    write_caffemodel(member, net, seed)
            else:
                raise ValueError(f"member {name}: kind {kind!r} is neither 'caffemodel' nor 'prototxt'")
    return buffer.getvalue()
