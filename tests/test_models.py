"""The model registry on tiny inputs, and the shared blocks of nnlab.models.layers against PyTorch's
own implementations and against the formulas they implement."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nnlab.models import MODELS, build_model, count_parameters, model_config
from nnlab.models.diffusion_unet import DiffusionUNet, DiffusionUNetConfig
from nnlab.models.layers import (
    Attention,
    Block,
    PatchEmbed1d,
    ResidualBlock,
    TimeEmbedding,
    conv_bn_act,
    double_conv,
    group_count,
    sinusoidal_embedding,
)

# ---- registry smoke tests -----------------------------------------------------------------------


class Tiny(NamedTuple):
    overrides: dict  # tiny config overrides
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    extra_inputs: Callable[[int], tuple] | None = None  # batch size -> more forward arguments
    prepare: Callable[[nn.Module], None] | None = None  # applied to the model once built


def perturb_head(model: DiffusionUNet) -> None:
    """Undo the zero-initialised output conv: with it the output is exactly 0 and no gradient
    reaches any layer before it, which would make gradient checks vacuous."""
    torch.manual_seed(1)
    nn.init.normal_(model.out_conv.weight, std=0.02)


def timesteps(B: int) -> tuple[torch.Tensor]:
    return (torch.randint(0, 1000, (B,)),)


# name -> Tiny(overrides, input shape, expected output shape[, extra inputs, prepare]); a plain
# 3-tuple for a model that takes one tensor. Every model in MODELS needs an entry: the smoke test
# fails for a model that has none.
TINY: dict[str, tuple] = {
    "mlp": (dict(in_shape=(1, 8, 8), hidden=(16,), num_classes=3), (2, 1, 8, 8), (2, 3)),
    "cnn": (dict(channels=(4, 8), num_classes=3), (2, 1, 8, 8), (2, 3)),
    "vit": (
        dict(image_size=(8, 8), patch=(4, 4), dim=16, depth=1, heads=2, num_classes=3),
        (2, 1, 8, 8),
        (2, 3),
    ),
    "unet": (dict(base=4, depth=2), (2, 3, 8, 8), (2, 1, 8, 8)),
    "segvit": (
        dict(image_size=16, patch=4, dim=16, depth=1, heads=2, decoder=16),
        (2, 3, 16, 16),
        (2, 1, 16, 16),
    ),
    "conv_ae": (dict(size=8, code=3, widths=(4, 8)), (2, 1, 8, 8), (2, 1, 8, 8)),
    "diffusion_unet": Tiny(
        dict(base=8, mults=(1, 2), heads=2, groups=4),
        (2, 1, 8, 8),
        (2, 1, 8, 8),
        extra_inputs=timesteps,
        prepare=perturb_head,
    ),
    "eeg_transformer": (
        dict(channels=3, frames=5, freqs=6, dim=16, depth=1, heads=2, num_classes=2),
        (2, 3, 5, 6),
        (2, 2),
    ),
    "ctc_line": (dict(channels=(4, 8), dim=8, layers=1), (2, 1, 32, 16), (2, 4, 38)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_forward_backward_on_a_tiny_input(name):
    assert name in TINY, f"model '{name}' is in MODELS but has no tiny case in TINY: add one"
    overrides, in_shape, out_shape, extra_inputs, prepare = Tiny(*TINY[name])
    torch.manual_seed(0)
    model = build_model(name, model_config(name, **overrides))
    if prepare is not None:
        prepare(model)
    print(name, count_parameters(model))
    extra = extra_inputs(in_shape[0]) if extra_inputs is not None else ()
    out = model(torch.randn(in_shape), *extra)
    assert out.shape == out_shape
    assert torch.isfinite(out).all()
    # a random upstream gradient: a plain sum can be blind (BatchNorm makes it zero for some layers)
    (out * torch.randn_like(out)).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"
    assert sum(p.grad.abs().sum() for p in model.parameters()) > 0


def test_every_tiny_case_names_a_registered_model():
    assert set(TINY) <= set(MODELS), sorted(set(TINY) - set(MODELS))


# ---- conv blocks --------------------------------------------------------------------------------


def test_default_cnn_and_unet_keep_their_parameter_counts():
    # Measured on the default configs before conv_bn_act / double_conv moved into layers.py: the
    # shared blocks must build the same networks (CNN channels (32, 64); U-Net base 32, depth 4).
    assert count_parameters(build_model("cnn", model_config("cnn"))) == 65834
    assert count_parameters(build_model("unet", model_config("unet"))) == 7763041


def test_conv_bn_act_and_double_conv_layout():
    block = conv_bn_act(3, 8, k=5)
    assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert block[0].bias is None and block[0].padding == (2, 2) and block[2].inplace
    assert isinstance(conv_bn_act(3, 8, act=nn.GELU)[2], nn.GELU)  # no inplace option: none passed
    assert conv_bn_act(3, 8)(torch.randn(2, 3, 7, 7)).shape == (2, 8, 7, 7)
    dc = double_conv(3, 8)
    assert len(dc) == 6 and [type(m) for m in dc] == 2 * [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert dc[0].in_channels == 3 and dc[3].in_channels == 8
    # the state_dict keys old U-Net checkpoints were saved with
    assert sorted({k.split(".")[0] for k in dc.state_dict()}) == ["0", "1", "3", "4"]


@pytest.mark.parametrize(
    "channels,groups,expected",
    [(32, 8, 8), (12, 8, 6), (10, 8, 5), (4, 8, 4), (7, 8, 7), (9, 4, 3), (1, 8, 1)],
)
def test_group_count(channels, groups, expected):
    assert group_count(channels, groups) == expected


def test_residual_block_shapes_embedding_and_gradients():
    torch.manual_seed(0)
    block = ResidualBlock(8, 16, emb_dim=12, groups=8, dropout=0.1)
    assert block.norm1.num_groups == 8 and block.norm2.num_groups == 8
    assert isinstance(block.skip, nn.Conv2d) and block.skip.kernel_size == (1, 1)
    x, e1, e2 = torch.randn(2, 8, 6, 6), torch.randn(2, 12), torch.randn(2, 12)
    y = block(x, e1)
    assert y.shape == (2, 16, 6, 6)
    block.eval()
    with torch.no_grad():
        assert (block(x, e1) - block(x, e2)).abs().max() > 1e-3  # the embedding shifts the output
    block.train()
    (y * torch.randn_like(y)).sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    with pytest.raises(ValueError):
        block(x)  # built with emb_dim: the embedding is required
    with pytest.raises(ValueError):
        ResidualBlock(8, 8)(x, e1)  # built without: an embedding would be ignored


def test_residual_block_skip_is_the_identity_when_widths_match():
    torch.manual_seed(0)
    block = ResidualBlock(12, 12, emb_dim=4, groups=8)
    assert isinstance(block.skip, nn.Identity) and block.norm1.num_groups == 6
    with torch.no_grad():
        block.conv2.weight.zero_()
        block.conv2.bias.zero_()
    x = torch.randn(2, 12, 5, 5)
    assert torch.equal(block(x, torch.randn(2, 4)), x)
    wide = ResidualBlock(12, 20)
    with torch.no_grad():
        wide.conv2.weight.zero_()
        wide.conv2.bias.zero_()
        assert torch.allclose(wide(x), wide.skip(x), atol=0, rtol=0)


# ---- the diffusion U-Net ------------------------------------------------------------------------


def diffusion_unet(**overrides) -> DiffusionUNet:
    torch.manual_seed(0)
    return DiffusionUNet(DiffusionUNetConfig(**{"base": 8, "heads": 2, **overrides}))


@pytest.mark.parametrize(
    "mults,blocks,channels,H,W",
    [
        ((1, 2), 1, 1, 8, 8),  # digits
        ((1, 2, 2), 1, 1, 32, 32),  # MNIST padded to 32
        ((1, 2, 2), 2, 3, 16, 24),  # not square, colour
        ((1,), 2, 1, 7, 5),  # one level: no down-sampling, any size
        ((1, 1, 2, 2), 3, 2, 8, 16),  # lowest level 1 x 2
    ],
)
def test_diffusion_unet_output_has_the_image_shape(mults, blocks, channels, H, W):
    model = diffusion_unet(mults=mults, blocks=blocks, in_channels=channels, out_channels=channels)
    perturb_head(model)
    assert len(model.down) == len(model.up) == len(mults)
    assert len(model.downsample) == len(model.upsample) == len(mults) - 1
    assert all(len(level) == blocks for level in [*model.down, *model.up])
    t = torch.tensor([0, 999, 3])  # any timesteps, integer or float
    out = model(torch.randn(3, channels, H, W), t)
    assert out.shape == (3, channels, H, W) and torch.isfinite(out).all()
    assert model(torch.randn(3, channels, H, W), t.float() + 0.5).shape == out.shape


def test_diffusion_unet_rejects_sizes_it_cannot_halve_and_bad_timesteps():
    model = diffusion_unet(mults=(1, 2, 2))
    for H, W in [(30, 32), (32, 30), (6, 8)]:
        with pytest.raises(ValueError, match=rf"{H}x{W}.*divisible by .* 4"):
            model(torch.randn(2, 1, H, W), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="one timestep per image"):
        model(torch.randn(2, 1, 8, 8), torch.tensor([1]))  # would broadcast silently
    with pytest.raises(ValueError, match="at least one level"):
        diffusion_unet(mults=())
    with pytest.raises(ValueError, match="one block"):
        diffusion_unet(blocks=0)


def test_diffusion_unet_starts_at_zero_and_only_its_head_learns_at_first():
    model = diffusion_unet()
    out = model(torch.randn(4, 1, 8, 8), torch.tensor([1, 10, 100, 999]))
    assert torch.equal(out, torch.zeros_like(out))
    (out * torch.randn_like(out)).sum().backward()
    assert model.out_conv.weight.grad.abs().sum() > 0  # the head gets a gradient...
    assert model.time_embed.mlp[0].weight.grad.abs().sum() == 0  # ...nothing behind it does yet


def test_diffusion_unet_output_depends_on_t_and_time_embedding_learns():
    model = diffusion_unet().eval()
    perturb_head(model)
    x = torch.randn(1, 1, 8, 8).repeat(2, 1, 1, 1)  # the same image twice
    out = model(x, torch.tensor([1, 500]))
    assert (out[0] - out[1]).abs().max() > 1e-4  # only t differs
    (out * torch.randn_like(out)).sum().backward()
    for W in (model.time_embed.mlp[0].weight, model.time_embed.mlp[2].weight):
        assert W.grad is not None and W.grad.abs().sum() > 0


def test_diffusion_unet_attention_can_be_switched_off_and_its_maps_are_distributions():
    with_attn, without = diffusion_unet(), diffusion_unet(attention=False)
    assert without.mid_attn is None
    assert count_parameters(without) < count_parameters(with_attn)
    assert without(torch.randn(2, 1, 8, 8), torch.tensor([3, 4])).shape == (2, 1, 8, 8)
    block = with_attn.mid_attn.eval()
    C = with_attn.cfg.base * with_attn.cfg.mults[-1]
    h = torch.randn(2, C, 4, 4)  # a feature map at the lowest resolution of an 8 x 8 image
    with torch.no_grad():
        y, weights = block(h, return_attention=True)
        y_fused = block(h)
    assert weights.shape == (2, with_attn.cfg.heads, 16, 16)  # (B, heads, H W, H W)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 16), rtol=0, atol=1e-6)
    torch.testing.assert_close(y, y_fused, rtol=0, atol=1e-5)  # explicit and fused paths agree
    assert y.shape == h.shape


# ---- embeddings ---------------------------------------------------------------------------------


def test_sinusoidal_embedding_matches_the_formula():
    positions = np.array([0.0, 1.0, 2.0, 7.5, 50.0, 999.0])
    dim, base = 10, 10000.0
    expected = np.zeros((len(positions), dim))
    for i in range(dim // 2):
        angle = positions / base ** (2 * i / dim)
        expected[:, 2 * i], expected[:, 2 * i + 1] = np.sin(angle), np.cos(angle)
    got = sinusoidal_embedding(torch.tensor(positions, dtype=torch.float64), dim, base)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)
    # integer positions: the default dtype; float32 rounding of p * omega is ~ p * 6e-8
    ints = sinusoidal_embedding(torch.tensor([0, 1, 2, 50]), dim, base)
    assert ints.dtype == torch.float32
    np.testing.assert_allclose(ints.numpy(), expected[[0, 1, 2, 4]], rtol=0, atol=1e-5)
    small_base = sinusoidal_embedding(torch.tensor([3.0], dtype=torch.float64), 4, base=100.0)
    np.testing.assert_allclose(
        small_base.numpy()[0], [np.sin(3), np.cos(3), np.sin(0.3), np.cos(0.3)], rtol=0, atol=1e-12
    )


def test_sinusoidal_embedding_rejects_odd_dim_and_is_bounded():
    with pytest.raises(ValueError, match="even"):
        sinusoidal_embedding(torch.arange(4), 7)
    pe = sinusoidal_embedding(torch.arange(0, 5000, 7), 64)
    assert pe.shape == (715, 64) and pe.abs().max() <= 1.0


def test_sinusoidal_shift_is_a_fixed_rotation():
    """PE(p + k) = R_k PE(p), R_k block-diagonal with one 2 x 2 rotation by k omega_i per pair:
    sin(a + b) = sin a cos b + cos a sin b, cos(a + b) = cos a cos b - sin a sin b."""
    dim, k = 16, 3
    omega = 10000.0 ** (-np.arange(0, dim, 2) / dim)
    R = np.zeros((dim, dim))
    for i, w in enumerate(omega):
        c, s = np.cos(k * w), np.sin(k * w)
        R[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[c, s], [-s, c]]
    p = torch.cat(
        [
            torch.arange(0, 200, dtype=torch.float64),
            torch.tensor([0.25, 41.7, 1234.5], dtype=torch.float64),
        ]
    )
    pe, pe_shifted = sinusoidal_embedding(p, dim), sinusoidal_embedding(p + k, dim)
    np.testing.assert_allclose(pe.numpy() @ R.T, pe_shifted.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(R @ R.T, np.eye(dim), atol=1e-12)  # the same map for every p


def test_time_embedding():
    torch.manual_seed(0)
    embed = TimeEmbedding(16, 32)
    t = torch.tensor([0, 1, 500, 999])
    e = embed(t)
    assert e.shape == (4, 32) and torch.isfinite(e).all()
    assert (e[0] - e[1]).abs().max() > 1e-4  # neighbouring timesteps are told apart
    assert torch.allclose(embed(t.float()), e)  # float timesteps are the same timesteps
    W_1, W_2 = embed.mlp[0], embed.mlp[2]  # e(t) = W_2 SiLU(W_1 PE(t) + b_1) + b_2
    torch.testing.assert_close(e, W_2(F.silu(W_1(sinusoidal_embedding(t, 16)))), rtol=0, atol=1e-6)
    e.pow(2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in embed.parameters())


@pytest.mark.parametrize("channels,patch", [(1, 4), (3, 5), (2, 1)])
def test_patch_embed_1d_is_a_strided_convolution(channels, patch):
    torch.manual_seed(2)
    embed = PatchEmbed1d(channels, patch, 24)
    x = torch.randn(2, channels, 6 * patch)
    with torch.no_grad():
        tokens = embed(x)
        conv = embed.as_conv()(x).transpose(1, 2)  # (B, N, D)
    assert tokens.shape == (2, 6, 24)
    torch.testing.assert_close(tokens, conv, rtol=0, atol=1e-6)


def test_patch_embed_1d_rejects_a_length_the_patch_does_not_divide():
    with pytest.raises(ValueError, match=r"25.*\b4\b"):
        PatchEmbed1d(2, 4, 8)(torch.randn(1, 2, 25))


# ---- attention against torch.nn.MultiheadAttention and F.scaled_dot_product_attention ----------

B, N, D, HEADS = 3, 5, 16, 4


def attention_and_copy() -> tuple[Attention, nn.MultiheadAttention]:
    """Our Attention and a MultiheadAttention with the same weights, float64, eval mode."""
    torch.manual_seed(0)
    attn = Attention(D, HEADS).double().eval()
    mha = nn.MultiheadAttention(D, HEADS, batch_first=True, dtype=torch.float64).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.W_qkv.weight)  # rows: W_q, W_k, W_v, heads contiguous
        mha.in_proj_bias.copy_(attn.W_qkv.bias)
        mha.out_proj.weight.copy_(attn.W_o.weight)
        mha.out_proj.bias.copy_(attn.W_o.bias)
    return attn, mha


def key_padding() -> torch.Tensor:
    """(B, N), True = the token exists: 5, 3 and 1 real tokens."""
    return torch.arange(N)[None, :] < torch.tensor([5, 3, 1])[:, None]


def causal() -> torch.Tensor:
    return torch.ones(N, N, dtype=torch.bool).tril()  # (N, N): query i sees keys 0..i


def per_query() -> torch.Tensor:
    torch.manual_seed(5)
    m = torch.rand(B, N, N) < 0.5
    m[..., 0] = True  # every query keeps a key
    return m  # (B, N, N)


def mha_masks(kind: str) -> dict:
    """The same masks in MultiheadAttention's convention: True = may NOT attend."""
    if kind == "none":
        return {}
    if kind == "key_padding":
        return {"key_padding_mask": ~key_padding()}
    if kind == "causal":
        return {"attn_mask": ~causal()}
    return {"attn_mask": (~per_query()).repeat_interleave(HEADS, dim=0)}  # (B heads, N, N)


