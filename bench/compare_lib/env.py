"""Where the binaries are, what is missing and how to get it, and the shared fixtures of a run.

Env is built once per invocation: it knows the repository, the build directory, a scratch
directory (removed at exit) and the document root served to the HTTP servers.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent

# Files served by the HTTP servers: (URL path, size). The 13-byte file is "Hello, world\n".
WWW_FILES = {"/13b.txt": 13, "/4k.bin": 4096, "/1m.bin": 1 << 20}

# Debian package that provides each system binary the harness may run.
APT_PACKAGES = {
    "nginx": "nginx-light", "memcached": "memcached", "beanstalkd": "beanstalkd", "wrk": "wrk",
    "taskset": "util-linux", "cmake": "cmake",
}


# The harness raises its own priority (it must sample /proc the moment a client prints a marker); the servers and
# clients it starts run at the priority it was started with.
_BASE_PRIORITY = os.getpriority(os.PRIO_PROCESS, 0)


def raise_own_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(-20, _BASE_PRIORITY - 10))
    except OSError:
        pass  # not allowed: run at the normal priority


def restore_priority() -> None:
    """preexec_fn for every child: back to the priority the harness was started with."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, _BASE_PRIORITY)
    except OSError:
        pass


class MissingTool(RuntimeError):
    """A binary the plan needs is absent; the message says how to get it."""


class Env:
    def __init__(self, build_dir: Path):
        self.repo = REPO
        self.build_dir = build_dir
        self.scratch = Path(tempfile.mkdtemp(prefix="ringlet-compare-"))
        os.chmod(self.scratch, 0o755)  # nginx's worker runs as another user and must reach the root
        self._www: Path | None = None
        self.backend_port: int | None = None  # the matrix's backend server while a cell runs (runner.run_cell)

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    # Binaries ---------------------------------------------------------------------------------
    @property
    def ringlet(self) -> Path:
        return self.build_dir / "ringlet"

    def build_binary(self, relative: str) -> Path:
        return self.build_dir / relative

    @staticmethod
    def system_binary(name: str) -> Path:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
        if path is None:
            pkg = APT_PACKAGES.get(name, name)
            raise MissingTool(f"{name} not found: install it with `apt-get install {pkg}` "
                              f"(scripts/install-deps.sh installs every benchmark peer)")
        return Path(path)

    @lru_cache(maxsize=None)
    def ringlet_help(self, *subcommand: str) -> str | None:
        """`ringlet SUB... --help` output, or None when the binary or subcommand does not exist."""
        if not os.access(self.ringlet, os.X_OK):
            return None
        try:
            done = subprocess.run([str(self.ringlet), *subcommand, "--help"], capture_output=True,
                                  text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            return None
        text = done.stdout + done.stderr
        # A placeholder subcommand (registered with no options) prints only the generic help.
        return text

    def ringlet_has(self, subcommand: list[str], *flags: str) -> str | None:
        """None when `ringlet SUB` exists and accepts every flag, else the reason it cannot run."""
        text = self.ringlet_help(*subcommand)
        if text is None:
            if not os.access(self.ringlet, os.X_OK):
                return f"{self.ringlet} not built (cmake --build {self.build_dir} --target ringlet)"
            return f"`ringlet {' '.join(subcommand)}` does not exist in this build yet"
        missing = [f for f in flags if f not in text]
        if missing:
            return f"`ringlet {' '.join(subcommand)}` has no {', '.join(missing)} yet"
        return None

    # Fixtures ---------------------------------------------------------------------------------
    @property
    def www(self) -> Path:
        """Document root with the files of WWW_FILES; created on first use."""
        if self._www is None:
            root = self.scratch / "www"
            root.mkdir(mode=0o755)
            for name, size in WWW_FILES.items():
                data = b"Hello, world\n" if size == 13 else bytes((i * 131 + 7) & 0xFF for i in range(size))
                path = root / name.lstrip("/")
                path.write_bytes(data)
                path.chmod(0o644)
            self._www = root
        return self._www

    def run_dir(self, label: str) -> Path:
        """A fresh directory for one server run (nginx config, beanstalkd binlog)."""
        path = Path(tempfile.mkdtemp(prefix=label + "-", dir=self.scratch))
        os.chmod(path, 0o755)
        return path


def git_commit(repo: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (rev or "unknown") + (" + uncommitted changes" if dirty else "")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def tool_version(argv: list[str]) -> str:
    """First line a tool prints about its version, or '' when it cannot be run."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0].strip() if text else ""
