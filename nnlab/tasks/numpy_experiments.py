"""Small experiments with the NumPy engine: gradient flow with and without skip connections, and
least squares as self-supervision. Each returns numbers and a figure; the CLI puts both in a run."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from nnlab.data import load_image_set
from nnlab.numpy_nn import SGD, CrossEntropyLoss, mlp
from nnlab.numpy_nn.least_squares import closed_form, gradient_descent, sample_pairs
from nnlab.run import RunDir


def layer_gradient_norms(net, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """||dL/dW_l||_F for every Linear layer l, input side first."""
    loss = CrossEntropyLoss()
    net.zero_grad()
    loss(net(x), y)
    net.backward(loss.backward())
    return np.array(
        [np.linalg.norm(p.grad) for name, p in net.named_parameters() if name.endswith("W")]
    )


def gradient_flow(
    depth: int = 20,
    activations: tuple[str, ...] = ("sigmoid", "tanh", "relu"),
    steps: int = 50,
    lr: float = 0.05,
    batch: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-layer gradient norms of a `depth`-layer MLP (64 wide, on the 8x8 digits) with and without
    residual connections, at initialisation and after `steps` SGD steps."""
    data = load_image_set("digits", "all")
    rng = np.random.default_rng(seed)
    x = data.images.reshape(len(data), -1).astype(np.float64)
    y = data.labels
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)  # standardised: a fair start for every activation
    sizes = [64] * depth + [10]
    results: dict[str, Any] = {}
    for act in activations:
        for residual in (False, True):
            net = mlp(sizes, act, residual=residual, seed=seed, dtype=np.float64)
            opt, loss = SGD(net.parameters(), lr=lr, momentum=0.9), CrossEntropyLoss()
            idx = rng.permutation(len(x))[:batch]
            at_init = layer_gradient_norms(net, x[idx], y[idx])
            for _ in range(steps):
                idx = rng.permutation(len(x))[:batch]
                opt.zero_grad()
                loss(net(x[idx]), y[idx])
                net.backward(loss.backward())
                opt.step()
            after = layer_gradient_norms(net, x[:batch], y[:batch])
            results[f"{act}/{'residual' if residual else 'plain'}"] = {
                "init": at_init,
                "after": after,
                "final_loss": loss(net(x), y),
            }
    return results


def gradient_flow_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, r in results.items():
        act, kind = key.split("/")
        rows.append(
            {
                "activation": act,
                "network": kind,
                "first/last layer gradient norm at init": float(r["init"][0] / r["init"][-2]),
                "same after training steps": float(r["after"][0] / r["after"][-2]),
                "loss after steps": float(r["final_loss"]),
            }
        )
    return rows


def gradient_flow_figure(results: dict[str, Any], steps: int) -> Figure:
    acts = list(dict.fromkeys(k.split("/")[0] for k in results))
    fig = Figure(figsize=(4 * len(acts), 6))
    axes = fig.subplots(2, len(acts), squeeze=False)
    for j, act in enumerate(acts):
        for i, when in enumerate(("init", "after")):
            ax = axes[i, j]
            for kind, style in (("plain", "o-"), ("residual", "s-")):
                norms = results[f"{act}/{kind}"][when]
                ax.semilogy(np.arange(1, len(norms) + 1), norms, style, ms=3, label=kind)
            ax.set_title(
                f"{act}: {'at initialisation' if when == 'init' else f'after {steps} SGD steps'}",
                fontsize=9,
            )
            ax.set_xlabel("layer (input side = 1)")
            ax.set_ylabel("||dL/dW||")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7)
    fig.suptitle(
        f"gradient flow through a {len(norms)}-layer MLP, with and without skip connections"
    )
    fig.tight_layout()
    return fig


def least_squares_experiment(
    cs: tuple[float, ...] = (-0.9, -0.6, -0.3, 0.0, 0.3, 0.6, 0.9),
    ns: tuple[int, ...] = (50, 500, 5000),
    seed: int = 0,
) -> list[dict[str, Any]]:
    rows = []
    for n in ns:
        for c in cs:
            x, y = sample_pairs(c, n, np.random.default_rng([seed, n, int(100 * (c + 1))]))
            b0, b1 = closed_form(x, y)
            g0, g1 = gradient_descent(x, y)
            rows.append(
                {
                    "n": n,
                    "c": c,
                    "b1 closed form": b1,
                    "b1 gradient descent": g1,
                    "b0 closed form": b0,
                    "|b1 - c| / sd": abs(b1 - c) / np.sqrt((1 - c * c) / n + 1e-12),
                }
            )
    return rows


def least_squares_figure(rows: list[dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    cs = sorted({r["c"] for r in rows})
    ax.plot([cs[0], cs[-1]], [cs[0], cs[-1]], "k:", label="b1 = c")
    for n in sorted({r["n"] for r in rows}):
        pts = [(r["c"], r["b1 closed form"], r["b1 gradient descent"]) for r in rows if r["n"] == n]
        c, b, g = map(np.array, zip(*pts))
        ax.plot(c, b, "o", label=f"closed form, n={n}")
        ax.plot(c, g, "x", color=ax.lines[-1].get_color(), label=f"gradient descent, n={n}")
    ax.set_xlabel("c = Cov(x, y) / Var(x)")
    ax.set_ylabel("fitted slope b1")
    ax.set_title("least squares recovers b1 = c")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ---- the commands' runs --------------------------------------------------------------------------
def run_gradient_flow(
    run: RunDir, depth: int = 20, steps: int = 50, seed: int = 0
) -> list[dict[str, Any]]:
    """`nnlab numpy gradient-flow` into `run`; returns its table."""
    run.save_config({"task": "numpy-gradient-flow", "depth": depth, "steps": steps, "seed": seed})
    results = gradient_flow(depth=depth, steps=steps, seed=seed)
    rows = gradient_flow_rows(results)
    run.save_summary({"gradient_flow": rows})
    run.save_figure("gradient_flow", gradient_flow_figure(results, steps))
    return rows


def run_least_squares(run: RunDir, seed: int = 0) -> list[dict[str, Any]]:
    """`nnlab numpy least-squares` into `run`; returns its table."""
    run.save_config({"task": "numpy-least-squares", "seed": seed})
    rows = least_squares_experiment(seed=seed)
    run.save_summary({"least_squares": rows})
    run.save_figure("least_squares", least_squares_figure(rows))
    return rows


def perceptron_rows(max_epochs: int = 100) -> list[dict[str, Any]]:
    """The perceptron rule on every gate: whether it converged, in how many epochs, to what."""
    from nnlab.numpy_nn.perceptron import INPUTS, TRUTH_TABLES, Perceptron

    rows = []
    for gate, t in TRUTH_TABLES.items():
        p = Perceptron()
        converged, epochs = p.fit(INPUTS, t, max_epochs=max_epochs)
        rows.append(
            {
                "gate": gate,
                "truth table": "".join(map(str, t)),
                "converged": str(converged),
                "epochs": epochs,
                "w": f"({p.w[0]:g}, {p.w[1]:g})",
                "b": f"{p.b:g}",
                "learnt": "".join(map(str, p.predict(INPUTS))),
            }
        )
    return rows
