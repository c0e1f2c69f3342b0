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


# Signal: an AR(1) process x_t = a x_{t-1} + e_t with Var x = 1; observation y_t = x_t + n_t with
# white noise of variance s2. The causal FIR filter of p taps estimating x_t from y_{t-p+1..t}
# with the least mean squared error (LMMSE, the Wiener filter) solves R w = r, where
# R[j, k] = E[y_{t-j} y_{t-k}] = a^|j-k| + s2 [j = k] and r[k] = E[y_{t-k} x_t] = a^k.
def wiener_filter(a: float = 0.9, s2: float = 0.5, p: int = 8) -> np.ndarray:
    """w = R^-1 r from the process's own correlations (no data): tap k weighs y_{t-k}."""
    lags = np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
    R = a**lags + s2 * np.eye(p)
    return np.linalg.solve(R, a ** np.arange(p))


def ar1(n: int, rng: np.random.Generator, a: float = 0.9) -> np.ndarray:
    """n samples of x_t = a x_{t-1} + e_t with Var x = 1 (x_0 ~ N(0, 1), Var e = 1 - a^2)."""
    e = rng.standard_normal(n) * np.sqrt(1 - a * a)
    x = np.empty(n)
    x[0] = rng.standard_normal()
    for t in range(1, n):
        x[t] = a * x[t - 1] + e[t]
    return x


def noisy_ar1(n: int, seed: int, a: float = 0.9, s2: float = 0.5, p: int = 8):
    """(windows (n, p) with column k = y_{t-k}, targets x_t (n,)) from one long simulated run."""
    rng = np.random.default_rng(seed)
    x = ar1(n + p, rng, a)
    y = x + rng.standard_normal(n + p) * np.sqrt(s2)
    windows = np.stack([y[p - 1 - k : n + p - 1 - k] for k in range(p)], axis=1)
    return windows, x[p - 1 : n + p - 1]


# ---- from the Wiener filter to the MLP ----------------------------------------------------------
def sensor(kind: str, x: np.ndarray, rng: np.random.Generator, s2: float) -> np.ndarray:
    """What the filter sees of the signal x: `linear`, x + noise; `squaring`, x |x| + noise (a
    sensor with a signed-square response): the best estimate of x is then no longer linear in the
    readings. For a Gaussian signal behind a linear sensor the Wiener filter is the best estimator
    of all, linear or not, so an MLP cannot beat it there."""
    clean = x if kind == "linear" else x * np.abs(x)
    return clean + rng.standard_normal(x.shape) * np.sqrt(s2)


def signal_windows(kind: str, n: int, seed: int, p: int = 8, a: float = 0.9, s2: float = 0.1):
    """(windows (n, p), column k = reading at t - k; targets x_t) of an AR(1) signal with Var 1."""
    x = ar1(n + p, np.random.default_rng(seed), a)[: n + p - 1]  # the clean AR(1) signal
    y = sensor(kind, x, np.random.default_rng([seed, 1]), s2)
    windows = np.stack([y[p - 1 - k : len(y) - k] for k in range(p)], axis=1)
    return windows, x[p - 1 :]


def wiener_vs_mlp(
    n: int = 20_000, hidden: int = 32, epochs: int = 60, seed: int = 0
) -> dict[str, Any]:
    """Test MSE of estimating x_t from 8 readings: the least-squares (Wiener) filter in closed
    form, one linear neuron trained by SGD, and a one-hidden-layer tanh MLP (8 -> hidden -> 1)
    trained by SGD with momentum, on the linear and the squaring sensor."""
    from nnlab.numpy_nn import MSELoss

    rows, traces = [], {}
    for kind in ("linear", "squaring"):
        xtr, ytr = signal_windows(kind, n, seed)
        xte, yte = signal_windows(kind, n, seed + 1000)
        X = np.hstack([xtr, np.ones((n, 1))])
        w = np.linalg.lstsq(X, ytr, rcond=None)[0]
        wiener = np.hstack([xte, np.ones((n, 1))]) @ w
        preds = {"Wiener filter (closed form)": wiener}
        for name, sizes in (
            ("linear neuron (SGD)", [8, 1]),
            (f"MLP 8-{hidden}-1 (SGD)", [8, hidden, 1]),
        ):
            net = mlp(sizes, "tanh", seed=seed, dtype=np.float64)
            opt, loss = SGD(net.parameters(), lr=0.01, momentum=0.9), MSELoss()
            rng = np.random.default_rng(seed)
            for epoch in range(epochs):
                opt.lr = 0.01 * 0.5 * (1 + np.cos(np.pi * epoch / epochs))  # cosine decay
                order = rng.permutation(n)
                for i in range(0, n, 64):
                    idx = order[i : i + 64]
                    loss(net(xtr[idx]), ytr[idx, None])
                    opt.zero_grad()
                    net.backward(loss.backward())
                    opt.step()
            preds[name] = net(xte)[:, 0]
        for name, pred in preds.items():
            rows.append(
                {"sensor": kind, "estimator": name, "test MSE": float(np.mean((pred - yte) ** 2))}
            )
        traces[kind] = {
            "x": yte[:200],
            "reading": xte[:200, 0],
            **{k: v[:200] for k, v in preds.items()},
        }
    return {"rows": rows, "traces": traces}


