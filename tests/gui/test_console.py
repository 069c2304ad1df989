"""A console-less app (windowed build) writes command output to a log and says where it is."""

from __future__ import annotations

import sys

from alchemy_engine import paths
from alchemy_gui import console


def test_without_a_console_a_failed_command_is_logged_and_the_user_told_where(monkeypatch):
    shown = []
    monkeypatch.setattr(console, "show_failure", lambda path, status: shown.append((path, status)))
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    assert not console.has_console()
    status = console.run_cli(["project", "show", "NoSuchProject"])
    stream = sys.stdout
    stream.close()
    log = paths.logs_dir() / "cli.log"
    assert status == 2 and shown == [(log, 2)]
    text = log.read_text(encoding="utf-8")
    assert "ImageAlchemy project show NoSuchProject" in text
    error = console.last_error_line(log)
    assert error.startswith("error:") and "NoSuchProject" in error
    message = console.failure_message(log, 2)
    assert message.startswith(error) and str(log) in message


def test_without_a_console_usage_errors_are_logged_too(monkeypatch):
    shown = []
    monkeypatch.setattr(console, "show_failure", lambda path, status: shown.append(status))
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    assert console.run_cli(["no-such-command"]) == 2
    sys.stdout.close()
    assert shown == [2]
    assert "invalid choice" in (paths.logs_dir() / "cli.log").read_text(encoding="utf-8")


def test_with_a_console_the_command_prints_as_usual(capsys):
    assert console.run_cli(["project", "list"]) == 0
    assert not (paths.logs_dir() / "cli.log").exists()


def test_failure_message_without_an_error_line(tmp_path):
    log = tmp_path / "cli.log"
    log.write_text("Traceback (most recent call last):\nValueError: boom\n")
    assert console.failure_message(log, 1).startswith("The command failed (exit status 1).")


def test_without_a_console_a_crash_is_logged_with_its_traceback(monkeypatch):
    """A crash (not an AlchemyError) reached ``Path.exception`` once: an AttributeError, no log."""
    from alchemy_engine import cli

    def crash(argv):
        raise RuntimeError("boom inside the command")

    shown = []
    monkeypatch.setattr(cli, "main", crash)
    monkeypatch.setattr(console, "show_failure", lambda path, status: shown.append((path, status)))
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    status = console.run_cli(["project", "list"])
    sys.stdout.close()
    log = paths.logs_dir() / "cli.log"
    assert status == 1 and shown == [(log, 1)]
    text = log.read_text(encoding="utf-8")
    assert "Traceback" in text and "RuntimeError: boom inside the command" in text
    assert console.last_error_line(log) == "error: the command crashed"
