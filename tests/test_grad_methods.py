"""Gradient methods (issue 21) against their papers' formulas, written out here on tiny problems
with two hand-written conflicting task gradients; per-task gradients; bad input."""

from __future__ import annotations

import pytest
import torch

from softmod.config import FAMOConfig, GradNormConfig
from softmod.grad.base import UpdateTerms, mean_pairwise_cosine, per_task_grads
from softmod.grad.cagrad import cagrad_direction
from softmod.grad.famo import FAMO
from softmod.grad.gradnorm import GradNorm
from softmod.grad.pcgrad import pcgrad_direction

CPU = torch.device("cpu")
# two conflicting task gradients (g1 · g2 = -1.5 < 0), different norms
G1 = torch.tensor([2.0, 0.5, 0.0])
G2 = torch.tensor([-1.0, 1.0, 0.5])
GRADS = torch.stack([G1, G2])
BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults, used by the methods


def test_pcgrad_projects_each_conflicting_gradient_onto_the_others_normal_plane() -> None:
    """Yu et al. 2020, Alg. 1: g_i <- g_i - (g_i·g_j / ||g_j||²) g_j when g_i·g_j < 0; the update
    is the mean of the projected gradients (mtrl, metaworld-algorithms)."""
    p1 = G1 - (G1 @ G2) / (G2 @ G2) * G2
    p2 = G2 - (G2 @ G1) / (G1 @ G1) * G1
    expected = (p1 + p2) / 2
    assert torch.allclose(pcgrad_direction(GRADS), expected, atol=1e-6)
    assert abs(float(p1 @ G2)) < 1e-6  # the projection is orthogonal to the other gradient
    # no conflict: the mean, untouched
    same = torch.stack([G1, G1 + 0.1])
    assert torch.allclose(pcgrad_direction(same), same.mean(0), atol=1e-6)


def test_pcgrad_projects_sequentially_in_the_given_order_against_the_original_gradients() -> None:
    torch.manual_seed(0)
    grads = torch.randn(3, 5)
    order = torch.tensor([[2, 1], [0, 2], [1, 0]])
    projected = []
    for i in range(3):  # the paper's loop, written out
        g = grads[i].clone()
        for j in order[i].tolist():
            dot = g @ grads[j]
            if dot < 0:
                g = g - dot / (grads[j] @ grads[j]) * grads[j]
        projected.append(g)
    expected = torch.stack(projected).mean(0)
    assert torch.allclose(pcgrad_direction(grads, order), expected, atol=1e-5)


def test_cagrad_direction_is_the_papers_update_for_its_dual_weights() -> None:
    """Liu et al. 2021: w* = argmin_{w in simplex} g_w·g0 + c ||g0|| ||g_w||, the update
    d = g0 + (c ||g0|| / ||g_w||) g_w, divided by 1 + c² as the mtrl patch. The dual is solved as
    the patch does (20 SGD steps on softmax logits, the best iterate kept), an approximation: its
    objective is checked against a dense grid (here within 2%; the first iterate, uniform w, is
    the worst it can return)."""
    c = 0.5
    g0 = GRADS.mean(0)

    def objective(w: torch.Tensor) -> float:
        gw = w.double() @ GRADS.double()
        return float(gw @ g0.double() + c * g0.double().norm() * gw.norm())

    direction, w = cagrad_direction(GRADS, c)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-6) and bool((w >= 0).all())
    gw = w @ GRADS
    expected = (g0 + c * g0.norm() / gw.norm() * gw) / (1 + c**2)
    assert torch.allclose(direction, expected, atol=1e-3), (direction, expected)
    grid = min(objective(torch.tensor([k / 10000, 1 - k / 10000])) for k in range(10001))
    assert grid <= objective(w) <= grid + 0.02 * abs(grid)
    assert objective(w) <= objective(torch.tensor([0.5, 0.5]))
    # the point of CAGrad: both tasks' losses decrease along d (g_i · d > 0), by more than the
    # worse task does along the mean gradient g0
    assert float(G1 @ direction) > 0 and float(G2 @ direction) > 0
    assert min(float(G1 @ g0), float(G2 @ g0)) < min(float(G1 @ direction), float(G2 @ direction))


