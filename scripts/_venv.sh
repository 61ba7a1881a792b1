# Shared by scripts/run and scripts/test: find Python >= 3.12, create .venv at the repo root,
# install the project (with the given extras) when pyproject.toml changed since the last install.
# Usage: source scripts/_venv.sh; ensure_venv [EXTRAS]

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

find_python() {
  local candidates=() c
  [ -n "${WIRESHIFT_PYTHON:-}" ] && candidates+=("$WIRESHIFT_PYTHON")
  candidates+=(python3.14 python3.13 python3.12)
  for c in "${PYENV_ROOT:-${HOME:-/nonexistent}/.pyenv}"/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
    [ -x "$c" ] && candidates+=("$c")
  done
  candidates+=(python3)
  for c in "${candidates[@]}"; do
    # pyenv shims need a version selected; try the interpreter as found, then via pyenv
    if "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
      command -v "$c" 2>/dev/null || echo "$c"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    local v
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9])' | sort -rV); do
      if PYENV_VERSION="$v" pyenv which python3 >/dev/null 2>&1; then
        PYENV_VERSION="$v" pyenv which python3; return 0
      fi
    done
  fi
  return 1
}

ensure_venv() {
  local extras="${1:-}" spec="$ROOT" stamp
  [ -n "$extras" ] && spec="$ROOT[$extras]"
  # a venv is usable when it has Python >= 3.12 *and* pip (a venv whose ensurepip failed has no pip)
  if ! "$VENV/bin/python" -c 'import sys, pip; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
    local py
    py="$(find_python)" || { echo "wireshift: need Python >= 3.12 (set WIRESHIFT_PYTHON=/path/to/python3.12)" >&2; exit 1; }
    echo "wireshift: creating .venv with $py" >&2
    rm -rf "$VENV"
    "$py" -m venv "$VENV" || { rm -rf "$VENV"; echo "wireshift: '$py -m venv' failed (Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2 || true
  fi
  stamp="$VENV/.installed-$("$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' "$ROOT/pyproject.toml")-${extras:-base}"
  if [ ! -f "$stamp" ]; then
    echo "wireshift: installing ${spec#"$ROOT"} into .venv" >&2
    if ! "$VENV/bin/python" -m pip install -e "$spec" > "$VENV/install.log" 2>&1; then
      cat "$VENV/install.log" >&2; echo "wireshift: install failed (log: .venv/install.log)" >&2; exit 1
    fi
    touch "$stamp"
  fi
}
