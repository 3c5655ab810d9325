"""Unlearning losses on small hand-made tensors, and each method's formula at θ = θ₀."""

from __future__ import annotations

import math

import pytest
import torch

from clearbench.methods import METHODS, build_method
from clearbench.methods.base import FORGET, OTHER_ANSWER, RANDOM_ANSWER, REFUSAL, RETAIN, ce
from clearbench.methods.losses import (
    answer_kl,
    answer_rows,
    dpo_loss,
    l1_norm,
    masked_mse,
    mean_nll,
    npo_loss,
    sequence_log_prob,
    token_nll,
)
from clearbench.methods.rmu import control_vector
from clearbench.models.vlm import answer_logits

IGNORE = -100


def test_answer_rows_follow_the_labels_row_by_row() -> None:
    labels = torch.tensor([[IGNORE, 1, 2, 3], [IGNORE] * 4, [IGNORE, IGNORE, IGNORE, 4]])
    # Position t predicts label t + 1: row 0 has three answer tokens, row 2 one.
    assert answer_rows(labels).tolist() == [0, 0, 0, 2]


def test_token_nll_sequence_log_prob_and_mean_nll_by_hand() -> None:
    # Vocabulary of 2; three answer tokens, two of row 0 and one of row 2 (row 1 has none).
    logits = torch.tensor([[0.0, math.log(3.0)], [math.log(3.0), 0.0], [0.0, 0.0]])
    targets = torch.tensor([1, 0, 1])  # p = 3/4, 3/4, 1/2
    nll = [-math.log(0.75), -math.log(0.75), math.log(2.0)]
    assert token_nll(logits, targets).tolist() == pytest.approx(nll)
    rows = torch.tensor([0, 0, 2])
    assert sequence_log_prob(logits, targets, rows, 3).tolist() == pytest.approx(
        [2 * math.log(0.75), 0.0, math.log(0.5)]
    )
    assert mean_nll(logits, targets).item() == pytest.approx(sum(nll) / 3)
    assert mean_nll(logits[:0], targets[:0]).item() == 0.0


def test_kl_of_a_model_to_itself_is_zero_and_by_hand_otherwise() -> None:
    logits = torch.randn(4, 7)
    assert answer_kl(logits, logits).item() == pytest.approx(0.0, abs=1e-7)
    # Reference p = (1/2, 1/2), policy q = (3/4, 1/4): KL = ½·ln(½ / ¾) + ½·ln(½ / ¼) = ½·ln(4/3)
    reference = torch.tensor([[0.0, 0.0]])
    policy = torch.tensor([[math.log(3.0), 0.0]])
    assert answer_kl(reference, policy).item() == pytest.approx(0.5 * math.log(4 / 3))
    # The mean over positions: with a second, identical position the KL halves.
    both = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    assert answer_kl(both, torch.cat([policy, both[1:]])).item() == pytest.approx(
        0.25 * math.log(4 / 3)
    )
    assert answer_kl(logits[:0], logits[:0]).item() == 0.0


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_dpo_and_npo_at_the_reference_equal_two_over_beta_log_two(beta: float) -> None:
    log_p = torch.tensor([-3.0, -7.5, -0.2])
    expected = (2 / beta) * math.log(2)
    assert dpo_loss(log_p, log_p + 1, log_p, log_p + 1, beta).item() == pytest.approx(expected)
    assert npo_loss(log_p, log_p, beta).item() == pytest.approx(expected)


def test_dpo_and_npo_by_hand_away_from_the_reference() -> None:
    # DPO margin: (−1 − −2) − (−3 − −2) = 2; β = 0.5 → −(2/0.5)·log σ(1)
    loss = dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]),
                    torch.tensor([-2.0]), beta=0.5)
    assert loss.item() == pytest.approx(-4 * math.log(1 / (1 + math.exp(-1))))
    # NPO: log π − log π₀ = −1, β = 0.5 → (2/0.5)·log(1 + e^{−0.5})
    loss = npo_loss(torch.tensor([-3.0]), torch.tensor([-2.0]), beta=0.5)
    assert loss.item() == pytest.approx(4 * math.log(1 + math.exp(-0.5)))


def test_masked_mse_and_l1_by_hand() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    target = torch.tensor([1.0, 0.0])
    mask = torch.tensor([[1, 1, 0]])
    # position 0: (0² + 2²)/2 = 2; position 1: (2² + 4²)/2 = 10; position 2 masked
    assert masked_mse(hidden, target, mask).item() == pytest.approx(6.0)
    tensors = [torch.tensor([[1.0, -2.0]]), torch.tensor([-0.5, 0.25, 0.0])]
    assert l1_norm(tensors).item() == pytest.approx(3.75)
    with pytest.raises(ValueError):
        l1_norm([])


