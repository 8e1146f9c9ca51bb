# shellcheck shell=bash
# Sourced after lib.sh: starts Slipway itself on one of its two backend pairs.
#
#   start_slipway sqlite-fs      the embedded default: SQLite + filesystem in a temp dir
#   start_slipway postgres-s3    a private PostgreSQL cluster + moto's S3 server
#
# Exports REGISTRY (host:port), E2E_SLIPWAY_DATA (its data dir), E2E_SLIPWAY_PID and
# E2E_SLIPWAY_LOG: not SLIPWAY_*, which the binary would read as its configuration.
# E2E_SLIPWAY_BIN selects the binary (default: target/debug/slipway). The registry runs
# open (no authentication) unless E2E_AUTH_MODE=enforced: these suites test the protocol.

E2E_SLIPWAY_BIN="${E2E_SLIPWAY_BIN:-$REPO_ROOT/target/debug/slipway}"

# backend_suite NAME [BACKEND]: the common start of a suite run against one backend pair.
# Sets BACKEND (default sqlite-fs) and E2E_LOG_DIR (target/e2e-results/NAME-BACKEND-TIME,
# created), and stops with a usage error for an unknown backend or a missing binary.
backend_suite() {
    BACKEND="${2:-sqlite-fs}"
    case "$BACKEND" in sqlite-fs | postgres-s3) ;; *)
        echo "usage: $0 [sqlite-fs|postgres-s3]" >&2
        exit 2
        ;;
    esac
    require_slipway_bin || exit 2
    E2E_LOG_DIR="${E2E_LOG_DIR:-$REPO_ROOT/target/e2e-results/$1-$BACKEND-$(date +%Y%m%d-%H%M%S)}"
    mkdir -p "$E2E_LOG_DIR"
}

require_slipway_bin() {
    [ -x "$E2E_SLIPWAY_BIN" ] || { echo "slipway binary missing at $E2E_SLIPWAY_BIN: cargo build first" >&2; return 1; }
}

# backend_env BACKEND: exports the SLIPWAY_* variables that select the backend,
# starting PostgreSQL and moto once per script.
backend_env() {
    case "$1" in
        sqlite-fs)
            unset SLIPWAY_DATABASE_URL SLIPWAY_STORAGE__S3__BUCKET SLIPWAY_STORAGE__S3__ENDPOINT \
                SLIPWAY_STORAGE__S3__ACCESS_KEY_ID SLIPWAY_STORAGE__S3__SECRET_ACCESS_KEY \
                SLIPWAY_STORAGE__S3__PREFIX
            ;;
        postgres-s3)
            [ -n "${PG_URL:-}" ] || start_postgres || return 1
            [ -n "${S3_ENDPOINT:-}" ] || start_moto || return 1
            # A fresh database and key prefix per start keeps runs independent.
            local db="slipway_$RANDOM$RANDOM"
            psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null || return 1
            export SLIPWAY_DATABASE_URL="${PG_URL%/*}/$db"
            export SLIPWAY_STORAGE__S3__BUCKET="$S3_BUCKET"
            export SLIPWAY_STORAGE__S3__ENDPOINT="$S3_ENDPOINT"
            export SLIPWAY_STORAGE__S3__ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"
            export SLIPWAY_STORAGE__S3__SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
            export SLIPWAY_STORAGE__S3__PREFIX="$db"
            ;;
        *)
            echo "unknown backend $1 (sqlite-fs or postgres-s3)" >&2
            return 1
            ;;
    esac
}

