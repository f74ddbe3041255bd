"""Checkpoints: tensors and plain data only, written atomically, loaded without unpickling objects.

A run directory's ``checkpoints/`` holds:

- ``step-<S>.pt``: a full checkpoint at environment step S (networks, target networks, optimisers,
  temperatures, router state, every RNG state, counters, logger position, config), small;
- ``replay-<S>.pt``: the replay rings at step S, large, written before ``step-<S>.pt`` so that a
  full checkpoint never exists without its replay;
- ``best.pt``: the weights of the best periodic evaluation (mean success), ``final.pt``: the
  weights at the end. Both load with :func:`load_agent` (``softmod eval --checkpoint``).

Every file is written to a temporary name, fsynced and renamed over the target, so a crash during
a save never damages an earlier file. Only the newest ``keep`` full checkpoints are kept. Loading
uses ``torch.load(weights_only=True)``: a file holding any pickled object is refused.

Integrity (issue 16): every file carries the SHA-256 of its own content (:func:`content_digest`:
every tensor's dtype, shape and bytes, every plain value, in order) under the key ``sha256``, and
``step-<S>.pt`` also holds the digest of its replay. :func:`load_file` recomputes it, so flipped
bytes anywhere in a file (which ``torch.load`` itself does not notice when they land in tensor
data) are a :class:`CheckpointError`, handled like truncation: resume renames the file ``*.bad`` and
takes the previous checkpoint. Files written before the digest existed load unverified.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from softmod.config import RunConfig, load_config
from softmod.sac.agent import MultiTaskSAC

FORMAT = "softmod-checkpoint-1"
_STEP_FILE = re.compile(r"^step-(\d+)\.pt$")


class CheckpointError(ValueError):
    """A checkpoint or run directory that cannot be loaded."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (e.g. a full disk); earlier checkpoints are intact."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on this platform / file system
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


DIGEST_KEY = "sha256"


def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)};".encode())
        for k, v in obj.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(obj, list | tuple):  # a tuple may come back as a list: the same content
        h.update(f"L{len(obj)};".encode())
        for v in obj:
            _feed(h, v)
    else:  # str, int, float, bool, None: repr round-trips exactly
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def content_digest(obj: Any) -> str:
    """SHA-256 of a checkpoint's content: tensors (dtype, shape, bytes) and plain data, in order."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _write_error(what: str, path: Path, err: BaseException) -> CheckpointWriteError:
    """A one-line CheckpointWriteError from an OSError or from torch's RuntimeError on a full
    disk ("unexpected pos", "file write failed")."""
    reason = getattr(err, "strerror", None) or (str(err).strip().splitlines() or [""])[0]
    if isinstance(err, RuntimeError):  # torch's writer hides the errno: look at the disk
        try:
            st = os.statvfs(path.parent)
            if st.f_bavail * st.f_frsize < 1 << 20:
                reason = "No space left on device"
        except OSError:
            pass
    return CheckpointWriteError(
        f"cannot write {what} to {path.parent}: {reason or type(err).__name__}; "
        f"the earlier checkpoints are intact"
    )


def atomic_torch_save(obj: dict, path: Path, what: str | None = None) -> str:
    """``torch.save`` (with the content digest added) to a temporary file, fsync, then rename over
    ``path`` and fsync the dir; returns the digest. A failure (a full disk) leaves no temporary
    behind and raises CheckpointWriteError naming ``what`` (default: the file)."""
    digest = content_digest(obj)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            torch.save({**obj, DIGEST_KEY: digest}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        error = _write_error(what or path.name, path, err)  # before the space is freed again
        tmp.unlink(missing_ok=True)
        raise error from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return digest


def load_file(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint file with ``weights_only=True`` and verify its content digest; any
    failure is a one-line CheckpointError naming the file (refused pickled objects, truncated or
    corrupted data, a digest that does not match)."""
    obj, _ = _load_verified(path, device)
    return obj


def _load_verified(path: Path, device: torch.device | str) -> tuple[dict[str, Any], str | None]:
    """:func:`load_file` and the file's digest (None for a file written without one)."""
    try:
        obj = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain data ({first})"
        ) from None
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found") from None
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"cannot load {path}: truncated or corrupted ({first})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"cannot load {path}: not a softmod checkpoint")
    digest = obj.pop(DIGEST_KEY, None)
    if digest is not None and content_digest(obj) != digest:
        raise CheckpointError(f"cannot load {path}: corrupted (its content digest does not match)")
    return obj, digest


def save_weights(agent: MultiTaskSAC, path: Path, step: int, **extra: Any) -> None:
    """Save the agent's networks and temperatures (no optimiser or replay state); a failed write
    is a CheckpointWriteError and leaves an earlier file of that name intact."""
    dims = torch.tensor([agent.obs_dim, agent.act_dim, agent.num_tasks])
    obj = {"agent": agent.state_dict(), "step": torch.tensor(step), "dims": dims, **extra}
    atomic_torch_save(obj, path, f"{path.name} (step {step:,})")


