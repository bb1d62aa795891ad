"""The on-disk outbox keeps reports across restarts."""

from __future__ import annotations

from pathlib import Path

from watcher.agent.outbox import Outbox


def test_reports_survive_a_restart_until_removed(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox")
    box.put("t-1", {"raw_text": "Плед 1 299 ₽", "success": True, "lease_version": 1})
    box.put("t-2", {"raw_text": "", "success": False, "lease_version": 3})
    again = Outbox(tmp_path / "outbox")  # a new process
    pending = again.pending()
    assert [(e.task_id, e.body["lease_version"]) for e in pending] == [("t-1", 1), ("t-2", 3)]
    assert pending[0].body["raw_text"] == "Плед 1 299 ₽"
    again.remove(pending[0])
    assert [e.task_id for e in Outbox(tmp_path / "outbox").pending()] == ["t-2"]
    assert len(again) == 1


def test_the_same_report_is_stored_once_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.put("t-1", {"success": True, "lease_version": 2})
    box.put("t-1", {"success": True, "lease_version": 2})
    assert len(box) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["t-1-2.json"]


def test_an_unreadable_file_is_set_aside(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    (tmp_path / "junk-1.json").write_text("{not json")
    box.put("t-1", {"lease_version": 1})
    assert [e.task_id for e in box.pending()] == ["t-1"]
    assert (tmp_path / "junk-1.broken").exists()
