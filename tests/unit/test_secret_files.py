"""Secrets are never readable by others, not even for a moment: the file is created 600 (the
umask cannot widen it) and appears whole under its name, or not at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from unittest import mock

import pytest

from larmkedja.secret_files import write_private


def test_a_secret_is_created_private_whatever_the_umask(tmp_path: Path) -> None:
    opened: list[int] = []
    real_open = os.open

    def spy(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        opened.append(mode)
        return real_open(path, flags, mode)

    old = os.umask(0)
    try:
        with mock.patch("larmkedja.secret_files.os.open", spy):
            write_private(tmp_path / "secrets.json", "{}")
    finally:
        os.umask(old)
    assert opened == [0o600]  # private at creation, not chmodded after
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_secret_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "passwd"
    write_private(target, "old")
    with (
        mock.patch("larmkedja.secret_files.os.replace", side_effect=OSError("disk")),
        pytest.raises(OSError),
    ):
        write_private(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["passwd"]
