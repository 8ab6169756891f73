"""Descriptions of the machine a backend computes on (for reports and benchmarks)."""

import os
import platform

__all__ = ["cpu_description"]


def cpu_description():
    """Return the CPU model name and the number of cores usable by this process."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model} ({cores} cores)"
