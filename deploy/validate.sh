#!/usr/bin/env bash
# Validates OpenV's deployment files offline (no Docker engine, no cluster); exits non-zero on
# any error. Run by tests/integration/test_deploy_files.py, so `python3 dev.py test` runs it.
#
#   deploy/validate.sh [DEPLOY_DIR]     # DEPLOY_DIR defaults to this script's folder
#
# What it checks:
#   Dockerfile      hadolint; every COPY source exists in the build context (the repository
#                   root) and is not excluded by .dockerignore
#   docker-compose  the compose-spec JSON schema (check-jsonschema); `docker-compose config -q`
#                   with each env file (.env.example, dev.env) and every profile: interpolation,
#                   merges, references, no unset variable; an empty environment must be refused
#                   (the secrets are required); the init scripts' shell syntax; the collector
#                   config parses
#   Kubernetes      every kustomization (k8s/base, k8s/overlays/*) renders with kustomize
#                   (`kubectl kustomize`) and passes `kubernetes-validate --strict` for each
#                   Kubernetes version in $K8S_VERSIONS; so does k8s/base/secrets.example.yaml
#
# Tools: kubectl (its built-in kustomize), kubernetes-validate, check-jsonschema and hadolint come
# from the project's `dev` extra (requirements.lock; the repository's .venv is used when present).
# docker-compose is Debian's package (1.29: `config` needs no engine); when missing it is
# installed with apt-get if running as root. OPENV_VALIDATE_ALLOW_NO_COMPOSE_CLI=1 accepts its
# absence (the schema check still runs). OPENV_VALIDATE_RENDER_DIR=DIR keeps the rendered
# manifests in DIR (default: a temporary folder, removed at exit).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
deploy="$(cd "${1:-$here}" && pwd)"
K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.37.0}"

if [[ -x "$repo/.venv/bin/python" ]]; then
  PATH="$repo/.venv/bin:$PATH"
fi
python="$(command -v python || command -v python3)"

errors=0
step() { printf '== %s\n' "$*"; }
fail() {
  printf 'ERROR: %s\n' "$*" >&2
  errors=$((errors + 1))
}
# check DESCRIPTION COMMAND...: run COMMAND, count a failure as an error (and go on).
check() {
  local what="$1"
  shift
  if ! "$@"; then
    fail "$what"
  fi
}

if [[ -n "${OPENV_VALIDATE_RENDER_DIR:-}" ]]; then
  render="$OPENV_VALIDATE_RENDER_DIR"
  mkdir -p "$render"
else
  render="$(mktemp -d)"
  trap 'rm -rf "$render"' EXIT
fi

missing=()
for tool in kubectl kubernetes-validate check-jsonschema hadolint; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "ERROR: missing ${missing[*]}: install the dev extra (python3 dev.py test does)" >&2
  exit 2
fi

# Debian's docker-compose (also brings python3-docker, used for the .dockerignore check).
compose_cli=()
if command -v docker-compose >/dev/null; then
  compose_cli=(docker-compose)
elif command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
  compose_cli=(docker compose)
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "installing Debian's docker-compose (used for \`config\` only; no engine needed)"
  # Retried: another apt run may hold the locks, a mirror may hiccup.
  for attempt in 1 2 3; do
    if { apt-get -o DPkg::Lock::Timeout=120 update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends docker-compose; } >"$render/apt.log" 2>&1; then
      compose_cli=(docker-compose)
      break
    fi
    tail -5 "$render/apt.log" >&2
    if ((attempt < 3)); then sleep 10; fi
  done
fi

# ------------------------------------------------------------------------------ Dockerfile
step "Dockerfile"
dockerfile="$deploy/Dockerfile"
check "hadolint found problems in $dockerfile" hadolint "$dockerfile"
# COPY sources without --from= come from the build context: the repository root, filtered by
# .dockerignore (docker-py implements Docker's matching; it comes with docker-compose).
copy_sources="$(awk '
  toupper($1) == "COPY" {
    for (i = 2; i < NF; i++) {
      if ($i ~ /^--from=/) next
      if ($i ~ /^--/) continue
      print $i
    }
  }' "$dockerfile")"
dockerpy=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import docker.utils.build' 2>/dev/null; then
    dockerpy="$candidate"
    break
  fi
done
if [[ -n "$dockerpy" ]]; then
  check "the build context does not hold what the Dockerfile copies" \
    "$dockerpy" - "$repo" "$copy_sources" <<'PY'
import sys
from pathlib import Path

from docker.utils.build import exclude_paths

