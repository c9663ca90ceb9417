#!/usr/bin/env bash
# Kubernetes the Hard Way's smoke test, on a real cluster groundup built on AWS
# (`groundup up --aws`, then `groundup distribute --aws --restart`). Never run by the tests:
# it talks to the cluster's API server through its load balancer.
#
#   scripts/smoke-aws.sh [STATE_FILE]     (default: groundup.json)
#
# Needs kubectl. Leaves nothing behind but what it says it made (namespace groundup-smoke).
set -euo pipefail
state=${1:-groundup.json}
home=$(dirname "$state")
kubeconfig_dir=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["params"]["kubeconfig_dir"])' "$state")
export KUBECONFIG="$home/$kubeconfig_dir/admin.kubeconfig"
ns=groundup-smoke
step() { printf '\n== %s\n' "$*" >&2; }

step "the nodes, with the admin's kubeconfig"
kubectl get nodes -o wide

step "a Secret, stored encrypted in etcd (k8s:enc:aescbc:v1:key1)"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$ns" create secret generic smoke --from-literal=mykey=mydata --dry-run=client -o yaml | kubectl apply -f -
etcd_pod=$(kubectl -n kube-system get pods -l component=etcd -o jsonpath='{.items[0].metadata.name}')
kubectl -n kube-system exec "$etcd_pod" -- etcdctl --endpoints=https://127.0.0.1:2379 \
  --cacert=/etc/etcd/ca.pem --cert=/etc/etcd/server.pem --key=/etc/etcd/server-key.pem \
  get "/registry/secrets/$ns/smoke" --print-value-only | od -c | head -3
kubectl -n kube-system exec "$etcd_pod" -- etcdctl --endpoints=https://127.0.0.1:2379 \
  --cacert=/etc/etcd/ca.pem --cert=/etc/etcd/server.pem --key=/etc/etcd/server-key.pem \
  get "/registry/secrets/$ns/smoke" --print-value-only | grep -a -q 'k8s:enc:aescbc:v1:key1' \
  && echo "stored encrypted: k8s:enc:aescbc:v1:key1" >&2

step "a deployment, port-forward, logs and exec"
kubectl -n "$ns" create deployment nginx --image=nginx:stable --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$ns" rollout status deployment/nginx --timeout=180s
pod=$(kubectl -n "$ns" get pods -l app=nginx -o jsonpath='{.items[0].metadata.name}')
kubectl -n "$ns" port-forward "$pod" 8080:80 >/dev/null &
forward=$!
trap 'kill $forward 2>/dev/null || true' EXIT
sleep 3
curl -sI http://127.0.0.1:8080 | head -1
kubectl -n "$ns" logs "$pod" | tail -3
kubectl -n "$ns" exec "$pod" -- nginx -v

step "done; remove what it made with: kubectl delete namespace $ns"
