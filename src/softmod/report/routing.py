"""Routing probabilities of a trained soft-modular policy on its evaluation episodes (Fig. 3, 4).

:func:`collect_routing` rolls out the deterministic policy on the run's environments (a stream of
their own) and records, at every step of every task, the routing probabilities of the state the
policy acts on (``policy.routing``, the same forward pass the action comes from). :func:`embed_tsne`
embeds the flattened vectors in 2-D with scikit-learn's t-SNE; :func:`knn_task_accuracy` measures
how well the tasks separate there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROUTING_STREAM = 3  # environment RNG stream of the routing rollouts (0 train, 1 eval, 2 final eval)


@dataclass(frozen=True)
class RoutingData:
    """Routing probabilities of the states of ``episodes`` deterministic episodes per task."""

    task_names: list[str]
    task: np.ndarray  # (N,) task index of each recorded state
    flat: np.ndarray  # (N, (L-1) n n + n) every probability of the state, as RoutingProbs.flat()
    layers_mean: np.ndarray  # (T, L-1, n, n) P_l averaged over each task's states
    final_mean: np.ndarray  # (T, n) final routing vector averaged over each task's states
    episodes: int
    horizon: int

    @property
    def num_layers(self) -> int:
        """Module layers L."""
        return self.layers_mean.shape[1] + 1

    @property
    def num_modules(self) -> int:
        """Modules per layer n."""
        return self.final_mean.shape[1]


@torch.no_grad()
def collect_routing(policy, env, episodes: int, device: torch.device) -> RoutingData:
    """Roll out the deterministic ``policy`` for ``episodes`` episodes in every task of ``env`` and
    record the routing probabilities of every visited state."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    policy.eval()
    task = torch.as_tensor(env.task_ids, device=device)
    flats, layers, finals = [], [], []
    obs = env.reset()
    for _ in range(episodes):
        for _ in range(env.horizon):
            obs_t = torch.as_tensor(obs, device=device)
            probs = policy.routing(obs_t, task)
            flats.append(probs.flat()[0].cpu().numpy())
            layers.append(torch.stack(probs.layers, dim=2)[0].cpu().numpy())  # (B, L-1, n, n)
            finals.append(probs.final[0].cpu().numpy())
            action = policy.act(obs_t, task, deterministic=True)
            obs = env.step(action.cpu().numpy()).obs
    policy.train()
    n_steps = len(flats)
    task_ids = np.tile(np.asarray(env.task_ids), n_steps)
    layer_all = np.concatenate(layers)
    final_all = np.concatenate(finals)
    t_count = len(env.task_names)
    layers_mean = np.stack([layer_all[task_ids == t].mean(axis=0) for t in range(t_count)])
    final_mean = np.stack([final_all[task_ids == t].mean(axis=0) for t in range(t_count)])
    return RoutingData(
        task_names=list(env.task_names),
        task=task_ids,
        flat=np.concatenate(flats).astype(np.float64),
        layers_mean=layers_mean,
        final_mean=final_mean,
        episodes=episodes,
        horizon=env.horizon,
    )


def routing_of_run(
    run_dir: Path, episodes: int, device: torch.device | None = None, checkpoint: str = "final.pt"
) -> RoutingData:
    """Load a soft-modular run's weights (``checkpoints/<checkpoint>``, the final ones by default)
    and collect its routing probabilities."""
    from softmod.checkpoint import load_agent
    from softmod.envs import make_env

    device = device or torch.device("cpu")
    cfg, agent = load_agent(run_dir, device, checkpoint)
    env = make_env(cfg.env, cfg.seed, stream=ROUTING_STREAM)
    try:
        return collect_routing(agent.policy, env, episodes, device)
    finally:
        env.close()


def subsample(task: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_points`` rows, the same number from every task, in order."""
    if len(task) <= max_points:
        return np.arange(len(task))
    rng = np.random.default_rng(seed)
    tasks = np.unique(task)
    per_task = max(1, max_points // len(tasks))
    keep = []
    for t in tasks:
        rows = np.flatnonzero(task == t)
        keep.append(rows if len(rows) <= per_task else rng.choice(rows, per_task, replace=False))
    return np.sort(np.concatenate(keep))


def embed_tsne(x: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE embedding (scikit-learn; PCA initialisation, perplexity capped for few points)."""
    from sklearn.manifold import TSNE

    n = len(x)
    if n < 3:
        return np.zeros((n, 2))
    perplexity = float(min(perplexity, max(2.0, (n - 1) / 3)))
    tsne = TSNE(
        n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed
    )
    return tsne.fit_transform(np.asarray(x, np.float64))


def knn_task_accuracy(points: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy of predicting each point's task from its
    ``k`` nearest other points (majority vote; ties go to the nearest neighbour's task)."""
    from sklearn.neighbors import NearestNeighbors

    n = len(points)
    if n < 2:
        return float("nan")
    k = min(k, n - 1)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    correct = 0
    for i in range(n):
        neigh = [j for j in idx[i] if j != i][:k]
        votes = labels[neigh]
        values, counts = np.unique(votes, return_counts=True)
        best = values[counts == counts.max()]
        pred = next(v for v in votes if v in best)  # a tie goes to the nearest of the tied tasks
        correct += int(pred == labels[i])
    return correct / n
