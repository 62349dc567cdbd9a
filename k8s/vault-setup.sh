#!/bin/sh
# Sets up Vault/OpenBao for the manifests in this directory (run with a token
# allowed to manage auth methods and policies; `bao` and `vault` take the
# same commands).
#   VAULT_ADDR=https://vault.example:8200 VAULT_TOKEN=... sh k8s/vault-setup.sh
set -eu
CLI="${CLI:-bao}"
K8S_HOST="${K8S_HOST:-https://kubernetes.default.svc}"

# The policy: read the shop's secrets, nothing else.
$CLI policy write shop-app - <<'POLICY'
path "secret/data/shop/*" { capabilities = ["read"] }
POLICY

# Kubernetes auth. Inside the cluster Vault uses its own service account
# token to call TokenReview; outside, pass the reviewer token and CA.
$CLI auth enable kubernetes 2>/dev/null || true
if [ -n "${REVIEWER_JWT:-}" ]; then
  $CLI write auth/kubernetes/config kubernetes_host="$K8S_HOST" \
    token_reviewer_jwt="$REVIEWER_JWT" kubernetes_ca_cert=@"${K8S_CA_FILE:?set K8S_CA_FILE}"
else
  $CLI write auth/kubernetes/config kubernetes_host="$K8S_HOST"
fi
$CLI write auth/kubernetes/role/shop-app \
  bound_service_account_names=app bound_service_account_namespaces=shop \
  token_policies=shop-app token_ttl=1h token_max_ttl=24h

# Example secrets.
$CLI kv put -mount=secret shop/database username=shop password=change-me
$CLI kv put -mount=secret shop/tls tlsCrt=@tls.crt tlsKey=@tls.key 2>/dev/null \
  || echo "put tls.crt/tls.key in this directory to seed shop/tls"
