"""What the benchmarks record about the machine they ran on."""

from __future__ import annotations

import datetime
import os
import platform


def machine() -> str:
    """Date, core count, CPU model and load average, for the record."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{datetime.date.today()}, {os.cpu_count()} cores (nproc), {model}, load {load}"
