"""Garmin watches mounted as USB mass storage: which files hold activity and monitoring data.

Layouts seen on Garmin devices (folder names compared case-insensitively):

* newer watches (fenix, Forerunner 2xx and later): ``GARMIN/Activity``, ``GARMIN/Monitor``;
* older ones (Forerunner 310XT era, Edge): ``GARMIN/ACTIVITY``, ``GARMIN/MONITOR``,
  ``Garmin/Activities``.

Other FIT folders on the watch (Settings, Sports, Totals, Courses, Workouts, NewFiles) carry no
heart rate and are left alone, as are macOS resource forks (``._*``). Importing is the ordinary
pipeline (sha256 per file), so syncing the same watch again imports only the new files.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError

DATA_FOLDERS = ("activity", "activities", "monitor")


def _garmin_root(mount: Path) -> Path | None:
    if mount.name.lower() == "garmin" and mount.is_dir():
        return mount
    for child in mount.iterdir():
        if child.is_dir() and child.name.lower() == "garmin":
            return child
    return None


def find_fit_files(mount: Path) -> list[Path]:
    """The FIT files of the activity and monitoring folders of a mounted Garmin device, in
    a stable order. Raises :class:`UsageError` when ``mount`` is not a Garmin device."""
    mount = Path(mount)
    if not mount.is_dir():
        raise UsageError(f"{mount} is not a folder", fix="give the watch's mount point")
    root = _garmin_root(mount)
    if root is None:
        raise UsageError(
            f"no GARMIN folder in {mount}; is this a Garmin watch in USB storage mode?",
            fix="give the mount point, e.g. --usb /media/$USER/GARMIN",
        )
    out: list[Path] = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.lower() not in DATA_FOLDERS:
            continue
        for f in sorted(folder.rglob("*")):
            if f.is_file() and f.suffix.lower() == ".fit" and not f.name.startswith("."):
                out.append(f)
    return out
