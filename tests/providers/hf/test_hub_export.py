"""`export_training_set`: the real ``huggingface_hub`` client against a small fake Hub on 127.0.0.1.

The fake answers the three calls ``HfApi.create_repo`` and ``HfApi.upload_file`` make for a small file:
``POST /api/repos/create``, ``POST /api/datasets/{repo}/preupload/main`` (we always say "regular", so the file
travels inline, base64, in the commit) and ``POST /api/datasets/{repo}/commit/main`` (NDJSON: a header line,
then one line per file).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from aiohttp import web
from huggingface_hub.errors import HfHubHTTPError

from judgeflow.providers.hf.hub_export import export_training_set

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

TOKEN = "hf_FakeTokenForTests0123456789"


@dataclass
class FakeHub:
    """What the fake Hub holds: repos (id -> visibility) and files ((repo, path) -> bytes)."""

    endpoint: str = ""
    repos: dict[str, str] = field(default_factory=dict)
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    refuse: bool = False

    async def create(self, request: web.Request) -> web.Response:
        self.auth.append(request.headers.get("Authorization", ""))
        if self.refuse:
            return web.json_response({"error": "Invalid credentials in Authorization header"}, status=401)
        body = await request.json()
        assert body["type"] == "dataset"
        repo_id = f"{body['organization']}/{body['name']}"
        url = f"{self.endpoint}/datasets/{repo_id}"
        if repo_id in self.repos:
            return web.json_response({"error": "You already created this dataset repo", "url": url}, status=409)
        self.repos[repo_id] = body.get("visibility", "public")
        return web.json_response({"url": url, "name": repo_id})

    async def preupload(self, request: web.Request) -> web.Response:
        body = await request.json()
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in body["files"]]
        return web.json_response({"files": files})

    async def commit(self, request: web.Request) -> web.Response:
        repo_id = f"{request.match_info['ns']}/{request.match_info['name']}"
        assert request.content_type == "application/x-ndjson"
        lines = [json.loads(line) for line in (await request.text()).splitlines() if line]
        header = lines[0]
        assert header["key"] == "header"
        for line in lines[1:]:
            assert line["key"] == "file"
            value = line["value"]
            self.files[repo_id, value["path"]] = base64.b64decode(value["content"])
        self.commits.append(header["value"]["summary"])
        oid = f"{len(self.commits):040x}"
        return web.json_response({"commitUrl": f"{self.endpoint}/datasets/{repo_id}/commit/{oid}", "commitOid": oid})


@asynccontextmanager
async def fake_hub() -> AsyncIterator[FakeHub]:
    hub = FakeHub()
    app = web.Application()
    app.router.add_post("/api/repos/create", hub.create)
    app.router.add_post("/api/datasets/{ns}/{name}/preupload/{revision}", hub.preupload)
    app.router.add_post("/api/datasets/{ns}/{name}/commit/{revision}", hub.commit)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        hub.endpoint = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield hub
    finally:
        await runner.cleanup()


@pytest.fixture
def train_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "finetune" / "train.jsonl"
    path.parent.mkdir()
    lines = [
        {"messages": [{"role": "user", "content": f"Q{i}?"}, {"role": "assistant", "content": "4.0"}]} for i in range(3)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_hub_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("live") is not None:
        return
    for name in ("HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


async def test_the_training_set_becomes_a_private_dataset_repo(train_jsonl: Path) -> None:
    async with fake_hub() as hub:
        url = await export_training_set(train_jsonl, "alice/judge-train", token=TOKEN, endpoint=hub.endpoint)
    assert url == f"{hub.endpoint}/datasets/alice/judge-train"
    assert hub.repos == {"alice/judge-train": "private"}
    assert hub.files == {("alice/judge-train", "train.jsonl"): await anyio.Path(train_jsonl).read_bytes()}
    assert hub.auth == [f"Bearer {TOKEN}"]
    assert hub.commits == ["Upload train.jsonl (judgeflow fine-tuning set)"]


async def test_an_existing_repo_gets_the_new_file(train_jsonl: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # the token comes from the environment when none is given
    async with fake_hub() as hub:
        await export_training_set(train_jsonl, "alice/judge-train", private=False, endpoint=hub.endpoint)
        await anyio.Path(train_jsonl).write_text('{"messages": []}\n', encoding="utf-8")
        url = await export_training_set(train_jsonl, "alice/judge-train", endpoint=hub.endpoint)
    assert url == f"{hub.endpoint}/datasets/alice/judge-train"
    assert hub.repos == {"alice/judge-train": "public"}  # the Hub keeps an existing repo's visibility
    assert hub.files["alice/judge-train", "train.jsonl"] == b'{"messages": []}\n'
    assert len(hub.commits) == 2
    assert hub.auth == [f"Bearer {TOKEN}"] * 2


async def test_a_refused_token_raises_the_hubs_error(train_jsonl: Path) -> None:
    async with fake_hub() as hub:
        hub.refuse = True
        with pytest.raises(HfHubHTTPError) as caught:
            await export_training_set(train_jsonl, "alice/judge-train", token=TOKEN, endpoint=hub.endpoint)
    assert caught.value.response.status_code == 401
    assert hub.files == {}


async def test_a_missing_file_or_bad_repo_id_fails_before_any_request(tmp_path: Path) -> None:
    async with fake_hub() as hub:
        with pytest.raises(FileNotFoundError, match="no training set"):
            await export_training_set(tmp_path / "nope.jsonl", "alice/x", token=TOKEN, endpoint=hub.endpoint)
        (tmp_path / "t.jsonl").write_text("{}\n", encoding="utf-8")
        with pytest.raises(ValueError, match="repo_id"):
            await export_training_set(tmp_path / "t.jsonl", "a/b/c", token=TOKEN, endpoint=hub.endpoint)
    assert hub.auth == []


@pytest.mark.live
async def test_live_export_to_the_real_hub(train_jsonl: Path) -> None:
    """Needs HF_TOKEN with write access and HF_LIVE_DATASET=user/name (a dataset repo you may overwrite)."""
    repo_id = os.environ.get("HF_LIVE_DATASET")
    if not repo_id or not os.environ.get("HF_TOKEN"):
        pytest.skip("set HF_TOKEN and HF_LIVE_DATASET to run")
    url = await export_training_set(train_jsonl, repo_id, token=os.environ["HF_TOKEN"])
    assert url.endswith(f"/datasets/{repo_id}")
