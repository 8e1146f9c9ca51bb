"""What bench/report.py and bench/search-report.py share: the raw-figures format and
the run's machine state.

Rows: KIND NAME SUBJECT ROUND key=value... (tab- or space-separated). Run metadata
comes from BENCH_META_* environment variables.
"""

import os


def meta(key, default="?"):
    return os.environ.get("BENCH_META_" + key, default)


CLK_TCK = int(meta("CLK_TCK", "100"))

# A measurement during which other processes used more than this share of the
# machine (or hypervisor steal exceeded it) is marked as disturbed.
DISTURBED = 10.0


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4:
                continue
            kind, name, subject, rnd = parts[:4]
            fields = {}
            for kv in parts[4:]:
                k, _, v = kv.partition("=")
                fields[k] = v
            rows.append((kind, name, subject, rnd, fields))
    return rows


def disturbed(f):
    return float(f.get("others", 0)) > DISTURBED or float(f.get("steal", 0)) > DISTURBED


def others(f):
    """What else ran during a measurement: other processes' CPU share of the
    whole machine, hypervisor steal, and compiler processes of others."""
    top = f.get("top", "-")
    top = "" if top == "-" else f" ({top.replace(',', ', ')})"
    mark = "**disturbed** " if disturbed(f) else ""
    return f"{mark}{f.get('others', '?')}%{top} / {f.get('steal', '?')}% / {f.get('builds', '?')}"
