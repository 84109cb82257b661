#!/usr/bin/env bash
# Install TimescaleDB (Apache-2 edition) for the machine's PostgreSQL when it is missing.
#
# Debian 12 ships no TimescaleDB package, so this fetches the source package `timescaledb` from
# Debian 13 (trixie) with apt's own client (a private sources list and private apt lists, so the
# machine's apt configuration is not touched), builds it against the installed PostgreSQL and
# installs it with `make install`. Build happens in a cache directory outside the repository.
#
# Never fatal: forewarn runs on plain PostgreSQL when TimescaleDB is absent, so every problem
# prints one line and exits 0. Safe to run again: when TimescaleDB is installed it exits at once.
#
# Environment:
#   FOREWARN_SKIP_TIMESCALEDB=1      do nothing
#   FOREWARN_PG_MAJOR=15             PostgreSQL major version (default: newest in /usr/lib/postgresql)
#   FOREWARN_DEBIAN_MIRROR=URL       Debian mirror for the source (default: the machine's own)
#   FOREWARN_TIMESCALEDB_SUITE=NAME  Debian suite to take the source from (default: trixie)
set -uo pipefail

[ "${FOREWARN_SKIP_TIMESCALEDB:-0}" = 1 ] && exit 0

# --- which PostgreSQL, and is TimescaleDB already there? (fast path: no output) ---------------
pg_major=${FOREWARN_PG_MAJOR:-}
if [ -z "$pg_major" ]; then
  pg_major=$(for d in /usr/lib/postgresql/*/bin/postgres; do
               [ -x "$d" ] && basename "$(dirname "$(dirname "$d")")"
             done | sort -n | tail -n 1)
fi
if [ -z "$pg_major" ]; then
  echo "setup: no PostgreSQL server found in /usr/lib/postgresql; skipping TimescaleDB" >&2
  exit 0
fi
pg_config=/usr/lib/postgresql/$pg_major/bin/pg_config
if [ -x "$pg_config" ]; then
  sharedir=$("$pg_config" --sharedir 2>/dev/null) || sharedir=/usr/share/postgresql/$pg_major
else
  sharedir=/usr/share/postgresql/$pg_major
fi
[ -f "$sharedir/extension/timescaledb.control" ] && exit 0

# --- can we build it here? -------------------------------------------------------------------
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: TimescaleDB is not installed for PostgreSQL $pg_major; forewarn will run on plain" \
       "PostgreSQL (to get it, run scripts/install-timescaledb.sh as root on Debian, or install it" \
       "from https://docs.timescale.com/self-hosted/latest/install/)" >&2
  exit 0
fi

suite=${FOREWARN_TIMESCALEDB_SUITE:-trixie}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/forewarn/timescaledb
log=$cache/build.log
if ! { mkdir -p "$cache" && : >"$log"; }; then
  echo "setup: TimescaleDB could not be built (cannot write $cache); forewarn will run on plain PostgreSQL" >&2
  exit 0
fi
start=$SECONDS

give_up() {  # give_up REASON
  echo "setup: TimescaleDB could not be built ($1; log: $log); forewarn will run on plain PostgreSQL" >&2
  exit 0
}
run() {  # run CMD... : verbose output goes to the log only
  echo "+ $*" >>"$log"
  "$@" >>"$log" 2>&1
}

echo "setup: TimescaleDB not found for PostgreSQL $pg_major; building its Apache-2 edition from" \
     "Debian $suite's source (about a minute; log: $log)"

# --- build dependencies, from the machine's normal apt sources, only when missing -------------
deps=(postgresql-server-dev-"$pg_major" cmake make gcc libc6-dev libssl-dev dpkg-dev xz-utils)
missing=()
for p in "${deps[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q ' installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: timescaledb: installing build dependencies: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  run apt-get install -y --no-install-recommends "${missing[@]}" \
    || { run apt-get update && run apt-get install -y --no-install-recommends "${missing[@]}"; } \
    || give_up "apt-get install ${missing[*]} failed"
fi
pg_config=/usr/lib/postgresql/$pg_major/bin/pg_config
[ -x "$pg_config" ] || give_up "$pg_config is missing"
[ -d "$("$pg_config" --includedir-server)" ] || give_up "PostgreSQL $pg_major server headers are missing"

# --- fetch the source package with apt, through a private sources list -----------------------
# The Debian mirror the machine already uses (one-line *.list or deb822 *.sources format).
machine_mirror() {
  local codename id f lists=() deb822=()
  # shellcheck disable=SC1091
  id=$(. /etc/os-release 2>/dev/null && echo "${ID:-}")
  # shellcheck disable=SC1091
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  [ "$id" = debian ] && [ -n "$codename" ] || return 0
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [ -f "$f" ] && lists+=("$f"); done
  for f in /etc/apt/sources.list.d/*.sources; do [ -f "$f" ] && deb822+=("$f"); done
  if [ ${#lists[@]} -gt 0 ]; then
    sed -E 's/\[[^]]*\]//' "${lists[@]}" | awk -v c="$codename" \
      '($1 == "deb" || $1 == "deb-src") && $3 == c { print $2 }'
  fi
  [ ${#deb822[@]} -gt 0 ] || return 0
  awk -v c="$codename" '
    function flush() {
      if (uris != "" && enabled != "no" && (" " suites " ") ~ (" " c " ") && types ~ /deb/) {
        n = split(uris, u, /[ \t]+/); for (i = 1; i <= n; i++) if (u[i] != "") print u[i]
      }
      uris = suites = types = ""; enabled = "yes"
    }
    /^[ \t]*$/ { flush(); next }
    /^[ \t]*#/ { next }
    { key = tolower($1); val = $0; sub(/^[^:]*:[ \t]*/, "", val) }
    key == "uris:" { uris = val } key == "suites:" { suites = val }
    key == "types:" { types = val } key == "enabled:" { enabled = tolower(val) }
    END { flush() }' "${deb822[@]}"
}
mirrors=()
if [ -n "${FOREWARN_DEBIAN_MIRROR:-}" ]; then
  mirrors+=("${FOREWARN_DEBIAN_MIRROR%/}")
