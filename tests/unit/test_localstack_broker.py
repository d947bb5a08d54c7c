"""`python3 dev.py up --broker-storage`: which storage the local broker gets, and how a durable
one is wired to the stack's S3. Nothing is started here."""

import os
from pathlib import Path

import pytest

from openv_localstack.__main__ import parser, stack_options
from openv_localstack.stack import LocalStack, StackOptions


def up_options(tmp_path: Path, *flags: str) -> StackOptions:
    args = parser().parse_args(["up", "--dir", str(tmp_path / "stack"), *flags])
    return stack_options(args, os.environ)


def test_the_broker_keeps_its_topics_in_memory_by_default(tmp_path: Path) -> None:
    for options in (up_options(tmp_path), StackOptions(root=tmp_path / "direct")):
        assert options.broker_storage == "memory"
        stack = LocalStack(options)
        assert not stack.kafka.durable
        assert stack.kafka.s3 is None
        assert stack.kafka.storage_engine.startswith("memory:")


def test_durable_storage_is_a_flag_in_the_stacks_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An AWS_* exported for some real account must not reach the local broker.
    monkeypatch.setenv("AWS_ENDPOINT", "https://s3.amazonaws.com")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-someone-elses")
    direct = StackOptions(root=tmp_path / "direct", broker_storage="s3")
    for options in (up_options(tmp_path, "--broker-storage", "s3"), direct):
        assert options.broker_storage == "s3"
        stack = LocalStack(options)
        assert stack.kafka.durable
        assert stack.kafka.s3 is stack.s3
        assert stack.kafka.storage_engine == f"s3://{stack.kafka.bucket}/"
        assert stack.kafka.bucket != "openv-videos"  # the broker's objects stay apart
        env = stack.kafka.launch_env()
        assert env["AWS_ENDPOINT"] == stack.s3.url
        assert env["AWS_ACCESS_KEY_ID"] == stack.s3.access_key
        assert env["AWS_SECRET_ACCESS_KEY"] == stack.s3.secret_key
        assert env["AWS_ALLOW_HTTP"] == "true"


def test_an_unknown_storage_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        up_options(tmp_path, "--broker-storage", "disk")
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(ValueError, match="broker_storage"):
        LocalStack(StackOptions(root=tmp_path, broker_storage="disk"))  # type: ignore[arg-type]
