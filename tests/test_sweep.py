"""Sweeps (issue 21): sharded batches equal unsharded ones, a killed sweep resumes to the same
table, batched solves stop per problem, and bad specs and folders are refused by name.

The multi-device runs happen in subprocesses with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
(the flag must be set before JAX starts), sharing one compilation cache.
"""

from __future__ import annotations

import math
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr

pq = pytest.importorskip("pyarrow.parquet")

DEVICES = 4
ENV = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={DEVICES}", "JAX_PLATFORMS": "cpu"}

# 10 cells of one shape in batches of 4: two full batches and a ragged one (2 cells, padded)
SPEC = """
[data]
generator = "two_cones"
n = 6
d = 2
angle = [1.2, 2.4]
seeds = 5
[train]
m = 4
scale = 0.01
steps = 200
[solve]
patterns = "enumerate"
tol = 1e-8
[sweep]
batch = 4
"""
# two shapes (n = 6, 8) of 4 cells each: one batch per shape, so the second batch compiles anew
RESUME_SPEC = SPEC.replace("n = 6", "n = [6, 8]").replace("seeds = 5", "seeds = 2")

TIMES = ("train_s", "patterns_s", "solve_s", "certify_s")

RUN = textwrap.dedent(
    """
    import sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from jax.sharding import Mesh
    import convexrelu as cr

    spec, resume_spec, out, cache = sys.argv[1:5]
    cr.enable_compilation_cache(cache, min_compile_time=0)
    assert len(jax.local_devices()) == 4, jax.local_devices()
    cr.sweep(spec, out=out + "/sharded", progress=False)
    one = Mesh(np.asarray(jax.local_devices()[:1]), ("batch",))
    cr.sweep(spec, out=out + "/single", mesh=one, progress=False)
    cr.sweep(resume_spec, out=out + "/reference", progress=False)
    """
)


