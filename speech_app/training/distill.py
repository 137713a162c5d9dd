"""Knowledge distillation: one model learns an ensemble's averaged class probabilities.

An ensemble of models fine-tuned from one base scores better than any of them, but costs one pass of
each model per clip. Distillation (Hinton et al., 2015) trains one model of the shipped shape to
match the ensemble: on every training batch the teachers see the same augmented clips as the student,
and the loss mixes the usual label loss with the Kullback-Leibler divergence between the teachers'
averaged probabilities and the student's, both softened by a temperature (TrainConfig.distill_weight,
distill_temperature; `speech-app train --teacher A,B,...`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..features import MfccFrontend
from ..modelfile import ModelBundle


class TeacherEnsemble:
    """Frozen models whose softened probabilities, averaged, are the student's soft targets."""

    def __init__(self, bundles: list[ModelBundle], labels: list[str], clip_samples: int, device: torch.device):
        check_teachers(bundles, labels, clip_samples)
        # each teacher keeps its own MFCC settings: it only knows the features it was trained on
        self.members = [(MfccFrontend(b.features).to(device), b.model.to(device).eval()) for b in bundles]
        self.paths = [str(b.path) if b.path else "" for b in bundles]

    @torch.no_grad()
    def probabilities(self, waves: torch.Tensor, temperature: float) -> torch.Tensor:
        """(B, samples) augmented waveforms -> (B, n_classes) mean of the teachers' softmax(logits / T).
        The models run in the caller's precision (autocast); their MFCCs always in float32, as the
        student's: a loud frame's power overflows float16."""
        probabilities = []
        for frontend, model in self.members:
            with torch.autocast(waves.device.type, enabled=False):
                features = frontend(waves.float())
            probabilities.append(torch.softmax(model(features).float() / temperature, dim=-1))
        return torch.stack(probabilities).mean(dim=0)


def check_teachers(bundles: list[ModelBundle], labels: list[str], clip_samples: int | None = None) -> None:
    """ValueError naming the first teacher whose labels (or window, once known) are not the student's:
    the training run checks the labels before it decodes its data."""
    for bundle in bundles:
        name = bundle.path.name if bundle.path else "a teacher"
        if list(bundle.labels) != list(labels):
            raise ValueError(f"{name}: a teacher must have the student's labels ({', '.join(labels)}), "
                             f"not {', '.join(bundle.labels)}")
        if clip_samples is not None and bundle.features.clip_samples != clip_samples:
            raise ValueError(f"{name}: a teacher must take the student's window ({clip_samples} samples), "
                             f"not {bundle.features.clip_samples}")


def distillation_loss(student_logits: torch.Tensor, teacher_probabilities: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """KL(teachers || student) at temperature T, scaled by T**2 so that its gradients keep the size
    of the label loss's whatever T is (softer targets give gradients 1/T**2 as large)."""
    log_student = F.log_softmax(student_logits.float() / temperature, dim=-1)  # (B, C)
    return F.kl_div(log_student, teacher_probabilities, reduction="batchmean") * temperature ** 2

