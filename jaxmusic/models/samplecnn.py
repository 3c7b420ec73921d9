"""SampleCNN (Lee et al. 2017) as CLMR uses it: a raw-waveform encoder.

CLMR's layout: Conv(1->128, k3, stride 3) + BN + ReLU; nine blocks of
Conv(k3, pad 1) + BN + ReLU + MaxPool(3) with channels 128, 128, 256, 256, 256, 256,
256, 256, 512; then Conv(512->512, k3, pad 1) + BN + ReLU. With 59,049 = 3^10 input
samples the time axis is 1 at the end and the output is 512-d; the encoder has
2,368,512 parameters (convolutions with bias, BatchNorm scale and bias).

Depth and width are fields, so tiny variants exist for tests and CPU runs. The input
length must be a multiple of 3^(blocks+1); when it is longer than 3^(blocks+1) the
remaining frames are averaged (for CLMR's configuration there is exactly one).
The output is `{"pooled": [B, final_channels], "frames": [B, frames, final_channels]}`.

Speed (CPU, where the first two blocks' activations are far larger than the caches):
in training, each BatchNorm + ReLU (+ pool) is one function with a hand-written
gradient that reads and writes the activations about half as often as autodiff of
nn.BatchNorm and nn.max_pool does (benchmarks/train_step.py). Its values are those of
the Flax layers to float32 rounding: the variables, their names and initial values,
the batch statistics and the gradient's routing through the pool (first maximum of
each window) are the same.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

CLMR_BLOCK_CHANNELS = (128, 128, 256, 256, 256, 256, 256, 256, 512)


def receptive_samples(num_blocks: int) -> int:
    """The input length that the stride-3 stem and `num_blocks` pools reduce to one frame."""
    return 3 ** (num_blocks + 1)


class SampleCNN(nn.Module):
    """Raw waveform [batch, samples] -> {"pooled": [batch, final_channels], "frames": ...}."""

    first_channels: int = 128
    block_channels: Sequence[int] = CLMR_BLOCK_CHANNELS
    final_channels: int = 512
    # BatchNorm momentum as in PyTorch's default (0.1 update), which CLMR trains with.
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32  # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, audio: jax.Array, train: bool) -> jax.Array:
        hop = receptive_samples(len(self.block_channels))
        if audio.ndim != 2 or audio.shape[-1] % hop:
            raise ValueError(
                f"SampleCNN with {len(self.block_channels)} blocks takes [batch, k*{hop}] samples, "
                f"got shape {audio.shape}"
            )
        x = audio[..., None].astype(self.dtype)
        layer = {"train": train, "momentum": self.bn_momentum, "dtype": self.dtype}
        x = stage(x, self.first_channels, "stem", **layer)
        for channels in self.block_channels:
            x = stage(x, channels, "block", **layer)
        frames = stage(x, self.final_channels, "final", **layer).astype(jnp.float32)
        return {"pooled": jnp.mean(frames, axis=1), "frames": frames}


def stage(x: jax.Array, channels: int, kind: str, *, train: bool, momentum: float, dtype: Any) -> jax.Array:
    """One stage, [B, T, C] -> [B, T', channels], inside a compact method (its modules are
    the caller's, named Conv_i and BatchNorm_i in order): "stem" is the stride-3
    convolution, "block" a convolution and pool, "final" the last convolution."""
    stride, padding = (3, "VALID") if kind == "stem" else (1, ((1, 1),))
    y, conv_bias = Conv(channels, stride, padding, dtype)(x)
    return BatchNorm(momentum, dtype)(y, conv_bias, train, pool=kind == "block")


class Conv(nn.Module):
    """`nn.Conv(features, (3,), strides, padding)`'s variables and convolution, returning the
    convolution and its bias apart: the bias is added inside the normalisation's fusions
    instead of in a pass of its own over the (largest) activations. Named like Flax's
    class, so its variables are `Conv_i/{kernel,bias}` as before (checkpoints, converters)."""

    features: int
    stride: int
    padding: Any
    dtype: Any

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        # nn.Conv's parameters: same names, shapes, initialisers and creation order.
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        y = jax.lax.conv_general_dilated(
            x, kernel, (self.stride,), self.padding, dimension_numbers=("NWC", "WIO", "NWC")
        )
        return y, bias


class BatchNorm(nn.Module):
    """`nn.BatchNorm` (its variables `BatchNorm_i/{scale,bias}` and `{mean,var}` statistics,
    E[u^2] - E[u]^2 variance, epsilon 1e-5) on u = y + conv_bias, then ReLU and, with
    `pool`, max-pooling by 3. Training takes one function with a hand-written gradient
    (`_norm_relu_pool`); evaluation is plain Flax arithmetic."""

    momentum: float
    dtype: Any
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, y: jax.Array, conv_bias: jax.Array, train: bool, pool: bool) -> jax.Array:
        c = y.shape[-1]
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        scale = self.param("scale", nn.initializers.ones_init(), (c,))
        bias = self.param("bias", nn.initializers.zeros_init(), (c,))
        if not train:
            mul = jax.lax.rsqrt(ra_var.value + self.epsilon) * scale
            # Exactly nn.BatchNorm, nn.relu and nn.max_pool, gradient included.
            x = nn.relu(_normalize(y + conv_bias, ra_mean.value, mul, bias, y.dtype))
            return nn.max_pool(x, (3,), strides=(3,)) if pool else x
        z, mean, var = _norm_relu_pool(y, conv_bias, scale, bias, pool, self.epsilon)
        if not self.is_initializing():
            ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
            ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
        return z


def _normalize(u: jax.Array, mean: jax.Array, mul: jax.Array, bias: jax.Array, dtype: Any) -> jax.Array:
    # nn.BatchNorm's order of operations (the eval path is nn.BatchNorm to the bit).
    return ((u.astype(jnp.float32) - mean) * mul + bias).astype(dtype)


def _max3(x: jax.Array) -> jax.Array:
    """Max-pool by 3 along time as the max of three strided views: elementwise, so it fuses
    with what produces and consumes it (a reduce_window's gradient is a select-and-scatter
    pass of its own)."""
    return jnp.maximum(jnp.maximum(x[:, 0::3], x[:, 1::3]), x[:, 2::3])


def _channel_stats(s1, s2, conv_bias, scale, count: int, epsilon: float):
    """(mean, var, mul) of u = y + conv_bias from the per-channel sums of y and y^2."""
    # nn.BatchNorm's E[u^2] - E[u]^2, taken on y: the variance does not depend on the
    # bias, and leaving it out of the sums lets them read the convolution's output as
    # it is, with no pass that adds the bias first.
    mean_y, mean2_y = s1 / count, s2 / count
    var = jnp.maximum(0.0, mean2_y - mean_y * mean_y)
    return mean_y + conv_bias, var, jax.lax.rsqrt(var + epsilon) * scale


def _sums(y: jax.Array) -> tuple[jax.Array, jax.Array]:
    y = y.astype(jnp.float32)
    return jnp.sum(y, axis=(0, 1)), jnp.sum(y * y, axis=(0, 1))


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _norm_relu_pool(y, conv_bias, scale, bias, pool, epsilon):
    """(relu(pool(batchnorm(y + conv_bias))), batch mean, batch var): the training path."""
    return _norm_relu_pool_fwd(y, conv_bias, scale, bias, pool, epsilon)[0]


def _first_max(n: jax.Array) -> jax.Array:
    """int8 [B, T/3, C]: which of each window's three values a reduce_window max's gradient
    goes to (the first maximum), or 3 where the maximum is not positive (the ReLU's zero)."""
    a, b, c = n[:, 0::3], n[:, 1::3], n[:, 2::3]
    slot = jnp.where(a >= jnp.maximum(b, c), 0, jnp.where(b >= c, 1, 2))
    return jnp.where(jnp.maximum(jnp.maximum(a, b), c) > 0, slot, 3).astype(jnp.int8)


def _norm_relu_pool_fwd(y, conv_bias, scale, bias, pool, epsilon):
    s1, s2 = _sums(y)
    mean, var, mul = _channel_stats(s1, s2, conv_bias, scale, y.shape[0] * y.shape[1], epsilon)
    n = _normalize(y + conv_bias, mean, mul, bias, y.dtype)
    z = nn.relu(_max3(n) if pool else n)
    # Where the gradient goes: the pool's choice (a quarter of z's bytes), or z itself.
    route = _first_max(n) if pool else z
    return (z, mean, var), (y, conv_bias, scale, s1, s2, route)


def _norm_relu_pool_bwd(pool, epsilon, residuals, cotangents):
    # Autodiff of the forward above makes about ten passes over the activations (and a
    # select-and-scatter for the pool). Here the gradient at the normalised values
    # follows the route the forward saved, and the per-channel algebra goes through
    # jax.vjp of `_channel_stats`, so it is the derivative of exactly what the forward
    # computes. The convolution's bias comes out with a zero gradient (BatchNorm
    # cancels it) where autodiff gives rounding noise around zero.
    y, conv_bias, scale, s1, s2, route = residuals
    dz, dmean, dvar = cotangents
    b, t, c = y.shape
    (mean, _, mul), stats_vjp = jax.vjp(
        lambda *a: _channel_stats(*a, b * t, epsilon), s1, s2, conv_bias, scale
    )
    dz = dz.astype(jnp.float32)
    if pool:
        slot = jnp.arange(3, dtype=jnp.int8)[None, None, :, None]
        dn = jnp.where(route[:, :, None, :] == slot, dz[:, :, None, :], 0.0).reshape(b, t, c)
        dbias = jnp.sum(jnp.where(route < 3, dz, 0.0), axis=(0, 1))
    else:
        dn = jnp.where(route > 0, dz, 0.0)
        dbias = jnp.sum(dn, axis=(0, 1))
    # n = (y + conv_bias - mean) * mul + bias.
    yf = y.astype(jnp.float32)
    dmul = jnp.sum(dn * yf, axis=(0, 1)) + (conv_bias - mean) * dbias
    ds1, ds2, dconv_bias, dscale = stats_vjp((dmean - mul * dbias, dvar, dmul))
    # y enters through n and through the sums s1 = sum(y), s2 = sum(y^2).
    dy = dn * mul + ds1 + 2.0 * yf * ds2
    return dy.astype(y.dtype), (dconv_bias + mul * dbias).astype(conv_bias.dtype), dscale, dbias


_norm_relu_pool.defvjp(_norm_relu_pool_fwd, _norm_relu_pool_bwd)


def default_config() -> ml_collections.ConfigDict:
    """`model.samplecnn`: CLMR's configuration."""
    c = ml_collections.ConfigDict()
    c.first_channels = 128
    c.block_channels = CLMR_BLOCK_CHANNELS
    c.final_channels = 512
    return c


def from_config(model: ml_collections.ConfigDict, dtype: Any) -> SampleCNN:
    """The SampleCNN of `model.samplecnn`."""
    c = model.samplecnn
    return SampleCNN(
        first_channels=c.first_channels,
        block_channels=tuple(c.block_channels),
        final_channels=c.final_channels,
        dtype=dtype,
    )


def input_lengths(model: ml_collections.ConfigDict) -> tuple[int, int]:
    """(minimum, multiple): inputs are whole multiples of the receptive field."""
    hop = receptive_samples(len(model.samplecnn.block_channels))
    return hop, hop