def wiener_figure(result: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(10, 5.5))
    axes = fig.subplots(2, 1, sharex=True)
    mse = {(r["sensor"], r["estimator"]): r["test MSE"] for r in result["rows"]}
    for ax, (kind, tr) in zip(axes, result["traces"].items()):
        t = np.arange(len(tr["x"]))
        ax.plot(t, tr["x"], "k", lw=2, label="signal x_t")
        ax.plot(t, tr["reading"], ".", color="0.6", ms=3, label="reading")
        for name in tr:
            if name not in ("x", "reading"):
                ax.plot(t, tr[name], lw=1, label=f"{name}: MSE {mse[(kind, name)]:.3f}")
        reading = "x + noise" if kind == "linear" else "x |x| + noise"
        ax.set_title(f"{kind} sensor: reading = {reading}")
        ax.legend(fontsize=7, ncol=3, loc="upper right")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("t (first 200 test samples)")
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


def run_wiener(run: RunDir, epochs: int = 60, seed: int = 0) -> list[dict[str, Any]]:
    """`nnlab numpy wiener` into `run`; returns its table."""
    run.save_config({"task": "numpy-wiener", "epochs": epochs, "seed": seed})
    result = wiener_vs_mlp(epochs=epochs, seed=seed)
    run.save_summary({"wiener_vs_mlp": result["rows"]})
    run.save_figure("wiener_vs_mlp", wiener_figure(result))
    return result["rows"]


# ---- initialisation and activation variance -----------------------------------------------------
def activation_variances(std: float | None, depth: int = 20, width: int = 256, seed: int = 0):
    """Variance of the activations after each of `depth` linear layers (no nonlinearity, so the
    weights alone decide), input N(0, 1), 1,000 samples; std None = Xavier-normal,
    Var w = 2 / (fan_in + fan_out) = 1 / width."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((1000, width))
    out = []
    for _ in range(depth):
        s = np.sqrt(1 / width) if std is None else std
        h = h @ (rng.standard_normal((width, width)) * s)
        out.append(float(h.var()))
    return np.array(out)


def init_variances(depth: int = 20, width: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """Variance of the activations after each of `depth` linear layers, input N(0, 1), for three
    weight initialisations (the same function as the fact `xavier-keeps-activation-variance`)."""
    return {
        "Xavier, Var w = 1 / width": activation_variances(None, depth, width, seed),
        "N(0, 1)": activation_variances(1.0, depth, width, seed),
        "N(0, 0.01^2)": activation_variances(0.01, depth, width, seed),
    }


def init_figure(variances: dict[str, np.ndarray]) -> Figure:
    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    for name, v in variances.items():
        ax.semilogy(np.arange(1, len(v) + 1), v, "o-", ms=3, label=name)
    ax.axhline(1, color="k", lw=0.8, ls=":")
    ax.set_xlabel("layer (linear, 256 wide)")
    ax.set_ylabel("activation variance (input: 1)")
    ax.set_title("initialisation decides whether the signal survives 20 layers")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def run_init(run: RunDir, depth: int = 20, seed: int = 0) -> list[dict[str, Any]]:
    """`nnlab numpy init` into `run`: the variances per layer, table and figure."""
    run.save_config({"task": "numpy-init", "depth": depth, "seed": seed})
    variances = init_variances(depth, seed=seed)
    rows = [
        {"layer": layer + 1, **{name: float(v[layer]) for name, v in variances.items()}}
        for layer in range(depth)
    ]
    run.save_summary({"variances": rows})
    run.save_figure("init_variance", init_figure(variances))
    return rows
