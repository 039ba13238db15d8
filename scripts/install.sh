#!/usr/bin/env bash
# Install what SonoTrace needs, without questions: the Debian packages, then a virtualenv
# with the pinned Python dependencies. Safe to run again; the Makefile runs it only when
# pyproject.toml or this script changed since the last successful run of the same set.
#
# Variables (all optional):
#   EXTRAS   the pyproject.toml extras to install, separated by commas; empty or unset:
#            server,client,postgres, what running SonoTrace needs (`make install`,
#            `make run`). `make test` (and lint, bench) passes
#            server,client,postgres,train,test. The Debian packages follow the extras:
#            always libpotrace-dev (the potrace bindings are built from source), a C
#            compiler and Python's headers when missing (for that build); with `test`
#            also what the tests and benchmarks run: chromium, chromium-driver,
#            postgresql (the server: the index's tests start a throwaway one, and
#            Debian's package starts its own cluster on port 5432 too), potrace (the
#            command-line tool) and docker-compose.
#            `postgres` is psycopg 3 with its own libpq, the driver the client opens a
#            postgresql:// SONOTRACE_DATABASE_URL with: no Debian package needed.
#   VENV     the virtualenv to create or update (default .venv).
#   PYTHON   a Python 3.11 to create it with (default: python3.11, else python3).
#   DRY_RUN  1: print the Debian packages (and which are missing) and the extras this
#            run would install, then stop; nothing is installed or created.
#
# Without root, and without passwordless sudo, it stops before touching the system and
# prints the exact `sudo apt-get install ...` line to run.
set -euo pipefail

cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
RUNTIME_EXTRAS=server,client,postgres
EXTRAS=${EXTRAS:-}
# Blanks dropped: "server, client" is what was meant.
EXTRAS=${EXTRAS//[[:space:]]/}
EXTRAS=${EXTRAS:-$RUNTIME_EXTRAS}
DRY_RUN=${DRY_RUN:-0}
# What building and running need: potrace's headers for the potracecffi build (it has
# no wheel; libpotrace0, the library itself, comes with them).
APT_PACKAGES=(libpotrace-dev)
APT_PACKAGES_NO_RECOMMENDS=()
IFS=, read -r -a extras <<< "$EXTRAS"
for extra in "${extras[@]}"; do
    if [ "$extra" = test ]; then
        # What the tests and benchmarks run: chromium for browser tests, the PostgreSQL
        # server, which the annotation index's tests start as a throwaway cluster, and
        # the potrace command-line tool, which bench/vectorizer.py compares against.
        APT_PACKAGES+=(potrace chromium chromium-driver postgresql)
        # docker-compose is only needed to validate docker-compose.yml; its recommends
        # pull in the whole Docker engine, which nothing here uses.
        APT_PACKAGES_NO_RECOMMENDS+=(docker-compose)
    fi
done

export DEBIAN_FRONTEND=noninteractive

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# --------------------------------------------------------------------------- python
find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

PY=$(find_python) || die "Python 3.11 not found (tried \$PYTHON, python3.11, python3).
Install it, e.g.: sudo apt-get install python3.11 python3.11-venv"

case "$DRY_RUN" in
    0 | 1) ;;
    *) die "DRY_RUN=$DRY_RUN: must be 0 or 1" ;;
esac

# A misspelt extra would only be a pip warning, and a `make run` that fails later.
known_extras=$("$PY" -c 'import tomllib
with open("pyproject.toml", "rb") as f:
    print(" ".join(tomllib.load(f)["project"]["optional-dependencies"]))')
for extra in "${extras[@]}"; do
    case " $known_extras " in
        *" $extra "*) ;;
        *) die "EXTRAS=$EXTRAS: '$extra' is not an extra of pyproject.toml ($known_extras)" ;;
    esac
done

# --------------------------------------------------------------------------- system packages
has_python_headers() {
    "$PY" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
}

