"""Recover a network's weights from an exported model's ONNX graph.

A model package may ship only ``model.onnx`` (no ``weights.pt``, e.g. to fit the zoo's size
budget); this gives the torch backend and fine-tuning its weights anyway. The graph holds
every convolution's (and transposed convolution's) weights, with each BatchNorm folded into
the convolution before it
(``W' = W * g / sqrt(v + e)``, ``b' = beta - m * g / sqrt(v + e)``). Export names every ONNX
node after the module scope it came from (``/network/encoder/stem/stem.0/Conv``), so each
Conv node finds its ``nn.Conv2d`` again; the BatchNorm after it is then set so that the pair
computes the folded convolution exactly:

* the convolution gets ``W'``;
* for fine-tuning, the BatchNorm is calibrated on one batch of real images, in forward
  order: its running statistics become the batch mean ``mu`` and variance ``var`` of the
  convolution's output, its weight ``sqrt(var + eps)`` and its bias ``mu + b'``, so that in
  eval mode and (for that batch) in training mode it outputs ``conv(x) + b'``;
* for inference only (the torch backend on a package without ``weights.pt``), it becomes
  the identity plus ``b'``.

BatchNorms that follow a sum cannot be folded and are exported as they are: they are read
as they are. PReLUs, which export writes as two depthwise convolutions (``DepthwisePReLU``),
get their slopes back from the ``negative`` one; 2x2 stride-2 transposed convolutions,
exported as a 1x1 conv to 4C channels + DepthToSpace (``DepthToSpaceConvTranspose``), get
their (C_in, C, 2, 2) kernel back from the 1x1 conv's; weights that export shares between
equal initialisers (through Identity nodes) are followed to their source. A network's
``packed_semantic_layer`` (ENet's full conv, exported as one MatMul with a (C_in, 4 C)
weight, taps (a, b) outer, and a last (bias) row when it has a bias,
``layers.packed_transposed_conv``) gets its kernel and bias back from that MatMul.

Layers the graph does not hold under a matching name and shape (a changed head) keep their
fresh initialisation, as ``package.load_matching_tensors`` does for state dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np


class OnnxWeightsError(RuntimeError):
    """The ONNX file cannot give the network its weights (unreadable, other architecture)."""


@dataclass
class RecoveredWeights:
    """What ``load_weights_from_onnx`` did.

    Attributes:
        convolutions: Convolutions given their ONNX weights.
        calibrated_norms: BatchNorms set to reproduce the folded convolution before them.
        unmatched_nodes: ONNX Conv / BatchNormalization node names with no module of that
            name and shape.
        fresh_tensors: Network tensors left at their initialisation.
    """

    convolutions: int
    calibrated_norms: int
    unmatched_nodes: List[str]
    fresh_tensors: int


def module_path_from_node_name(node_name: str, root: str = 'network') -> str:
    """Qualified module name of an exported node: ``/network/a/b/b.0/c/c.1.2/Conv`` ->
    ``a.b.0.c.1.2`` (a scope that extends the one before it replaces it)."""
    scopes = node_name.strip('/').split('/')[:-1]
    if scopes and scopes[0] == root:
        scopes = scopes[1:]
    path: List[str] = []
    for scope in scopes:
        if path and scope.startswith(path[-1] + '.'):
            path[-1] = scope
        else:
            path.append(scope)
    return '.'.join(path)


def _following_norm(modules: Dict[str, object], conv_path: str):
    """The ``nn.BatchNorm2d`` that runs right after a convolution: its next sibling in an
    ``nn.Sequential``, or, for the last child of a nested one, the next sibling of that
    container (ENet's 5x1 + 1x5 pair is followed by one BatchNorm)."""
    import torch
    path = conv_path
    while True:
        parent, _, index = path.rpartition('.')
        if not index.isdigit():
            return None, ''
        following = f'{parent}.{int(index) + 1}' if parent else str(int(index) + 1)
        module = modules.get(following)
        if module is not None:
            return (module, following) if isinstance(module, torch.nn.BatchNorm2d) else (None, '')
        if not isinstance(modules.get(parent), torch.nn.Sequential):
            return None, ''
        path = parent  # the last child of a nested Sequential: look after the container


def _constant_tensors(graph) -> Dict[str, object]:
    """Name -> TensorProto of every constant: initializers, Constant nodes, and the Identity
    nodes by which export shares one initializer among equal weights."""
    tensors = {init.name: init for init in graph.initializer}
    for node in graph.node:  # nodes are topologically sorted
        if node.op_type == 'Constant':
            for attribute in node.attribute:
                if attribute.name == 'value':
                    tensors[node.output[0]] = attribute.t
        elif node.op_type == 'Identity' and node.input[0] in tensors:
            tensors[node.output[0]] = tensors[node.input[0]]
    return tensors


def _exported_prelu(modules: Dict[str, object], conv_path: str):
    """(the ``nn.PReLU``, 'negative' or 'positive') when ``conv_path`` is one of the two
    depthwise convolutions ``models.layers.DepthwisePReLU`` exports a PReLU as."""
    import torch
    parent, _, branch = conv_path.rpartition('.')
    module = modules.get(parent)
    if branch in ('negative', 'positive') and isinstance(module, torch.nn.PReLU):
        return module, branch
    return None, ''


def _exported_transpose(modules: Dict[str, object], conv_path: str, weight):
    """(path, the ``nn.ConvTranspose2d``, its (C_in, C_out, 2, 2) weight) when ``conv_path``
    is the 1x1 conv ``models.layers.DepthToSpaceConvTranspose`` exports it as (weight
    (4 C_out, C_in, 1, 1), channel 4c + 2a + b = tap (a, b) of output c); else None."""
    from ..models.layers import is_depth_to_space_transpose
    parent, _, name = conv_path.rpartition('.')
    module = modules.get(parent)
    if name != 'conv' or weight is None or not is_depth_to_space_transpose(module):
        return None
    in_channels, out_channels = module.in_channels, module.out_channels
    if tuple(weight.shape) != (4 * out_channels, in_channels, 1, 1):
        return None
    restored = weight.reshape(out_channels, 2, 2, in_channels).transpose(3, 0, 1, 2)
    return parent, module, np.ascontiguousarray(restored)


def _load_packed_layer(network, graph, initializers, touched) -> int:
    """Give ``network.packed_semantic_layer`` its weights from the MatMul that
    ``models.layers.packed_transposed_conv`` exports it as; returns 1 if found, else 0."""
    from onnx import numpy_helper
    import torch
    name = getattr(network, 'packed_semantic_layer', None)
    module = getattr(network, name, None) if name else None
    if not isinstance(module, torch.nn.ConvTranspose2d):
        return 0
    in_channels, out_channels = module.in_channels, module.out_channels
    rows = in_channels + (module.bias is not None)
    for node in graph.node:
        weight = initializers.get(node.input[1]) if node.op_type == 'MatMul' else None
        if weight is None or tuple(weight.dims) != (rows, 4 * out_channels) \
                or module_path_from_node_name(node.name) != '':
            continue
        array = numpy_helper.to_array(weight)
        kernel = array[:in_channels].reshape(in_channels, 2, 2, out_channels)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(kernel.transpose(0, 3, 1, 2).copy()))
            if module.bias is not None:
                module.bias.copy_(torch.from_numpy(array[in_channels, :out_channels].copy()))
        touched.update(f'{name}.{tensor}' for tensor, _ in module.named_parameters())
        return 1
    return 0


