"""Shared by the PMRF tests: random non-zero weights for tiny networks (published inits zero some outputs)."""
import torch
from torch import nn


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Overwrite every float tensor (parameters and buffers) with seeded non-zero random values.

    Cosine-attention scales must stay positive (their square root is taken), so they are drawn in [5, 15].
    Integer buffers (SwinIR's relative position index) are structural and keep their values.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("self_attn.scale"):
                t.copy_(5 + 10 * torch.rand(t.shape, generator=gen))
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.3 + 0.05)
    return module


def perturbed_outputs_differ(module: nn.Module, run, skip=()) -> list[str]:
    """Names of float tensors whose perturbation leaves `run(module)` unchanged (should be empty)."""
    base = run(module)
    unchanged = []
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point() or name in skip:
                continue
            saved = t.clone()
            t.add_(0.1 * torch.sign(t) + 0.05)
            if torch.equal(run(module), base):
                unchanged.append(name)
            t.copy_(saved)
    return unchanged


def in_range_posterior_mean(nets, lq: torch.Tensor) -> None:
    """Rescale the posterior-mean network's last conv so its output on `lq` spreads over (0, 1).

    Random SwinIR weights give outputs in the tens of thousands, all clipped to 0 or 1: a comparison of clipped
    outputs could then not see the network at all.
    """
    conv = nets.mmse_model.conv_last
    with torch.no_grad():
        scale = 0.15 / nets.mmse_model(lq).std().item()
        conv.weight.mul_(scale)
        conv.bias.mul_(scale)
        conv.bias.sub_(nets.mmse_model(lq).mean(dim=(0, 2, 3)) - 0.5)  # centre each channel on 0.5