root, sources = Path(sys.argv[1]), sys.argv[2].split()
ignore = root / ".dockerignore"
patterns = [
    line.strip()
    for line in (ignore.read_text().splitlines() if ignore.exists() else [])
    if line.strip() and not line.startswith("#")
]
included = exclude_paths(str(root), patterns)
ok = True
for source in sources:
    source = source.strip("/")
    if not any(path == source or path.startswith(source + "/") for path in included):
        print(f"ERROR: COPY source '{source}' is missing from the build context", file=sys.stderr)
        ok = False
# Nothing local or secret may reach the build context.
for path in sorted(included):
    parts = path.split("/")
    if {".git", ".venv", ".stack"} & set(parts) or parts[-1] == ".env":
        print(f"ERROR: the build context includes {path}", file=sys.stderr)
        ok = False
        break
sys.exit(0 if ok else 1)
PY
else
  echo "WARNING: docker-py missing: checking only that the COPY sources exist" >&2
  for src in $copy_sources; do
    [[ -e "$repo/$src" ]] || fail "Dockerfile: COPY source '$src' does not exist in $repo"
  done
fi

# ------------------------------------------------------------------------------ compose
step "docker-compose"
compose="$deploy/docker-compose.yml"
check "$compose does not match the compose specification" \
  check-jsonschema --builtin-schema vendor.compose-spec "$compose"

if ((${#compose_cli[@]} == 0)); then
  if [[ "${OPENV_VALIDATE_ALLOW_NO_COMPOSE_CLI:-0}" == 1 ]]; then
    echo "WARNING: no docker-compose: only the compose schema was checked" >&2
  else
    fail "docker-compose is not installed (apt-get install docker-compose)"
  fi
else
  # A clean environment: only the env file may supply the variables.
  compose_config() {
    env -i PATH="$PATH" HOME="${HOME:-/tmp}" "${compose_cli[@]}" -f "$compose" \
      --env-file "$1" --profile dev --profile observability config -q
  }
  for env_file in "$deploy/.env.example" "$deploy/dev.env"; do
    if [[ ! -f "$env_file" ]]; then
      fail "missing env file $env_file"
      continue
    fi
    if ! compose_config "$env_file" 2>"$render/compose.err"; then
      cat "$render/compose.err" >&2
      fail "docker-compose config failed with $(basename "$env_file")"
    elif grep -i "variable is not set" "$render/compose.err" >&2; then
      fail "$(basename "$env_file") leaves variables of $compose unset"
    fi
  done
  : >"$render/empty.env"
  if compose_config "$render/empty.env" 2>/dev/null; then
    fail "docker-compose accepted an empty environment: secrets must be required (\${VAR:?})"
  fi
fi

for script in "$deploy"/kafka/*.sh "$deploy"/postgres/*.sh; do
  [[ -e "$script" ]] && check "bash syntax error in $script" bash -n "$script"
done
for script in "$deploy"/minio/*.sh; do
  [[ -e "$script" ]] && check "sh syntax error in $script" sh -n "$script"
done
for config in "$deploy"/otel/*.yaml; do
  [[ -e "$config" ]] || continue
  check "$config is not valid YAML" "$python" -c \
    'import sys, yaml; assert isinstance(yaml.safe_load(open(sys.argv[1])), dict)' "$config"
done

# ------------------------------------------------------------------------------ Kubernetes
step "Kubernetes"
validate_manifests() {
  local file="$1" version
  for version in $K8S_VERSIONS; do
    check "$file is not valid for Kubernetes $version" \
      kubernetes-validate --strict --quiet --kubernetes-version "$version" "$file"
  done
}
kustomizations=("$deploy/k8s/base")
for overlay in "$deploy"/k8s/overlays/*/; do
  [[ -f "$overlay/kustomization.yaml" ]] && kustomizations+=("${overlay%/}")
done
for dir in "${kustomizations[@]}"; do
  name="$(basename "$(dirname "$dir")")-$(basename "$dir")"
  out="$render/$name.yaml"
  if ! kubectl kustomize "$dir" >"$out"; then
    fail "kustomize could not render $dir"
    continue
  fi
  echo "rendered $dir: $(grep -c '^kind:' "$out") resources"
  validate_manifests "$out"
done
if [[ -f "$deploy/k8s/base/secrets.example.yaml" ]]; then
  validate_manifests "$deploy/k8s/base/secrets.example.yaml"
fi

if ((errors)); then
  echo "deploy files: $errors error(s)" >&2
  exit 1
fi
echo "deploy files are valid"