def test_control_vector_has_the_steering_norm_and_is_reproducible() -> None:
    u = control_vector(16, 6.5, seed=3)
    assert u.norm().item() == pytest.approx(6.5)
    assert torch.equal(u, control_vector(16, 6.5, seed=3))
    assert not torch.equal(u, control_vector(16, 6.5, seed=4))


# --- methods at θ = θ₀ with a fake model -----------------------------------------------


class Fixed(torch.nn.Module):
    """A "model" whose logits are a fixed function of the batch (policy == reference), made by
    an output head as in a real model."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale))
        self.head = torch.nn.Identity()

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.head

    def forward(self, input_ids: torch.Tensor, **_: object) -> object:
        generator = torch.Generator().manual_seed(int(input_ids.sum()))
        hidden = torch.randn(*input_ids.shape, 11, generator=generator) * self.scale
        return type("Output", (), {"logits": self.head(hidden)})()


class FixedReference:
    def __init__(self, model: Fixed) -> None:
        self.model = model

    def answer_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return answer_logits(self.model, batch)[0]


def batches() -> dict[str, dict[str, torch.Tensor]]:
    def batch(seed: int) -> dict[str, torch.Tensor]:
        ids = torch.randint(0, 11, (3, 6), generator=torch.Generator().manual_seed(seed))
        labels = ids.clone()
        labels[:, :3] = IGNORE
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}

    return {FORGET: batch(1), RETAIN: batch(2), REFUSAL: batch(3), RANDOM_ANSWER: batch(4),
            OTHER_ANSWER: batch(5)}


def ce_of(model: Fixed, batch: dict[str, torch.Tensor]) -> float:
    """Mean NLL of the answer tokens, from the logits at every position."""
    logits, labels = model(**batch).logits[:, :-1], batch["labels"][:, 1:]
    answer = labels != IGNORE
    return torch.nn.functional.cross_entropy(logits[answer], labels[answer]).item()


def test_ce_is_the_mean_nll_over_every_answer_token_of_the_batch() -> None:
    uniform = Fixed(scale=0.0)  # p = 1/11 for every token
    data = batches()
    assert ce(uniform, data[FORGET]).item() == pytest.approx(math.log(11))
    assert ce(Fixed(), data[RETAIN]).item() == pytest.approx(ce_of(Fixed(), data[RETAIN]))
    no_answer = {**data[RETAIN], "labels": torch.full_like(data[RETAIN]["labels"], IGNORE)}
    assert ce(Fixed(), no_answer).item() == 0.0


def test_every_method_at_the_reference_equals_its_formula() -> None:
    model = Fixed()
    reference = FixedReference(model)
    data = batches()
    forget, retain = ce_of(model, data[FORGET]), ce_of(model, data[RETAIN])
    refusal, random_answer = ce_of(model, data[REFUSAL]), ce_of(model, data[RANDOM_ANSWER])
    other_answer = ce_of(model, data[OTHER_ANSWER])
    log2 = math.log(2)
    expected = {
        "retain_ft": retain,
        "ga": -forget,
        "gd": -forget + retain,
        "kl": -forget,  # KL(θ₀ ‖ θ₀) = 0
        "idk": refusal + retain,
        "dpo": (2 / 0.1) * log2 + retain,
        "npo": (2 / 0.1) * log2 + retain,
        "llmu": -0.5 * forget + random_answer,
        "sku": 2.5 * forget + other_answer,  # − 0.5 · KL(θ₀ ‖ θ₀) = 0
    }
    for name, value in expected.items():
        method = build_method(name)
        loss = method.loss(model, data, reference if method.needs_reference else None, 1)
        assert loss.item() == pytest.approx(value, rel=1e-5), name
    assert set(expected) | {"scrub", "rmu"} == set(METHODS)


def test_scrub_alternates_max_and_min_steps_as_configured() -> None:
    scrub = build_method("scrub", {"max_steps": 2, "min_steps": 1, "gamma": 0.5})
    assert [scrub.is_max_step(i) for i in range(7)] == [True, True, False] * 2 + [True]
    model = Fixed()
    data = batches()
    reference = FixedReference(model)
    assert scrub.loss(model, data, reference, 0).item() == pytest.approx(0.0, abs=1e-6)  # −KL
    assert scrub.loss(model, data, reference, 2).item() == pytest.approx(
        0.5 * ce_of(model, data[RETAIN]), rel=1e-5
    )


def test_build_method_names_unknown_methods_and_options() -> None:
    with pytest.raises(ValueError, match=r"unknown unlearning method 'forgetful'.*known: dpo"):
        build_method("forgetful")
    with pytest.raises(ValueError, match=r"'npo' has no option.*alpha.*beta, retain_weight"):
        build_method("npo", {"alpha": 1.0})
    assert build_method("npo", {"beta": 0.5}).options() == {"beta": 0.5, "retain_weight": 1.0}


def test_methods_without_a_reference_refuse_to_guess() -> None:
    with pytest.raises(RuntimeError, match="'kl' needs the reference model"):
        build_method("kl").loss(Fixed(), batches(), None, 0)
