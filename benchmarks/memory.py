"""Process memory readings shared by the benchmarks."""


def rss_mb() -> float:
    """This process's resident set size in MiB, from /proc/self/status (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found (not Linux?)")
