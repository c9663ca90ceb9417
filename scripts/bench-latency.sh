#!/usr/bin/env bash
# Benchmark: real AWS's timing, simulated. A loopback proxy (target/debug/latency-proxy,
# testkit's FaultProxy::slow) in front of a fresh emulator adds a round trip to every call and
# keeps the load balancer `provisioning` and instances `pending` for a while after their
# creation. Through it, the course's commands (scripts/course-infra.sh + course-pki.sh, which
# wait for nothing) and `groundup up --wait` (which returns with the load balancer active and
# the instances running), each on its own fresh emulator; then groundup against the critical
# path. Usage: scripts/bench-latency.sh [rounds]   (default 1)
# LATENCY_MS (40), PROVISIONING_S (60), PENDING_S (30) set the proxy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-1}
latency_ms=${LATENCY_MS:-40} provisioning_s=${PROVISIONING_S:-60} pending_s=${PENDING_S:-30}
# shellcheck source=bench-lib.sh
. "$root/scripts/bench-lib.sh"
work=$(mktemp -d)
emulator= proxy=
stop() {
  [ -z "$proxy" ] || kill "$proxy" 2>/dev/null || true
  [ -z "$emulator" ] || "$groundup" emulator stop --emulator-dir "$emulator" >/dev/null 2>&1 || true
  proxy= emulator=
}
trap 'stop; rm -rf "$work"' EXIT

fresh() { # dir: a new emulator, warmed up, behind a new proxy; AWS_ENDPOINT is the proxy
  emulator="$1/emulator"
  local upstream
  upstream=$("$groundup" emulator start --emulator-dir "$emulator" 2>/dev/null)
  AWS_ENDPOINT=$upstream aws ec2 describe-vpcs >/dev/null
  AWS_ENDPOINT=$upstream aws elbv2 describe-load-balancers >/dev/null
  "$root/target/debug/latency-proxy" --upstream "$upstream" --latency-ms "$latency_ms" \
    --provisioning-s "$provisioning_s" --pending-s "$pending_s" >"$1/proxy" &
  proxy=$!
  while [ ! -s "$1/proxy" ]; do sleep 0.1; done
  AWS_ENDPOINT=$(cat "$1/proxy")
}
course() { course_all "$1" >/dev/null; }
ours() {
  (cd "$1" && "$groundup" up --endpoint "$AWS_ENDPOINT" --wait --timings=json >"$1/timings.json" 2>"$1/up.log") ||
    { cat "$1/up.log" >&2; exit 1; }
}

echo "proxy: ${latency_ms} ms a call, load balancer provisioning ${provisioning_s} s, instances pending ${pending_s} s" >&2
for round in $(seq "$rounds"); do
  course_s=$(timed course "$round")
  ours_s=$(timed ours "$round")
  timings="$work/ours-$round/timings.json"
  # The critical path: the longest chain of calls that depend on each other, and waits.
  # Load balancer: CreateVpc -> CreateSubnet -> CreateLoadBalancer -> provisioning -> a
  # DescribeLoadBalancers that sees it active. Instances: CreateVpc -> CreateSubnet ->
  # RunInstances (the security group and key pair come off the same VPC, in parallel) ->
  # pending -> DescribeInstances -> the PKI (the certificates name the instances' addresses:
  # groundup's own PKI steps, as measured in this run). The PKI needs only the load
  # balancer's DNS name, which CreateLoadBalancer returns: it does not wait for `active`.
  pki_s=$(jq '[.steps[] | select(.step as $s | ["ca","certs","kubeconfig","encryption","bundles"] | index($s)) | .wall_seconds] | add' "$timings")
  calls=$(jq '[.steps[].api_calls] | add' "$timings")
  balancer_path=$(echo "4 * $latency_ms / 1000 + $provisioning_s" | bc -l)
  instance_path=$(echo "4 * $latency_ms / 1000 + $pending_s + $pki_s" | bc -l)
  critical=$(echo "if ($balancer_path > $instance_path) $balancer_path else $instance_path" | bc -l)
  printf 'round %d\n' "$round"
  printf '  %-58s %8.2f s\n' "course (aws-cli + cfssl; waits for nothing)" "$course_s"
  printf '  %-58s %8.2f s (%d API calls)\n' "groundup up --wait (load balancer active, instances running)" "$ours_s" "$calls"
  printf '  critical path, load balancer: 4 calls x %d ms + %s s provisioning = %.2f s\n' "$latency_ms" "$provisioning_s" "$balancer_path"
  printf '  critical path, instances: 4 calls x %d ms + %s s pending + PKI %.2f s = %.2f s\n' "$latency_ms" "$pending_s" "$pki_s" "$instance_path"
  printf '  groundup / critical path (%.2f s): %.3f\n' "$critical" "$(echo "$ours_s / $critical" | bc -l)"
  jq -r '.steps[] | "    \(.step)\t\(.wall_seconds*100|round/100) s\t\(.api_calls) calls"' "$timings"
done
