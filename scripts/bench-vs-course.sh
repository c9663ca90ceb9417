#!/usr/bin/env bash
# Benchmark: the course's own commands (aws-cli for the infrastructure, cfssl/cfssljson for the
# PKI: scripts/course-infra.sh and scripts/course-pki.sh) against `groundup up`, alternating,
# each on a fresh local emulator; prints each one's wall times, their medians and the ratio.
# Usage: scripts/bench-vs-course.sh [rounds]   (default 3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
# shellcheck source=bench-lib.sh
. "$root/scripts/bench-lib.sh"
work=$(mktemp -d)
emulator=
stop() { [ -z "$emulator" ] || "$groundup" emulator stop --emulator-dir "$emulator" >/dev/null 2>&1 || true; emulator=; }
trap 'stop; rm -rf "$work"' EXIT

fresh() { # dir: a new emulator, warmed up (moto loads its backends on the first requests)
  emulator="$1/emulator"
  AWS_ENDPOINT=$("$groundup" emulator start --emulator-dir "$emulator" 2>/dev/null)
  aws ec2 describe-vpcs >/dev/null && aws elbv2 describe-load-balancers >/dev/null
}
course() { course_all "$1" >/dev/null; }
ours() { (cd "$1" && "$groundup" up --endpoint "$AWS_ENDPOINT" >/dev/null 2>"$1/up.log") || { cat "$1/up.log" >&2; exit 1; }; }


course_times=() ours_times=()
for round in $(seq "$rounds"); do
  course_times+=("$(timed course "$round")")
  ours_times+=("$(timed ours "$round")")
  printf 'round %d: course %.2f s, groundup %.2f s\n' "$round" "${course_times[-1]}" "${ours_times[-1]}" >&2
done
course_median=$(printf '%s\n' "${course_times[@]}" | median)
ours_median=$(printf '%s\n' "${ours_times[@]}" | median)
printf '%-44s %8s\n' "($rounds rounds, alternating, fresh emulator each)" "median s"
printf '%-44s %8.2f\n' "course (aws-cli + cfssl, its commands in order)" "$course_median"
printf '%-44s %8.2f\n' "groundup up" "$ours_median"
printf 'ratio course/groundup: %.1f\n' "$(echo "scale=3; $course_median / $ours_median" | bc)"
