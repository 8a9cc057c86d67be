#!/usr/bin/env bash
# Local PostgreSQL and Redis for Keel.
#
#   deploy/local/services.sh ensure     make both reachable at the URLs Keel uses
#   deploy/local/services.sh status     show what is reachable and what this script started
#   deploy/local/services.sh stop       stop the instances this script started (only those)
#   deploy/local/services.sh test-env   print `export KEEL_TEST_...` lines for the test suite
#   deploy/local/services.sh packages P...  install Debian packages (for deploy/local/tools.sh)
#
# The URLs come from the same environment variables Keel reads:
#   KEEL__DATABASE__URL  (default postgres://postgres@127.0.0.1:5432/keel)
#   KEEL__REDIS__URL     (default redis://127.0.0.1:6379/0)
#
# `ensure` leaves a server that already answers alone. When one does not answer on a local
# address, it installs the Debian/Ubuntu packages if the binaries are missing and starts a
# project-local instance with its data under .local/ at the repository root (PostgreSQL
# with trust authentication on loopback, Redis without persistence). Then it makes sure
# the database named in the URL exists and the URL's user can log in.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="$ROOT/.local"
DATABASE_URL="${KEEL__DATABASE__URL:-postgres://postgres@127.0.0.1:5432/keel}"
REDIS_URL="${KEEL__REDIS__URL:-redis://127.0.0.1:6379/0}"
START_TIMEOUT_SECS="${KEEL_SERVICES_TIMEOUT_SECS:-30}"

log() { printf 'services: %s\n' "$*" >&2; }
die() {
    printf 'services: error: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [[ "$(id -u)" == 0 ]]; }

# Decodes %XX escapes (user names and passwords in URLs).
urldecode() {
    local s="${1//\\/\\\\}"
    printf '%b' "${s//%/\\x}"
}

# A host this machine can start a server on.
is_local_host() {
    case "$1" in
    127.* | localhost | ::1 | 0.0.0.0 | "") return 0 ;;
    *) return 1 ;;
    esac
}

# --- URL parsing -------------------------------------------------------------------------

PG_USER='' PG_PASSWORD='' PG_HOST='' PG_PORT='' PG_DB=''
parse_database_url() {
    local re='^(postgres|postgresql)://(([^:@/]*)(:([^@/]*))?@)?(\[[^]/]*\]|[^:/?]*)(:([0-9]+))?(/([^?]*))?(\?.*)?$'
    [[ "$DATABASE_URL" =~ $re ]] || die "cannot parse KEEL__DATABASE__URL (expected postgres://user[:password]@host[:port]/database)"
    PG_USER="$(urldecode "${BASH_REMATCH[3]}")"
    PG_PASSWORD="$(urldecode "${BASH_REMATCH[5]}")"
    PG_HOST="${BASH_REMATCH[6]}"
    PG_PORT="${BASH_REMATCH[8]:-5432}"
    PG_DB="$(urldecode "${BASH_REMATCH[10]}")"
    PG_HOST="${PG_HOST#[}"
    PG_HOST="${PG_HOST%]}"
    PG_HOST="${PG_HOST:-127.0.0.1}"
    PG_USER="${PG_USER:-postgres}"
    PG_DB="${PG_DB:-$PG_USER}"
}

REDIS_PASSWORD='' REDIS_HOST='' REDIS_PORT=''
parse_redis_url() {
    local re='^rediss?://(([^:@/]*)(:([^@/]*))?@)?(\[[^]/]*\]|[^:/?]*)(:([0-9]+))?(/([0-9]*))?(\?.*)?$'
    [[ "$REDIS_URL" =~ $re ]] || die "cannot parse KEEL__REDIS__URL (expected redis://[:password@]host[:port][/db])"
    REDIS_PASSWORD="$(urldecode "${BASH_REMATCH[4]}")"
    REDIS_HOST="${BASH_REMATCH[5]}"
    REDIS_PORT="${BASH_REMATCH[7]:-6379}"
    REDIS_HOST="${REDIS_HOST#[}"
    REDIS_HOST="${REDIS_HOST%]}"
    REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
}

# The URL with its password masked, for messages.
masked() { sed -E 's#^([a-z]+://[^:@/]*):[^@/]*@#\1:***@#' <<<"$1"; }

# --- reachability --------------------------------------------------------------------------