def load_weights_from_onnx(network, onnx_path: str, calibration_images=None,
                           min_fraction: float = 0.5) -> RecoveredWeights:
    """Load the convolution weights of ``onnx_path`` into ``network``, undoing BatchNorm folding.

    Args:
        network: The torch network of the same architecture (any head may differ).
        onnx_path: An exported graph whose node names carry the module scopes.
        calibration_images: float (N, 3, H, W) tensor, normalised as the network expects,
            from the data to train on (N >= 2; 8 or more is better), to fine-tune from the
            weights; or None to run them in eval mode only: each BatchNorm is then set to
            the identity plus the folded bias (mean 0, variance 1 - eps), which is exact for
            inference but would be rescaled by batch statistics in training.
        min_fraction: At least this fraction of the network's convolutions must be found,
            else it is another architecture.

    Returns:
        A summary; ``network`` is left in training mode.

    Raises:
        OnnxWeightsError: Unreadable file, or too few convolutions match.
    """
    import onnx
    from onnx import numpy_helper
    import torch

    try:
        model = onnx.load(onnx_path)
    except Exception as error:  # onnx raises DecodeError, OSError, ...
        raise OnnxWeightsError(f'{onnx_path} is not a readable ONNX file: '
                               f'{type(error).__name__}: {error}') from None
    initializers = _constant_tensors(model.graph)
    modules = dict(network.named_modules())
    convolution_types = {'Conv': torch.nn.Conv2d, 'ConvTranspose': torch.nn.ConvTranspose2d}
    convolutions = [m for m in modules.values()
                    if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    folded_bias: Dict[str, torch.Tensor] = {}
    # BatchNorms exported as they are (after a sum, where nothing can be folded into them).
    unfolded_norms = {module_path_from_node_name(node.name) for node in model.graph.node
                      if node.op_type == 'BatchNormalization'}
    loaded, unmatched = 0, []
    touched = set()
    with torch.no_grad():
        for node in model.graph.node:
            if node.op_type not in convolution_types or len(node.input) < 2:
                continue
            path = module_path_from_node_name(node.name)
            module = modules.get(path)
            weight = initializers.get(node.input[1])
            prelu, branch = _exported_prelu(modules, path)
            if prelu is not None and weight is not None \
                    and tuple(weight.dims) == (prelu.num_parameters, 1, 1, 1):
                if branch == 'negative':  # its weights are the slopes; 'positive' = 1 - them
                    prelu.weight.copy_(torch.from_numpy(
                        numpy_helper.to_array(weight).reshape(-1).copy()))
                    touched.add(f'{path.rpartition(".")[0]}.weight')
                continue
            bias = initializers.get(node.input[2]) if len(node.input) > 2 else None
            op_type = node.op_type
            weight_array = numpy_helper.to_array(weight) if weight is not None else None
            bias_array = numpy_helper.to_array(bias) if bias is not None else None
            transposed = _exported_transpose(modules, path, weight_array)
            if transposed is not None:  # DepthToSpaceConvTranspose's 1x1 conv
                path, module, weight_array, bias_array = transposed + (
                    None if bias_array is None else bias_array[::4],)
                op_type = 'ConvTranspose'
            if (not isinstance(module, convolution_types[op_type]) or weight is None
                    or tuple(module.weight.shape) != tuple(weight_array.shape)):
                unmatched.append(node.name)
                continue
            if bias_array is None:
                bias_array = np.zeros(module.out_channels, dtype=np.float32)
            module.weight.copy_(torch.from_numpy(weight_array.copy()))
            touched.add(f'{path}.weight')
            if module.bias is not None:
                module.bias.copy_(torch.from_numpy(bias_array.copy()))
                touched.add(f'{path}.bias')
            else:
                norm, norm_path = _following_norm(modules, path)
                if norm is None or norm_path in unfolded_norms:
                    if bias is not None:  # a folded bias with nowhere to go
                        unmatched.append(node.name)
                        continue
                else:  # folded (a zero folded bias may be left out of the graph)
                    folded_bias[norm_path] = torch.from_numpy(bias_array.copy())
                    touched.update(f'{norm_path}.{name}' for name in (
                        'weight', 'bias', 'running_mean', 'running_var'))
            loaded += 1
        loaded += _load_packed_layer(network, model.graph, initializers, touched)
        for node in model.graph.node:  # BatchNorms that could not be folded (after a sum)
            if node.op_type != 'BatchNormalization':
                continue
            path = module_path_from_node_name(node.name)
            module = modules.get(path)
            arrays = [initializers.get(name) for name in node.input[1:5]]
            if not isinstance(module, torch.nn.BatchNorm2d) or any(a is None for a in arrays):
                unmatched.append(node.name)
                continue
            for name, array in zip(('weight', 'bias', 'running_mean', 'running_var'), arrays):
                getattr(module, name).copy_(torch.from_numpy(numpy_helper.to_array(array).copy()))
                touched.add(f'{path}.{name}')
    if loaded < min_fraction * len(convolutions):
        raise OnnxWeightsError(
            f"{onnx_path} holds weights for only {loaded} of the network's "
            f'{len(convolutions)} convolutions: another architecture, not a changed head')
    if calibration_images is None:
        _norms_to_bias(modules, folded_bias)
    else:
        _calibrate_norms(network, modules, folded_bias, calibration_images)
    fresh = sum(1 for name in network.state_dict()
                if name not in touched and not name.endswith('num_batches_tracked'))
    return RecoveredWeights(convolutions=loaded, calibrated_norms=len(folded_bias),
                            unmatched_nodes=unmatched, fresh_tensors=fresh)


def _norms_to_bias(modules, folded_bias) -> None:
    """Set each listed BatchNorm to output its input plus the folded bias in eval mode."""
    import torch
    with torch.no_grad():
        for path, bias in folded_bias.items():
            norm = modules[path]
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)  # (x - 0) / sqrt(1 - eps + eps) = x
            norm.weight.fill_(1.0)
            norm.bias.copy_(bias)


