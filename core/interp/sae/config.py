"""What an SAE is, in six fields: its sizes, its sparsity rule, and where in which model it reads."""

from __future__ import annotations

from dataclasses import dataclass

ARCHITECTURES = ("relu", "topk")


@dataclass(frozen=True)
class SAEConfig:
    """d_in: the width it reads; d_sae: its number of features; architecture: "relu" (ReLU, with an
    L1 penalty in training) or "topk" (the k largest features per token); hook_name: where it reads,
    e.g. "blocks.1.hook_resid_post"; model_spec: lm.spec of the model it was trained on."""

    d_in: int
    d_sae: int
    architecture: str = "relu"
    k: int = 0  # active features per token, TopK only
    hook_name: str = ""
    model_spec: str = ""

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {self.architecture!r}")
        if self.architecture == "topk" and not 0 < self.k <= self.d_sae:
            raise ValueError(f"TopK needs 0 < k <= d_sae, got k={self.k}, d_sae={self.d_sae}")

    @property
    def expansion(self) -> float:
        return self.d_sae / self.d_in
