"""The torch form of the unrolled sweep statements (codegen/unrolled.py: fused_for_torch) against
the plain expressions they replace, evaluated on tensors."""
import pytest
import torch

from hyprgen.compiler.codegen.unrolled import fused_for_torch

NUMBERS = frozenset({"_c_0"})


def evaluate(expr: str, env: dict) -> torch.Tensor:
    return eval(expr, {"torch": torch}, dict(env))  # noqa: S307 - our own generated expressions


@pytest.mark.parametrize("expr", [
    "_q_0 * _A_0_0",
    "_q_0 * _A_0_0 + _q_1 * _A_1_0 + _sig * _a_0",
    "_Phi_0_0 * _c_0 + _Phi_0_2 * _c_2",             # a bare-number factor first
    "_Phi_0_2 * _c_2 + _Phi_0_0 * _c_0",             # … and later
    "_acc + _q_0 * _D_0_0 + _sig * _delta_0",       # an accumulator
    "_acc + _Phi_0_0 * _c_0",
])
def test_fused_statement_equals_the_plain_sum_and_leaves_operands_alone(expr):
    g = torch.Generator().manual_seed(0)
    names = {"_q_0", "_q_1", "_A_0_0", "_A_1_0", "_sig", "_a_0", "_Phi_0_0", "_Phi_0_2", "_c_2", "_acc",
             "_D_0_0", "_delta_0"}
    env = {n: torch.randn(3, 4, generator=g, dtype=torch.float64) for n in names}
    env["_c_0"] = 0.37
    before = {n: v.clone() for n, v in env.items() if isinstance(v, torch.Tensor)}
    fused = fused_for_torch(expr, NUMBERS)
    assert fused != expr
    torch.testing.assert_close(evaluate(fused, env), evaluate(expr, env), rtol=1e-15, atol=1e-15)
    for n, v in before.items():  # in-place calls only ever write the statement's fresh tensor
        assert torch.equal(env[n], v), n


def test_fused_leaves_bare_names_and_refuses_what_it_does_not_know():
    assert fused_for_torch("_q_next_0", NUMBERS) == "_q_next_0"
    assert fused_for_torch("_zero", NUMBERS) == "_zero"
    with pytest.raises(ValueError, match="two-factor"):
        fused_for_torch("_a * _b * _c + _d * _e", NUMBERS)
