"""The training loop on a toy regression: loss goes down, seeds, resume, divergence."""

from __future__ import annotations

import pytest
import torch

from clearbench.training.loop import (
    CHECKPOINT_DIR,
    DivergedError,
    Replay,
    TrainSettings,
    epoch_order,
    train,
)

TRUE_WEIGHT = torch.tensor([[2.0, -1.0, 0.5]])


def toy_items(n: int = 48) -> list[torch.Tensor]:
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0))
    return list(x)


def collate(rows: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(rows)


def mse(model: torch.nn.Module, x: torch.Tensor, micro_batch: int = 0) -> torch.Tensor:
    return torch.nn.functional.mse_loss(model(x), x @ TRUE_WEIGHT.T)


def fresh_model() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Linear(3, 1, bias=False)


def settings(**overrides) -> TrainSettings:
    base = dict(epochs=3, batch_size=8, lr=0.2, weight_decay=0.0, seed=7, schedule="constant")
    return TrainSettings(**{**base, **overrides})


def test_loss_goes_down(tmp_path):
    result = train(fresh_model(), toy_items(), collate, mse, settings(epochs=5), tmp_path)
    assert result.steps == 30  # 5 epochs × 48/8 batches
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < 0.05 * first


def test_same_seed_same_curve_other_seed_other_order(tmp_path):
    a = train(fresh_model(), toy_items(), collate, mse, settings(), tmp_path / "a")
    b = train(fresh_model(), toy_items(), collate, mse, settings(), tmp_path / "b")
    c = train(fresh_model(), toy_items(), collate, mse, settings(seed=8), tmp_path / "c")
    assert a.losses == b.losses
    assert a.losses != c.losses


class Interrupt(Exception):
    pass


def crashing_at(call: int):
    """An MSE loss that raises :class:`Interrupt` on its ``call``-th use (a crash mid-run)."""
    calls = {"n": 0}

    def loss(model, batch, micro_batch):
        calls["n"] += 1
        if calls["n"] == call:
            raise Interrupt
        return mse(model, batch)

    return loss


def test_epoch_order_is_a_fixed_permutation():
    assert sorted(epoch_order(10, 0, 0)) == list(range(10))
    assert epoch_order(10, 0, 1) == epoch_order(10, 0, 1)
    assert epoch_order(10, 0, 0) != epoch_order(10, 0, 1)


def test_replay_draws_a_fresh_sample_each_epoch():
    first = epoch_order(10, 0, 0, n_replay=20, replay_per_epoch=5)
    second = epoch_order(10, 0, 1, n_replay=20, replay_per_epoch=5)
    for order in (first, second):
        assert len(order) == 15
        assert sorted(i for i in order if i < 10) == list(range(10))
        replayed = [i for i in order if i >= 10]
        assert len(set(replayed)) == 5 and max(replayed) < 30
    assert {i for i in first if i >= 10} != {i for i in second if i >= 10}
    assert epoch_order(10, 0, 0, n_replay=0) == epoch_order(10, 0, 0)


def test_replay_trains_and_resumes(tmp_path):
    """Replayed items are trained on (steps count them) and resume stays exact."""
    run = dict(replay=Replay(items=toy_items(40)[24:], per_epoch=8))  # 8 of 16 per epoch
    reference = train(fresh_model(), toy_items(24), collate, mse, settings(), tmp_path / "a",
                      **run)
    assert reference.steps == 3 * (24 + 8) // 8

    with pytest.raises(Interrupt):
        train(fresh_model(), toy_items(24), collate, crashing_at(6), settings(), tmp_path / "b",
              **run)
    resumed = train(fresh_model(), toy_items(24), collate, mse, settings(), tmp_path / "b", **run)
    assert resumed.resumed_from_step == 4
    assert resumed.losses == pytest.approx(reference.losses, abs=1e-6)


def test_replay_cannot_draw_more_than_it_has():
    with pytest.raises(ValueError, match="cannot draw 5 of 3"):
        Replay(items=[1, 2, 3], per_epoch=5)


def test_grad_accumulation_counts_optimizer_steps(tmp_path):
    result = train(fresh_model(), toy_items(), collate, mse, settings(grad_accum=2), tmp_path)
    assert result.steps == 9


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    reference_model = fresh_model()
    reference = train(reference_model, toy_items(), collate, mse,
                      settings(checkpoint_every=4), tmp_path / "reference")

    out = tmp_path / "interrupted"
    with pytest.raises(Interrupt):
        train(fresh_model(), toy_items(), collate, crashing_at(11),
              settings(checkpoint_every=4), out)
    assert (out / CHECKPOINT_DIR).is_dir()  # written at step 8

    seen: list[int] = []

    def recording_mse(model, batch, micro_batch):
        seen.append(micro_batch)
        return mse(model, batch)

    resumed_model = fresh_model()
    resumed = train(resumed_model, toy_items(), collate, recording_mse,
                    settings(checkpoint_every=4), out)
    assert resumed.resumed_from_step == 8
    assert seen == list(range(8, len(reference.losses)))  # the count goes on after resume
    assert resumed.losses == pytest.approx(reference.losses, abs=1e-6)
    torch.testing.assert_close(resumed_model.weight, reference_model.weight)


def test_adam_beta2_reaches_the_optimiser(tmp_path):
    curves = [train(fresh_model(), toy_items(), collate, mse, settings(adam_beta2=beta2),
                    tmp_path / str(beta2)).losses for beta2 in (0.999, 0.5)]
    # Adam's first update is the same for any β₂ (bias correction); later ones are not.
    assert curves[0][:2] == pytest.approx(curves[1][:2], rel=1e-6)
    assert curves[0][2:] != pytest.approx(curves[1][2:], rel=1e-3)


def test_nan_loss_stops_with_the_step(tmp_path):
    def nan_at_third(model, batch, micro_batch):
        loss = mse(model, batch)
        return loss * float("nan") if micro_batch == 2 else loss

    with pytest.raises(DivergedError) as info:
        train(fresh_model(), toy_items(), collate, nan_at_third, settings(), tmp_path)
    assert info.value.step == 3


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(lr=-1.0), dict(mixed_precision="fp8"),
                                 dict(adam_beta2=1.0)])
def test_bad_settings_are_named(tmp_path, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        train(fresh_model(), toy_items(), collate, mse, settings(**bad), tmp_path)


def test_deepspeed_zero3_is_refused_with_a_clear_error(tmp_path):
    from types import SimpleNamespace

    zero3 = SimpleNamespace(num_processes=1,
                            state=SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=3)))
    with pytest.raises(ValueError, match="ZeRO-3"):
        train(fresh_model(), toy_items(), collate, mse, settings(), tmp_path, accelerator=zero3)