class Runs:
    def __init__(self, root: pathlib.Path):
        self.root = root
        self.spec = root / "spec.toml"
        self.resume_spec = root / "resume.toml"
        self.cache = root / "cache"

    def table(self, name: str):
        return pq.read_table(self.root / name / "results.parquet").to_pylist()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweeps")
    r = Runs(root)
    r.spec.write_text(SPEC)
    r.resume_spec.write_text(RESUME_SPEC)
    args = [str(r.spec), str(r.resume_spec), str(root), str(r.cache)]
    proc = subprocess.run([sys.executable, "-c", RUN, *args], env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return r


def _same_rows(a: list[dict], b: list[dict], *, skip=TIMES, rtol=1e-12):
    assert [r["cell"] for r in a] == [r["cell"] for r in b]
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k in ra:
            if k in skip:
                continue
            if isinstance(ra[k], float):
                np.testing.assert_allclose(ra[k], rb[k], rtol=rtol, atol=0, equal_nan=True, err_msg=f"cell {ra['cell']} {k}")
            else:
                assert ra[k] == rb[k], (ra["cell"], k, ra[k], rb[k])


# ------------------------------------------------------------------------------------ sharding


def test_sharded_sweep_equals_unsharded_cell_by_cell(runs):
    sharded, single = runs.table("sharded"), runs.table("single")
    assert len(sharded) == 10
    _same_rows(sharded, single, skip=TIMES + ("device",))
    assert all(r["status"] == "optimal" for r in sharded)


def test_batches_live_on_every_device(runs):
    sharded, single = runs.table("sharded"), runs.table("single")
    by_batch = {}
    for r in sharded:
        by_batch.setdefault(r["batch"], []).append(r["device"])
    assert sorted(by_batch) == [0, 1, 2]
    for b in (0, 1):  # full batches: one cell per device
        assert sorted(by_batch[b]) == [f"cpu:{i}" for i in range(DEVICES)]
    assert len(set(by_batch[2])) == 2  # the ragged batch's two real cells (the padding dropped)
    assert {r["device"] for r in single} == {"cpu:0"}


def test_sweep_rows_are_the_cells_own_solves(runs):
    """A cell's P* is the standalone solve of its own data (seed → keys as documented), γ(θ)/γ* ≤ 1
    (weak duality over every pattern), and the orthogonally separable angle is recognised."""
    rows = runs.table("sharded")
    for r in rows[:: 3]:
        key = jax.random.split(jax.random.key(r["seed"]), 3)[0]
        X, y = cr.datasets.two_cones(r["n"], r["d"], angle=r["angle"], key=key)
        sol = cr.solve_max_margin(X, y, cr.enumerate_patterns(X), tol=1e-8)
        assert r["num_patterns"] == cr.enumerate_patterns(X).shape[0]
        np.testing.assert_allclose(r["p_star"], float(sol.value), rtol=1e-6)
        assert r["orthogonally_separable"] == bool(cr.datasets.is_orthogonally_separable(X, y))
    assert all(r["gamma_ratio"] <= 1 + 1e-6 for r in rows)
    assert {r["orthogonally_separable"] for r in rows} == {True, False}


# -------------------------------------------------------------------------------------- resume


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_same_table(runs, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "convexrelu.cli", "--no-cache", "sweep", str(runs.resume_spec), "--out", str(out)]
    table = out / "results.parquet"
    proc = subprocess.Popen([*cmd, "--quiet"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not table.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()  # SIGKILL: no handler runs
    proc.wait()
    first = pq.read_table(table).to_pylist()
    assert [r["batch"] for r in first] == [0] * 4, "the sweep was not killed after its first batch"
    env = {**ENV, "CONVEXRELU_CACHE_DIR": str(runs.cache)}
    resumed = subprocess.run(cmd[:3] + cmd[4:] + ["--quiet"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    full = pq.read_table(table).to_pylist()
    _same_rows(full, runs.table("reference"))
    # the finished batch was skipped, not recomputed: its rows are the killed run's, times included
    _same_rows([r for r in full if r["batch"] == 0], first, skip=())


# ------------------------------------------------------------------------ per-problem stopping


def test_batched_solves_stop_per_problem():
    """Under vmap each problem keeps its own iteration count and status (the while_loop freezes a
    problem that has stopped): the batch equals the problems solved one by one."""
    problems = []
    for seed, angle in ((0, 2.4), (1, 1.2), (2, 0.6)):
        X, y = cr.datasets.two_cones(8, 2, angle=angle, key=jax.random.key(seed))
        D = cr.enumerate_patterns(X)
        problems.append((X, y, D))
    if len({p[2].shape[0] for p in problems}) != 1:  # pragma: no cover - general position
        pytest.skip("the datasets have different numbers of patterns")
    alone = [cr.solve_max_margin(X, y, D, throw=False) for X, y, D in problems]
    Xs, ys, Ds = (jnp.stack([p[i] for p in problems]) for i in range(3))
    batch = jax.jit(jax.vmap(lambda X, y, D: cr.solve_max_margin(X, y, D, throw=False)))(Xs, ys, Ds)
    its = [int(s.iterations) for s in alone]
    assert np.asarray(batch.iterations).tolist() == its
    assert np.asarray(batch.status).tolist() == [int(s.status) for s in alone]
    assert len(set(its)) > 1, f"the problems need different iteration counts for this test to bite: {its}"
    np.testing.assert_allclose(np.asarray(batch.value), [float(s.value) for s in alone], rtol=1e-10)


def test_regularized_cells_solve_their_program_and_bound_the_run(tmp_path):
    """A regularized sweep: each cell's P* is the standalone regularized solve of its own data at
    its β, and the weight-decay run's objective is at least P* (the network maps onto a feasible
    point of the program over its own patterns, which "enumerate" holds: a theorem, so the ratio
    is ≥ 1 up to the solver's tolerance)."""
    spec = {
        "data": {"generator": "two_cones", "n": 6, "d": 2, "angle": 1.2, "seeds": 2},
        "train": {"m": 8, "scale": 0.5, "steps": 400, "lr": 0.02},
        "solve": {"program": "regularized-logistic", "beta": [0.05, 0.5], "tol": 1e-9},
        "sweep": {"batch": 4},
    }
    assert cr.load_spec(spec).train["schedule"] == "constant"  # the regularized programs' default
    rows = cr.sweep(spec, out=tmp_path / "reg", progress=False).to_pylist()
    assert [(r["beta"], r["seed"]) for r in rows] == [(0.05, 0), (0.05, 1), (0.5, 0), (0.5, 1)]
    for r in rows:
        X, y = cr.datasets.two_cones(6, 2, angle=1.2, key=jax.random.split(jax.random.key(r["seed"]), 3)[0])
        sol = cr.solve_regularized(X, y, cr.enumerate_patterns(X), beta=r["beta"], loss="logistic", tol=1e-9)
        np.testing.assert_allclose(r["p_star"], float(sol.value), rtol=1e-7)
        assert r["status"] == "optimal" and r["objective_ratio"] >= 1 - 1e-7
        assert r["reached"] == (r["objective_ratio"] <= 1 + r["margin_tol"])
        assert math.isnan(r["gamma_ratio"]) and not r["certified"]
    assert len({r["p_star"] for r in rows}) == 4


# ---------------------------------------------------------------------------------- bad input


def _spec(**changes):
    spec = {
        "data": {"generator": "two_cones", "n": 6, "d": 2, "seeds": 2},
        "train": {"m": 4, "steps": 50},
        "solve": {},
        "sweep": {"batch": 2},
    }
    for where, value in changes.items():
        section, key = where.split("__")
        if value is None:
            spec[section].pop(key)
        else:
            spec.setdefault(section, {})[key] = value
    return spec


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"train__mm": 3}, "[train] mm"),
        ({"data__angel": 1.0}, "[data] angel"),
        ({"extra__x": 1}, "[extra]"),
        ({"data__n": 1}, "[data] n"),
        ({"data__n": [6, 0]}, "[data] n"),
        ({"data__d": None}, "[data] d"),
        ({"train__m": 0}, "[train] m"),
        ({"data__seeds": 0}, "[data] seeds"),
        ({"train__steps": -5}, "[train] steps"),
        ({"train__scale": -1.0}, "[train] scale"),
        ({"train__schedule": "fast"}, "[train] schedule"),
        ({"solve__patterns": 0}, "[solve] patterns"),
        ({"solve__program": "regularized-squared"}, "[solve] beta"),
        ({"solve__program": "lasso", "solve__beta": 0.1}, "[solve] program"),
        ({"solve__beta": 0.1}, "[solve] beta"),
        ({"solve__program": "regularized-logistic", "solve__beta": 0.1, "train__schedule": "loss-based"}, "[train] schedule"),
        ({"solve__program": "regularized-logistic", "solve__beta": -0.1}, "[solve] beta"),
        ({"sweep__batch": 0}, "[sweep] batch"),
        ({"data__generator": "spirals"}, "[data] generator"),
        ({"data__angle": 0.1}, "[data] angle"),
        ({"data__n": 200, "data__d": 10}, "[solve] patterns"),
        ({"train__m": []}, "[train] m"),
    ],
)
def test_bad_specs_are_refused_naming_the_key(changes, named, tmp_path):
    with pytest.raises(cr.SweepError) as e:
        cr.sweep(_spec(**changes), out=tmp_path / "out", progress=False)
    assert named in str(e.value)
    assert not (tmp_path / "out").exists()  # refused before the folder is touched


def test_toml_spec_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(cr.SweepError, match="not valid TOML"):
        cr.load_spec(bad)
    with pytest.raises(cr.SweepError, match="does not exist"):
        cr.load_spec(tmp_path / "missing.toml")
    good = tmp_path / "good.toml"
    good.write_text(SPEC)
    spec = cr.load_spec(good)
    reordered = cr.load_spec({k: dict(reversed(list(v.items()))) for k, v in spec.to_json().items()})
    assert spec.fingerprint == reordered.fingerprint  # key order does not matter


def test_folder_of_another_spec_is_refused_and_left_alone(runs):
    folder = runs.root / "sharded"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    other = SPEC.replace("steps = 200", "steps = 300")
    with pytest.raises(cr.SweepError) as e:
        cr.sweep(cr.load_spec(_toml(runs.root, other)), out=folder, progress=False)
    assert str(folder) in str(e.value) and "different spec" in str(e.value)
    with pytest.raises(cr.SweepError, match="already holds"):
        cr.sweep(runs.spec, out=folder, resume=False, progress=False)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_finished_sweep_resumes_without_work(runs):
    t0 = time.perf_counter()
    table = cr.sweep(runs.spec, out=runs.root / "sharded", progress=False).to_pylist()
    assert time.perf_counter() - t0 < 5
    _same_rows(table, runs.table("sharded"), skip=())


def test_cli_refuses_a_bad_spec_with_exit_2(tmp_path, capsys):
    from convexrelu import cli

    spec = _toml(tmp_path, SPEC.replace("m = 4", "m = 4\nneurons = 3"))
    with pytest.raises(SystemExit) as e:
        cli.main(["--no-cache", "sweep", str(spec), "--out", str(tmp_path / "out")])
    assert e.value.code == cli.EXIT_USAGE
    assert "[train] neurons" in capsys.readouterr().err


def _toml(folder: pathlib.Path, text: str) -> pathlib.Path:
    path = folder / f"spec-{abs(hash(text)) % 10**8}.toml"
    path.write_text(text)
    return path


def test_two_cones_leave_orthogonal_separability_as_the_angle_closes():
    key = jax.random.key(3)
    wide = cr.datasets.two_cones(30, 3, angle=2.4, key=key)
    narrow = cr.datasets.two_cones(30, 3, angle=1.0, key=key)
    assert cr.datasets.is_orthogonally_separable(*wide)
    assert not cr.datasets.is_orthogonally_separable(*narrow)
    X, y = narrow
    assert math.isfinite(float(cr.solve_max_margin(X, y, cr.enumerate_patterns(X)).value))  # still separable


def test_cli_refuses_an_unwritable_out_with_exit_3_before_any_work(tmp_path, capsys):
    from convexrelu import cli

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as e:
        cli.main(["--no-cache", "sweep", str(_toml(tmp_path, SPEC)), "--out", str(blocker / "out")])
    assert e.value.code == cli.EXIT_IO
    assert "cannot write to --out" in capsys.readouterr().err
    assert blocker.read_text() == "not a folder"


@pytest.mark.slow
def test_a_stalled_cell_is_solved_again_uncapped_without_holding_up_its_batch(monkeypatch):
    """Angle 1.5, seed 24 (n = 10, d = 2) needs 17 interior-point iterations at tol 1e-8, the
    other two 13-14 (before the direct factorization of small programs it stalled and needed
    ADMM's > 1000). With the first pass capped at 15 iterations the capped batch leaves it
    running, the second pass solves it to optimality; the other cells keep their standalone
    iteration counts exactly."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from convexrelu import _sweep

    monkeypatch.setattr(_sweep, "_FIRST_PASS_ITERS", 15)
    data = []
    for angle, seed in ((1.5, 24), (0.9, 1), (2.7, 2)):
        key = jax.random.split(jax.random.key(seed), 3)[0]
        X, y = cr.datasets.two_cones(10, 2, angle=angle, key=key)
        data.append((np.asarray(X), np.asarray(y), np.asarray(cr.enumerate_patterns(X))))
    if len({D.shape for _, _, D in data}) != 1:  # pragma: no cover - general position
        pytest.skip("the datasets have different numbers of patterns")
    X, y, D = (np.stack([p[i] for p in data]) for i in range(3))
    sharding = NamedSharding(Mesh(np.asarray(jax.local_devices()[:1]), ("batch",)), PartitionSpec("batch"))
    betas = np.zeros(3)  # unused by the max-margin program
    out, _ = _sweep._solve_cells(X, y, D, betas, sharding=sharding, program="max-margin", tol=1e-8, real=3)
    alone = [cr.solve_max_margin(*p, tol=1e-8, throw=False) for p in data]
    assert [cr.status_name(s) for s in out["status"]] == ["optimal"] * 3
    assert int(alone[0].iterations) > 15 >= max(int(s.iterations) for s in alone[1:])  # the premise
    assert out["iterations"][0] > _sweep._FIRST_PASS_ITERS  # solved past the cap, not stopped at it
    assert out["iterations"][1:].tolist() == [int(s.iterations) for s in alone[1:]]
    np.testing.assert_allclose(out["value"], [float(s.value) for s in alone], rtol=1e-7)


@pytest.mark.parametrize("example", sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.toml")), ids=lambda p: p.stem)
def test_example_specs_load(example):
    spec = cr.load_spec(example)
    from convexrelu._sweep import expand_cells

    assert len(expand_cells(spec)) > 1