def _calibrate_norms(network, modules, folded_bias, calibration_images) -> None:
    """One forward pass that sets each listed BatchNorm, in order, to output input + bias."""
    import torch
    if not folded_bias:
        return
    if calibration_images.shape[0] < 2:
        raise ValueError('calibration needs a batch of at least 2 images')
    handles = []

    def make_hook(norm, bias):
        def hook(module, inputs):
            features = inputs[0].detach().float()
            mean = features.mean(dim=(0, 2, 3))
            variance = features.var(dim=(0, 2, 3), unbiased=False)
            module.running_mean.copy_(mean)
            module.running_var.copy_(variance)
            module.weight.copy_(torch.sqrt(variance + module.eps))
            module.bias.copy_(mean + bias.to(mean))
        return hook

    for path, bias in folded_bias.items():
        handles.append(modules[path].register_forward_pre_hook(make_hook(modules[path], bias)))
    was_training = network.training
    network.eval()  # each norm uses the statistics its hook just set: output = conv + bias
    try:
        with torch.no_grad():
            network(calibration_images)
    finally:
        for handle in handles:
            handle.remove()
        network.train(was_training)


def describe(result: RecoveredWeights, onnx_path: str) -> str:
    """One log line about a recovery."""
    text = (f'recovered {result.convolutions} convolutions ({result.calibrated_norms} '
            f'BatchNorms calibrated) from {onnx_path}; {result.fresh_tensors} tensors keep '
            'their initialisation')
    if result.unmatched_nodes:
        text += f', {len(result.unmatched_nodes)} ONNX convolutions matched nothing'
    return text
