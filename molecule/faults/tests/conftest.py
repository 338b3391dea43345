"""Print the faults table and the bad-input results at the end of verify."""

import json
import os

from helpers import BUILD


def pytest_terminal_summary(terminalreporter):
    write = terminalreporter.write_line
    path = os.path.join(BUILD, "badinput.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            rows = json.load(handle)["rows"]
        write("")
        write(f"bad inputs ({len(rows)} rows; each refused, host unchanged):")
        for row in rows:
            write(f"  {row['row']:38s} rc={row['rc']}  failed in: {row['failed_task']}")
    path = os.path.join(BUILD, "faults.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
        write("")
        write(f"faults on {doc['distro']} (load: 40 req/s through nginx, HTTP + websocket):")
        write(f"  {'fault':48s} {'requests':>8s} {'errors':>6s} {'recovery s':>10s}")
        for row in doc["faults"]:
            write(f"  {row['fault'][:48]:48s} {row['requests']:8d} {row['errors']:6d} {row['recovery_s']:10.1f}")