# shellcheck disable=SC2016 # the inner shell expands them
tcp_open() {
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

pg_reachable() {
    if have pg_isready; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 1
    else
        tcp_open "$PG_HOST" "$PG_PORT"
    fi
}

# shellcheck disable=SC2016 # the inner shell expands them
redis_reachable() {
    if have redis-cli; then
        local reply
        reply="$(REDISCLI_AUTH="$REDIS_PASSWORD" timeout 2 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" || return 1
        [[ "$reply" == PONG ]]
    else
        # Speak enough RESP by hand: AUTH when there is a password, then PING.
        timeout 2 bash -c '
            exec 3<>"/dev/tcp/$0/$1" || exit 1
            if [[ -n "$2" ]]; then printf "AUTH %s\r\n" "$2" >&3; read -r _ <&3; fi
            printf "PING\r\n" >&3
            read -r reply <&3
            [[ "$reply" == +PONG* ]]
        ' "$REDIS_HOST" "$REDIS_PORT" "$REDIS_PASSWORD" 2>/dev/null
    fi
}

# wait_for NAME CHECK_FUNCTION: polls until CHECK_FUNCTION succeeds or the timeout passes.
wait_for() {
    local name="$1" check="$2" deadline=$((SECONDS + START_TIMEOUT_SECS))
    until "$check"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
    log "$name is up"
}

# --- packages ----------------------------------------------------------------------------

APT_UPDATED=0
apt_install() {
    have apt-get || die "missing $*: install them with your system's package manager (this script knows apt-get only)"
    local sudo=()
    if ! is_root; then
        have sudo || die "installing $* needs root: run as root or install sudo"
        sudo=(sudo)
    fi
    local apt_log="$LOCAL/apt.log"
    mkdir -p "$LOCAL"
    if [[ "$APT_UPDATED" == 0 ]]; then
        log "apt-get update"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$apt_log" 2>&1 || {
            tail -n 20 "$apt_log" >&2
            die "apt-get update failed; see $apt_log"
        }
        APT_UPDATED=1
    fi
    log "apt-get install -y $* (log: $apt_log)"
    # 9>&-: servers a package's scripts start must not inherit the lock.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
        >>"$apt_log" 2>&1 </dev/null 9>&- || {
        tail -n 20 "$apt_log" >&2
        die "apt-get install $* failed; see $apt_log"
    }
}

# --- PostgreSQL --------------------------------------------------------------------------

