"""The fake OpenAI server of the throughput benchmark, in a process of its own, and the parent's handle on it.

Run as a script, this serves `judgeflow.testing.serve_openai` on 127.0.0.1 (a free port) and prints its base URL
on the first line of stdout. It then answers one command per stdin line, with one JSON line on stdout:

* ``stats`` - ``{"served", "responses", "max_in_flight"}``: the requests answered so far, by HTTP status;
* ``log`` - the arrival times (server clock, epoch seconds) of the chat requests so far.

End of stdin stops the server. `ServerProcess` starts it and speaks this protocol for the benchmark, which starts
a fresh server for every measured run (so counts, the log and the RPM window belong to that run alone). The
server runs in its own process so that it does not share the client's core: it serves several thousand requests
per second on one core, a ceiling the benchmark shows as the server's CPU use during each run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["ServerProcess", "max_in_window"]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def max_in_window(times: list[float], window_s: float) -> int:
    """The most requests that arrived within any ``window_s``-second span (a sliding window over sorted times).

    A request at ``t`` and one at ``t + window_s`` are in different windows, as in the server's own RPM check.
    """
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


class ServerProcess:
    """A fake OpenAI server process: ``with ServerProcess(latency_s=0.2) as server: server.base_url``.

    The process is stopped (stdin closed, then terminated if it lingers) when the block ends, also on errors.
    """

    def __init__(self, *, latency_s: float, rpm: int | None = None, log_limit: int = 1_000_000) -> None:
        command = [sys.executable, str(Path(__file__)), "--latency", str(latency_s), "--log-limit", str(log_limit)]
        if rpm is not None:
            command += ["--rpm", str(rpm)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("http://"):
            self.close()
            raise RuntimeError(f"the fake server did not start (said {line!r})")
        self.base_url = line
        self.pid = self._process.pid

    def _ask(self, command: str) -> Any:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return json.loads(self._process.stdout.readline())

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._ask("stats")
        return result

    def log(self) -> list[float]:
        times: list[float] = self._ask("log")
        return times

    def cpu_seconds(self) -> float:
        """User plus system CPU of the server process so far, from /proc (no command round trip)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def close(self) -> None:
        if self._process.poll() is None:
            if self._process.stdin is not None:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.terminate()
                self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------------------------
# The server process


def _serve(args: argparse.Namespace) -> None:
    import anyio

    from judgeflow.testing import FakeOpenAI, serve_openai

    async def main() -> None:
        config = FakeOpenAI(latency_s=args.latency, rpm=args.rpm, log_limit=args.log_limit)
        async with serve_openai(config) as server:
            print(server.base_url, flush=True)
            while line := await anyio.to_thread.run_sync(sys.stdin.readline):
                command = line.strip()
                reply: object
                if command == "stats":
                    stats = server.stats
                    reply = {
                        "served": sum(stats.responses.values()),
                        "responses": {str(status): n for status, n in stats.responses.items()},
                        "max_in_flight": stats.max_in_flight,
                    }
                elif command == "log":
                    reply = [record.time for record in server.stats.log if record.path.endswith("/chat/completions")]
                else:
                    reply = {"error": f"unknown command {command!r}"}
                print(json.dumps(reply), flush=True)

    anyio.run(main, backend="asyncio")


def _main() -> None:
    parser = argparse.ArgumentParser(description="The throughput benchmark's fake OpenAI server (see the docstring).")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rpm", type=int, default=None)
    parser.add_argument("--log-limit", type=int, default=1_000_000)
    _serve(parser.parse_args())


if __name__ == "__main__":
    _main()
