# shellcheck shell=bash
# Shared helpers for scripts/prosody, scripts/ejabberd, scripts/test.
# Source it; it does not change shell options itself.

ROOST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# Python with Debian's python3-slixmpp (the pyenv python3 on PATH lacks it).
ROOST_PY="${ROOST_PY:-/usr/bin/python3}"
[ -x "$ROOST_PY" ] || ROOST_PY="$(command -v python3)"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# free_port: print a TCP port on 127.0.0.1 that is free right now.
free_port() {
    "$ROOST_PY" - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# port_open PORT: true if something accepts connections on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT TIMEOUT_SECS [PID]: wait until the port accepts connections.
# Fails early if PID is given and the process died.
wait_port() {
    local port=$1 timeout=${2:-30} pid=${3:-} i
    for ((i = 0; i < timeout * 10; i++)); do
        if port_open "$port"; then return 0; fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

# wait_port_closed PORT TIMEOUT_SECS
wait_port_closed() {
    local port=$1 timeout=${2:-30} i
    for ((i = 0; i < timeout * 10; i++)); do
        if ! port_open "$port"; then return 0; fi
        sleep 0.1
    done
    return 1
}

# load_env DIR: source DIR/env (KEY=VALUE lines) into the current shell.
load_env() {
    local dir=$1
    [ -f "$dir/env" ] || die "$dir/env not found (was the server started with this DIR?)"
    # shellcheck disable=SC1091
    set -a; . "$dir/env"; set +a
}

# pid_alive PID
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# kill_wait PID TIMEOUT_SECS: SIGTERM, wait, then SIGKILL.
kill_wait() {
    local pid=$1 timeout=${2:-15} i
    pid_alive "$pid" || return 0
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    log "pid $pid did not exit after ${timeout}s; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
    sleep 0.2
}

# abs_dir DIR: create DIR if needed and print its absolute path.
abs_dir() { mkdir -p "$1" && (cd "$1" && pwd -P); }

# need_pkg BINARY|FILE PACKAGE: install the Debian package if the command or file is missing.
need_pkg() {
    local bin=$1 pkg=$2
    if ! command -v "$bin" >/dev/null 2>&1 && [ ! -e "$bin" ]; then
        log "$bin missing; installing $pkg"
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo=sudo
        # A fresh machine may have no package lists yet: fetch them once and try again.
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg" >&2 ||
            { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg" >&2; }
    fi
}

# need_build_tools: what building Roost needs besides the Rust toolchain. The `roost`
# binary's allocator (tikv-jemallocator, component/Cargo.toml) builds jemalloc with make.
need_build_tools() { need_pkg make make; }