missing=()
missing_no_recommends=()
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in "${APT_PACKAGES[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    for pkg in "${APT_PACKAGES_NO_RECOMMENDS[@]}"; do
        is_installed "$pkg" || missing_no_recommends+=("$pkg")
    done
    # Debian's own python3.11 ships venv's pip bootstrap in a separate package.
    if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        case "$PY" in
            /usr/bin/*) missing+=("python3-venv") ;;
            *) die "$PY cannot create virtual environments (no ensurepip module)" ;;
        esac
    fi
    # potracecffi comes as source only: pip compiles it, against Python's headers, unless
    # this virtualenv has it already.
    if ! { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import potracecffi' \
        >/dev/null 2>&1; }; then
        if ! command -v gcc >/dev/null 2>&1 && ! command -v cc >/dev/null 2>&1; then
            missing+=(gcc libc6-dev)
        fi
        if ! has_python_headers; then
            case "$PY" in
                /usr/bin/*) missing+=("python3.11-dev") ;;
                *) log "warning: $PY has no Python.h: building potracecffi may fail" ;;
            esac
        fi
    fi
else
    log "warning: not a Debian system (no dpkg-query); make sure these are installed:" \
        "${APT_PACKAGES[*]} ${APT_PACKAGES_NO_RECOMMENDS[*]}, a C compiler, Python's headers"
fi

if [ "$DRY_RUN" = 1 ]; then
    # One line each, for people and for tests/test_makefile.py.
    echo "dry run: nothing is installed"
    echo "extras: $EXTRAS"
    echo "apt: ${APT_PACKAGES[*]}"
    echo "apt --no-install-recommends: ${APT_PACKAGES_NO_RECOMMENDS[*]}"
    all_missing=("${missing[@]}" "${missing_no_recommends[@]}")
    echo "missing: ${all_missing[*]}"
    echo "venv: $VENV"
    exit 0
fi

if [ ${#missing[@]} -gt 0 ] || [ ${#missing_no_recommends[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive)
    else
        {
            echo "error: missing system packages: ${missing[*]}${missing[*]:+ }${missing_no_recommends[*]}"
            echo "Run this once, then run make again:"
            echo
            line="sudo apt-get update && "
            if [ ${#missing[@]} -gt 0 ]; then
                line+="sudo apt-get install -y ${missing[*]}"
                [ ${#missing_no_recommends[@]} -gt 0 ] && line+=" && "
            fi
            if [ ${#missing_no_recommends[@]} -gt 0 ]; then
                line+="sudo apt-get install -y --no-install-recommends ${missing_no_recommends[*]}"
            fi
            echo "    $line"
        } >&2
        exit 1
    fi
    log "installing system packages: ${missing[*]}${missing[*]:+ }${missing_no_recommends[*]}"
    "${SUDO[@]}" apt-get update -qq
    if [ ${#missing[@]} -gt 0 ]; then
        "${SUDO[@]}" apt-get install -y -qq "${missing[@]}"
    fi
    if [ ${#missing_no_recommends[@]} -gt 0 ]; then
        "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing_no_recommends[@]}"
    fi
else
    log "system packages present: ${APT_PACKAGES[*]} ${APT_PACKAGES_NO_RECOMMENDS[*]}"
fi

# --------------------------------------------------------------------------- virtualenv
if [ -x "$VENV/bin/python" ] \
    && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    log "$VENV is not a working Python 3.11 environment: recreating it"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV with $PY"
    "$PY" -m venv "$VENV"
fi

log "installing sonotrace[$EXTRAS] into $VENV (pinned versions from pyproject.toml and scripts/constraints.txt)"
# pip builds sdists in an isolated environment that ignores -c; PIP_CONSTRAINT reaches it.
# constraints.txt holds what the direct pins pull in, at the versions the tests ran with.
# Keep whatever constraint file pip is already configured with (e.g. /etc/xdg/pip).
configured=$("$VENV/bin/python" -m pip config get global.constraint 2>/dev/null || true)
PIP_CONSTRAINT="$PWD/scripts/build-constraints.txt $PWD/scripts/constraints.txt${configured:+ $configured}"
export PIP_CONSTRAINT
"$VENV/bin/python" -m pip install --no-input --disable-pip-version-check -q -e ".[$EXTRAS]"
if ! conflicts=$("$VENV/bin/python" -m pip check 2>&1); then
    log "warning: pip check reports conflicts:"
    printf '%s\n' "$conflicts"
fi
log "install complete"
