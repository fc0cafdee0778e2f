"""Built-in environments and environment files (sim.datasets)."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.datasets import FORMAT_VERSION


def same_env(a: sim.Environment, b: sim.Environment) -> None:
    assert a.kind == b.kind and a.name == b.name and a.n_max == b.n_max and a.tie == b.tie
    assert np.array_equal(a.probs, b.probs) and np.array_equal(a.cost, b.cost)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)
    assert a.prompt_names == b.prompt_names and a.contexts.names == b.contexts.names
    assert np.array_equal(a.contexts.weights, b.contexts.weights)
    assert np.array_equal(a.contexts.cost_weight, b.contexts.cost_weight)
    if a.kind == "mv":
        assert np.array_equal(a.correct, b.correct)
    else:
        assert np.array_equal(a.values, b.values)


# ----------------------------------------------------------------------------- real data


def test_math_keeps_the_authors_split():
    env = sim.load_env("math", seed=None)
    assert env.kind == "mv" and env.probs.shape == (25, 316, 5) and env.n_max == 32
    assert np.array_equal(env.train, np.arange(252)) and np.array_equal(env.test,
                                                                        np.arange(252, 316))
    assert env.contexts.names == ("low", "mid", "high")
    np.testing.assert_array_equal(env.contexts.cost_weight, [0.0, 0.2, 1.0])
    # 128 completions per prompt-query pair: every probability is a multiple of 1/128
    counts = env.probs * 128
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)


def test_commonsenseqa_shape_and_split():
    env = sim.load_env("commonsenseqa")
    assert env.probs.shape == (48, 1500, 4)
    assert env.train.size == 1200 and env.test.size == 300
    assert np.all(env.cost > 0) and env.q_table().shape == (3, 48, 32)


def test_real_env_with_a_seed_is_resplit_80_20():
    a, b, c = (sim.load_env("math", seed=s) for s in (1, 1, 2))
    assert a.train.size == 253 and a.test.size == 63
    assert np.array_equal(a.train, b.train) and not np.array_equal(a.train, c.train)
    assert np.array_equal(np.union1d(a.train, a.test), np.arange(316))
    np.testing.assert_array_equal(a.probs, sim.load_env("math").probs)


# ----------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("name", ["synth-bernoulli", "synth-categorical"])
def test_synthetic_envs_are_reproducible_from_their_seed(name):
    a, b, c = (sim.load_env(name, seed=s) for s in (7, 7, 8))
    same_env(a, b)
    np.testing.assert_array_equal(a.q_table("test"), b.q_table("test"))
    assert not np.array_equal(a.probs if name == "synth-bernoulli" else a.values,
                              c.probs if name == "synth-bernoulli" else c.values)
    assert not np.array_equal(a.train, c.train)
    seq = np.random.SeedSequence(7)
    same_env(sim.load_env(name, seed=seq), a)


def test_synth_bernoulli_structure():
    env = sim.load_env("synth-bernoulli", seed=0)
    assert env.probs.shape == (32, 520, 2) and np.all(env.correct == 0)
    q = env.probs[..., 0]
    assert q.min() >= 0.01 and q.max() <= 0.99
    assert env.train.size == 416 and env.test.size == 104
    assert np.all((env.cost >= 0.005) & (env.cost <= 0.01))
    np.testing.assert_array_equal(env.contexts.cost_weight, [0.0, 0.5, 1.0])


def test_synth_categorical_structure():
    env = sim.load_env("synth-categorical", seed=0)
    assert env.probs.shape == (32, 512, 8) and env.values.shape == (32, 512, 8, 2)
    assert np.array_equal(env.values, np.round(env.values))
    assert env.values.min() >= 0 and env.values.max() <= 4
    np.testing.assert_array_equal(env.probs, 1 / 8)
    assert len(env.contexts) == 27 and env.q_table().shape == (27, 32, 32)
    assert np.all((env.cost >= 0.01) & (env.cost <= 0.04))


def test_synthetic_generators_take_keyword_rng():
    a = sim.synth_bernoulli(rng=3, n_prompts=4, n_queries=30, n_max=5)
    b = sim.synth_bernoulli(rng=np.random.default_rng(3), n_prompts=4, n_queries=30, n_max=5)
    same_env(a, b)
    assert a.q_table().shape == (3, 4, 5)
    c = sim.synth_categorical(rng=3, n_prompts=3, n_queries=10, n_outcomes=4, n_max=6)
    assert c.values.shape == (3, 10, 4, 2) and c.q_table().shape == (27, 3, 6)


# ----------------------------------------------------------------------------- files


@pytest.mark.parametrize("name", ["math", "synth-categorical"])
def test_save_load_round_trip(tmp_path, name):
    env = sim.load_env(name, seed=4)
    path = sim.save_env(env, tmp_path / "sub" / "env.npz")
    back = sim.load_env(path)
    same_env(env, back)
    np.testing.assert_array_equal(back.q_table("test"), env.q_table("test"))
    np.testing.assert_array_equal(back.q_table("train"), env.q_table("train"))
    # a seed reshuffles the stored split, reproducibly
    r1, r2 = sim.load_env(path, seed=9), sim.load_env(str(path), seed=9)
    assert np.array_equal(r1.train, r2.train) and not np.array_equal(r1.train, env.train)
    assert not list(tmp_path.glob("sub/*.tmp"))


def test_raw_release_file_loads_by_path(tmp_path):
    import shutil
    from importlib import resources

    with resources.as_file(resources.files("sim") / "data" / "math_mv.npz") as src:
        shutil.copy(src, tmp_path / "MATH.npz")
    env = sim.load_env(tmp_path / "MATH.npz")
    assert env.name == "MATH" and env.probs.shape == (25, 316, 5)


def test_unknown_name_is_rejected():
    with pytest.raises(ValueError, match=r"name_or_path: unknown environment 'gsm8k'.*'math'"):
        sim.load_env("gsm8k")


def test_missing_file_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="path: no environment file at"):
        sim.load_env(tmp_path / "nope.npz")


def test_corrupt_file_is_rejected(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"this is not a zip archive\x00\x01\x02" * 10)
    with pytest.raises(ValueError, match="path: .* is not a readable environment file"):
        sim.load_env(path)


def test_truncated_file_is_rejected(tmp_path):
    path = sim.save_env(sim.load_env("math"), tmp_path / "env.npz")
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="path: .* it may be corrupt or truncated"):
            sim.load_env(path)


def test_file_with_corrupted_content_is_rejected(tmp_path):
    path = sim.save_env(sim.load_env("math"), tmp_path / "env.npz")
    data = bytearray(path.read_bytes())
    mid = len(data) // 3
    data[mid:mid + 64] = bytes(64)  # zero a stretch inside the compressed members
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="path: .* it may be corrupt or truncated"):
        sim.load_env(path)


def test_any_corrupted_stretch_gives_value_error_or_a_valid_env(tmp_path):
    # Overwrite 8 bytes at 60 evenly spaced offsets (headers, compressed data, central
    # directory): loading either fails with the path's ValueError or yields a valid environment,
    # never another exception (zlib, zipfile, numpy format errors).
    path = sim.save_env(sim.load_env("math"), tmp_path / "env.npz")
    data = path.read_bytes()
    garbage = np.random.default_rng(0).bytes(8)
    for offset in np.linspace(0, len(data) - 8, 60).astype(int):
        path.write_bytes(data[:offset] + garbage + data[offset + 8:])
        try:
            env = sim.load_env(path)
        except ValueError as exc:
            assert str(exc).startswith("path: ")
        else:
            assert env.q_table().shape == (3, 25, 32)


def test_missing_fields_are_named(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, format_version=np.int64(FORMAT_VERSION), kind=np.str_("mv"),
             probs=np.full((1, 2, 2), 0.5))
    with pytest.raises(ValueError, match=r"lacks field\(s\) \['name', 'cost'"):
        sim.load_env(path)
    env = sim.load_env("math")
    full = tmp_path / "full.npz"
    sim.save_env(env, full)
    with np.load(full) as data:
        fields = {k: data[k] for k in data.files if k != "correct"}
    np.savez(tmp_path / "nocorrect.npz", **fields)
    with pytest.raises(ValueError, match=r"lacks field\(s\) \['correct'\]"):
        sim.load_env(tmp_path / "nocorrect.npz")
    raw = tmp_path / "raw.npz"
    np.savez(raw, probs_train=np.full((1, 2, 2), 0.5))
    with pytest.raises(ValueError, match=r"lacks field\(s\) \['answers_train'"):
        sim.load_env(raw)


def test_wrong_format_version_and_invalid_content(tmp_path):
    env = sim.load_env("math")
    full = sim.save_env(env, tmp_path / "env.npz")
    with np.load(full) as data:
        fields = {k: data[k] for k in data.files}
    np.savez(tmp_path / "v9.npz", **fields | dict(format_version=np.int64(9)))
    with pytest.raises(ValueError, match="format_version 9; this iapo-sim reads version 1"):
        sim.load_env(tmp_path / "v9.npz")
    bad = fields | dict(probs=fields["probs"] * 1.5)
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(ValueError, match=r"probs must sum to 1 .*tolerance 1e-08"):
        sim.load_env(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("format_version", np.array([1, 2]), "field 'format_version' .* must be a scalar int"),
        ("n_max", np.float64(3.7), "field 'n_max' .* must be a scalar int; got float64"),
        ("n_max", np.str_("x"), "field 'n_max' .* must be a scalar int"),
        ("kind", np.int64(3), "field 'kind' .* must be a scalar str"),
        ("kind", np.str_("rank"), "field 'kind' .* must be 'mv' or 'bon'; got 'rank'"),
        ("probs", np.array(["a", "b"]), "holds an invalid environment: could not convert"),
        ("train", np.array([0.5, 1.5]),
         r"holds an invalid environment: train must be non-empty integer query indices"),
        ("correct", np.full(316, 0.5), "correct must be 316 integer answer indices"),
        ("ctx_probs", np.array([0.5, 0.5, 0.5]), r"contexts: probs must be >= 0 and sum to 1"),
    ],
)
def test_fields_of_the_wrong_type_are_named(tmp_path, field, value, match):
    full = sim.save_env(sim.load_env("math"), tmp_path / "env.npz")
    with np.load(full) as data:
        fields = {k: data[k] for k in data.files}
    np.savez(tmp_path / "odd.npz", **fields | {field: value})
    with pytest.raises(ValueError, match="^path: .*" + match):
        sim.load_env(tmp_path / "odd.npz")


def test_save_env_requires_npz_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"path: environment files end in \.npz"):
        sim.save_env(sim.load_env("math"), tmp_path / "env.pkl")


def test_save_env_unwritable_path_is_a_value_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    env = sim.load_env("math")
    with pytest.raises(ValueError, match="path: cannot write"):
        sim.save_env(env, blocker / "env.npz")  # its directory would have to be a file


def test_negative_seed_is_a_value_error():
    with pytest.raises(ValueError, match=r"seed must be None, an int >= 0"):
        sim.load_env("math", seed=-1)


def test_save_env_gives_the_usual_file_permissions(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        path = sim.save_env(sim.load_env("math"), tmp_path / "env.npz")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
