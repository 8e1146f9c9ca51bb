#!/usr/bin/env python3
"""Runs one command and prints what it cost, as one JSON line on stdout.

    scan-measure.py TIMEOUT_SECONDS COMMAND [ARGS...]

{"wall_s": .., "user_s": .., "sys_s": .., "maxrss_kib": .., "rc": ..}: wall time from
the monotonic clock, CPU time and peak resident set size (ru_maxrss, KiB on Linux) of
the command's own process from wait4(2), so nothing else on the machine is counted.
The command's stdout and stderr pass through to stderr. A command still running after
TIMEOUT_SECONDS is killed and reported with rc -9.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    limit = float(sys.argv[1])
    started = time.monotonic()
    child = subprocess.Popen(sys.argv[2:], stdout=sys.stderr, stderr=sys.stderr)
    timer = threading.Timer(limit, lambda: child.send_signal(signal.SIGKILL))
    timer.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    timer.cancel()
    # Popen must not reap it again.
    child.returncode = os.waitstatus_to_exitcode(status)
    print(
        json.dumps(
            {
                "wall_s": round(wall, 4),
                "user_s": round(usage.ru_utime, 4),
                "sys_s": round(usage.ru_stime, 4),
                "maxrss_kib": usage.ru_maxrss,
                "rc": child.returncode,
            }
        )
    )


if __name__ == "__main__":
    main()
