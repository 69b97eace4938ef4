"""/openapi.json tells the truth where the fuzzer (test_fuzz.py) does not look: the video stream
(HEAD, Range errors as JSON, its media types), the server-sent events, the multipart uploads, and
what every operation answers a caller without a token."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

from heimdex.api.routers.videos import stream_media_type
from heimdex.service import VIDEO_SUFFIXES


@pytest.fixture(scope="module")
def spec(server) -> dict:
    return server.client().get("/openapi.json").json()


def documented(spec: dict, method: str, path: str) -> dict:
    return spec["paths"][path][method.lower()]["responses"]


def test_head_on_the_stream_is_get_without_the_body(server, alice, news) -> None:
    url = f"/videos/{news['id']}/stream"
    get, head = alice.get(url), alice.head(url)
    if server.backend == "server":  # like GET: a redirect to the object in storage, no body
        assert get.status_code == head.status_code == 307 and head.content == b""
        assert urlsplit(head.headers["location"]).path == urlsplit(get.headers["location"]).path
        assert "X-Amz-Signature" in head.headers["location"]
        return
    assert get.status_code == head.status_code == 200 and head.content == b""
    for name in ("content-type", "content-length", "accept-ranges", "etag", "last-modified"):
        assert head.headers[name] == get.headers[name], name
    assert int(head.headers["content-length"]) == len(get.content) == news["size_bytes"]
    part = alice.head(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 10-19/{news['size_bytes']}"
    assert alice.head("/videos/0123456789abcdef/stream").status_code == 404


def test_range_errors_on_the_stream_are_json(server, alice, news) -> None:
    url, size = f"/videos/{news['id']}/stream", news["size_bytes"]
    if server.backend == "server":  # object storage serves the ranges: the API redirects, whatever they are
        for bad in (f"bytes={size + 10}-", "bytes=abc"):
            assert alice.get(url, headers={"Range": bad}).status_code == 307
        return
    r = alice.get(url, headers={"Range": f"bytes={size + 10}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"
    assert r.headers["content-type"] == "application/json" and r.json()["status"] == 416
    assert str(size) in r.json()["message"]
    for bad in ("bytes=abc", "pages=1-2", "bytes=20-10", "bytes"):
        r = alice.get(url, headers={"Range": bad})
        assert r.status_code == 400 and r.json()["status"] == 400 and "Range" in r.json()["message"], bad
    # A Range for another version of the file (If-Range does not match) is ignored: the whole file.
    r = alice.get(url, headers={"Range": "bytes=abc", "If-Range": '"another-etag"'})
    assert r.status_code == 200 and len(r.content) == size


def test_the_stream_documents_every_media_type_it_sends(spec) -> None:
    responses = documented(spec, "GET", "/videos/{video_id}/stream")
    sent = {stream_media_type("clip" + suffix) for suffix in VIDEO_SUFFIXES} | {
        stream_media_type("no-suffix")
    }
    assert sent <= set(responses["200"]["content"]) and sent <= set(responses["206"]["content"])
    assert "application/json" not in responses["200"]["content"]
    assert all(t.startswith("video/") or t.startswith("application/") for t in sent), sent
    assert stream_media_type("holiday.MOV") == "video/mp4" and stream_media_type("a.ts") == "video/mp2t"
    assert {"307", "404", "416"} <= set(responses) and documented(spec, "HEAD", "/videos/{video_id}/stream")


def test_uploads_declare_their_multipart_bodies(spec) -> None:
    for path in ("/videos", "/people/{person_id}/photos"):
        body = spec["paths"][path]["post"]["requestBody"]
        schema = body["content"]["multipart/form-data"]["schema"]
        assert body["required"] and schema["required"] == ["file"], path
        assert schema["properties"]["file"]["items"] == {"type": "string", "format": "binary"}, path


def test_the_event_stream_is_documented_as_such(server, alice, spec) -> None:
    content = documented(spec, "GET", "/jobs/events")["200"]["content"]
    assert list(content) == ["text/event-stream"]
    with alice.stream("GET", "/jobs/events", timeout=httpx.Timeout(30, read=30)) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert next(r.iter_lines()) == "retry: 2000"


def test_every_operation_documents_what_it_tells_a_caller_without_a_token(server, spec) -> None:
    anonymous = server.client()
    checked = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            url = re.sub(r"\{[^}]+\}", "0123456789abcdef", path)
            r = anonymous.request(method.upper(), url)
            assert str(r.status_code) in operation["responses"], (method, path, r.status_code, r.text)
            if r.status_code >= 400:
                assert r.headers["content-type"] == "application/json", (method, path)
                if method != "head":
                    assert r.json()["status"] == r.status_code and r.json()["message"]
                schema = operation["responses"][str(r.status_code)]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
            checked += 1
    assert checked >= 35
    assert spec["components"]["schemas"]["ErrorBody"]["required"] == ["status", "message"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # 422s are ErrorBody too