# start_slipway BACKEND [DATA_DIR]: starts `slipway serve` on a free port and waits for it.
# E2E_SLIPWAY_PREPARE, if set, is a command run with the data dir as its argument once the
# backend is chosen (SLIPWAY_* exported) and before `serve` starts, e.g. `slipway demo`.
# E2E_SLIPWAY_SERVE_ARGS are more arguments for `serve` (e.g. --demo, which loads the demo
# store before serving: E2E_SLIPWAY_START_SECS, default 60, is how long readiness may take).
start_slipway() {
    local backend="$1" port
    require_slipway_bin || return 1
    backend_env "$backend" || return 1
    E2E_SLIPWAY_DATA="${2:-$(mktemp -d "$E2E_TMP/slipway-data.XXXXXX")}"
    if [ -n "${E2E_SLIPWAY_PREPARE:-}" ]; then
        $E2E_SLIPWAY_PREPARE "$E2E_SLIPWAY_DATA" || { echo "E2E_SLIPWAY_PREPARE failed: $E2E_SLIPWAY_PREPARE" >&2; return 1; }
    fi
    port="$(free_port)"
    E2E_SLIPWAY_LOG="$E2E_SLIPWAY_DATA/serve.log"
    local serve_args=()
    read -r -a serve_args <<<"${E2E_SLIPWAY_SERVE_ARGS:-}"
    SLIPWAY_GC__INTERVAL_SECS=0 SLIPWAY_AUTH__MODE="${E2E_AUTH_MODE:-open}" "$E2E_SLIPWAY_BIN" serve --data-dir "$E2E_SLIPWAY_DATA" --listen "127.0.0.1:$port" \
        "${serve_args[@]}" >>"$E2E_SLIPWAY_LOG" 2>&1 &
    E2E_SLIPWAY_PID=$!
    on_exit "kill_tree $E2E_SLIPWAY_PID 10"
    export REGISTRY="127.0.0.1:$port" E2E_SLIPWAY_DATA E2E_SLIPWAY_PID E2E_SLIPWAY_LOG
    wait_until "${E2E_SLIPWAY_START_SECS:-60}" "slipway on $REGISTRY" curl -sf --max-time 2 "http://$REGISTRY/readyz" ||
        _e2e_fail_start "slipway did not become ready" "$E2E_SLIPWAY_LOG" || return 1
}

# start_smtp_sink MAILDIR: aiosmtpd on a free loopback port, every message a file in
# MAILDIR/new; points slipway's [mail] at it (SLIPWAY_MAIL__SMTP_URL).
start_smtp_sink() {
    local maildir="$1" port pid log="$E2E_TMP/smtp.log"
    port="$(free_port)"
    "$TOOLS/venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Mailbox "$maildir" >"$log" 2>&1 &
    pid=$!
    on_exit "kill_tree $pid 5"
    wait_until 30 "SMTP sink on $port" python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" ||
        _e2e_fail_start "the SMTP sink did not start" "$log" || return 1
    export SLIPWAY_MAIL__SMTP_URL="smtp://127.0.0.1:$port"
}

# mail_text RECIPIENT TEXT: the decoded text of the newest message to RECIPIENT in the
# sink's maildir ($MAILDIR, as given to start_smtp_sink) that contains TEXT, waiting up to
# 30 s for one.
mail_text() {
    "$TOOLS/venv/bin/python" - "${MAILDIR:?the maildir start_smtp_sink was given}" "$1" "$2" <<'PY'
import email, email.policy, pathlib, sys, time
maildir, recipient, text = pathlib.Path(sys.argv[1]), sys.argv[2].lower(), sys.argv[3]
deadline = time.time() + 30
while True:
    files = sorted((p for d in ("new", "cur") if (maildir / d).is_dir() for p in (maildir / d).iterdir()), key=lambda p: p.stat().st_mtime)
    messages = (email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files)
    bodies = [m.get_body(preferencelist=("plain", "html")).get_content() for m in messages if recipient in str(m["To"]).lower()]
    found = [b for b in bodies if text in b]
    if found:
        print(found[-1])
        break
    if time.time() > deadline:
        sys.exit(f"no mail to {recipient}")
    time.sleep(0.25)
PY
}

# load_demo DATA_DIR: the demo store, loaded before `serve` starts (use as
# E2E_SLIPWAY_PREPARE=load_demo, so it lands in the backend's database and bucket).
load_demo() {
    "$E2E_SLIPWAY_BIN" demo --data-dir "$1" >"$E2E_TMP/demo.log" 2>&1 || {
        echo "slipway demo failed:" >&2
        tail -n 30 "$E2E_TMP/demo.log" >&2
        return 1
    }
}

# start_demo_store BACKEND MAILDIR: slipway with the demo store, authentication enforced
# and mail to an SMTP sink; its serve.log and demo.log are kept with the suite's results.
# Exits the suite if anything fails to start.
start_demo_store() {
    local start_log="$E2E_TMP/start.log"
    {
        start_smtp_sink "$2" &&
            E2E_SLIPWAY_PREPARE=load_demo E2E_AUTH_MODE=enforced \
                SLIPWAY_LOG__FILTER="${E2E_SLIPWAY_LOG_FILTER:-info,tower_http=debug}" start_slipway "$1"
    } >"$start_log" 2>&1 || {
        cat "$start_log" >&2
        exit 1
    }
    on_exit "cp '$E2E_SLIPWAY_LOG' '$E2E_LOG_DIR/serve.log'"
    on_exit "cp '$E2E_TMP/demo.log' '$E2E_LOG_DIR/demo.log'"
}
