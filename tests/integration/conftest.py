"""End-to-end harness: the reference backend and a real ``mitmdump -s addons/wireshift.py``.

Both run as subprocesses on 127.0.0.1 for the whole session. mitmdump listens in reverse mode
(clients set their base URL) and in regular mode (clients use it as an HTTPS proxy and trust
the CA from the session's own confdir). Nothing reaches the internet: regular-mode requests
name vendor hosts but are re-targeted to the emulator before any connection is made.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


#: npm-installed CLIs live here, outside the checkout, so CI and later runs reuse them.
NPM_CACHE = Path(os.environ.get("WIRESHIFT_CACHE", Path.home() / ".cache" / "wireshift"))


def npm_cli(package: str, name: str) -> Path:
    """Path of the ``name`` binary of npm ``package`` (installed ``@latest`` into ``NPM_CACHE``
    on first use). Skips the calling test, with the reason, only when npm cannot install it."""
    prefix = NPM_CACHE / name
    binary = prefix / "node_modules" / ".bin" / name
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed: cannot install {package}")
    prefix.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            [npm, "install", "--prefix", str(prefix), f"{package}@latest"], capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install {package} timed out")
    if proc.returncode != 0 or not binary.exists():
        pytest.skip(f"npm could not install {package}: {proc.stderr.strip()[-500:]}")
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"process exited early ({proc.returncode}):\n{out}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open in {timeout}s")


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


@dataclass
class Emulator:
    url: str

    def requests(self) -> list[dict]:
        return httpx.get(f"{self.url}/_emulator/requests").json()

    def clear(self) -> None:
        httpx.delete(f"{self.url}/_emulator/requests")


@dataclass
class Proxy:
    reverse_url: str
    regular_url: str
    ca_file: Path
    log_file: Path

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "emulator.py"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_port(port, proc)
        yield Emulator(f"http://127.0.0.1:{port}")
    finally:
        stop(proc)


TEST_CONFIG = """
backends:
  - kind: custom-openai-chat-compatible
    backend_prefix: emu-chat
    base_url: {emu}/v1
    api_keys: [backend-key-chat]
  - kind: custom-openai-responses-compatible
    backend_prefix: emu-responses
    base_url: {emu}/v1
    api_keys: [backend-key-responses]
  - kind: custom-openai-chat-compatible
    backend_prefix: emu-pool
    base_url: {emu}/v1
    api_keys: [pool-key-a, pool-key-b]
  - kind: custom-anthropic-compatible
    backend_prefix: emu-anthropic
    base_url: {emu}
    api_keys: [backend-key-anthropic]
    max_output_tokens: 4096
  # transport negotiation: a backend that never streams and one that only streams
  - kind: custom-openai-chat-compatible
    backend_prefix: emu-nostream
    base_url: {emu}/v1
    streaming: false
  - kind: custom-anthropic-compatible
    backend_prefix: emu-streamonly
    base_url: {emu}
    streaming: only
  # key-less twins for scenarios that answer 401/403/429: no key pool to retire or cool down,
  # so the keyed backends above stay usable for the rest of the session
  - kind: custom-openai-chat-compatible
    backend_prefix: emu-chat-nokey
    base_url: {emu}/v1
  - kind: custom-openai-responses-compatible
    backend_prefix: emu-responses-nokey
    base_url: {emu}/v1
  - kind: custom-anthropic-compatible
    backend_prefix: emu-anthropic-nokey
    base_url: {emu}
  # upstream execution (issue 4): keys the emulator answers with a forced status
  # (emu-status-<code>[-<retry-after>]), a backend nobody listens on, tight timeouts
  - kind: custom-openai-chat-compatible
    backend_prefix: emu-k401
    base_url: {emu}/v1
    api_keys: [emu-status-401, k401-good]
  - kind: custom-anthropic-compatible
    backend_prefix: emu-k429
    base_url: {emu}
    api_keys: [emu-status-429-30, k429-good]
  - kind: custom-openai-chat-compatible
    backend_prefix: emu-kall
    base_url: {emu}/v1
    api_keys: [emu-status-429-5, emu-status-429-9]
  - kind: custom-openai-chat-compatible
    backend_prefix: emu-dead
    base_url: http://127.0.0.1:{dead}/v1
  - kind: custom-openai-chat-compatible
    backend_prefix: emu-fast
    base_url: {emu}/v1
    timeouts: {{first_byte: 0.5, idle: 0.4}}
  # built-in kinds pointed at the emulator, so their quirks show in what it receives
  - kind: nvidia
    base_url: {emu}/v1
    api_keys: [nv-key]
  - kind: openrouter
    base_url: {emu}/v1
    api_keys: [or-key]
    headers: {{HTTP-Referer: "https://wireshift.test", X-Title: wireshift-tests}}
routing:
  default_backend: emu-chat
  aliases:
    wireshift-agent: "emu-chat:agent"
  routes:
    failover-demo: ["emu-dead:text", "emu-chat-nokey:error-503", "emu-anthropic:text"]
"""


def start_mitmdump(config: Path, confdir: Path, log_file: Path, *extra: str) -> tuple[subprocess.Popen, int, int]:
    reverse_port, regular_port = free_port(), free_port()
    cmd = [
        str(BIN / "mitmdump"),
        "-s",
        str(ROOT / "addons" / "wireshift.py"),
        "--set",
        f"wireshift_config={config}",
        "--set",
        f"confdir={confdir}",
        "--set",
        "listen_host=127.0.0.1",
        "--mode",
        f"reverse:http://127.0.0.1:9@{reverse_port}",
        "--mode",
        f"regular@{regular_port}",
        *extra,
    ]
    log = log_file.open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    return proc, reverse_port, regular_port


@pytest.fixture(scope="session")
def proxy(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("proxy")
    config = tmp / "wireshift.yaml"
    config.write_text(TEST_CONFIG.format(emu=emulator.url, dead=free_port()))
    log_file = tmp / "mitmdump.log"
    proc, reverse_port, regular_port = start_mitmdump(config, tmp / "confdir", log_file)
    try:
        wait_port(reverse_port, proc)
        wait_port(regular_port, proc)
        # the addon answers /health itself: proves it loaded (a failed script load is silent)
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{reverse_port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("wireshift addon did not answer /health:\n" + log_file.read_text())
        yield Proxy(
            f"http://127.0.0.1:{reverse_port}",
            f"http://127.0.0.1:{regular_port}",
            tmp / "confdir" / "mitmproxy-ca-cert.pem",
            log_file,
        )
    finally:
        # read before stopping: mitmdump logs CancelledErrors for connections cut by its shutdown
        log = log_file.read_text()
        stop(proc)
    # "none crashes mitmproxy": an exception in a hook or stream callable is logged, not raised
    if "Traceback" in log or "has crashed" in log or "Addon error" in log:
        pytest.fail("mitmdump logged an exception during the session:\n" + log[-5000:])


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """SDK clients must not pick up a proxy from the machine's environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


os.environ.setdefault("ANTHROPIC_LOG", "")
