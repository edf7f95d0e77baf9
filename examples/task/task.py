"""An example Caravan task: uses what Caravan promises a task process.

- Logs through Python's `logging` to stdout (below WARNING) and stderr (WARNING and up),
  one line per logger and level every tick, so what prints shows the effective levels.
- Reads its effective levels from Caravan's levels files (/etc/caravan/loggers: the
  defaults, then this allocation's overrides on top, per logger) and its settings from
  $CARAVAN_SETTINGS_FILE, and re-reads both when they change, without a restart.
- Announces each change on stdout (`levels {...}`, `settings {...}`), so a reader of the
  log sees when the new file reached the process.

Environment: CARAVAN_LOGGER_ID (the loggerID, default "task"), TASK_LOGGERS (comma-separated
logger names, default "app,net"), TASK_TICK_SECONDS (default 1), TASK_POLL_SECONDS (how
often the files are checked, default 0.05), TASK_BURST_BYTES (write that many bytes of
numbered lines to stdout at start, for log benchmarks; default 0).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from typing import Any

LOGGERS_DIR = "/etc/caravan/loggers"
SETTINGS_FILE = os.environ.get("CARAVAN_SETTINGS_FILE", "/etc/caravan/settings/settings.json")
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "panic": logging.CRITICAL,
}
# Printed at every tick, in this order (panic prints as fatal: Python has one level above).
TICK_LEVELS = ["debug", "info", "warning", "error", "fatal"]


def read_json(path: str) -> Any:
    """The file's JSON, or None while it is absent, empty or being replaced."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


def stamp(path: str) -> tuple[int, int] | None:
    """Identity of the file behind the kubelet's symlink: it swaps files, never edits."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def effective_levels(logger_id: str) -> dict[str, str]:
    """Defaults of `logger_id`, then this allocation's overrides on top, per logger."""
    levels: dict[str, str] = {}
    for name in ("defaults.json", "overrides.json"):
        doc = read_json(os.path.join(LOGGERS_DIR, name))
        if isinstance(doc, dict) and isinstance(doc.get(logger_id), dict):
            levels.update({k: v for k, v in doc[logger_id].items() if v in LEVELS})
    return levels


WORDS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}


class CaravanFormatter(logging.Formatter):
    """`<logger> <level> <message>`, the level in Caravan's words."""

    def format(self, record: logging.LogRecord) -> str:
        word = WORDS.get(record.levelno, record.levelname.lower())
        return f"{record.name} {word} {record.getMessage()}"


class BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


def setup_logging() -> None:
    fmt = CaravanFormatter()
    out = logging.StreamHandler(sys.stdout)
    out.addFilter(BelowWarning())
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(fmt)
        logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)


def burst(size: int) -> None:
    """`size` bytes of numbered 100-byte lines on stdout."""
    line = 0
    written = 0
    while written < size:
        text = f"burst {line:012d} " + "x" * 80 + "\n"
        text = text[:100] if len(text) > 100 else text.rjust(100)
        sys.stdout.write(text)
        written += len(text)
        line += 1
    sys.stdout.flush()


def main() -> None:
    logger_id = os.environ.get("CARAVAN_LOGGER_ID", "task")
    names = [n for n in os.environ.get("TASK_LOGGERS", "app,net").split(",") if n]
    tick_seconds = float(os.environ.get("TASK_TICK_SECONDS", "1"))
    poll_seconds = float(os.environ.get("TASK_POLL_SECONDS", "0.05"))
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    setup_logging()
    burst(int(os.environ.get("TASK_BURST_BYTES", "0")))
    print(f"started logger_id={logger_id} loggers={','.join(names)}", flush=True)

    level_files = [os.path.join(LOGGERS_DIR, n) for n in ("defaults.json", "overrides.json")]
    seen_levels: Any = object()
    seen_settings: Any = object()
    tick = 0
    next_tick = time.monotonic()
    while True:
        now_levels = tuple(stamp(p) for p in level_files)
        if now_levels != seen_levels:
            seen_levels = now_levels
            levels = effective_levels(logger_id)
            for name in names:
                # A logger named in neither file keeps the starting level, info.
                logging.getLogger(name).setLevel(LEVELS[levels.get(name, "info")])
            print("levels " + json.dumps(levels, sort_keys=True), flush=True)
        now_settings = stamp(SETTINGS_FILE)
        if now_settings != seen_settings:
            seen_settings = now_settings
            print("settings " + json.dumps(read_json(SETTINGS_FILE), sort_keys=True), flush=True)
        if time.monotonic() >= next_tick:
            for name in names:
                log = logging.getLogger(name)
                for level in TICK_LEVELS:
                    log.log(LEVELS[level], "tick=%d", tick)
            tick += 1
            next_tick += tick_seconds
        time.sleep(poll_seconds)


if __name__ == "__main__":
    main()
