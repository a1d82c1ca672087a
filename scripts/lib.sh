# Shared by scripts/run and scripts/test: packages, build, private PostgreSQL. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build"
PG_BIN=/usr/lib/postgresql/15/bin
# Boost 1.74 is Debian 12's default; Beast and Asio are header-only, so libboost-dev is all.
# ca-certificates: the authorities that HTTPS destinations are verified against.
PACKAGES=(g++ cmake make ccache pkgconf libboost-dev libssl-dev rapidjson-dev libpqxx-dev
          libspdlog-dev libyaml-cpp-dev libgtest-dev postgresql-15 ca-certificates)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
as_postgres() { as_root runuser -u postgres -- "$@"; }

# Installs only what is missing; silent when nothing is.
install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# build [DIR [-DOPTION=VALUE ...] [TARGET ...]]: configures DIR (default $BUILD) as a Release
# build with the options, and builds the targets (default all). Quiet when the build succeeds;
# the whole compiler output when it does not.
build() {
  local dir=${1:-$BUILD} options=() targets=() arg log
  [ $# -gt 0 ] && shift
  for arg in "$@"; do
    case "$arg" in -D*) options+=("$arg") ;; *) targets+=(--target "$arg") ;; esac
  done
  echo "==> building in $dir (a few minutes the first time on 2 cores, ccache after that)"
  log=$(mktemp)
  if ! { cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release "${options[@]}" &&
         cmake --build "$dir" -j"$(nproc)" "${targets[@]}"; } >"$log" 2>&1; then
    cat "$log"
    rm -f "$log"
    echo "==> build failed" >&2
    return 1
  fi
  rm -f "$log"
}

# pg_start DATADIR SOCKETDIR: initdb if needed, then start a server that listens only on a
# unix socket in SOCKETDIR (no TCP port to collide with).
pg_start() {
  local data=$1 sock=$2
  as_root mkdir -p "$data" "$sock"
  as_root chown postgres:postgres "$data" "$sock"
  as_root chmod 700 "$data"
  as_root chmod 755 "$sock"
  if [ ! -f "$data/PG_VERSION" ]; then
    as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if ! as_postgres "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -o "-c listen_addresses='' -k $sock" start >/dev/null
  fi
}

pg_stop() {
  as_postgres "$PG_BIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1 || true
}
