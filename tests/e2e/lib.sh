# shellcheck shell=bash
# Shared helpers for the end-to-end suites. Source it, do not run it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Provides: free_port, wait_until, start_postgres, start_moto, start_dockerd,
# start_reference_registry, check, expect_eq, debian_mirror, summary, workspace_test, on_exit (stacked
# cleanups) and E2E_TMP (a private temp dir removed on exit).
# Tools come from scripts/install-test-deps (target/tools).

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/../.." && pwd)"
TOOLS="$REPO_ROOT/target/tools"
export PATH="$TOOLS/bin:$PATH"

# The machine exports CA-bundle variables; plain-http loopback tests need none,
# and some clients (S3 SDKs) break on AWS_CA_BUNDLE.
unset AWS_CA_BUNDLE AWS_PROFILE AWS_SESSION_TOKEN AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE

# ------------------------------------------------------------ stacked cleanup
# Every start_* registers its own cleanup; they run in reverse order on exit,
# so several services in one script stop cleanly. Cleanups never print to
# stdout: the last stdout line must stay the summary line.
_E2E_CLEANUPS=()
on_exit() { _E2E_CLEANUPS+=("$1"); }
_e2e_run_cleanups() {
    local rc=$? i
    set +e
    # A check still running (interrupted run) goes first.
    if [ -n "${_E2E_CHECK_PID:-}" ]; then kill_tree "$_E2E_CHECK_PID" 5 >/dev/null 2>&1; fi
    for ((i = ${#_E2E_CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${_E2E_CLEANUPS[$i]}" >/dev/null 2>&1
    done
    _E2E_CLEANUPS=()
    return "$rc"
}
trap _e2e_run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

E2E_TMP="$(mktemp -d "${TMPDIR:-/tmp}/slipway-e2e.XXXXXX")"
on_exit "_e2e_rm_tree '$E2E_TMP'"

# rm -rf that first lazily unmounts anything a daemon left mounted below DIR.
_e2e_rm_tree() {
    local dir="$1" m
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    if [ -r /proc/self/mounts ]; then
        # deepest first
        while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
            awk -v d="$dir" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
    fi
    rm -rf "$dir"
}

# All process ids below PID (children, grandchildren...), read from /proc in
# one pass with shell builtins (no procps needed, no fork per process).
_e2e_descendants() {
    local p line rest ppid pid c
    local -A kids=()
    for p in /proc/[0-9]*; do
        read -r line 2>/dev/null <"$p/stat" || continue
        rest="${line##*) }"   # drop "pid (comm) ": comm may hold spaces and parens
        rest="${rest#* }"     # drop the state field
        ppid="${rest%% *}"
        kids[$ppid]+="${p#/proc/} "
    done
    local queue=("$1")
    while [ "${#queue[@]}" -gt 0 ]; do
        pid="${queue[0]}"
        queue=("${queue[@]:1}")
        for c in ${kids[$pid]:-}; do
            echo "$c"
            queue+=("$c")
        done
    done
}

# True if PID runs (a zombie waiting to be reaped counts as gone).
_e2e_alive() {
    local line
    read -r line 2>/dev/null <"/proc/$1/stat" || return 1
    line="${line##*) }"
    [ "${line%% *}" != Z ]
}

# kill_tree PID [TIMEOUT]: TERM the process and its descendants, wait up to
# TIMEOUT seconds (default 10), then KILL what is left.
kill_tree() {
    local pid="$1" t="${2:-10}" all p i
    all="$pid $(_e2e_descendants "$pid" | tr '\n' ' ')"
    for p in $all; do kill -TERM "$p" 2>/dev/null || true; done
    for ((i = 0; i < t * 10; i++)); do
        local alive=0
        for p in $all; do _e2e_alive "$p" && alive=1; done
        [ "$alive" = 0 ] && return 0
        sleep 0.1
    done
    for p in $all; do kill -KILL "$p" 2>/dev/null || true; done
}

# ------------------------------------------------------------------ utilities
# free_port: print a TCP port that is free on 127.0.0.1 right now.
# ------------------------------------------------------------ cargo tests
# workspace_test PACKAGE TARGET [ARGS...]: runs one test binary of the workspace build
# (TARGET is a test target's name, or `lib` for the package's unit tests) in the
# package's directory, as `cargo test` would. `cargo test -p PACKAGE` would resolve
# dependency features for that package alone, which differ from the workspace's (a
# dev-dependency of another member turns on a feature deep in the tree), and compile
# much of the tree again. The binary runs under `timeout` (WORKSPACE_TEST_TIMEOUT
# seconds, default 3600).
workspace_test() {
    local package="$1" target="$2" binary
    shift 2
    binary="$(cd "$REPO_ROOT" && cargo test --locked --workspace --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
package, target = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    kinds, name = m["target"]["kind"], m["target"]["name"]
    if m["manifest_path"].endswith(f"/crates/{package}/Cargo.toml") and (name == target or target in kinds):
        print(m["executable"])
' "$package" "$target")"
    [ -n "$binary" ] || { echo "no test binary $target of $package in the workspace build" >&2; return 1; }
    (cd "$REPO_ROOT/crates/$package" && timeout "${WORKSPACE_TEST_TIMEOUT:-3600}" "$binary" "$@")
}

free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_until TIMEOUT_SECONDS DESCRIPTION CMD...: retry CMD every 0.2 s until it
# succeeds; fail (return 1, message on stderr) after the timeout.
wait_until() {
    local t="$1" what="$2" deadline
    shift 2
    deadline=$((SECONDS + t))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "timed out after ${t}s waiting for $what" >&2
            return 1
        fi
        sleep 0.2
    done
}

# http_code URL [curl args...]: print the HTTP status of a request (000 on
# connection failure). Bounded by --max-time.
http_code() {
    local url="$1"
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$@" "$url" || true
}

# Print the log tail of a service that failed to start.
_e2e_fail_start() {
    echo "$1" >&2
    [ -f "${2:-}" ] && tail -n 30 "$2" >&2
    return 1
}

# ------------------------------------------------------------------ services
# start_postgres: a private PostgreSQL 15 cluster (trust auth) on a free
# loopback port. Exports PG_URL, PG_PORT and PG_DATA (the data dir). The data dir
# must be reachable by the postgres user, so it gets its own world-traversable temp dir.
start_postgres() {
    local pgbin=/usr/lib/postgresql/15/bin port dir
    [ -x "$pgbin/initdb" ] || pgbin="$(dirname "$(command -v initdb)")"
    port="$(free_port)"
    dir="$(mktemp -d "${TMPDIR:-/tmp}/slipway-pg.XXXXXX")"
    chmod 755 "$dir"
    mkdir -p "$dir/data" "$dir/sock"
    chown -R postgres:postgres "$dir"
    on_exit "_e2e_rm_tree '$dir'"
    runuser -u postgres -- "$pgbin/initdb" -D "$dir/data" -A trust -U postgres \
        >"$dir/initdb.log" 2>&1 || _e2e_fail_start "initdb failed" "$dir/initdb.log" || return 1
    on_exit "runuser -u postgres -- '$pgbin/pg_ctl' -D '$dir/data' -m immediate -t 20 stop"
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/postgres.log" \
        -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off" start \
        >/dev/null || _e2e_fail_start "postgres did not start" "$dir/postgres.log" || return 1
    export PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export PG_PORT="$port"
    export PG_DATA="$dir/data"
}

# start_moto: an S3-compatible server (moto) on a free loopback port with one
# bucket, holding copies to S3's 5 GiB single-request limit (s3/moto_server.py).
# Exports S3_ENDPOINT, S3_BUCKET and test credentials.
start_moto() {
    local venv="$TOOLS/venv" port log pid
    [ -x "$venv/bin/moto_server" ] || _e2e_fail_start "moto missing: run scripts/install-test-deps" || return 1
    port="$(free_port)"
    log="$E2E_TMP/moto-$port.log"
    "$venv/bin/python" "$E2E_DIR/s3/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    pid=$!
    on_exit "kill_tree $pid 5"
    wait_until 30 "moto on port $port" curl -sf --max-time 2 "http://127.0.0.1:$port/moto-api/" ||
        _e2e_fail_start "moto did not start" "$log" || return 1
    export S3_ENDPOINT="http://127.0.0.1:$port"
    export S3_BUCKET="${S3_BUCKET:-slipway-e2e}"
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
    export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    # Create the bucket with a real SDK (boto3 comes with moto).
    "$venv/bin/python" - <<EOF || _e2e_fail_start "could not create bucket $S3_BUCKET" "$log" || return 1
import boto3
boto3.client("s3", endpoint_url="$S3_ENDPOINT").create_bucket(Bucket="$S3_BUCKET")
EOF
}

# start_dockerd: Docker Engine 20.10 from target/tools/docker (unpacked .debs):
# vfs storage, no iptables/bridge, private data/exec roots. Exports
# DOCKER_HOST and DOCKER_CONFIG (a private client config) and puts the
# engine's binaries first on PATH (its docker CLI matches the engine).
start_dockerd() {
    local prefix="$TOOLS/docker" dir log pid
    [ -x "$prefix/usr/sbin/dockerd" ] || _e2e_fail_start "dockerd missing: run scripts/install-test-deps" || return 1
    export PATH="$prefix/usr/bin:$prefix/usr/sbin:$PATH"
    # Short path: the unix socket path must stay under 108 bytes.
    dir="$(mktemp -d "${TMPDIR:-/tmp}/slipway-dockerd.XXXXXX")"
    mkdir -p "$dir/data" "$dir/exec" "$dir/config"
    log="$dir/dockerd.log"
    on_exit "_e2e_rm_tree '$dir'"
    dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
        -H "unix://$dir/docker.sock" --storage-driver vfs \
        --iptables=false --ip6tables=false --bridge=none --ip-forward=false --ip-masq=false \
        >"$log" 2>&1 &
    pid=$!
    on_exit "kill_tree $pid 20"
    export DOCKER_HOST="unix://$dir/docker.sock"
    export DOCKER_CONFIG="$dir/config"
    wait_until 90 "dockerd" docker version ||
        _e2e_fail_start "dockerd did not become ready" "$log" || return 1
}

# start_reference_registry: docker-registry 2.8.2 (the reference "distribution"
# registry) on a free loopback port, filesystem storage in a temp dir, deletes
# enabled. Exports REGISTRY=127.0.0.1:PORT.
start_reference_registry() {
    local port dir pid bin
    bin="$(command -v docker-registry || echo /usr/bin/docker-registry)"
    [ -x "$bin" ] || _e2e_fail_start "docker-registry missing: run scripts/install-test-deps" || return 1
    port="$(free_port)"
    dir="$E2E_TMP/registry-$port"
    mkdir -p "$dir/data"
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
EOF
    "$bin" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    pid=$!
    on_exit "kill_tree $pid 5"
    wait_until 30 "docker-registry on $port" curl -sf --max-time 2 "http://127.0.0.1:$port/v2/" ||
        _e2e_fail_start "docker-registry did not start" "$dir/registry.log" || return 1
    export REGISTRY="127.0.0.1:$port"
    export REFERENCE_REGISTRY_LOG="$dir/registry.log"
}

# --------------------------------------------------------------------- checks
# check NAME CMD...: run CMD (a command or shell function; errexit applies
# inside it, so a multi-step function stops at its first failing step) with a
# time limit of E2E_CHECK_TIMEOUT seconds (default 120; a check normally
# takes seconds). Prints "ok NAME" or
# "FAIL NAME" followed by the tail of the check's output. The full output of
# every check is kept in $E2E_LOG_DIR (if set) as NAME.log.
#
# E2E_KNOWN_FAILURES (one check name per line) lists checks that are expected
# to fail against the registry under test (run-against-reference.sh uses it for
# docker-registry 2.8.2, which lacks OCI 1.1 features): such a failure prints
# "xfail NAME" and counts as neither passed nor failed.
E2E_PASSED=0
E2E_FAILED=0
E2E_XFAILED=0
E2E_FAILED_NAMES=()
_e2e_known_failure() {
    [ -n "${E2E_KNOWN_FAILURES:-}" ] && grep -qxF -- "$1" <<<"$E2E_KNOWN_FAILURES"
}
check() {
    local name="$1" t="${E2E_CHECK_TIMEOUT:-120}" log pid rc start deadline
    shift
    log="$E2E_TMP/check.$((E2E_PASSED + E2E_FAILED)).log"
    start=$SECONDS
    deadline=$((SECONDS + t))
    (set -euo pipefail; "$@") </dev/null >"$log" 2>&1 &
    pid=$!
    _E2E_CHECK_PID=$pid
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "check timed out after ${t}s" >>"$log"
            kill_tree "$pid" 5
            break
        fi
        sleep 0.1
    done
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    _E2E_CHECK_PID=
    if [ -n "${E2E_LOG_DIR:-}" ]; then
        mkdir -p "$E2E_LOG_DIR"
        cp "$log" "$E2E_LOG_DIR/$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_').log"
    fi
    if [ "$rc" -eq 0 ]; then
        E2E_PASSED=$((E2E_PASSED + 1))
        echo "ok $name"
    elif _e2e_known_failure "$name"; then
        E2E_XFAILED=$((E2E_XFAILED + 1))
        echo "xfail $name (known failure for this registry: $(grep -v '^ *$' "$log" | tail -n 1 | cut -c1-160))"
    else
        E2E_FAILED=$((E2E_FAILED + 1))
        E2E_FAILED_NAMES+=("$name")
        echo "FAIL $name (exit $rc after $((SECONDS - start))s)"
        tail -n "${E2E_TAIL_LINES:-25}" "$log" | sed 's/^/    | /'
    fi
}

# The mirror for suite bookworm from the machine's apt sources (one-line .list or
# deb822 .sources), so that no mirror is written into the repository.
debian_mirror() {
    local f mirror
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        mirror="$(awk '
            # deb822: stanzas of "Field: value" lines separated by blank lines.
            function flush() {
                if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ / bookworm /) { split(uris, u, " "); print u[1]; found = 1; exit }
                types = ""; uris = ""; suites = ""
            }
            /^[[:space:]]*#/ { next }
            /^[[:space:]]*$/ { flush(); next }
            /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0; next }
            /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); uris = $0; next }
            /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0; next }
            # One-line form: deb [options] URI SUITE COMPONENTS...
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == "bookworm") { print $i; found = 1; exit }
            }
            END { if (!found) flush() }
        ' "$f")"
        if [ -n "$mirror" ]; then
            echo "$mirror"
            return
        fi
    done
}

