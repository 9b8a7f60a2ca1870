#!/usr/bin/env bash
# Validates every Kubernetes manifest under deploy/ strictly (unknown fields are errors)
# against the Kubernetes 1.35 schema, offline: kubernetes-validate carries the schemas.
# kustomization.yaml files are not API objects and are skipped; where kubectl is
# present, what each overlay renders to (`kubectl kustomize`) is validated as well.
# Exits non-zero if any document fails, has no schema (a mistyped apiVersion or kind,
# which kubernetes-validate only warns about), or a file holds no document.
set -euo pipefail
cd "$(dirname "$0")"

KUBERNETES_VERSION=1.35.0

if ! command -v kubernetes-validate >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
fi
command -v kubernetes-validate >/dev/null 2>&1 || export PATH="$PATH:$(python3 -m site --user-base)/bin"

failed=0

# validate FILE [LABEL]: every document of FILE must pass.
validate() {
  local file=$1 label=${2:-$1} out rc=0
  out=$(kubernetes-validate --strict -k "$KUBERNETES_VERSION" "$file" 2>&1) || rc=$?
  out=${out//"$file"/"$label"}
  [ -n "$out" ] || out="ERROR $label holds no Kubernetes object"
  printf '%s\n' "$out"
  if [ "$rc" -ne 0 ] || grep -qv '^INFO ' <<<"$out" || ! grep -q '^INFO ' <<<"$out"; then
    echo "FAIL $label" >&2
    failed=1
  fi
}

while IFS= read -r file; do
  validate "$file"
done < <(find . -name '*.yaml' ! -name kustomization.yaml | sort)

if command -v kubectl >/dev/null 2>&1; then
  rendered=$(mktemp)
  trap 'rm -f "$rendered"' EXIT
  for overlay in standalone sidecar; do
    if kubectl kustomize "$overlay" >"$rendered"; then
      validate "$rendered" "kubectl kustomize $overlay"
    else
      echo "FAIL kubectl kustomize $overlay" >&2
      failed=1
    fi
  done
else
  echo "kubectl not found: overlays not rendered (the files above were validated one by one)"
fi

if [ "$failed" -ne 0 ]; then
  echo "deploy/validate.sh: invalid manifests (Kubernetes $KUBERNETES_VERSION, strict)" >&2
  exit 1
fi
echo "deploy/validate.sh: every manifest is valid against Kubernetes $KUBERNETES_VERSION (strict)"
