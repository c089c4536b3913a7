"""The bad-input sweep: every entry point refuses bad input with a precise message and exit code 2
(distinct from 1, "checks failed"), never a traceback. One row per case; add rows with new entry points."""

import os
import subprocess
import sys

import pytest

from ffkit import bundled

ETHANOL = str(bundled.path("ethanol_train.xyz"))


def _ffkit(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ffkit", *map(str, args)], capture_output=True, text=True, env=env)


def _train(tmp_path, *extra):
    return ["train", "--data", ETHANOL, "--tier", "fast", "--out", tmp_path / "run", "--no-progress", *extra]


CASES = {
    "epochs 0": (["--epochs", "0"], "epochs must be a whole number >= 1, not 0"),
    "epochs -1": (["--epochs", "-1"], "epochs must be a whole number >= 1, not -1"),
    "batch size 0": (["--batch-size", "0"], "batch_size must be a whole number of frames >= 1, not 0"),
    "lr nan": (["--lr", "nan"], "lr must be a finite learning rate > 0, not nan"),
    "lr negative": (["--lr=-1e-3"], "lr must be a finite learning rate > 0"),
    "missing data": (["--data", "absent.xyz"], "absent.xyz"),
    "max minutes 0": (["--max-minutes", "0"], "max_minutes must be > 0"),
    "unknown tier": (["--tier", "huge"], "unknown tier 'huge'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_train_refuses(case, tmp_path):
    extra, message = CASES[case]
    r = _ffkit(*_train(tmp_path, *extra))
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists(), "a refused run must not leave a folder behind"


def test_train_refuses_an_out_that_is_a_file(tmp_path):
    (tmp_path / "run").write_text("precious")
    r = _ffkit(*_train(tmp_path, "--epochs", "1"))
    assert r.returncode == 2 and "an existing file, not a run folder" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "run").read_text() == "precious"


def test_train_refuses_an_unknown_term_type_and_names_the_known_ones(tmp_path):
    config = tmp_path / "terms.yaml"
    config.write_text("terms:\n  pair: {type: pairs}\n")
    r = _ffkit(*_train(tmp_path, "--config", config))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert ("unknown term type 'pairs'; known: zbl, dispersion, coulomb, pair, three_body, many_body, "
            "message_passing") in r.stderr


def test_n_valid_zero_trains_on_every_frame(tmp_path):
    from ffkit.config import TrainConfig
    from ffkit.training import Trainer

    trainer = Trainer(TrainConfig(data=ETHANOL, out=str(tmp_path / "run"), tier="fast", max_frames=12, n_valid=0,
                                  progress=False))
    assert len(trainer.train_frames) == 12 and trainer.valid_frames == []


def test_default_budget_is_the_tiers_optimiser_steps(tmp_path):
    from ffkit.config import TrainConfig
    from ffkit.recipes import TRAINING_STEPS
    from ffkit.training import Trainer

    cfg = TrainConfig(data=ETHANOL, out=str(tmp_path / "run"), tier="fast", max_frames=20, n_valid=2, batch_size=8,
                      progress=False)
    trainer = Trainer(cfg)
    assert trainer.cfg.epochs == TRAINING_STEPS["fast"] // 3  # 18 frames: 3 batches of 8 per epoch
    assert cfg.epochs is None, "the caller's config is left as it was"
