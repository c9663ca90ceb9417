#!/usr/bin/env bash
# Benchmark: the course's certificate set made with the course's cfssl commands (Debian's
# golang-cfssl, cfssl 1.2 as in the course) against `groundup-ca | groundup-certs`, side by
# side in one run, on the example context (3 masters, 3 workers). groundup makes more: three
# CAs and 19 certificates (the course: one CA and 10). Usage: scripts/bench-pki.sh [runs]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
command -v cfssl >/dev/null || { echo "cfssl is missing: apt-get install golang-cfssl" >&2; exit 1; }
cargo build --quiet --manifest-path "$root/Cargo.toml" -p groundup-pki --bins
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
context="$root/contracts/examples/03-infra.json"
names='"names":[{"C":"UK","L":"England","O":"%s","OU":"DEVOPS","ST":"London"}]'
csr() { # name CN O [hosts]
  printf '{"CN":"%s","key":{"algo":"rsa","size":2048},%s%s}' "$2" "$(printf "$names" "$3")" "${4:+,\"hosts\":[$4]}" >"$1-csr.json"
}

course() { # the course's commands, one after another as it runs them
  cd "$1"
  cat >ca-config.json <<'JSON'
{"signing":{"default":{"expiry":"8760h"},"profiles":{"kubernetes":{"usages":["signing","key encipherment","server auth","client auth"],"expiry":"8760h"}}}}
JSON
  csr ca Kubernetes Ytech
  cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca
  local hosts='"127.0.0.1","172.31.0.10","172.31.0.11","172.31.0.12","ip-172-31-0-10","ip-172-31-0-11","ip-172-31-0-12","ip-172-31-0-10.us-east-2.compute.internal","ip-172-31-0-11.us-east-2.compute.internal","ip-172-31-0-12.us-east-2.compute.internal","k8s-cluster-50dc6c495c0c9188.elb.us-east-2.amazonaws.com","kubernetes","kubernetes.default","kubernetes.default.svc","kubernetes.default.svc.cluster","kubernetes.default.svc.cluster.local"'
  csr master-kubernetes kubernetes Ytech "$hosts"
  csr kube-scheduler system:kube-scheduler system:kube-scheduler
  csr kube-proxy system:kube-proxy system:node-proxier
  csr kube-controller-manager system:kube-controller-manager system:kube-controller-manager
  csr admin admin system:masters
  csr service-account service-accounts Kubernetes
  for i in 0 1 2; do csr "k8s-cluster-worker-$i" "system:node:ip-172-31-0-2$i" system:nodes; done
  for name in master-kubernetes kube-scheduler kube-proxy kube-controller-manager admin service-account; do
    cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=kubernetes "$name-csr.json" 2>/dev/null | cfssljson -bare "$name"
  done
  for i in 0 1 2; do
    cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -hostname="ip-172-31-0-2$i,3.15.20.10$i,172.31.0.2$i" \
      -profile=kubernetes "k8s-cluster-worker-$i-csr.json" 2>/dev/null | cfssljson -bare "k8s-cluster-worker-$i"
  done
}

groundup() {
  cd "$1" && "$root/target/debug/groundup-ca" <"$context" 2>/dev/null | "$root/target/debug/groundup-certs" >/dev/null 2>&1
}

ecdsa_context="$work/ecdsa.json"
sed 's/"key": "rsa2048"/"key": "ecdsa-p256"/' "$context" >"$ecdsa_context"
groundup_ecdsa() {
  cd "$1" && "$root/target/debug/groundup-ca" <"$ecdsa_context" 2>/dev/null | "$root/target/debug/groundup-certs" >/dev/null 2>&1
}

elapsed() { # label function
  local total=0 start end
  for run in $(seq "$runs"); do
    mkdir -p "$work/$1-$run"
    start=$(date +%s.%N)
    ( "$2" "$work/$1-$run" )
    end=$(date +%s.%N)
    total=$(echo "$total + $end - $start" | bc)
  done
  echo "scale=3; $total / $runs" | bc
}

course_time=$(elapsed course course)
groundup_time=$(elapsed groundup groundup)
ecdsa_time=$(elapsed ecdsa groundup_ecdsa)
printf '%-34s %8s %6s\n' "($runs runs each, mean seconds)" seconds certs
printf '%-34s %8.3f %6s\n' "course (cfssl 1.2, sequential)" "$course_time" "1+10"
printf '%-34s %8.3f %6s\n' "groundup-ca | groundup-certs" "$groundup_time" "3+19"
printf '%-34s %8.3f %6s\n' "the same with ECDSA P-256 keys" "$ecdsa_time" "3+19"
printf 'ratio cfssl/groundup, whole runs: %.2f\n' "$(echo "scale=3; $course_time / $groundup_time" | bc)"
printf 'ratio cfssl/groundup, per certificate: %.2f\n' "$(echo "scale=3; ($course_time / 11) / ($groundup_time / 22)" | bc)"
