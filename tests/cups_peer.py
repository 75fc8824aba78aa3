"""A real CUPS scheduler for the bulletin tests, bound to 127.0.0.1 on a free port, with its own files.

``start_cups()`` writes a private ServerRoot (cupsd.conf, cups-files.conf, spool, cache, logs) under a
fresh folder in the temp dir, runs ``cupsd -f`` (foreground, so it is stopped by its PID), waits until
``lpstat -r`` says it runs, and adds raw queues whose backend ``savejob`` stores every job's document
byte for byte as ``<root>/jobs/job-<id>.bin``. Nothing under /etc/cups or /var is touched. The policy
lets any local client administer it: fine for a throwaway loopback daemon, never for a real one.

Needs Debian's ``cups`` and ``cups-client`` (``scripts/install-peers``) and root, because cupsd runs
backends as the ``lp`` user. When either is missing the test is skipped with the reason; tests using
it are marked ``@pytest.mark.peer("cups")`` so CI (``NOTIFIER_REQUIRE_PEERS=1``) fails instead.

CUPS documentation: https://www.cups.org/doc/man-cupsd.conf.html ,
https://www.cups.org/doc/man-cups-files.conf.html , https://www.cups.org/doc/man-backend.html
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CUPSD = "/usr/sbin/cupsd"
SYSTEM_SERVER_BIN = Path("/usr/lib/cups")

SAVEJOB = """#!/bin/sh
# CUPS backend "savejob:/": keeps each job's document byte for byte (called as: job user title copies options [file])
if [ $# -eq 0 ]; then echo 'direct savejob "Unknown" "Save jobs to a folder"'; exit 0; fi
out="{jobs}/job-$1.bin"
if [ -n "$6" ]; then cat "$6" > "$out.tmp"; else cat > "$out.tmp"; fi
mv "$out.tmp" "$out"
exit 0
"""

CUPSD_CONF = """Listen 127.0.0.1:{port}
LogLevel info
Browsing No
BrowseLocalProtocols none
WebInterface No
DefaultAuthType None
DefaultPolicy open
MaxJobs 0
<Location />
  Order deny,allow
  Deny all
  Allow 127.0.0.1
</Location>
<Policy open>
  JobPrivateAccess all
  JobPrivateValues none
  SubscriptionPrivateAccess all
  SubscriptionPrivateValues none
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""

CUPS_FILES_CONF = """SystemGroup root
ServerRoot {root}/etc
ServerBin {root}/bin
RequestRoot {root}/spool
TempDir {root}/spool/tmp
CacheDir {root}/cache
StateDir {root}/state
Printcap {root}/printcap
AccessLog {root}/log/access_log
ErrorLog {root}/log/error_log
PageLog {root}/log/page_log
"""


@dataclass
class CupsPeer:
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    queues: list[str] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    def uri(self, queue: str) -> str:
        return f"ipp://127.0.0.1:{self.port}/printers/{queue}"

    def client(self, *args: str) -> str:
        """Run a CUPS command-line client (lpadmin, lpstat, cupsreject...) against this scheduler."""
        done = subprocess.run([args[0], "-h", self.server, *args[1:]], capture_output=True, text=True, timeout=20)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def add_raw_queue(self, name: str) -> str:
        """A raw queue (no filters) whose jobs land in ``jobs``; returns its IPP URI."""
        self.client("lpadmin", "-p", name, "-E", "-v", "savejob:/", "-m", "raw")
        self.queues.append(name)
        return self.uri(name)

    def saved_job(self, job_id: int) -> bytes:
        return (self.jobs / f"job-{job_id}.bin").read_bytes()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _require() -> None:
    missing = [tool for tool in (CUPSD, "lpadmin", "lpstat") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"CUPS is not installed (missing {', '.join(missing)}); run scripts/install-peers")
    if os.geteuid() != 0:
        pytest.skip("the CUPS test peer runs cupsd, which needs root")
    try:
        pwd.getpwnam("lp")
    except KeyError:
        pytest.skip("no 'lp' user: cupsd runs backends as lp")


def _lay_out(root: Path, port: int) -> None:
    for sub in ("etc/ppd", "spool/tmp", "cache", "state", "log", "bin/backend", "jobs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for entry in SYSTEM_SERVER_BIN.iterdir():
        if entry.name != "backend":
            (root / "bin" / entry.name).symlink_to(entry)
    backend = root / "bin" / "backend" / "savejob"
    backend.write_text(SAVEJOB.format(jobs=root / "jobs"), encoding="utf-8")
    backend.chmod(0o755)  # 0755 (not 0700): CUPS runs it as lp, not as root
    shutil.chown(root / "jobs", user="lp")
    (root / "etc" / "cupsd.conf").write_text(CUPSD_CONF.format(port=port), encoding="utf-8")
    (root / "etc" / "cups-files.conf").write_text(CUPS_FILES_CONF.format(root=root), encoding="utf-8")


def start_cups(queues: tuple[str, ...] = ("NOTICE_RAW",)) -> CupsPeer:
    """Start a private cupsd with the given raw queues; call ``stop()`` when done."""
    _require()
    root = Path(tempfile.mkdtemp(prefix="notifier-cups-"))
    root.chmod(0o755)  # lp must reach the backend and the jobs folder
    port = _free_port()
    _lay_out(root, port)
    command = [CUPSD, "-f", "-c", str(root / "etc/cupsd.conf"), "-s", str(root / "etc/cups-files.conf")]
    with open(root / "log" / "cupsd.out", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    peer = CupsPeer(root, port, process)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            output = (root / "log" / "cupsd.out").read_text(errors="replace")
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"cupsd exited with {process.returncode}: {output[-2000:]}")
        ready = subprocess.run(["lpstat", "-h", peer.server, "-r"], capture_output=True, text=True, timeout=10)
        if "is running" in ready.stdout:
            break
        if time.monotonic() > deadline:
            peer.stop()
            raise RuntimeError("cupsd did not become ready within 15 s")
        time.sleep(0.05)
    try:
        for queue in queues:
            peer.add_raw_queue(queue)
    except Exception:
        peer.stop()
        raise
    return peer
