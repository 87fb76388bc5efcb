"""download(): against a loopback HTTP server only (127.0.0.1, an ephemeral port, shut down after)."""
import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from course_lib.data import DownloadError, default_cache_dir, download, sha256_of

CONTENT = b"Mia had a red ball.\nWhat colour was the ball that Mia had? It was red.\n" * 50
DIGEST = hashlib.sha256(CONTENT).hexdigest()
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


class LoopbackServer:
    """Serves ``files`` (path -> bytes) and counts the requests it answers."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self):
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.thread.join()
            self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    # A proxy from the environment would route even 127.0.0.1 elsewhere: never allow it here.
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    running = LoopbackServer({"/stories.txt": CONTENT, "/corrupt.txt": CONTENT[:-1] + b"?"})
    yield running
    running.stop()


def test_first_download_writes_the_verified_file(server, tmp_path):
    path = download(f"{server.url}/stories.txt", DIGEST, cache_dir=tmp_path)
    assert path == tmp_path / "stories.txt"
    assert path.read_bytes() == CONTENT
    assert server.requests == ["/stories.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["stories.txt"]  # no temporary file left


def test_cache_hit_does_not_touch_the_network(server, tmp_path):
    first = download(f"{server.url}/stories.txt", DIGEST, cache_dir=tmp_path)
    second = download(f"{server.url}/stories.txt", DIGEST.upper(), cache_dir=tmp_path)
    assert second == first and len(server.requests) == 1
    server.stop()
    assert download(f"{server.url}/stories.txt", DIGEST, cache_dir=tmp_path) == first


def test_a_stale_cached_file_is_replaced(server, tmp_path):
    (tmp_path / "stories.txt").write_bytes(b"an older version")
    path = download(f"{server.url}/stories.txt", DIGEST, cache_dir=tmp_path)
    assert path.read_bytes() == CONTENT and len(server.requests) == 1


def test_checksum_mismatch_names_both_digests_and_keeps_nothing(server, tmp_path):
    actual = hashlib.sha256(CONTENT[:-1] + b"?").hexdigest()
    with pytest.raises(ValueError, match=rf"expected sha256 {DIGEST}, got {actual}"):
        download(f"{server.url}/corrupt.txt", DIGEST, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_http_404_names_the_url(server, tmp_path):
    url = f"{server.url}/missing.txt"
    with pytest.raises(DownloadError, match=rf"{url}.*404"):
        download(url, DIGEST, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_refused_connection_names_the_url(tmp_path, monkeypatch):
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    with socket.socket() as probe:  # a loopback port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/stories.txt"
    with pytest.raises(DownloadError, match=url):
        download(url, DIGEST, cache_dir=tmp_path, timeout=5)


def test_cache_dir_from_the_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LM_COURSE_CACHE", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache"
    path = download(f"{server.url}/stories.txt", DIGEST, filename="renamed.txt")
    assert path == tmp_path / "cache" / "renamed.txt"
    assert sha256_of(path) == DIGEST


def test_default_cache_dir_without_the_environment(monkeypatch):
    monkeypatch.delenv("LM_COURSE_CACHE", raising=False)
    assert default_cache_dir().parts[-2:] == (".cache", "lm-course")


@pytest.mark.parametrize(
    "arguments, message",
    [
        (("ftp://127.0.0.1/x.txt", DIGEST), "http"),
        (("http://127.0.0.1/x.txt", "abc123"), "64 hexadecimal"),
        (("http://127.0.0.1/", DIGEST), "filename="),
    ],
)
def test_bad_arguments_fail_before_any_request(arguments, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        download(*arguments, cache_dir=tmp_path)


def test_bad_filename_and_timeout(tmp_path):
    with pytest.raises(ValueError, match="plain file name"):
        download("http://127.0.0.1/x.txt", DIGEST, cache_dir=tmp_path, filename="../escape.txt")
    with pytest.raises(ValueError, match="timeout"):
        download("http://127.0.0.1/x.txt", DIGEST, cache_dir=tmp_path, timeout=0)
