"""NIR export and import (hyprgen/interop, docs/nir.md): the round trip is exact, and the exported
graph, read with NIR's semantics by an interpreter written here from the node definitions alone
(and by snnTorch's Leaky), computes what hyprgen computes."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import hyprgen
from hyprgen.errors import HyprgenError
from tests.helpers import active_network

nir = pytest.importorskip("nir")

ROOT = Path(__file__).resolve().parents[2]


def lif_network(readout: str, seed: int = 0):
    """A float64 lif RSNN (hidden 6, 5, both recurrent) firing on 2–60 % of its steps, with non-zero
    biases (they become the Affine nodes' biases), and its input x [3, 37, 3]."""
    net, x = active_network("lif", readout=readout, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.layers:
            layer.bias.copy_(0.05 * torch.randn(layer.n, generator=gen, dtype=torch.float64))
    _, _, recorded = net(x, record=True)
    rates = [r.mean().item() for r in recorded[:-1]]
    assert all(0.02 <= r <= 0.6 for r in rates), f"hidden firing rates {rates}: the test would not exercise resets"
    return net, x


def simulate_nir(graph, x: np.ndarray, dt: float) -> np.ndarray:
    """The graph's output [B, T, n_out] on x [B, T, n_in], read from its nodes alone with the
    discretisation docs/nir.md states: forward Euler of τ v̇ = (v_leak − v) + r I by dt, then
    z = H(v − v_threshold); a spike subtracts v_threshold − v_reset in the next step; an edge that
    closes a cycle carries its source's output of the previous step, every other edge the current."""
    nodes, edges = graph.nodes, graph.edges
    successors = {k: [b for a, b in edges if a == k] for k in nodes}
    order, closing, status = [], set(), {}

    def visit(k):   # depth first from the input: an edge into a node still open closes a cycle
        status[k] = "open"
        for s in successors[k]:
            if status.get(s) == "open":
                closing.add((k, s))
            elif s not in status:
                visit(s)
        status[k] = "done"
        order.append(k)

    (start,) = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    visit(start)
    order.reverse()
    v = {k: 0.0 for k in nodes}
    z = {k: 0.0 for k in nodes}
    previous = {k: 0.0 for k in nodes}
    outputs = []
    for t in range(x.shape[1]):
        now = {}
        for k in order:
            node = nodes[k]
            I = sum(previous[a] if (a, k) in closing else now[a] for a, b in edges if b == k)
            if isinstance(node, nir.Input):
                now[k] = x[:, t]
            elif isinstance(node, nir.Affine):
                now[k] = I @ node.weight.T + node.bias
            elif isinstance(node, nir.Linear):
                now[k] = I @ node.weight.T
            elif isinstance(node, nir.LIF):
                reset = (node.v_threshold - node.v_reset) * z[k]   # z[k]: the spikes of step t − 1
                v[k] = v[k] + dt / node.tau * ((node.v_leak - v[k]) + node.r * I) - reset
                z[k] = (v[k] > node.v_threshold).astype(np.float64)
                now[k] = z[k]
            elif isinstance(node, nir.LI):
                v[k] = v[k] + dt / node.tau * ((node.v_leak - v[k]) + node.r * I)
                now[k] = v[k]
            elif isinstance(node, nir.Output):
                now[k] = I
                outputs.append(I)
            else:
                raise AssertionError(f"the test interpreter has no {type(node).__name__}")
        previous = now
    return np.stack(outputs, axis=1)


def forward(net, x):
    with torch.no_grad():
        return net(x)[0]


@pytest.mark.parametrize("readout", ["li", "linear"])
def test_export_then_import_computes_the_same_forward(readout):
    net, x = lif_network(readout)
    graph = hyprgen.export_nir(net)
    cycles = {(a, b) for a, b in graph.edges if (b, a) in graph.edges}
    assert cycles == {("layer0.lif", "layer0.recurrent"), ("layer0.recurrent", "layer0.lif"),
                      ("layer1.lif", "layer1.recurrent"), ("layer1.recurrent", "layer1.lif")}
    assert isinstance(graph.nodes["readout.affine"], nir.Affine)
    assert ("readout.li" in graph.nodes) == (readout == "li")
    back = hyprgen.import_nir(graph)
    assert [layer.neuron.META["name"] for layer in back.layers] == ["lif", "lif", readout]
    assert all(p.dtype == torch.float64 for p in back.parameters())
    for name, p in net.named_parameters():
        q = dict(back.named_parameters())[name]
        assert torch.allclose(q, p, rtol=1e-13, atol=0), name   # τ passes exp/log: not bit for bit
    assert (forward(back, x) - forward(net, x)).abs().max().item() <= 1e-12


def test_a_shared_readout_stays_shared():
    net = hyprgen.RSNN(3, [6], 2, neuron="lif", readout="li", shared_readout=True, seed=0, weight_scale=4.0).double()
    back = hyprgen.import_nir(hyprgen.export_nir(net))
    assert back.layers[-1].shared_params and back.layers[-1].theta["tau_out"].shape == (1,)
    x = torch.randn(2, 30, 3, dtype=torch.float64)
    assert (forward(back, x) - forward(net, x)).abs().max().item() <= 1e-12


def test_round_trip_through_nir_write_and_read(tmp_path):
    net, x = lif_network("li")
    path = tmp_path / "net.nir"
    nir.write(path, hyprgen.export_nir(net, dt=1e-4))
    graph = nir.read(path)
    assert float(graph.metadata["dt"]) == 1e-4 and graph.metadata["reset"] == "subtract"
    for back in (hyprgen.import_nir(graph), hyprgen.import_nir(path)):
        assert (forward(back, x) - forward(net, x)).abs().max().item() <= 1e-12


@pytest.mark.parametrize("readout", ["li", "linear"])
def test_nir_semantics_of_the_exported_graph_are_hyprgens_forward(readout):
    """Not only self-consistent: the graph read as NIR nodes (simulate_nir) gives hyprgen's outputs."""
    net, x = lif_network(readout, seed=1)
    dt = 1e-4
    graph = hyprgen.export_nir(net, dt=dt)
    lif = graph.nodes["layer0.lif"]
    assert np.all(lif.r == 1) and np.all(lif.v_leak == 0) and np.all(lif.v_threshold == 1) and np.all(lif.v_reset == 0)
    assert np.allclose(1 - dt / lif.tau, np.exp(-1 / net.layers[0].theta["tau_u"].detach().numpy()), rtol=1e-14)
    got = simulate_nir(graph, x.numpy(), dt)
    assert np.abs(got - forward(net, x).numpy()).max() <= 1e-12


def test_import_folds_r_threshold_and_leak_of_another_tools_graph():
    """A graph hyprgen did not write (r, v_threshold, v_leak not 1, 1, 0; no metadata): the imported
    RSNN computes what simulate_nir reads from the graph."""
    rng = np.random.default_rng(0)
    dt, n_in, n, n_out = 1e-4, 3, 7, 2
    vec = lambda lo, hi, k=n: rng.uniform(lo, hi, k)  # noqa: E731
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "fc": nir.Affine(weight=rng.normal(0, 1.5, (n, n_in)), bias=vec(-0.2, 0.2)),
        "lif": nir.LIF(tau=vec(5e-4, 3e-3), r=vec(0.5, 3.0), v_leak=vec(-0.1, 0.3), v_threshold=vec(0.3, 1.5),
                       v_reset=np.zeros(n)),
        "rec": nir.Linear(weight=rng.normal(0, 0.4, (n, n))),
        "fc_out": nir.Linear(weight=rng.normal(0, 1.0, (n_out, n))),
        "li": nir.LI(tau=vec(1e-3, 4e-3, n_out), r=vec(0.5, 2.0, n_out), v_leak=vec(-0.3, 0.3, n_out)),
        "out": nir.Output(output_type={"output": np.array([n_out])}),
    }, edges=[("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "fc_out"), ("fc_out", "li"),
              ("li", "out")])
    with pytest.raises(HyprgenError, match="pass dt="):
        hyprgen.import_nir(graph)
    net = hyprgen.import_nir(graph, dt=dt)
    x = torch.from_numpy(rng.normal(0, 1.0, (3, 60, n_in)))
    _, _, recorded = net(x, record=True)
    assert 0.02 <= recorded[0].mean().item() <= 0.6
    assert np.abs(simulate_nir(graph, x.numpy(), dt) - forward(net, x).numpy()).max() <= 1e-12


def test_snntorch_leaky_with_subtraction_reads_the_graph_as_hyprgen():
    """snnTorch's Leaky(reset_mechanism="subtract") with snnTorch's own NIR reading of a LIF node
    (β = 1 − dt/τ, input scaled by r·dt/τ) fires the same spikes as hyprgen's lif layer."""
    snn = pytest.importorskip("snntorch")
    net, x = lif_network("li")
    dt = 1e-4
    graph = hyprgen.export_nir(net, dt=dt)
    fc, lif, rec = (graph.nodes[k] for k in ("layer0.affine", "layer0.lif", "layer0.recurrent"))
    t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
    leaky = snn.Leaky(beta=t(1 - dt / lif.tau), threshold=1.0, reset_mechanism="subtract")
    scale = t(lif.r * dt / lif.tau)
    mem = torch.zeros(x.shape[0], 6, dtype=torch.float64)   # [B, n]
    spk, spikes = torch.zeros_like(mem), []
    with torch.no_grad():
        for step in x.unbind(1):
            spk, mem = leaky(scale * (step @ t(fc.weight).T + t(fc.bias) + spk @ t(rec.weight).T), mem)
            spk = spk.to(torch.float64)   # snnTorch's spike function returns float32
            spikes.append(spk)
        _, _, recorded = net(x, record=True)
    assert torch.equal(torch.stack(spikes, 1), recorded[0])


@pytest.mark.parametrize("neuron, why", [
    ("brf", ("brf: a balanced resonate-and-fire neuron (complex state u + iv, threshold raised by q) "
             "has no NIR primitive")),
    ("alif", ("alif: an adaptive-threshold LIF: its threshold rises with a second state a, "
              "NIR's LIF has a fixed v_threshold")),
])
def test_export_refuses_neurons_nir_cannot_express(neuron, why):
    net = hyprgen.RSNN(3, [4], 2, neuron=neuron)
    with pytest.raises(HyprgenError) as e:
        hyprgen.export_nir(net)
    assert str(e.value) == f"export_nir: hidden layer 0 is {why}"


def user_spec(tmp_path, name: str, theta: float) -> Path:
    """The shipped lif spec renamed and with another threshold: a user neuron."""
    text = (ROOT / "neurons" / "lif.py").read_text(encoding="utf-8")
    text = text.replace('Neuron("lif"', f'Neuron("{name}"').replace('const("theta", 1.0)', f'const("theta", {theta})')
    path = tmp_path / f"{name}_{str(theta).replace('.', '_')}.py"
    path.write_text(text, encoding="utf-8")
    return path


def test_export_refuses_a_user_neuron_even_with_lifs_equations(tmp_path):
    net = hyprgen.RSNN(3, [4], 2, neuron=hyprgen.load(user_spec(tmp_path, "my_lif", 1.0)))
    with pytest.raises(HyprgenError, match=r"^export_nir: hidden layer 0 is my_lif: a user neuron: NIR nodes exist "
                                           r"only for the linear neurons hyprgen ships as 'lif' and 'li'"):
        hyprgen.export_nir(net)


def test_export_refuses_a_user_neuron_named_lif(tmp_path):
    net = hyprgen.RSNN(3, [4], 2, neuron="lif", readout=hyprgen.load(user_spec(tmp_path, "lif", 0.5)))
    with pytest.raises(HyprgenError, match=r"^export_nir: the readout is lif: not the shipped 'lif': its step differs"):
        hyprgen.export_nir(net)


def test_import_refuses_what_hyprgen_has_no_layer_for():
    net, _ = lif_network("li")
    graph = hyprgen.export_nir(net)
    lif = graph.nodes["layer1.lif"]
    graph.nodes["layer1.lif"] = nir.CubaLIF(tau_syn=lif.tau, tau_mem=lif.tau, r=lif.r, v_leak=lif.v_leak,
                                            v_threshold=lif.v_threshold)
    with pytest.raises(HyprgenError, match=r"^import_nir: node 'layer1.lif' is a CubaLIF, a current-based LIF"):
        hyprgen.import_nir(graph)
    graph = hyprgen.export_nir(net)
    graph.nodes["layer0.lif"].v_reset[:] = 0.25
    with pytest.raises(HyprgenError, match=r"^import_nir: node 'layer0.lif' \(LIF\) has v_reset ≠ 0 \(0.25\)"):
        hyprgen.import_nir(graph)


def test_without_nir_one_line_says_what_to_install(monkeypatch):
    net = hyprgen.RSNN(3, [4], 2, neuron="lif")
    monkeypatch.setitem(sys.modules, "nir", None)   # `import nir` now raises ImportError
    with pytest.raises(HyprgenError) as e:
        hyprgen.export_nir(net)
    assert str(e.value) == "NIR export and import need the nir package: pip install hyprgen[nir]"


def test_importing_hyprgen_does_not_import_nir():
    script = "import sys, hyprgen, hyprgen.interop; hyprgen.export_nir; assert 'nir' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)