def load_agent(
    run_dir: Path, device: torch.device, name: str = "final.pt"
) -> tuple[RunConfig, MultiTaskSAC]:
    """Rebuild a run's agent from ``config.json`` and ``checkpoints/<name>`` (weights only); any
    checkpoint works: ``final.pt``, ``best.pt`` or a full ``step-<S>.pt``."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise CheckpointError(f"{cfg_path} not found: not a softmod run directory")
    ckpt = checkpoint_file(run_dir, name)
    cfg = load_config(cfg_path)
    state = load_file(ckpt, device)
    try:
        obs_dim, act_dim, n_tasks = (int(x) for x in state["dims"])
        agent = MultiTaskSAC(cfg, obs_dim, act_dim, n_tasks, device)
        agent.load_state_dict(state["agent"])
    except Exception as err:  # not a softmod file, or another run's networks
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"cannot load checkpoint {ckpt}: {first}") from None
    return cfg, agent


def checkpoint_step(run_dir: Path, name: str = "final.pt") -> int:
    """The environment step at which ``RUN_DIR/checkpoints/<name>`` was saved; an unreadable
    file, or one without a step, is a CheckpointError."""
    path = checkpoint_file(run_dir, name)
    try:
        return int(load_file(path)["step"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path} holds no step: not a softmod checkpoint") from None


def checkpoint_file(run_dir: Path, name: str) -> Path:
    """``RUN_DIR/checkpoints/<name>``: a file name of that folder (no path), which must exist; a
    bad name is a CheckpointError listing the checkpoints there are."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    have = sorted(p.name for p in ckpt_dir.glob("*.pt")) if ckpt_dir.is_dir() else []
    listed = f"; allowed: {', '.join(have)}" if have else ": the run has no saved weights yet"
    if not name or Path(name).name != name or name in (".", ".."):
        raise CheckpointError(f"--checkpoint {name!r} is not a file name in {ckpt_dir}{listed}")
    if not (ckpt_dir / name).is_file():
        raise CheckpointError(f"{ckpt_dir / name} not found{listed}")
    return ckpt_dir / name


def step_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """The full checkpoints of a run directory's ``checkpoints/``, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _STEP_FILE.match(p.name))]
    return sorted(found)


def replay_path(ckpt_dir: Path, step: int) -> Path:
    """Where the replay rings of the full checkpoint at ``step`` live."""
    return ckpt_dir / f"replay-{step:012d}.pt"


def step_checkpoint_name(step: int) -> str:
    """The file name of the full checkpoint of ``step``: ``step-000000500000.pt``."""
    return f"step-{step:012d}.pt"


def write_checkpoint(
    ckpt_dir: Path, step: int, state: dict[str, Any], replay: dict[str, Any], keep: int
) -> Path:
    """Write the replay, then the full checkpoint at ``step``; keep only the newest ``keep``."""
    rpath = replay_path(ckpt_dir, step)
    path = ckpt_dir / step_checkpoint_name(step)
    what = f"the checkpoint of step {step:,}"
    try:
        replay_digest = atomic_torch_save(replay, rpath, what)
        meta = {"format": FORMAT, "step": step, "replay_file": rpath.name}
        meta.update(replay_bytes=rpath.stat().st_size, replay_sha256=replay_digest)
        atomic_torch_save({**meta, **state}, path, what)
    except CheckpointWriteError:  # a full disk, a lost mount: keep what was there before
        if not path.exists():
            rpath.unlink(missing_ok=True)
        raise
    except OSError as err:  # stat of the replay
        if not path.exists():
            rpath.unlink(missing_ok=True)
        raise _write_error(what, path, err) from None
    for old_step, old in step_checkpoints(ckpt_dir)[:-keep]:
        old.unlink(missing_ok=True)
        replay_path(ckpt_dir, old_step).unlink(missing_ok=True)
    for stray in ckpt_dir.glob("replay-*.pt"):  # replays whose full checkpoint is gone
        m = re.match(r"^replay-(\d+)\.pt$", stray.name)
        if m and not (ckpt_dir / f"step-{m.group(1)}.pt").exists():
            stray.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> tuple[dict, dict]:
    """Load one full checkpoint and its replay; a CheckpointError names the bad file."""
    state = load_file(path, device)
    if state.get("format") != FORMAT:
        raise CheckpointError(f"cannot load {path}: not a full softmod checkpoint")
    rpath = path.parent / str(state["replay_file"])
    if not rpath.exists():
        raise CheckpointError(f"{rpath} not found: the replay of {path.name} is missing")
    if rpath.stat().st_size != state["replay_bytes"]:
        raise CheckpointError(
            f"cannot load {rpath}: truncated ({rpath.stat().st_size} bytes, "
            f"{state['replay_bytes']} written)"
        )
    replay, digest = _load_verified(rpath, device)
    expected = state.get("replay_sha256")
    if expected is not None and digest != expected:
        raise CheckpointError(f"cannot load {rpath}: not the replay {path.name} was saved with")
    return state, replay


def load_latest_checkpoint(
    ckpt_dir: Path, warn: Callable[[str], None], device: torch.device | str = "cpu"
) -> tuple[Path, dict, dict]:
    """The newest full checkpoint that loads; a bad one is reported through ``warn``, renamed to
    ``*.bad`` and the previous one is tried. Raises CheckpointError if none loads."""
    found = step_checkpoints(ckpt_dir)
    if not found:
        raise CheckpointError(f"no checkpoint in {ckpt_dir}: nothing to resume")
    errors = []
    for _, path in reversed(found):
        try:
            state, replay = load_checkpoint(path, device)
        except CheckpointError as err:
            errors.append(str(err))
            warn(f"{err}; trying the previous checkpoint")
            path.rename(path.with_name(path.name + ".bad"))
            continue
        return path, state, replay
    raise CheckpointError(f"no loadable checkpoint in {ckpt_dir}: {'; '.join(errors)}")


def latest_checkpoint_step(run_dir: Path) -> int | None:
    """The step of the newest full checkpoint of a run (by file name; not loaded), or None."""
    found = step_checkpoints(Path(run_dir) / "checkpoints")
    return max(step for step, _ in found) if found else None
