"""Layers with explicit forward and backward. `forward` caches what `backward` needs;
`backward(dL/dy)` accumulates parameter gradients into `.grad` and returns dL/dx."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from nnlab.numpy_nn import functional as F
from nnlab.numpy_nn.init import INITS


class Parameter:
    """A weight array and the gradient of the loss with respect to it. Backward passes add to
    `grad` until `zero_grad()`, as in PyTorch. zero_grad only marks the gradient as zero; the
    next `add_matmul` then writes its product straight into `grad` (0 + a b = a b): one pass over
    the memory instead of three (fill with zeros, the product into a fresh temporary, add it).
    For the MNIST MLP's first layer (784 x 512, batch 64) the gradient step went from 6.3 to
    4.1 ms in an exploratory timing (median of 15 x 100, on a loaded machine, script not kept);
    the whole epoch, `bench/numpy_vs_torch.py`: docs/RESULTS.md. Reading `grad` while it is
    marked gives zeros."""

    def __init__(self, data: np.ndarray):
        self.data = data
        self._grad = np.zeros_like(data)
        self._zero = False  # True: _grad holds stale values that stand for zeros

    @property
    def grad(self) -> np.ndarray:
        if self._zero:
            self._grad[...] = 0
            self._zero = False
        return self._grad

    @grad.setter
    def grad(self, value: np.ndarray) -> None:
        self._grad, self._zero = value, False

    def zero_grad(self) -> None:
        self._zero = True

    def add_matmul(self, a: np.ndarray, b: np.ndarray) -> None:
        """grad += a @ b, written in place when grad is zero."""
        if self._zero:
            np.matmul(a, b, out=self._grad)
            self._zero = False
        else:
            self._grad += a @ b


class Module:
    training = True
    # False: backward() skips dL/dx and returns None -- for the first layer, whose input (the
    # images) needs no gradient, as an input without requires_grad in PyTorch. For an MLP on MNIST
    # that product (batch x 512 x 784) is a quarter of the step's arithmetic.
    input_grad = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(f"{prefix}{name}.")
            elif isinstance(value, (list, tuple)):
                for i, m in enumerate(value):
                    if isinstance(m, Module):
                        yield from m.named_parameters(f"{prefix}{name}.{i}.")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        own = dict(self.named_parameters())
        if set(own) != set(state):
            raise ValueError(
                f"parameter names differ: missing {sorted(set(own) - set(state))}, "
                f"unexpected {sorted(set(state) - set(own))}"
            )
        for name, p in own.items():
            if p.data.shape != state[name].shape:
                raise ValueError(f"{name}: shape {state[name].shape} does not fit {p.data.shape}")
            p.data[...] = state[name]


class Linear(Module):
    """y = x W + b, W: (in, out). Backward: dW = x^T g, db = sum_b g, dx = g W^T."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        init: str = "xavier",
        rng: np.random.Generator | None = None,
        dtype=np.float32,
    ):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.W = Parameter(INITS[init](in_features, out_features, rng, dtype))
        self.b = Parameter(np.zeros(out_features, dtype=dtype))

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x  # (B, in)
        y = x @ self.W.data  # (B, out)
        y += self.b.data
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self.W.add_matmul(self.x.T, grad_out)  # (in, out)
        self.b.add_matmul(np.ones(len(grad_out), grad_out.dtype), grad_out)  # sum over rows
        return grad_out @ self.W.data.T if self.input_grad else None  # (B, in)


class Sigmoid(Module):
    def forward(self, x):
        self.y = F.sigmoid(x)
        return self.y

    def backward(self, grad_out):
        return F.sigmoid_backward(grad_out, self.y)


class Tanh(Module):
    def forward(self, x):
        self.y = F.tanh(x)
        return self.y

    def backward(self, grad_out):
        return F.tanh_backward(grad_out, self.y)


class ReLU(Module):
    def forward(self, x):
        self.x = x
        return F.relu(x)

    def backward(self, grad_out):
        return F.relu_backward(grad_out, self.x)


ACTIVATIONS: dict[str, type[Module]] = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}


class Sequential(Module):
    """Chain rule: forward left to right, backward right to left."""

    def __init__(self, *layers: Module):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, grad_out):
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def no_input_grad(self) -> Sequential:
        """Let the first layer skip the gradient with respect to the network's input."""
        self.layers[0].input_grad = False
        return self


class Residual(Module):
    """y = x + f(x); dL/dx = g + f'(x)^T g: the identity path carries the gradient past f."""

    def __init__(self, f: Module):
        self.f = f

    def forward(self, x):
        return x + self.f(x)

    def backward(self, grad_out):
        return grad_out + self.f.backward(grad_out)


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    init: str | None = None,
    residual: bool = False,
    seed: int = 0,
    dtype=np.float32,
) -> Sequential:
    """Linear-activation stack, sizes = [in, hidden..., out], no activation after the last layer.

    `init` defaults to He for ReLU and Xavier otherwise. With `residual`, every hidden layer whose
    input and output widths agree becomes x + act(Linear(x)); the branch weights are scaled by
    1/sqrt(number of blocks) so the sum of L branches keeps the variance of x bounded (unscaled,
    a 20-block ReLU stack with He init multiplies the variance by ~2 per block and overflows)."""
    rng = np.random.default_rng(seed)
    init = init or ("he" if activation == "relu" else "xavier")
    blocks = sum(1 for a, b in zip(sizes[:-2], sizes[1:-1]) if a == b) if residual else 0
    layers: list[Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = Linear(a, b, init, rng, dtype)
        if i == len(sizes) - 2:
            layers.append(lin)
        elif residual and a == b:
            lin.W.data *= 1 / np.sqrt(blocks)
            layers.append(Residual(Sequential(lin, ACTIVATIONS[activation]())))
        else:
            layers += [lin, ACTIVATIONS[activation]()]
    return Sequential(*layers)
