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
# shellcheck source=course-pki.sh
. "$root/scripts/course-pki.sh"
NAME=k8s-cluster AWS_REGION=us-east-2 KUBERNETES_PUBLIC_ADDRESS=k8s-cluster-50dc6c495c0c9188.elb.us-east-2.amazonaws.com
worker_addresses() { echo "3.15.20.10$1 172.31.0.2$1"; } # the example context's
course() { course_pki "$1"; }

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