def test_gradnorm_weight_steps_follow_the_paper() -> None:
    """Chen et al. 2018, Alg. 1: G_i = w_i ||g_i||, r_i = L̃_i / mean L̃ (L̃_i = L_i(t) / L_i(0)),
    L_grad = sum_i |G_i - mean(G) r_i^α| with the targets constant, one optimiser step on w, then
    w <- T w / sum w. The network's gradient is mean_i w_i g_i."""
    alpha, lr = 1.5, 0.1
    method = GradNorm(GradNormConfig(alpha=alpha, lr=lr), [], [], 2, CPU)
    norms = GRADS.norm(dim=1)
    l0, l1 = torch.tensor([4.0, 1.0]), torch.tensor([3.0, 0.5])  # task 1 trains slower

    direction, metrics = method.combine("q", GRADS, l0)
    assert torch.allclose(direction, (G1 + G2) / 2)  # w(0) = 1: the plain mean
    method.after_step(None)  # type: ignore[arg-type]
    # step 1: L(0) is this update's loss, r = 1, the target is the mean weighted norm
    w0 = torch.ones(2)
    big = w0 * norms
    grad1 = torch.sign(big - big.mean()) * norms
    w1 = w0 - lr * grad1 / (grad1.abs() + ADAM_EPS)  # Adam's first step: m̂ = g, v̂ = g²
    w1 = 2 * w1 / w1.sum()
    assert torch.allclose(method.weights["q"].detach(), w1, atol=1e-6)

    direction, metrics = method.combine("q", GRADS, l1)
    assert torch.allclose(direction, (w1 @ GRADS) / 2, atol=1e-6)
    assert torch.allclose(torch.stack([metrics["grad/q_weight/0"], metrics["grad/q_weight/1"]]), w1)
    method.after_step(None)  # type: ignore[arg-type]
    ratio = l1 / l0
    rate = ratio / ratio.mean()
    big = w1 * norms
    grad2 = torch.sign(big - big.mean() * rate**alpha) * norms
    m1, v1 = (1 - BETA1) * grad1, (1 - BETA2) * grad1 * grad1
    m2, v2 = BETA1 * m1 + (1 - BETA1) * grad2, BETA2 * v1 + (1 - BETA2) * grad2 * grad2
    w2 = w1 - lr * (m2 / (1 - BETA1**2)) / ((v2 / (1 - BETA2**2)).sqrt() + ADAM_EPS)
    w2 = 2 * w2 / w2.sum()
    assert torch.allclose(method.weights["q"].detach(), w2, atol=1e-6)
    assert float(grad2[0]) < 0 < float(grad2[1])  # the slower task (higher L̃) is pushed up


def test_famo_gradient_and_weight_step_follow_the_paper() -> None:
    """Liu et al. 2023: the parameters' gradient is sum_i z_i ∇L_i / (c L_i), c = sum_i z_i / L_i,
    z = softmax(ξ); after the step, ξ takes one Adam step (weight decay γ) on
    J_softmax(ξ)^T δ with δ_i = log L_i(before) - log L_i(after)."""
    gamma, lr = 0.01, 0.025
    theta = torch.nn.Parameter(torch.tensor([0.5, -0.3, 0.2]))
    anchors = torch.stack([G1, G2])  # task i's loss: ½ ||θ - a_i||², conflicting pulls

    def rows(th: torch.Tensor) -> torch.Tensor:
        return 0.5 * (th[None] - anchors).pow(2).sum(1)[None]  # (E=1, B=T=2): one row per task

    method = FAMO(FAMOConfig(gamma=gamma, lr=lr), [], [theta], 2, CPU)
    q_rows = rows(theta)
    terms = UpdateTerms(
        total=q_rows.sum(),
        loss_q=q_rows.mean(),
        loss_pi=torch.zeros((), requires_grad=True),
        extra=None,
        q_rows=q_rows,
        pi_rows=torch.zeros(2),
        num_tasks=2,
        critic_now=lambda: rows(theta.detach())[0],
    )
    metrics = method.backward(terms)
    losses = q_rows.detach()[0]
    z = torch.tensor([0.5, 0.5])
    assert torch.allclose(torch.stack([metrics["grad/q_weight/0"], metrics["grad/q_weight/1"]]), z)
    task_grads = theta.detach()[None] - anchors  # ∇L_i
    c = (z / losses).sum()
    expected = ((z / (c * losses))[:, None] * task_grads).sum(0)
    assert torch.allclose(theta.grad, expected, atol=1e-6)
    with torch.no_grad():
        theta -= 0.3 * theta.grad  # the critics' step
    method.after_step(terms)
    after = rows(theta.detach())[0]
    delta = losses.log() - after.log()
    d = (torch.diag(z) - z[:, None] * z[None]) @ delta  # J_softmax^T δ (J symmetric)
    d = d + gamma * torch.zeros(2)  # weight decay on ξ(0) = 0
    xi1 = -lr * d / (d.abs() + ADAM_EPS)  # Adam's first step
    assert torch.allclose(method.logits.detach(), xi1, atol=1e-7)
    assert float(d.abs().sum()) > 0