def our_mask(kind: str) -> dict:
    return {
        "none": {},
        "key_padding": {"key_padding": key_padding()},
        "causal": {"mask": causal()},
        "per_query": {"mask": per_query()},
    }[kind]


KINDS = ["none", "key_padding", "causal", "per_query"]
TOL = dict(rtol=0, atol=1e-12)  # float64 throughout


@pytest.mark.parametrize("kind", KINDS)
def test_attention_equals_multihead_attention(kind):
    attn, mha = attention_and_copy()
    x = torch.randn(B, N, D, dtype=torch.float64)
    masks = our_mask(kind)
    with torch.no_grad():
        fused, none = attn(x, **masks)
        explicit, weights = attn(x, need_weights=True, **masks)
        ref, ref_weights = mha(
            x, x, x, need_weights=True, average_attn_weights=True, **mha_masks(kind)
        )
        ref_fast, _ = mha(x, x, x, need_weights=False, **mha_masks(kind))
    assert none is None and weights.shape == (B, HEADS, N, N)
    torch.testing.assert_close(fused, ref, **TOL)
    torch.testing.assert_close(explicit, ref, **TOL)
    torch.testing.assert_close(fused, ref_fast, **TOL)
    torch.testing.assert_close(weights.mean(1), ref_weights, **TOL)  # averaged over heads
    if masks:  # a key that may not be attended to gets weight exactly 0
        mask = next(iter(masks.values()))
        allowed = (mask[:, None, :] if kind == "key_padding" else mask).expand(B, N, N)
        assert (weights.masked_fill(allowed[:, None], 0) == 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_attention_equals_scaled_dot_product_attention_on_q_k_v(kind):
    """q, k, v taken from slices of W_qkv (not from our reshape), then torch's own SDPA."""
    attn, _ = attention_and_copy()
    x = torch.randn(B, N, D, dtype=torch.float64)
    masks = our_mask(kind)
    W, b = attn.W_qkv.weight, attn.W_qkv.bias
    q, k, v = (F.linear(x, W[i * D : (i + 1) * D], b[i * D : (i + 1) * D]) for i in range(3))
    q, k, v = (
        t.reshape(B, N, HEADS, D // HEADS).transpose(1, 2)  # (B, h, N, d_k)
        for t in (q, k, v)
    )
    # SDPA broadcasts a boolean mask (True = may attend) against (B, h, N, N)
    sdpa_mask = {
        "none": None,
        "key_padding": key_padding()[:, None, None, :],  # (B, 1, 1, N)
        "causal": causal(),  # (N, N)
        "per_query": per_query()[:, None],
    }[kind]  # (B, 1, N, N)
    with torch.no_grad():
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=sdpa_mask)  # (B, h, N, d)
        ref = attn.W_o(ref.transpose(1, 2).reshape(B, N, D))
        fused, _ = attn(x, **masks)
        explicit, _ = attn(x, need_weights=True, **masks)
    torch.testing.assert_close(fused, ref, **TOL)
    torch.testing.assert_close(explicit, ref, **TOL)


def test_float32_paths_agree():
    torch.manual_seed(3)
    attn = Attention(D, HEADS).eval()
    x = torch.randn(B, N, D)
    for kind in KINDS + ["both"]:
        masks = (
            our_mask(kind) if kind != "both" else {"mask": causal(), "key_padding": key_padding()}
        )
        with torch.no_grad():
            torch.testing.assert_close(
                attn(x, **masks)[0], attn(x, need_weights=True, **masks)[0], rtol=0, atol=1e-6
            )


def test_mask_and_key_padding_combine_as_and():
    """Both masks at once equal their AND given as one (B, N, N) mask; with batch = tokens (the
    shapes of the two kinds alike) each is still read as what it is."""
    attn, _ = attention_and_copy()
    x = torch.randn(B, N, D, dtype=torch.float64)
    both = causal()[None] & key_padding()[:, None, :]  # (B, N, N)
    both[..., 0] = True
    pad = key_padding()
    pad[:, 0] = True
    with torch.no_grad():
        a, w = attn(x, need_weights=True, mask=causal(), key_padding=pad)
        b, _ = attn(x, mask=causal()[None] & pad[:, None, :])
    torch.testing.assert_close(a, b, **TOL)
    assert (w.triu(1) == 0).all()
    square = torch.randn(N, N, D, dtype=torch.float64)  # N sequences of N tokens
    with torch.no_grad():
        c, w = attn(square, need_weights=True, mask=causal())
    assert (w.triu(1) == 0).all()


@pytest.mark.parametrize("need_weights", [False, True])
def test_attention_rejects_masks_that_leave_a_query_nothing(need_weights):
    attn, _ = attention_and_copy()
    x = torch.randn(B, N, D, dtype=torch.float64)
    no_tokens = key_padding()
    no_tokens[1] = False  # sequence 1 has no token at all
    hole = causal()
    hole[2] = False  # query 2 may attend to nothing
    for bad in ({"key_padding": no_tokens}, {"mask": hole}):
        with pytest.raises(ValueError, match="no key"):
            attn(x, need_weights=need_weights, **bad)
    with pytest.raises(ValueError, match="boolean"):
        attn(x, need_weights=need_weights, mask=causal().double())
    with pytest.raises(ValueError, match="fits none"):
        attn(x, need_weights=need_weights, key_padding=torch.ones(B, N + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="fits none"):  # key padding given as a query x key mask
        attn(x, need_weights=need_weights, mask=key_padding())


def test_block_with_a_causal_mask_ignores_the_future():
    torch.manual_seed(4)
    block = Block(D, HEADS, 2 * D).double().eval()
    x = torch.randn(B, N, D, dtype=torch.float64)
    future = x.clone()
    future[:, 3:] = torch.randn(B, N - 3, D, dtype=torch.float64)
    with torch.no_grad():
        y, _ = block(x, mask=causal())
        y_future, w = block(future, need_weights=True, mask=causal())
        y_free, _ = block(future)
    torch.testing.assert_close(y[:, :3], y_future[:, :3], rtol=0, atol=1e-12)
    assert (y[:, :3] - y_free[:, :3]).abs().max() > 1e-3  # unmasked, the future does leak in
    assert (w.triu(1) == 0).all()


# ---- the convolutional autoencoder ---------------------------------------------------------------


def test_conv_autoencoder_codes_have_the_bottleneck_width_and_outputs_lie_in_0_1():
    model = build_model("conv_ae", model_config("conv_ae", size=16, code=5, widths=(4, 8)))
    x = torch.rand(3, 1, 16, 16)
    z = model.encode(x)
    assert z.shape == (3, 5)
    y = model.decode(z)
    assert y.shape == x.shape and float(y.detach().min()) > 0 and float(y.detach().max()) < 1
    torch.testing.assert_close(model(x), y)


def test_conv_autoencoder_rejects_a_size_its_stages_cannot_halve():
    with pytest.raises(ValueError, match="divisible"):
        model_config("conv_ae", size=28, widths=(8, 8, 8))


def test_bf16_autocast_on_the_cpu_attends_in_fp32(monkeypatch):
    """Under CPU bf16 autocast the fused path attends in fp32 (PyTorch's bf16 CPU kernel is slow
    backwards): the kernel is handed fp32 inputs with autocast off (else it would cast them back),
    the output is bf16, close to the fp32 attention, and gradients reach x."""
    seen = []
    sdpa = F.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        seen.append((q.dtype, torch.is_autocast_enabled("cpu")))
        return sdpa(q, k, v, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    torch.manual_seed(4)
    attn = Attention(D, HEADS)
    x = torch.randn(B, N, D, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = attn(x, mask=causal())
    assert seen == [(torch.float32, False)]
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with torch.no_grad():
        ref, _ = attn(x, mask=causal())
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.05)  # bf16 has 8 bits


def test_model_options_are_read_as_their_fields_want_or_refused():
    """`-m hidden=256` (a number for a tuple of widths) is a tuple of one; a value of the wrong
    kind, or options the model cannot be built from, are one-line errors (before, tracebacks,
    some after a whole training)."""
    from nnlab.errors import NNLabError

    assert model_config("mlp", hidden=256).hidden == (256,)
    assert model_config("mlp", dropout=0).dropout == 0.0
    with pytest.raises(NNLabError, match="option activation takes a str"):
        model_config("mlp", activation=3)
    with pytest.raises(NNLabError, match="cannot be built .* not divisible by 5 heads"):
        build_model("vit", model_config("vit", heads=5))


@pytest.mark.parametrize("name,option", [("cnn", {"channels": [0]}), ("vit", {"depth": 0}),
                                         ("diffusion_unet", {"mults": []})])  # fmt: skip
def test_a_layer_of_no_units_is_refused(name, option):
    from nnlab.errors import NNLabError

    with pytest.raises(NNLabError, match="each must be a whole number >= 1"):
        model_config(name, **option)
