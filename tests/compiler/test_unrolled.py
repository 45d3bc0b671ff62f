"""The two forms of the unrolled sweep's sums (codegen/unrolled.py: Sum.plain for Triton, Sum.fused for
torch), evaluated on tensors against each other."""
import pytest
import torch

from hyprgen.compiler.codegen.unrolled import Sum

NUMBERS = frozenset({"_c_0"})


def evaluate(expr: str, env: dict) -> torch.Tensor:
    return eval(expr, {"torch": torch}, dict(env))  # noqa: S307 - our own generated expressions


@pytest.mark.parametrize("base, products, plain", [
    (None, [("_q_0", "_A_0_0")], "_q_0 * _A_0_0"),
    (None, [("_q_0", "_A_0_0"), ("_q_1", "_A_1_0"), ("_sig", "_a_0")], "_q_0 * _A_0_0 + _q_1 * _A_1_0 + _sig * _a_0"),
    (None, [("_Phi_0_0", "_c_0"), ("_Phi_0_2", "_c_2")], "_Phi_0_0 * _c_0 + _Phi_0_2 * _c_2"),  # a bare number first
    (None, [("_Phi_0_2", "_c_2"), ("_Phi_0_0", "_c_0")], "_Phi_0_2 * _c_2 + _Phi_0_0 * _c_0"),  # … and later
    ("_acc", [("_q_0", "_D_0_0"), ("_sig", "_delta_0")], "_acc + _q_0 * _D_0_0 + _sig * _delta_0"),  # accumulator
    ("_acc", [("_Phi_0_0", "_c_0")], "_acc + _Phi_0_0 * _c_0"),
])
def test_fused_statement_equals_the_plain_sum_and_leaves_operands_alone(base, products, plain):
    g = torch.Generator().manual_seed(0)
    names = {"_q_0", "_q_1", "_A_0_0", "_A_1_0", "_sig", "_a_0", "_Phi_0_0", "_Phi_0_2", "_c_2", "_acc",
             "_D_0_0", "_delta_0"}
    env = {n: torch.randn(3, 4, generator=g, dtype=torch.float64) for n in names}
    env["_c_0"] = 0.37
    before = {n: v.clone() for n, v in env.items() if isinstance(v, torch.Tensor)}
    term = Sum(base, tuple(products))
    fused = term.fused(NUMBERS)
    assert term.plain() == plain and fused != plain
    torch.testing.assert_close(evaluate(fused, env), evaluate(plain, env), rtol=1e-15, atol=1e-15)
    for n, v in before.items():  # in-place calls only ever write the statement's fresh tensor
        assert torch.equal(env[n], v), n


def test_bare_names_and_the_empty_sum_are_left_alone():
    assert Sum("_q_next_0", ()).fused(NUMBERS) == Sum("_q_next_0", ()).plain() == "_q_next_0"
    assert Sum(None, ()).fused(NUMBERS) == Sum(None, ()).plain() == "_zero"