def test_per_task_grads_equal_one_backward_per_task_and_the_cosine() -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    x = torch.randn(8, 3)
    rows = lin(x).pow(2).sum(1)  # task-major rows: 4 per task
    task_losses = rows.reshape(2, 4).mean(1)
    params = list(lin.parameters())
    one_by_one = [
        torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params, retain_graph=True)])
        for loss in task_losses
    ]
    batched = per_task_grads(task_losses, params)
    assert torch.allclose(batched, torch.stack(one_by_one), atol=1e-6)
    cos = float(batched[0] @ batched[1] / (batched[0].norm() * batched[1].norm()))
    assert mean_pairwise_cosine(batched).item() == pytest.approx(cos, abs=1e-6)
    assert mean_pairwise_cosine(GRADS).item() < 0  # the conflicting pair


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--grad", "nope"], "unknown --grad 'nope'; allowed: plain, pcgrad, cagrad, gradnorm,"),
        (["--grad", "pcgrad", "--cagrad-c", "0.5"],
         "--cagrad-c is an option of --grad cagrad, not of --grad pcgrad"),
        (["--famo-lr", "0.1"], "--famo-lr is an option of --grad famo, not of --grad plain"),
        (["--grad", "gradnorm", "--gradnorm-lr", "0"], "--gradnorm-lr must be positive, got 0.0"),
        (["--grad", "cagrad", "--cagrad-c", "-1"], "--cagrad-c must be >= 0, got -1.0"),
        (["--grad", "famo", "--benchmark", "mt1", "--task", "reach-v3"],
         "--grad famo combines the gradients of several tasks, this benchmark has 1"),
    ],
)  # fmt: skip
def test_bad_grad_options_are_one_line_errors_before_any_work(
    argv: list[str], message: str, tmp_path, capsys
) -> None:
    from softmod.cli import main

    run = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        main(["train", "--benchmark", "toy", *argv, "--run-dir", str(run), "--no-progress"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not run.exists()


def test_gradnorm_measures_the_task_gradient_norms_on_the_shared_parameters_only() -> None:
    shared = torch.nn.Parameter(torch.zeros(2))
    head = torch.nn.Parameter(torch.zeros(2))  # task-specific: task 0's slice, task 1's slice
    method = GradNorm(GradNormConfig(), [], [shared, head], 2, CPU)
    method.set_shared([[], [shared]])
    grads = torch.tensor([[1.0, 0.0, 30.0, 0.0], [0.0, 2.0, 0.0, 0.1]])  # huge head part, task 0
    method.combine("q", grads, torch.ones(2))
    shared_norms = torch.tensor([1.0, 2.0])
    big = shared_norms  # w = 1
    expected = torch.sign(big - big.mean()) * shared_norms  # r = 1 at the first update
    assert torch.equal(method._pending["q"], expected)  # from all columns the signs would flip
