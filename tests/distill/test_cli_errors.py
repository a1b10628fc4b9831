"""`tracekit distill` refuses bad input with exit status 2 and a message that names the key or both models.

Nothing heavy starts: the config is checked first, the tokenizers second, and both checks come before any
model or engine is loaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tests.teachers.tiny_model import CHAT_TEMPLATE, save_tiny_model
from tracekit.distill.config import DistillConfig


def _write(tmp: Path, cfg: dict) -> Path:
    path = tmp / "distill.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _base(tmp: Path) -> dict:
    prompts = tmp / "prompts.jsonl"
    prompts.write_text('{"problem": "1+2?", "answer": "3"}\n{"problem": "2+2?", "answer": "4"}\n')
    return {"student": str(tmp / "student"), "teacher": str(tmp / "teacher"), "data": str(prompts),
            "output_dir": str(tmp / "out"), "max_steps": 2}  # fmt: skip


# (mutation of a valid config, the key the message must name)
BAD = [
    ({"learning_rte": 1e-5}, "learning_rte: unknown key"),
    ({"rollout": {"n": 0}}, "rollout.n"),
    ({"rollout": {"nn": 2}}, "rollout.nn: unknown key"),
    ({"objective": "forward_kl"}, "objective"),
    ({"beta": 1.5}, "beta"),
    ({"max_steps": 0}, "max_steps"),
    ({"teacher": {"model": "t", "protocol": "grpc"}}, "teacher.protocol"),
    ({"teacher": {"model": "t", "batch_size": 3}}, "teacher.batch_size: unknown key"),
    ({"eval": {"every": 5, "k": [1, 8], "n": 4}}, "eval"),
    ({"reward": {"kind": "judge"}}, "reward.kind"),
    ({"rollout": {"max_tokens": 9000}, "max_length": 8192}, "rollout.max_tokens"),
    ({"student": None}, "student"),
]


@pytest.mark.parametrize(("mutation", "named"), BAD, ids=[b[1].split(":")[0] for b in BAD])
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, mutation: dict, named: str) -> None:
    cfg = {**_base(tmp_path), **mutation}
    path = _write(tmp_path, cfg)
    with pytest.raises(ValueError) as err:
        DistillConfig.from_yaml(path)
    assert str(path) in str(err.value) and named in str(err.value)


def test_bad_config_via_the_cli_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, {**_base(tmp_path), "rollout": {"n": 2, "temprature": 0.7}})
    r = run_cli("distill", str(path))
    assert r.returncode == 2, r.stderr
    assert "rollout.temprature: unknown key" in r.stderr and str(path) in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("distill", str(path), "--set", "rollout.temprature")  # --set without =
    assert r.returncode == 2 and "KEY=VALUE" in r.stderr
    r = run_cli("distill", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "missing.yaml" in r.stderr and "Traceback" not in r.stderr


def test_set_reaches_nested_keys(tmp_path: Path) -> None:
    from tracekit.distill.cli import nested_override
    from tracekit.distill.config import merge_settings

    path = _write(tmp_path, {**_base(tmp_path), "rollout": {"n": 2, "prompts": 3}})
    cfg = DistillConfig.from_yaml(
        path, overrides=merge_settings(nested_override("rollout.n", 8), {"kl_coef": 0.5})
    )
    assert (cfg.rollout.n, cfg.rollout.prompts, cfg.kl_coef) == (8, 3, 0.5)


@pytest.mark.slow
def test_tokenizer_mismatch_fails_naming_both_models(tmp_path: Path) -> None:
    """A teacher whose tokenizer differs (another vocabulary size), then one whose chat template differs."""
    from tests.teachers.tiny_model import build_tokenizer

    student = save_tiny_model(tmp_path / "student", seed=0)
    teacher = save_tiny_model(tmp_path / "teacher", seed=1)
    other = build_tokenizer(vocab_size=380)  # trained on the same text, fewer merges: other ids
    other.save_pretrained(teacher)
    cfg = {**_base(tmp_path), "student": str(student), "teacher": str(teacher)}
    r = run_cli("distill", str(_write(tmp_path, cfg)))
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"student {student} and teacher {teacher}" in r.stderr and "vocabularies differ" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "final").exists()

    # the other two cases in this process (the same check, without another interpreter start)
    from tracekit.distill.cli import run_distill
    from tracekit.distill.trainer import TokenizerMismatchError

    same = build_tokenizer()
    same.chat_template = CHAT_TEMPLATE.replace("<|im_start|>assistant\n", "<|im_start|>model\n")
    same.save_pretrained(teacher)
    with pytest.raises(TokenizerMismatchError, match="chat templates differ") as err:
        run_distill(_write(tmp_path, cfg))
    assert f"student {student} and teacher {teacher}" in str(err.value)

    # a student or a data path that does not exist
    with pytest.raises(ValueError, match="student: cannot load"):
        run_distill(_write(tmp_path, {**cfg, "student": str(tmp_path / "nowhere")}))
    same.chat_template = CHAT_TEMPLATE
    same.save_pretrained(teacher)
    with pytest.raises(FileNotFoundError, match="data: .*missing/prompts.jsonl not found"):
        run_distill(_write(tmp_path, {**cfg, "data": str(tmp_path / "missing" / "prompts.jsonl")}))

    # a served name the tokenizer cannot be loaded from: the message asks for teacher.tokenizer
    cfg["teacher"] = {"model": "served-teacher", "base_url": "http://127.0.0.1:9/v1"}
    with pytest.raises(ValueError, match="teacher.tokenizer"):
        run_distill(_write(tmp_path, cfg))
    assert not (tmp_path / "out" / "final").exists()


def test_shipped_distill_preset_is_valid() -> None:
    from tests.conftest import REPO

    cfg = DistillConfig.from_yaml(REPO / "pipelines" / "distill-tiny-cpu.yaml")
    assert cfg.student == "out/train-tiny-cpu/final" and cfg.teacher.wire_protocol == "prompt_logprobs"
