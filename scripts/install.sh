#!/usr/bin/env bash
# Install everything SonoTrace needs, without questions: the Debian packages, then .venv
# with the pinned Python dependencies. Safe to run again; `make install` runs it only when
# pyproject.toml or this script changed since the last successful run.
#
# Without root, and without passwordless sudo, it stops before touching the system and
# prints the exact `sudo apt-get install ...` line to run.
set -euo pipefail

cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-server,client,postgres,train,test}
# Regular installs: potrace headers for the potracecffi build, chromium for browser tests,
# the potrace command-line tool, which bench/vectorizer.py compares against, and the
# PostgreSQL server, which the annotation index's tests start as a throwaway cluster.
APT_PACKAGES=(libpotrace-dev potrace chromium chromium-driver postgresql)
# docker-compose is only needed to validate docker-compose.yml; its recommends pull in
# the whole Docker engine, which nothing here uses.
APT_PACKAGES_NO_RECOMMENDS=(docker-compose)

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

# --------------------------------------------------------------------------- system packages
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
else
    log "warning: not a Debian system (no dpkg-query); make sure these are installed:" \
        "${APT_PACKAGES[*]} ${APT_PACKAGES_NO_RECOMMENDS[*]}"
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

log "installing sonotrace[$EXTRAS] into $VENV (pinned versions from pyproject.toml)"
# pip builds sdists in an isolated environment that ignores -c; PIP_CONSTRAINT reaches it.
# Keep whatever constraint file pip is already configured with (e.g. /etc/xdg/pip).
configured=$("$VENV/bin/python" -m pip config get global.constraint 2>/dev/null || true)
PIP_CONSTRAINT="$PWD/scripts/build-constraints.txt${configured:+ $configured}"
export PIP_CONSTRAINT
"$VENV/bin/python" -m pip install --no-input --disable-pip-version-check -q -e ".[$EXTRAS]"
if ! conflicts=$("$VENV/bin/python" -m pip check 2>&1); then
    log "warning: pip check reports conflicts:"
    printf '%s\n' "$conflicts"
fi
log "install complete"