# The newest installed server's bin directory (or the one matching an existing data dir).
pg_bindir() {
    local version_file="$1/PG_VERSION" dir
    if [[ -f "$version_file" ]]; then
        dir="/usr/lib/postgresql/$(<"$version_file")/bin"
        if [[ -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return
        fi
    fi
    dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then
        echo "$dir"
    elif have pg_config && [[ -x "$(pg_config --bindir)/initdb" ]]; then
        pg_config --bindir
    elif have initdb; then
        dirname "$(command -v initdb)"
    fi
}

# Runs a command as the user that owns the local cluster (PostgreSQL refuses to run as root).
# From / because that user may not be allowed into the current directory.
as_pg() {
    if ! is_root; then
        "$@"
    elif have runuser; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && su -s /bin/sh postgres -c "$(printf '%q ' "$@")")
    fi
}

# Where the local cluster lives: .local/postgres, or, when running as root and the postgres
# user cannot reach the work tree (e.g. a clone under /root), a folder under /var/tmp
# named after the work tree.
pg_base_fallback() { echo "/var/tmp/keel-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)/postgres"; }
pg_base_candidates() {
    echo "$LOCAL/postgres"
    is_root && pg_base_fallback
    return 0
}

PG_BASE=''
pg_prepare_base() {
    PG_BASE="$LOCAL/postgres"
    mkdir -p "$PG_BASE"
    if is_root; then
        getent passwd postgres >/dev/null || die "no 'postgres' system user: install the postgresql package"
        chown postgres: "$PG_BASE"
        if ! as_pg test -w "$PG_BASE" 2>/dev/null; then
            PG_BASE="$(pg_base_fallback)"
            log "the postgres user cannot reach $LOCAL; keeping the cluster in $PG_BASE"
            mkdir -p "$PG_BASE"
            chown postgres: "$PG_BASE" "$(dirname "$PG_BASE")"
        fi
    fi
    chmod 700 "$PG_BASE"
}

pg_start_local() {
    is_local_host "$PG_HOST" || die "PostgreSQL at $PG_HOST:$PG_PORT does not answer, and $PG_HOST is not this machine: start it, or point KEEL__DATABASE__URL at a reachable server"

    if [[ -z "$(pg_bindir /nonexistent)" ]]; then
        apt_install postgresql postgresql-client
        # The Debian package may start its own cluster on the default port.
        if pg_reachable; then
            log "PostgreSQL started by its package at $PG_HOST:$PG_PORT"
            return
        fi
        [[ -n "$(pg_bindir /nonexistent)" ]] || die "PostgreSQL is installed but initdb was not found under /usr/lib/postgresql/*/bin"
    fi

    local running
    running="$(pg_local_running)"
    [[ -z "$running" ]] || die "a PostgreSQL started from here already runs on another port (pid ${running%% *}); run '$0 stop' first"

    pg_prepare_base
    local data="$PG_BASE/data" logfile="$PG_BASE/postgres.log" bindir
    bindir="$(pg_bindir "$data")"

    if [[ ! -f "$data/PG_VERSION" ]]; then
        log "initdb $data"
        as_pg "$bindir/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=trust \
            -E UTF8 --locale=C.UTF-8 >"$PG_BASE/initdb.log" 2>&1 ||
            as_pg "$bindir/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=trust \
                -E UTF8 --locale=C >"$PG_BASE/initdb.log" 2>&1 ||
            die "initdb failed; see $PG_BASE/initdb.log"
    fi

    log "starting PostgreSQL on $PG_HOST:$PG_PORT (data in $data)"
    # Unix sockets are off: everything connects over TCP, and a deep work tree would
    # exceed the socket path limit.
    if ! as_pg "$bindir/pg_ctl" -D "$data" -l "$logfile" -w -t "$START_TIMEOUT_SECS" \
        -o "-c listen_addresses='$PG_HOST' -p $PG_PORT -c unix_socket_directories=''" start >/dev/null 9>&-; then
        tail -n 20 "$logfile" >&2 || true
        die "PostgreSQL did not start; see $logfile"
    fi
}

# psql with the connection given as arguments; SQL on stdin, psql variables with -v.
# usage: pg_sql USER PASSWORD DATABASE [psql args...] <<<SQL
pg_sql() {
    local user="$1" password="$2" db="$3"
    shift 3
    PGPASSWORD="$password" PGCONNECT_TIMEOUT=3 psql -X -q -t -A -v ON_ERROR_STOP=1 \
        -h "$PG_HOST" -p "$PG_PORT" -U "$user" -d "$db" "$@"
}

# Finds a role that may create roles and databases: the URL's user, `postgres` over TCP,
# or (as root, on this machine) `postgres` over the default Unix socket by peer auth.
ADMIN=()
pg_find_admin() {
    local query="SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
    if [[ "$(pg_sql "$PG_USER" "$PG_PASSWORD" postgres 2>/dev/null <<<"$query")" == t ]]; then
        ADMIN=(pg_sql "$PG_USER" "$PG_PASSWORD" postgres)
    elif [[ "$(pg_sql postgres '' postgres 2>/dev/null <<<"$query")" == t ]]; then
        ADMIN=(pg_sql postgres '' postgres)
    elif is_root && is_local_host "$PG_HOST" &&
        [[ "$(as_pg psql -X -q -t -A -p "$PG_PORT" -d postgres 2>/dev/null <<<"$query")" == t ]]; then
        ADMIN=(as_pg psql -X -q -t -A -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres)
    else
        die "cannot log in to PostgreSQL at $PG_HOST:$PG_PORT as '$PG_USER' or as an administrator to create the role or database; create them yourself"
    fi
}

pg_ensure_role_and_database() {
    if ! have psql; then
        log "psql not found: cannot check that database '$PG_DB' exists (install postgresql-client)"
        return 1
    fi
    # Fast path: the URL's user reaches the URL's database.
    if pg_sql "$PG_USER" "$PG_PASSWORD" "$PG_DB" >/dev/null 2>&1 <<<'SELECT 1'; then
        return
    fi

    pg_find_admin
    local exists
    exists="$("${ADMIN[@]}" -v role="$PG_USER" <<<"SELECT 1 FROM pg_roles WHERE rolname = :'role'")"
    if [[ "$exists" != 1 ]]; then
        log "creating PostgreSQL role '$PG_USER'"
        if [[ -n "$PG_PASSWORD" ]]; then
            "${ADMIN[@]}" -v role="$PG_USER" -v password="$PG_PASSWORD" \
                <<<"CREATE ROLE :\"role\" LOGIN CREATEDB PASSWORD :'password'" >/dev/null
        else
            "${ADMIN[@]}" -v role="$PG_USER" <<<"CREATE ROLE :\"role\" LOGIN CREATEDB" >/dev/null
        fi
    fi
    exists="$("${ADMIN[@]}" -v db="$PG_DB" <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")"
    if [[ "$exists" != 1 ]]; then
        log "creating database '$PG_DB' owned by '$PG_USER'"
        "${ADMIN[@]}" -v db="$PG_DB" -v role="$PG_USER" <<<"CREATE DATABASE :\"db\" OWNER :\"role\"" >/dev/null
    fi
    pg_sql "$PG_USER" "$PG_PASSWORD" "$PG_DB" >/dev/null <<<'SELECT 1' ||
        die "'$PG_USER' still cannot connect to database '$PG_DB' at $PG_HOST:$PG_PORT (check pg_hba.conf and the password)"
}

