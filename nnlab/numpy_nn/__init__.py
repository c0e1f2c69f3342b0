"""The from-scratch engine: NumPy only. Every layer has its forward and its hand-derived backward
side by side; names mirror PyTorch so that the same test drives both (tests/test_numpy_*.py check
every piece against finite differences and torch.autograd)."""

from nnlab.numpy_nn import functional
from nnlab.numpy_nn.layers import (
    Linear,
    Module,
    Parameter,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Tanh,
    mlp,
)
from nnlab.numpy_nn.losses import BCELoss, CrossEntropyLoss, MSELoss, NLLLoss, SSELoss
from nnlab.numpy_nn.optim import SGD

__all__ = [
    "BCELoss",
    "CrossEntropyLoss",
    "Linear",
    "MSELoss",
    "Module",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Residual",
    "SGD",
    "SSELoss",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "functional",
    "mlp",
]
