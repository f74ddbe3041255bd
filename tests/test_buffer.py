"""Multi-task replay: FIFO rings per task, stratified batches with task indices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from softmod.buffer import MultiTaskReplay


def _fill(replay: MultiTaskReplay, steps: int, tasks: np.ndarray) -> None:
    for i in range(steps):
        # encode (task, step) in the observation so rows can be traced
        obs = np.stack([tasks.astype(np.float32), np.full(len(tasks), i, np.float32)], 1)
        replay.add(tasks, obs, np.zeros((len(tasks), 1)), tasks * 1.0, obs, np.zeros(len(tasks)))


def test_ring_wraparound_keeps_the_newest_rows_per_task() -> None:
    replay = MultiTaskReplay(num_tasks=3, capacity=5, obs_dim=2, act_dim=1)
    _fill(replay, 7, np.arange(3))
    assert replay.size.tolist() == [5, 5, 5]
    assert replay.pos.tolist() == [2, 2, 2]
    for t in range(3):
        steps = sorted(replay.obs[t, :, 1].tolist())
        assert steps == [2, 3, 4, 5, 6]  # rows 0 and 1 were overwritten, FIFO
        assert torch.all(replay.obs[t, :, 0] == t)  # every row of ring t is task t's
    # positions 0 and 1 hold steps 5 and 6 (the wrapped writes)
    assert replay.obs[0, 0, 1] == 5 and replay.obs[0, 1, 1] == 6


def test_rings_fill_independently() -> None:
    replay = MultiTaskReplay(num_tasks=3, capacity=4, obs_dim=2, act_dim=1)
    _fill(replay, 3, np.array([0, 2]))
    _fill(replay, 1, np.array([1]))
    assert replay.size.tolist() == [3, 1, 3]
    assert replay.min_size() == 1


def test_stratified_batch_has_equal_rows_per_task_and_correct_task_ids() -> None:
    replay = MultiTaskReplay(num_tasks=4, capacity=50, obs_dim=2, act_dim=1, seed=1)
    _fill(replay, 30, np.arange(4))
    batch = replay.sample(64)
    assert batch.obs.shape == (64, 2) and batch.task.shape == (64,)
    assert torch.bincount(batch.task, minlength=4).tolist() == [16, 16, 16, 16]
    # each row really comes from its task's ring, and only from filled rows
    assert torch.equal(batch.obs[:, 0].long(), batch.task)
    assert torch.equal(batch.reward.long(), batch.task)
    assert batch.obs[:, 1].max() < 30


def test_sampling_only_reads_filled_rows() -> None:
    replay = MultiTaskReplay(num_tasks=2, capacity=1000, obs_dim=2, act_dim=1)
    _fill(replay, 3, np.arange(2))
    batch = replay.sample(2000)
    assert set(batch.obs[:, 1].long().tolist()) == {0, 1, 2}


def test_batch_must_be_a_multiple_of_the_task_count() -> None:
    replay = MultiTaskReplay(num_tasks=3, capacity=5, obs_dim=2, act_dim=1)
    _fill(replay, 2, np.arange(3))
    with pytest.raises(ValueError, match="not a multiple of the task count 3"):
        replay.sample(10)


def test_same_seed_same_batches() -> None:
    a = MultiTaskReplay(num_tasks=2, capacity=100, obs_dim=2, act_dim=1, seed=5)
    b = MultiTaskReplay(num_tasks=2, capacity=100, obs_dim=2, act_dim=1, seed=5)
    for r in (a, b):
        _fill(r, 40, np.arange(2))
    assert torch.equal(a.sample(32).obs, b.sample(32).obs)


def test_state_dict_round_trip_saves_only_the_filled_rows(tmp_path) -> None:
    import io

    rng = np.random.default_rng(0)
    a = MultiTaskReplay(3, 1000, 5, 2, seed=1)
    for _ in range(40):
        a.add(np.arange(3), *(rng.normal(size=(3, d)) for d in (5, 2)), rng.normal(size=3),
              rng.normal(size=(3, 5)), np.zeros(3))  # fmt: skip
    a.sample(12)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    assert buf.tell() < 20_000  # 40 rows per task, not the 1000-row rings
    buf.seek(0)
    b = MultiTaskReplay(3, 1000, 5, 2, seed=7)
    b.load_state_dict(torch.load(buf, weights_only=True))
    assert b.size.tolist() == a.size.tolist() and b.pos.tolist() == a.pos.tolist()
    x, y = a.sample(30), b.sample(30)  # the same rows, from the same sampling RNG state
    assert all(torch.equal(u, v) for u, v in zip(x, y, strict=True))
