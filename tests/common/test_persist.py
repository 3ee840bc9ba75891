import json
import logging

import pytest

from p1common.persist import StateFileError, atomic_write_json, load_json


def test_roundtrip_and_backup(tmp_path):
    f = tmp_path / "state.json"
    assert load_json(f, default={"x": 0}) == {"x": 0}
    atomic_write_json(f, {"x": 1})
    atomic_write_json(f, {"x": 2})
    assert load_json(f) == {"x": 2}
    assert json.loads((tmp_path / "state.json.bak").read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_corrupt_file_falls_back_to_backup_loudly(tmp_path, caplog):
    f = tmp_path / "state.json"
    atomic_write_json(f, {"x": 1})
    atomic_write_json(f, {"x": 2})
    f.write_text('{"x": 3')  # half-written by something else
    with caplog.at_level(logging.WARNING):
        assert load_json(f) == {"x": 1}
    assert "unreadable" in caplog.text and "last good version" in caplog.text


def test_corrupt_without_backup_is_an_error_not_a_reset(tmp_path):
    f = tmp_path / "state.json"
    f.write_text("garbage")
    with pytest.raises(StateFileError, match="unreadable"):
        load_json(f, default={})


def test_quarantine_keeps_the_evidence(tmp_path):
    from p1common.persist import quarantine

    f = tmp_path / "state.json"
    atomic_write_json(f, {"x": 1})
    atomic_write_json(f, {"x": 2})
    f.write_text("garbage")
    moved = quarantine(f)
    assert not f.exists() and not (tmp_path / "state.json.bak").exists()
    assert sorted(p.read_text()[:7] for p in moved) == ["garbage", '{\n "x":']
    assert load_json(f, default={}) == {}