ensure_postgres() {
    parse_database_url
    # Fast path, one connection: the URL's user reaches the URL's database.
    if have psql && pg_sql "$PG_USER" "$PG_PASSWORD" "$PG_DB" >/dev/null 2>&1 <<<'SELECT 1'; then
        log "PostgreSQL at $PG_HOST:$PG_PORT is up, database '$PG_DB' is ready"
        return
    fi
    if pg_reachable; then
        log "PostgreSQL at $PG_HOST:$PG_PORT is up"
    else
        log "PostgreSQL at $PG_HOST:$PG_PORT does not answer"
        pg_start_local
        wait_for "PostgreSQL at $PG_HOST:$PG_PORT" pg_reachable ||
            die "PostgreSQL at $PG_HOST:$PG_PORT did not answer within ${START_TIMEOUT_SECS}s"
    fi
    if ! have psql && have apt-get; then
        apt_install postgresql-client
    fi
    if pg_ensure_role_and_database; then
        log "database '$PG_DB' is ready ($(masked "$DATABASE_URL"))"
    fi
}

pg_local_running() {
    local base
    while read -r base; do
        [[ -f "$base/data/postmaster.pid" ]] || continue
        local pid
        pid="$(head -n 1 "$base/data/postmaster.pid")"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            echo "$pid $base/data"
        fi
    done < <(pg_base_candidates)
}

stop_postgres() {
    local data pid stopped=0
    while read -r pid data; do
        [[ -n "$data" ]] || continue
        log "stopping PostgreSQL (pid $pid, data in $data)"
        as_pg "$(pg_bindir "$data")/pg_ctl" -D "$data" -m fast -w stop >/dev/null
        stopped=1
    done < <(pg_local_running)
    [[ "$stopped" == 1 ]] || log "no local PostgreSQL running"
}

# --- Redis -------------------------------------------------------------------------------

REDIS_DIR="$LOCAL/redis"

redis_start_local() {
    is_local_host "$REDIS_HOST" || die "Redis at $REDIS_HOST:$REDIS_PORT does not answer, and $REDIS_HOST is not this machine: start it, or point KEEL__REDIS__URL at a reachable server"
    if ! have redis-server; then
        apt_install redis-server
        # The Debian package may start its own server on the default port.
        if redis_reachable; then
            log "Redis started by its package at $REDIS_HOST:$REDIS_PORT"
            return
        fi
    fi
    mkdir -p "$REDIS_DIR"
    local bind="$REDIS_HOST" auth=()
    [[ "$bind" == localhost ]] && bind=127.0.0.1
    [[ -n "$REDIS_PASSWORD" ]] && auth=(--requirepass "$REDIS_PASSWORD")
    log "starting Redis on $bind:$REDIS_PORT (files in $REDIS_DIR)"
    redis-server --daemonize yes --port "$REDIS_PORT" --bind "$bind" --dir "$REDIS_DIR" \
        --save "" --appendonly no \
        --pidfile "$REDIS_DIR/redis-$REDIS_PORT.pid" --logfile "$REDIS_DIR/redis-$REDIS_PORT.log" \
        "${auth[@]}" >/dev/null 9>&- ||
        die "redis-server did not start; see $REDIS_DIR/redis-$REDIS_PORT.log"
}

