"""CLMR's training step in PyTorch, written from the paper: the reference for train_step.py.

SampleCNN 3^9 on 59,049-sample views: Conv1d(1->128, k3, stride 3) + BN + ReLU; nine
blocks of Conv1d(k3, pad 1) + BN + ReLU + MaxPool1d(3) with 128, 128, 256, 256, 256,
256, 256, 256, 512 channels; Conv1d(512->512, k3, pad 1) + BN + ReLU; mean over the
one remaining frame. Projector Linear(512, 512, no bias) -> ReLU -> Linear(512, 64,
no bias); NT-Xent at temperature 0.5 over the 2B views; torch.optim.Adam at 3e-4.
This is the layout of jaxmusic/models/samplecnn.py and jaxmusic/objectives/contrastive.py
(convolutions with bias, BatchNorm with eps 1e-5 and PyTorch's momentum 0.1, which is
Flax's 0.9), so both sides hold the same 2,368,512 encoder parameters.

The step takes int16 PCM [B, 2, T] and dequantises it as jaxmusic's `preprocess` does.
Importable (train_step.py uses `make_step`); run alone it prints the parameter count
and times a few steps:

    python benchmarks/torch_clmr_step.py [--batch 8] [--steps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

CLMR_BLOCK_CHANNELS = (128, 128, 256, 256, 256, 256, 256, 256, 512)


class SampleCNN(nn.Module):
    """Raw waveform [batch, samples] -> [batch, final_channels]."""

    def __init__(
        self,
        first_channels: int = 128,
        block_channels: Sequence[int] = CLMR_BLOCK_CHANNELS,
        final_channels: int = 512,
    ) -> None:
        super().__init__()
        # CLMR's module layout, one nn.Sequential per stage, so that its state dict has
        # the keys of CLMR's checkpoints (sequential.{i}.{0,1}.*) and converts with
        # jaxmusic.convert.clmr: the benchmark starts both sides from the same weights.
        stages = [
            nn.Sequential(
                nn.Conv1d(1, first_channels, 3, stride=3), nn.BatchNorm1d(first_channels), nn.ReLU()
            )
        ]
        width = first_channels
        for channels in block_channels:
            stages.append(
                nn.Sequential(
                    nn.Conv1d(width, channels, 3, padding=1),
                    nn.BatchNorm1d(channels),
                    nn.ReLU(),
                    nn.MaxPool1d(3),
                )
            )
            width = channels
        stages.append(
            nn.Sequential(
                nn.Conv1d(width, final_channels, 3, padding=1), nn.BatchNorm1d(final_channels), nn.ReLU()
            )
        )
        self.sequential = nn.Sequential(*stages)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.sequential(audio[:, None, :]).mean(dim=-1)


class SimCLR(nn.Module):
    """Encoder + projector on every view: [B, V, T] -> [B, V, d]."""

    def __init__(self, projector_dims: Sequence[int] = (512, 64)) -> None:
        super().__init__()
        self.encoder = SampleCNN()
        layers: list[nn.Module] = []
        width = 512
        for i, d in enumerate(projector_dims):
            layers.append(nn.Linear(width, d, bias=False))
            if i < len(projector_dims) - 1:
                layers.append(nn.ReLU())
            width = d
        self.projector = nn.Sequential(*layers)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        b, v, t = views.shape
        return self.projector(self.encoder(views.reshape(b * v, t))).reshape(b, v, -1)


def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss for pairs (z_a[i], z_b[i]), mean over all 2B anchors."""
    z = nn.functional.normalize(torch.cat([z_a, z_b]), dim=-1, eps=1e-12)
    n = z.shape[0]
    logits = (z @ z.T) / temperature
    logits = logits.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
    positives = (torch.arange(n) + n // 2) % n
    return nn.functional.cross_entropy(logits, positives)


def encoder_parameter_count(model: SimCLR) -> int:
    """Trainable parameters of the encoder (convolutions with bias, BatchNorm scale and bias)."""
    return sum(p.numel() for p in model.encoder.parameters())


def make_step(
    seed: int = 0, temperature: float = 0.5, learning_rate: float = 3e-4
) -> tuple[SimCLR, Callable[[torch.Tensor], float]]:
    """(model, step): `step(int16 views [B, 2, T]) -> loss`, one Adam update in training mode."""
    torch.manual_seed(seed)
    model = SimCLR().train()
    # foreach=True: one fused update over all tensors, PyTorch's fastest CPU Adam
    # (the CPU default is a per-tensor loop).
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate, foreach=True)

    def step(views: torch.Tensor) -> float:
        audio = views.to(torch.float32) / 32768.0
        z = model(audio)
        loss = nt_xent(z[:, 0], z[:, 1], temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return model, step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8, help="clips per step, two views each")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, step = make_step()
    views = torch.from_numpy(np.random.default_rng(0).integers(-8000, 8000, (args.batch, 2, 59049), np.int16))
    print(
        f"torch {torch.__version__}, {args.threads} threads; encoder parameters {encoder_parameter_count(model):,}"
    )
    step(views)  # warm-up
    for _ in range(args.steps):
        t = time.perf_counter()
        loss = float(step(views))
        print(f"step {1e3 * (time.perf_counter() - t):.0f} ms, loss {loss:.4f}")


if __name__ == "__main__":
    main()