# expect_eq WHAT EXPECTED ACTUAL: fails (with both values) unless they are equal; says
# so on stderr either way, for the check's log.
expect_eq() {
    if [ "$2" != "$3" ]; then
        echo "MISMATCH $1: expected '$2' got '$3'" >&2
        return 1
    fi
    echo "same $1: $2" >&2
}

# summary: list the failed checks, then print exactly one closing line
# "N passed, N failed"; returns non-zero if anything failed (use as the last
# command of a suite).
summary() {
    if [ "$E2E_XFAILED" -gt 0 ]; then
        echo "$E2E_XFAILED known failures (E2E_KNOWN_FAILURES) not counted"
    fi
    if [ "$E2E_FAILED" -gt 0 ]; then
        echo "failed checks:"
        printf '  - %s\n' "${E2E_FAILED_NAMES[@]}"
    fi
    echo "$E2E_PASSED passed, $E2E_FAILED failed"
    [ "$E2E_FAILED" -eq 0 ]
}

# require_registry: fail early with a usage message if REGISTRY is unset.
require_registry() {
    if [ -z "${REGISTRY:-}" ]; then
        echo "usage: REGISTRY=127.0.0.1:PORT $0   (a plain-http registry without auth)" >&2
        exit 2
    fi
    wait_until 30 "registry at http://$REGISTRY/v2/" curl -s --max-time 2 -o /dev/null "http://$REGISTRY/v2/" || {
        echo "registry at http://$REGISTRY/v2/ is not answering" >&2
        exit 2
    }
}