ensure_redis() {
    parse_redis_url
    if redis_reachable; then
        log "Redis at $REDIS_HOST:$REDIS_PORT is up"
        return
    fi
    log "Redis at $REDIS_HOST:$REDIS_PORT does not answer"
    redis_start_local
    if ! wait_for "Redis at $REDIS_HOST:$REDIS_PORT" redis_reachable; then
        tail -n 20 "$REDIS_DIR/redis-$REDIS_PORT.log" >&2 2>/dev/null || true
        die "Redis at $REDIS_HOST:$REDIS_PORT did not answer within ${START_TIMEOUT_SECS}s"
    fi
}

# Prints "pid port pidfile" for each Redis this script started that is still running.
redis_local_running() {
    local pidfile pid port
    for pidfile in "$REDIS_DIR"/redis-*.pid; do
        [[ -f "$pidfile" ]] || continue
        pid="$(<"$pidfile")"
        port="${pidfile##*/redis-}"
        port="${port%.pid}"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null &&
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q redis-server; then
            echo "$pid $port $pidfile"
        fi
    done
}

stop_redis() {
    local pidfile pid port stopped=0
    while read -r pid port pidfile; do
        [[ -n "$pidfile" ]] || continue
        log "stopping Redis (pid $pid, port $port)"
        kill "$pid"
        local deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && die "Redis (pid $pid) did not stop"
        rm -f "$pidfile"
        stopped=1
    done < <(redis_local_running)
    [[ "$stopped" == 1 ]] || log "no local Redis running"
}

# --- commands ----------------------------------------------------------------------------

cmd_ensure() {
    mkdir -p "$LOCAL"
    # Two runs at once (e.g. parallel recipes) must not both start a server. Every server
    # started below gets `9>&-` so that it does not keep holding this lock.
    if have flock; then
        exec 9>"$LOCAL/services.lock"
        flock -w 120 9 || die "another 'services.sh ensure' has held $LOCAL/services.lock for 2 minutes"
    fi
    ensure_postgres
    ensure_redis
}

cmd_status() {
    local line
    parse_database_url
    parse_redis_url
    if pg_reachable; then
        log "PostgreSQL: up at $PG_HOST:$PG_PORT ($(masked "$DATABASE_URL"))"
    else
        log "PostgreSQL: not answering at $PG_HOST:$PG_PORT"
    fi
    while read -r line; do
        [[ -n "$line" ]] && log "  started from here: pid ${line%% *}, data in ${line#* }"
    done < <(pg_local_running)
    if redis_reachable; then
        log "Redis: up at $REDIS_HOST:$REDIS_PORT ($(masked "$REDIS_URL"))"
    else
        log "Redis: not answering at $REDIS_HOST:$REDIS_PORT"
    fi
    while read -r line; do
        [[ -n "$line" ]] && log "  started from here: pid ${line%% *}, port $(cut -d' ' -f2 <<<"$line")"
    done < <(redis_local_running)
    return 0
}

cmd_stop() {
    stop_postgres
    stop_redis
}

# The test suite creates its own databases: it gets the server's `postgres` database with
# the same user, password, host and port as KEEL__DATABASE__URL, and Keel's Redis.
cmd_test_env() {
    local db_url="${KEEL_TEST_DATABASE_URL:-}" redis_url="${KEEL_TEST_REDIS_URL:-$REDIS_URL}"
    if [[ -z "$db_url" ]]; then
        local re='^([a-z]+://[^/?]*)(/[^?]*)?(\?.*)?$'
        [[ "$DATABASE_URL" =~ $re ]] || die "cannot parse KEEL__DATABASE__URL"
        db_url="${BASH_REMATCH[1]}/postgres${BASH_REMATCH[3]}"
    fi
    printf 'export KEEL_TEST_DATABASE_URL=%q\n' "$db_url"
    printf 'export KEEL_TEST_REDIS_URL=%q\n' "$redis_url"
}

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

case "${1:-}" in
ensure) cmd_ensure ;;
status) cmd_status ;;
stop) cmd_stop ;;
test-env) cmd_test_env ;;
packages)
    shift
    apt_install "$@"
    ;;
-h | --help | help) usage ;;
*)
    usage
    exit 2
    ;;
esac