else
  m=$(machine_mirror | grep -v -i security | head -n 1)
  [ -n "$m" ] && mirrors+=("${m%/}")
  [ "${m%/}" = http://deb.debian.org/debian ] || mirrors+=(http://deb.debian.org/debian)
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || give_up "$keyring is missing (apt-get install debian-archive-keyring)"

aptdir=$cache/apt
src=$cache/src
fetched=
for mirror in "${mirrors[@]}"; do
  echo "setup: timescaledb: fetching sources (apt-get source timescaledb from $mirror $suite)"
  rm -rf "$aptdir" "$src"
  mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$src"
  echo "deb-src [signed-by=$keyring] $mirror $suite main" >"$aptdir/sources.list"
  apt_opts=(-o Dir::Etc::SourceList="$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o Dir::State::Lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache"
            -o APT::Sandbox::User=root)
  # snapshot.debian.org serves frozen (expired) Release files
  case $mirror in *snapshot.debian.org*) apt_opts+=(-o Acquire::Check-Valid-Until=false) ;; esac
  if run apt-get "${apt_opts[@]}" -o APT::Update::Error-Mode=any update \
     && (cd "$src" && run apt-get "${apt_opts[@]}" --only-source source timescaledb); then
    fetched=1
    break
  fi
done
[ -n "$fetched" ] || give_up "apt-get source timescaledb from Debian $suite failed"
srcdir=
for d in "$src"/timescaledb-*/; do [ -x "$d/bootstrap" ] && srcdir=${d%/} && break; done
[ -n "$srcdir" ] || give_up "unexpected layout of the source package"
version=$(sed -n 's/^version *= *//p' "$srcdir/version.config" | head -n 1)

# --- build and install ------------------------------------------------------------------------
echo "setup: timescaledb: building TimescaleDB ${version:-?} (Apache-2 edition) for PostgreSQL $pg_major"
(cd "$srcdir" && run env BUILD_FORCE_REMOVE=true ./bootstrap -DPG_CONFIG="$pg_config" -DAPACHE_ONLY=1 \
   -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DUSE_TELEMETRY=OFF -DSEND_TELEMETRY_DEFAULT=OFF) \
  || give_up "cmake configuration failed"
(cd "$srcdir/build" && run make -j"$(nproc 2>/dev/null || echo 2)") || give_up "make failed"

echo "setup: timescaledb: installing into $("$pg_config" --pkglibdir) and $sharedir/extension"
(cd "$srcdir/build" && run make install) || give_up "make install failed"
[ -f "$sharedir/extension/timescaledb.control" ] || give_up "timescaledb.control was not installed"
# Keep the list of installed files (to remove them by hand later: xargs rm < installed-files.txt)
cp "$srcdir/build/install_manifest.txt" "$cache/installed-files.txt" 2>/dev/null
rm -rf "$src" "$aptdir"

echo "setup: TimescaleDB ${version:-} installed for PostgreSQL $pg_major in $((SECONDS - start))s" \
     "(a server needs shared_preload_libraries = 'timescaledb' to use it)"
exit 0
