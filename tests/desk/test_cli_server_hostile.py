"""``--server`` against a hostile or broken peer: one clear line, exit 1, bounded memory.

A small HTTP server on loopback (port 0) answers what a wrong or hostile address might:
a web page, JSON of another shape, far too much data, a stall, a compressed bomb, a
connection cut mid-reply. The CLI never prints a traceback and reads at most its limit.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner, Result

from stagectl.cli import desk_remote
from stagectl.cli.main import app

runner = CliRunner()
Answer = Callable[[BaseHTTPRequestHandler], None]


class Peer:
    """A loopback HTTP server whose every reply is ``answer``."""

    def __init__(self) -> None:
        self.answer: Answer = lambda h: None
        self.release = threading.Event()
        self.paths: list[str] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                peer.paths.append(self.path)
                peer.answer(self)

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = False
        self.thread = threading.Thread(target=self.server.serve_forever, name="hostile-peer")
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()  # joins the handler threads
        self.thread.join(5)


@pytest.fixture
def peer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    monkeypatch.setattr(desk_remote, "TIMEOUT_S", 1.0)
    monkeypatch.setattr(desk_remote, "MAX_REPLY_BYTES", 1 << 20)
    p = Peer()
    try:
        yield p
    finally:
        p.close()


def reply(status: int, body: bytes, ctype: str = "application/json",
          **headers: str) -> Answer:
    def answer(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            h.send_header(k.replace("_", "-"), v)
        h.end_headers()
        h.wfile.write(body)
    return answer


def book(peer: Peer, *args: str) -> Result:
    r = runner.invoke(app, ["book", *args, "--server", peer.url],
                      env={"STAGECTL_DESK_TOKEN": "sdt_x", "STAGECTL_DESK_URL": "",
                           "COLUMNS": "120"})
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r


def test_a_web_page_instead_of_the_desk(peer: Peer) -> None:
    peer.answer = reply(200, b"<html><body>captive portal</body></html>", "text/html")
    r = book(peer, "list")
    assert r.exit_code == 1 and "is not JSON (is it the desk?)" in r.stderr


def test_json_of_another_shape(peer: Peer) -> None:
    peer.answer = reply(200, b'[{"x": 1}]')
    r = book(peer, "list")
    assert r.exit_code == 1 and "in a shape this stagectl does not read" in r.stderr
    peer.answer = reply(200, b'{"stages": "no"}')
    r = book(peer, "report")
    assert r.exit_code == 1 and "in a shape this stagectl does not read" in r.stderr


def test_far_too_much_data_is_not_read(peer: Peer) -> None:
    sent: list[int] = []

    def flood(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.end_headers()
        chunk = b"[" + b" " * 65535
        try:
            for _ in range(200):  # 12.5 MiB offered; the CLI stops after 1 MiB
                h.wfile.write(chunk)
                sent.append(len(chunk))
        except OSError:
            pass

    peer.answer = flood
    r = book(peer, "list")
    assert r.exit_code == 1 and "answered more than 1 MiB" in r.stderr
    assert sum(sent) < 200 * 65536  # it hung up instead of reading it all


def test_a_stall_times_out(peer: Peer) -> None:
    def stall(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "100")
        h.end_headers()
        h.wfile.write(b"[")
        h.wfile.flush()
        peer.release.wait(10)

    peer.answer = stall
    r = book(peer, "list")
    assert r.exit_code == 1 and "did not answer GET /api/v1/stages within 1 s" in r.stderr


def test_a_compressed_bomb_is_refused_unread(peer: Peer) -> None:
    bomb = gzip.compress(b" " * (50 << 20))
    peer.answer = reply(200, bomb, Content_Encoding="gzip")
    r = book(peer, "list")
    assert r.exit_code == 1 and "compressed (gzip)" in r.stderr


def test_a_reply_cut_off_midway(peer: Peer) -> None:
    def cut(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "1000")
        h.end_headers()
        h.wfile.write(b'[{"id": ')
        h.close_connection = True

    peer.answer = cut
    r = book(peer, "list")
    assert r.exit_code == 1 and "broke off GET /api/v1/stages" in r.stderr


def test_errors_without_the_contract_s_json(peer: Peer) -> None:
    peer.answer = reply(500, b"oops", "text/plain")
    r = book(peer, "list")
    assert r.exit_code == 1 and "answered HTTP 500" in r.stderr
    peer.answer = reply(401, b"<html>login</html>", "text/html")
    r = book(peer, "list")
    assert r.exit_code == 1 and "refused the token (HTTP 401" in r.stderr
    peer.answer = reply(409, b'{"error": {"code": "refused", "message": "' + b"x" * 5000
                        + b'", "details": {"explanation": "not a list"}}}')
    r = book(peer, "confirm", "B1")
    assert r.exit_code == 1 and "refused:" in r.stderr and len(r.stderr) < 2600
    # the string "not a list" was not taken as a list of one-letter lines: the message shows
    assert "x" * 1000 in "".join(r.stderr.split()) and "\n  n\n" not in r.stderr


def test_ids_cannot_change_the_path(peer: Peer) -> None:
    stages, missing = reply(200, b"[]"), reply(404, b'{"error": {"code": "not_found"}}')
    peer.answer = lambda h: (stages if h.path == "/api/v1/stages" else missing)(h)
    r = book(peer, "confirm", "../../users/admin/disable")
    assert r.exit_code == 1 and "404" in r.stderr
    assert peer.paths[-1] == "/api/v1/bookings/..%2F..%2Fusers%2Fadmin%2Fdisable/confirm"
