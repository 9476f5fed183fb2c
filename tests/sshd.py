"""A real SSH server for the DVC remote tests: Debian's openssh-server on 127.0.0.1 and a free port, key-only
authentication with throwaway keys in a temporary folder, stopped by its own pid."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass
class Sshd:
    proc: subprocess.Popen
    port: int
    user: str
    keyfile: Path
    log: Path

    def url(self, path: Path | str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{Path(path).resolve()}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # its own pid only
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def start(folder: Path, timeout: float = 20.0) -> Sshd:
    """Start sshd in the foreground (-D) with its config, keys and log under ``folder``; wait until it accepts."""
    if not os.access(SSHD, os.X_OK):
        raise RuntimeError("sshd is not installed: `apt-get install openssh-server` (.ci/run installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    host_key, client_key = folder / "host_ed25519", folder / "client_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    (folder / "authorized_keys").write_text((folder / "client_ed25519.pub").read_text())
    user = getpass.getuser()
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder (Debian)
    for _ in range(3):  # a free port can be taken between the probe and sshd's bind: try another
        port = free_port()
        config = folder / "sshd_config"
        config.write_text("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"AuthorizedKeysFile {folder / 'authorized_keys'}", "AuthenticationMethods publickey",
            "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", f"AllowUsers {user}", "UsePAM no", "StrictModes no",
            f"PidFile {folder / 'sshd.pid'}", "Subsystem sftp internal-sftp", "LogLevel VERBOSE", ""]))
        log = folder / "sshd.log"
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                                stderr=log.open("w"))
        server = Sshd(proc, port, user, client_key, log)
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return server
            time.sleep(0.1)
        server.stop()
    raise RuntimeError(f"sshd did not start: {log.read_text()[-2000:]}")
